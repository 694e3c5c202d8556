#!/usr/bin/env bash
# Checks the shell completions: syntax in every shell that is installed (bash always; zsh
# and fish when present), and what bash (and fish) actually offer, against the with-gpu
# binary and the NVML simulator of a build tree.
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

bash -n "$bash_file" || fail "bash -n $bash_file"

# Every option that `with-gpu --help` lists must be completed by every shell.
mapfile -t options < <("$program" --help | awk '/^  -/ {print $1}' | tr ',' '\n')
((${#options[@]} > 20)) || fail "could not read the options from with-gpu --help"
has_word() { # FILE REGEX: REGEX occurs, not as part of a longer option name
    grep -qE -- "(^|[^a-z-])$2([^a-z-]|\$)" "$1"
}
for option in "${options[@]}"; do
    has_word "$bash_file" "$option" || fail "$option is missing from $bash_file"
    has_word "$zsh_file" "$option" || fail "$option is missing from $zsh_file"
    if [[ $option == --* ]]; then
        has_word "$fish_file" "-l ${option#--}" || fail "$option is missing from $fish_file"
    else
        has_word "$fish_file" "-s ${option#-}" || fail "$option is missing from $fish_file"
    fi
done

# Prints what bash offers (sorted, space-separated) for a command line ending at the cursor.
# Uses bash-completion when it is installed (as an interactive shell would), plain bash if not.
bash_offers() {
    bash -c '
        [[ -r /usr/share/bash-completion/bash_completion ]] &&
            source /usr/share/bash-completion/bash_completion
        source "$1"
        compopt() { :; } # the real one only works inside a completion that readline started
        line=$2
        COMP_LINE=$line
        COMP_POINT=${#line}
        read -ra COMP_WORDS <<<"$line"
        [[ $line == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        _with_gpu with-gpu "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
        ((${#COMPREPLY[@]} == 0)) || printf "%s\n" "${COMPREPLY[@]}" | sort -u | tr "\n" " "
    ' bash "$bash_file" "$1"
}

expect() { # SHELL LINE EXPECTED ACTUAL
    if [[ "$4" != "$3" ]]; then
        fail "$1 completion of '$2': expected '$3', got '$4'"
    fi
}
# Profiles: the system file of this machine may add its own.
expect_profiles() { # SHELL ACTUAL
    if [[ " $2" != *" llm "* || " $2" != *" small "* ]]; then
        fail "$1 completion of 'with-gpu --profile ': expected llm and small, got '$2'"
    fi
}

expect bash "with-gpu --min-m" "--min-memory " "$(bash_offers "with-gpu --min-m")"
expect bash "with-gpu --wa" "--wait --watch " "$(bash_offers "with-gpu --wa")"
expect bash "with-gpu --wai" "--wait " "$(bash_offers "with-gpu --wai")"
expect bash "with-gpu --ti" "--timeout " "$(bash_offers "with-gpu --ti")"
# GPU indices come from the simulated machine through `with-gpu --status --json`.
expect bash "with-gpu --gpu " "0 1 2 3 4 5 6 7 " "$(bash_offers "with-gpu --gpu ")"
expect bash "with-gpu -n " "1 2 3 4 5 6 7 8 " "$(bash_offers "with-gpu -n ")"
expect bash "with-gpu --gpu-type A" "A100-SXM4-80GB " "$(bash_offers "with-gpu --gpu-type A")"
# After the options and their values, the command is completed.
expect bash "with-gpu -n 2 --gpu 1 --poll 5s whoam" "whoami " \
    "$(bash_offers "with-gpu -n 2 --gpu 1 --poll 5s whoam")"
expect bash "with-gpu -- whoam" "whoami " "$(bash_offers "with-gpu -- whoam")"
expect bash "with-gpu --profile llm whoam" "whoami " "$(bash_offers "with-gpu --profile llm whoam")"
expect_profiles bash "$(bash_offers "with-gpu --profile ")"
# Without a driver there are no GPUs to offer, and nothing breaks.
offers=$(WITH_GPU_NVML_LIBRARY=$work/no-such-libnvidia-ml.so bash_offers "with-gpu --gpu " 2>&1)
expect bash "with-gpu --gpu (no driver)" "" "$offers"

if command -v zsh >/dev/null; then
    zsh -n "$zsh_file" || fail "zsh -n $zsh_file"
else
    echo "note: zsh is not installed; _with-gpu not checked"
fi

if command -v fish >/dev/null; then
    fish -n "$fish_file" || fail "fish -n $fish_file"
    fish_offers() {
        # XDG_CONFIG_HOME (above) and XDG_DATA_HOME are private: no user completions interfere.
        # shellcheck disable=SC2016 # $argv is fish's, expanded by fish
        XDG_DATA_HOME=$work/fish-data \
            fish -c 'source $argv[1]; complete -C $argv[2] | string replace -r "\t.*" ""' \
            "$fish_file" "$1" | sort -u | tr '\n' ' '
    }
    expect fish "with-gpu --min-m" "--min-memory " "$(fish_offers "with-gpu --min-m")"
    expect fish "with-gpu --gpu " "0 1 2 3 4 5 6 7 " "$(fish_offers "with-gpu --gpu ")"
    expect fish "with-gpu --gpu 1,2," "1,2,0 1,2,1 1,2,2 1,2,3 1,2,4 1,2,5 1,2,6 1,2,7 " \
        "$(fish_offers "with-gpu --gpu 1,2,")"
    expect fish "with-gpu -n 2 --gpu 1 whoam" "whoami " "$(fish_offers "with-gpu -n 2 --gpu 1 whoam")"
    expect fish "with-gpu -- whoam" "whoami " "$(fish_offers "with-gpu -- whoam")"
    expect fish "with-gpu --profile llm whoam" "whoami " \
        "$(fish_offers "with-gpu --profile llm whoam")"
    expect_profiles fish "$(fish_offers "with-gpu --profile ")"
else
    echo "note: fish is not installed; with-gpu.fish not checked"
fi

if ((failures > 0)); then
    echo "completions: $failures failure(s)" >&2
    exit 1
fi
echo "completions: ok"
