# bash completion for with-gpu                              -*- shell-script -*-
# Installed as share/bash-completion/completions/with-gpu; works best with the
# bash-completion package, and falls back to plain bash when it is not loaded.

# Prints the NVML index or the name of every GPU (field "index" or "name"), one a line,
# from `with-gpu --status --json`. Prints nothing when that fails (no driver, no such
# binary) or takes too long, so completion never breaks or hangs on a machine without GPUs.
_with_gpu_status_field()
{
    local field=$1 program=$2 pattern
    shift 2
    # The keys of the GPU objects: in the "gpus" array, indented by six spaces (their
    # processes are nested deeper).
    case $field in
        index) pattern='s/^      "index": \([0-9][0-9]*\),\{0,1\}$/\1/p' ;;
        name) pattern='s/^      "name": "\(.*\)",\{0,1\}$/\1/p' ;;
        *) return 0 ;;
    esac
    local -a runner=()
    type -P timeout >/dev/null && runner=(timeout 2)
    "${runner[@]}" "$program" --status --json "$@" 2>/dev/null </dev/null |
        sed -n '/^  "gpus": \[/,/^  \]/'"{$pattern}"
}

# Words of the GPU names, e.g. "A100-SXM4-80GB" from "NVIDIA A100-SXM4-80GB".
_with_gpu_name_words()
{
    _with_gpu_status_field name "$@" | tr ' ' '\n' | grep -vx -e NVIDIA -e '' | sort -u
}

# Names of the profiles, [profiles.NAME], in the system and the user configuration file.
_with_gpu_profiles()
{
    local user_dir=$HOME/.config
    [[ ${XDG_CONFIG_HOME-} == /* ]] && user_dir=$XDG_CONFIG_HOME
    sed -n 's/^[[:space:]]*\[[[:space:]]*profiles\.\([A-Za-z0-9_-]*\)[[:space:]]*\].*/\1/p' \
        /etc/with-gpu/config.toml "$user_dir/with-gpu/config.toml" 2>/dev/null | sort -u
}

_with_gpu()
{
    local cur prev words cword split=false
    if declare -F _init_completion >/dev/null; then
        # -n : keeps PCI bus ids and "name:T4" whole.
        _init_completion -s -n : || return
    else
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD - 1]}
    fi

    # Where does the command start? At the first word that is neither an option nor an
    # option's value, or right after "--". From there on, complete that command.
    local i command_at=0
    local -a status_args=()
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            --)
                command_at=$((i + 1))
                break
                ;;
            --lock-dir | --nvml-library)
                status_args+=("${words[i]}" "${words[i + 1]}")
                ((i++))
                ;;
            --lock-dir=* | --nvml-library=*)
                status_args+=("${words[i]}")
                ;;
            -n | --count | --min-gpus | --max-gpus | --gpu | --exclude | --gpu-type | \
                --min-memory | --max-util | --max-temp | --max-power | --timeout | --poll | \
                --hold-timeout | --on-misplaced | --profile | -[!-]*n)
                ((i++))
                ;;
            -*) ;;
            *)
                command_at=$i
                break
                ;;
        esac
    done
    if ((command_at > 0)); then
        if declare -F _command_offset >/dev/null; then
            _command_offset "$command_at"
        elif ((command_at == cword)); then
            mapfile -t COMPREPLY < <(compgen -c -- "$cur")
        else
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        fi
        return
    fi

    local program=${words[0]}
    case $prev in
        -n | --count | --min-gpus | --max-gpus | -[!-]*n)
            local count
            count=$(_with_gpu_status_field index "$program" "${status_args[@]}" | wc -l)
            ((count > 0)) || count=8
            mapfile -t COMPREPLY < <(compgen -W "$(seq 1 "$count")" -- "$cur")
            return
            ;;
        --gpu | --exclude)
            # A comma-separated list: complete its last item.
            local head="" item=$cur choices
            if [[ $cur == *,* ]]; then
                head=${cur%,*},
                item=${cur##*,}
            fi
            if [[ $prev == --exclude && $item == name:* ]]; then
                choices=$(_with_gpu_name_words "$program" "${status_args[@]}" | sed 's/^/name:/')
            else
                choices=$(_with_gpu_status_field index "$program" "${status_args[@]}")
                if [[ $prev == --exclude ]]; then
                    choices+=" name:"
                fi
            fi
            mapfile -t COMPREPLY < <(compgen -P "$head" -W "$choices" -- "$item")
            if [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *name: ]]; then
                compopt -o nospace 2>/dev/null
            fi
            declare -F __ltrim_colon_completions >/dev/null && __ltrim_colon_completions "$cur"
            return
            ;;
        --gpu-type)
            mapfile -t COMPREPLY < <(compgen -W \
                "$(_with_gpu_name_words "$program" "${status_args[@]}")" -- "$cur")
            return
            ;;
        --min-memory)
            mapfile -t COMPREPLY < <(compgen -W "0 2G 4G 8G 16G 20G 24G 40G 48G 80G" -- "$cur")
            return
            ;;
        --max-util)
            mapfile -t COMPREPLY < <(compgen -W "0 5 10 20 50" -- "$cur")
            return
            ;;
        --max-temp)
            mapfile -t COMPREPLY < <(compgen -W "50 60 70 80 90" -- "$cur")
            return
            ;;
        --max-power)
            mapfile -t COMPREPLY < <(compgen -W "100 150 200 250 300 400" -- "$cur")
            return
            ;;
        --timeout)
            mapfile -t COMPREPLY < <(compgen -W "30s 5m 10m 30m 1h 2h 12h" -- "$cur")
            return
            ;;
        --poll)
            mapfile -t COMPREPLY < <(compgen -W "1s 2s 5s 10s 30s" -- "$cur")
            return
            ;;
        --profile)
            mapfile -t COMPREPLY < <(compgen -W "$(_with_gpu_profiles)" -- "$cur")
            return
            ;;
        --hold)
            # Only as --hold=AMOUNT (the flag alone never takes the next word).
            [[ $split == true ]] && mapfile -t COMPREPLY < <(compgen -W "0.25 0.5 0.75 8G 16G" -- "$cur")
            return
            ;;
        --hold-timeout)
            mapfile -t COMPREPLY < <(compgen -W "1m 5m 10m 30m" -- "$cur")
            return
            ;;
        --on-misplaced)
            mapfile -t COMPREPLY < <(compgen -W "warn kill" -- "$cur")
            return
            ;;
        --lock-dir)
            if declare -F _filedir >/dev/null; then
                _filedir -d
            else
                compopt -o filenames 2>/dev/null
                mapfile -t COMPREPLY < <(compgen -d -- "$cur")
            fi
            return
            ;;
        --nvml-library)
            if declare -F _filedir >/dev/null; then
                _filedir
            else
                compopt -o filenames 2>/dev/null
                mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            fi
            return
            ;;
    esac
    # "--opt=" split off by _init_completion -s but not known above: nothing to offer.
    [[ $split == true ]] && return

    if [[ $cur == -* ]]; then
        local options="-n --count --min-gpus --max-gpus --gpu --exclude --gpu-type --strict
            --min-memory --max-util --max-temp --max-power --require-idle
            --wait --timeout --poll
            --hold --hold-timeout --on-misplaced
            --status --watch --dry-run --json
            --slurm-gres-conf --slurm-prolog --slurm-epilog
            --lock-dir --nvml-library -q --quiet -v --verbose --profile --show-config
            -h --help -V --version"
        mapfile -t COMPREPLY < <(compgen -W "$options" -- "$cur")
        return
    fi

    # The word being typed is the command itself.
    if declare -F _command_offset >/dev/null; then
        _command_offset "$cword"
    else
        mapfile -t COMPREPLY < <(compgen -c -- "$cur")
    fi
}
complete -F _with_gpu with-gpu
