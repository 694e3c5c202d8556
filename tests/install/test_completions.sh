#!/usr/bin/env bash
# Checks the shell completions by loading each file in its own shell (bash, with and without
# the bash-completion package; zsh's completion system; fish) and asking that shell what it
# offers for typed command lines: options, profile names from the configuration files, GPUs
# from the NVML simulator of a build tree, and the command once the options end. Every shell
# must offer exactly the options that `with-gpu --help` lists: a flag missing from a
# completion file (or one that --help no longer has) fails the test. bash, zsh and fish must
# all be installed (scripts/install-deps.sh installs them).
#
#   tests/install/test_completions.sh BUILD_DIR           the source tree's completion files,
#                                                         BUILD_DIR/bin/with-gpu
#   tests/install/test_completions.sh BUILD_DIR PREFIX    the files installed under PREFIX
#                                                         (e.g. /usr), PREFIX/bin/with-gpu
set -euo pipefail

build=$(cd "${1:?usage: $0 BUILD_DIR [PREFIX]}" && pwd)
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
if [[ $# -ge 2 ]]; then
    prefix=$2
    bash_file=$prefix/share/bash-completion/completions/with-gpu
    zsh_file=$prefix/share/zsh/vendor-completions/_with-gpu
    fish_file=$prefix/share/fish/vendor_completions.d/with-gpu.fish
    program=$prefix/bin/with-gpu
else
    bash_file=$source_dir/completions/with-gpu.bash
    zsh_file=$source_dir/completions/_with-gpu
    fish_file=$source_dir/completions/with-gpu.fish
    program=$build/bin/with-gpu
fi

failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# The completions ask `with-gpu --status --json` for the GPUs: serve the simulated 8-GPU
# machine, with a private lock directory.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LD_LIBRARY_PATH=$build/sim-driver
export WITH_GPU_SIM_MACHINE=$source_dir/sim/machines/a100x8.json
export WITH_GPU_LOCK_DIR=$work/locks
# The completions run "with-gpu" as typed, so put the binary under test first in PATH.
mkdir "$work/bin"
ln -s "$program" "$work/bin/with-gpu"
export PATH=$work/bin:$PATH
# A private user configuration with two profiles (and no fish configuration at all).
export XDG_CONFIG_HOME=$work/config
mkdir -p "$XDG_CONFIG_HOME/with-gpu"
printf '[defaults]\nmax_util = 50\n\n[profiles.llm]\nmin_gpus = 2\n\n[ profiles.small ]\ncount = 1\n' \
    >"$XDG_CONFIG_HOME/with-gpu/config.toml"

for shell in bash zsh fish; do
    command -v "$shell" >/dev/null ||
        fail "$shell is not installed (scripts/install-deps.sh installs it); its completion is not checked"
done
[[ -r /usr/share/bash-completion/bash_completion ]] ||
    fail "bash-completion is not installed (scripts/install-deps.sh installs it)"
if ((failures > 0)); then
    exit 1
fi

bash -n "$bash_file" || fail "bash -n $bash_file"
zsh -n "$zsh_file" || fail "zsh -n $zsh_file"
fish -n "$fish_file" || fail "fish -n $fish_file"

# Every option that `with-gpu --help` lists, sorted, as each shell must offer them for "-".
mapfile -t options < <("$program" --help | awk '/^  -/ {print $1}' | sed 's/\[=.*//' | tr ',' '\n' | sort -u)
((${#options[@]} > 20)) || fail "could not read the options from with-gpu --help"
all_options=${options[*]}

# Each X_offers function prints, for every command line given (ending at the cursor), one
# line: what the shell offers there, sorted, unique and separated by spaces.

# bash, as an interactive shell with the bash-completion package loads it
# (BASH_COMPLETION=full), or plain bash without that package (BASH_COMPLETION=plain).
bash_offers() {
    local line
    for line; do
        # shellcheck disable=SC2016 # expanded by the inner bash
        bash -c '
            [[ $BASH_COMPLETION == full ]] && source /usr/share/bash-completion/bash_completion
            source "$1"
            compopt() { :; } # the real one only works inside a completion that readline started
            line=$2
            COMP_LINE=$line
            COMP_POINT=${#line}
            read -ra COMP_WORDS <<<"$line"
            [[ $line == *" " ]] && COMP_WORDS+=("")
            COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
            _with_gpu with-gpu "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
            ((${#COMPREPLY[@]} == 0)) || printf "%s\n" "${COMPREPLY[@]}"
        ' bash "$bash_file" "$line" | sort -u | paste -sd ' ' -
    done
}
bash_full_offers() { BASH_COMPLETION=full bash_offers "$@"; }
bash_plain_offers() { BASH_COMPLETION=plain bash_offers "$@"; }

# zsh's completion system in an interactive zsh on a pseudo-terminal (see zsh_offers.zsh).
zsh_offers() {
    local dir
    dir=$(mktemp -d "$work/zsh.XXXXXX")
    zsh "$source_dir/tests/install/zsh_offers.zsh" "$zsh_file" "$dir" "$@"
}

fish_offers() {
    local line
    for line; do
        # XDG_CONFIG_HOME (above) and XDG_DATA_HOME are private: no user completions interfere.
        # shellcheck disable=SC2016 # $argv is fish's, expanded by fish
        # (string replace fails when nothing is offered: no failure here.)
        XDG_DATA_HOME=$work/fish-data \
            fish -c 'source $argv[1]; complete -C $argv[2] | string replace -r "\t.*" ""; true' \
            "$fish_file" "$line" | sort -u | paste -sd ' ' -
    done
}

# The words of the first list that the second lacks.
words_only_in() {
    comm -23 <(tr ' ' '\n' <<<"$1" | sort) <(tr ' ' '\n' <<<"$2" | sort) | paste -sd ' ' -
}

# What every shell must offer: command line, then the expected offers.
checks=(
    "with-gpu -" "$all_options"
    "with-gpu --wa" "--wait --watch"
    "with-gpu --wai" "--wait"
    "with-gpu --min-m" "--min-memory"
    "with-gpu --ti" "--timeout"
    # GPU indices and names come from the simulated machine through `with-gpu --status --json`.
    "with-gpu --gpu " "0 1 2 3 4 5 6 7"
    "with-gpu -n " "1 2 3 4 5 6 7 8"
    "with-gpu --gpu-type A" "A100-SXM4-80GB"
    # After the options and their values, the command is completed.
    "with-gpu -n 2 --gpu 1 --poll 5s whoam" "whoami"
    "with-gpu -- whoam" "whoami"
    "with-gpu --profile llm whoam" "whoami"
)
lines=()
for ((i = 0; i < ${#checks[@]}; i += 2)); do
    lines+=("${checks[i]}")
done
# Profiles come from the configuration files; the system file of this machine may add its own.
lines+=("with-gpu --profile ")

for shell in bash_full bash_plain zsh fish; do
    mapfile -t offered < <("${shell}_offers" "${lines[@]}")
    if ((${#offered[@]} != ${#lines[@]})); then
        fail "$shell: expected answers for ${#lines[@]} command lines, got ${#offered[@]}"
        continue
    fi
    for ((i = 0; i < ${#checks[@]}; i += 2)); do
        line=${checks[i]} expected=${checks[i + 1]} actual=${offered[i / 2]}
        [[ $actual == "$expected" ]] && continue
        if [[ $line == "with-gpu -" ]]; then
            fail "${shell/_/ } completion of '$line' differs from with-gpu --help:" \
                "missing: '$(words_only_in "$expected" "$actual")';" \
                "not in --help: '$(words_only_in "$actual" "$expected")'"
        else
            fail "${shell/_/ } completion of '$line': expected '$expected', got '$actual'"
        fi
    done
    profiles=" ${offered[-1]} "
    [[ $profiles == *" llm "* && $profiles == *" small "* ]] ||
        fail "${shell/_/ } completion of 'with-gpu --profile ': expected llm and small, got '${offered[-1]}'"
done

# Without a driver there are no GPUs to offer, and nothing breaks.
for shell in bash_full bash_plain fish; do
    offers=$(WITH_GPU_NVML_LIBRARY=$work/no-such-libnvidia-ml.so "${shell}_offers" "with-gpu --gpu " 2>&1)
    [[ -z $offers ]] || fail "${shell/_/ } completion of 'with-gpu --gpu ' without a driver: got '$offers'"
done
# fish completes the last item of a GPU list.
offers=$(fish_offers "with-gpu --gpu 1,2,")
[[ $offers == "1,2,0 1,2,1 1,2,2 1,2,3 1,2,4 1,2,5 1,2,6 1,2,7" ]] ||
    fail "fish completion of 'with-gpu --gpu 1,2,': got '$offers'"

if ((failures > 0)); then
    echo "completions: $failures failure(s)" >&2
    exit 1
fi
echo "completions: ok (bash with and without bash-completion, zsh, fish)"
