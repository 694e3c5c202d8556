# fish completion for with-gpu. Installed as share/fish/vendor_completions.d/with-gpu.fish.

# Options whose value is the next word; used to find where the command starts.
set -g __with_gpu_options_with_value -n --count --min-gpus --max-gpus --gpu --exclude \
    --gpu-type --min-memory --max-util --max-temp --max-power --timeout --poll \
    --hold-timeout --on-misplaced --lock-dir --nvml-library --profile

# Succeeds once the command has started (the first word that is neither an option nor an
# option's value, or anything after "--"): from there on, the words are the command's.
function __with_gpu_command_started
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l skip 0
    for token in $tokens
        if test $skip -eq 1
            set skip 0
            continue
        end
        if test "$token" = --
            return 0
        end
        if contains -- $token $__with_gpu_options_with_value
            set skip 1
            continue
        end
        switch $token
            case '-*n'
                # A cluster of short flags ending in -n takes the next word too (-qn 2).
                if string match -qr -- '^-[^-]' $token
                    set skip 1
                end
            case '-*'
            case '*'
                return 0
        end
    end
    return 1
end

# The NVML index or the name of every GPU ($argv[1] = index or name), one a line, from
# `with-gpu --status --json`. Prints nothing when that fails (no driver) or takes too
# long, so completion never breaks or hangs on a machine without GPUs.
function __with_gpu_status_field --argument-names field
    set -l tokens (commandline -opc)
    set -l program $tokens[1]
    set -l args
    set -l i 2
    while test $i -le (count $tokens)
        switch $tokens[$i]
            case --lock-dir --nvml-library
                set -a args $tokens[$i] $tokens[(math $i + 1)]
            case '--lock-dir=*' '--nvml-library=*'
                set -a args $tokens[$i]
        end
        set i (math $i + 1)
    end
    set -l runner
    command -q timeout; and set runner timeout 2
    # The keys of the GPU objects: in the "gpus" array, indented by six spaces (their
    # processes are nested deeper).
    $runner $program --status --json $args 2>/dev/null </dev/null |
        sed -n '/^  "gpus": \[/,/^  \]/p' |
        string replace -rf '^      "'$field'": "?([^"]*?)"?,?$' '$1'
end

# Names of the profiles, [profiles.NAME], in the system and the user configuration file.
function __with_gpu_profiles
    set -l user_dir ~/.config
    string match -q -- '/*' "$XDG_CONFIG_HOME"; and set user_dir $XDG_CONFIG_HOME
    cat /etc/with-gpu/config.toml $user_dir/with-gpu/config.toml 2>/dev/null |
        string replace -rf '^\s*\[\s*profiles\.([A-Za-z0-9_-]+)\s*\].*' '$1' | sort -u
end

function __with_gpu_counts
    set -l n (count (__with_gpu_status_field index))
    test $n -gt 0; or set n 8
    seq 1 $n
end

# Words of the GPU names, e.g. "A100-SXM4-80GB" from "NVIDIA A100-SXM4-80GB".
function __with_gpu_name_words
    __with_gpu_status_field name | string split ' ' | string match -v -e NVIDIA | sort -u
end

# A comma-separated list: offers "<what is typed up to the last comma><GPU>".
function __with_gpu_gpu_list --argument-names with_names
    set -l current (commandline -ct | string replace -r '^--[a-z-]+=' '')
    set -l head (string match -r '^.*,' -- $current); or set head ''
    set -l gpus (__with_gpu_status_field index)
    if test "$with_names" = names
        set -a gpus name:(__with_gpu_name_words)
    end
    printf '%s\n' $head$gpus
end

set -l not_in_command 'not __with_gpu_command_started'

complete -c with-gpu -f

# Choosing GPUs
complete -c with-gpu -n $not_in_command -s n -l count -x -a '(__with_gpu_counts)' -d 'Exactly N GPUs (default 1)'
complete -c with-gpu -n $not_in_command -l min-gpus -x -a '(__with_gpu_counts)' -d 'At least N GPUs'
complete -c with-gpu -n $not_in_command -l max-gpus -x -a '(__with_gpu_counts)' -d 'Up to M GPUs if that many are free'
complete -c with-gpu -n $not_in_command -l gpu -x -a '(__with_gpu_gpu_list)' -d 'Only these GPUs: indices, UUIDs, PCI bus ids'
complete -c with-gpu -n $not_in_command -l exclude -x -a '(__with_gpu_gpu_list names)' -d 'Never these GPUs (as --gpu, or name:SUBSTR)'
complete -c with-gpu -n $not_in_command -l gpu-type -x -a '(__with_gpu_name_words)' -d 'Prefer GPUs whose name contains SUBSTR'
complete -c with-gpu -n $not_in_command -l strict -d 'With --gpu-type: use nothing else'
complete -c with-gpu -n $not_in_command -l min-memory -x -a '0 2G 4G 8G 16G 20G 24G 40G 48G 80G' -d 'At least SIZE free (bare number = MiB)'
complete -c with-gpu -n $not_in_command -l max-util -x -a '0 5 10 20 50' -d 'At most PCT% utilisation'
complete -c with-gpu -n $not_in_command -l max-temp -x -a '50 60 70 80 90' -d 'At most C degrees Celsius'
complete -c with-gpu -n $not_in_command -l max-power -x -a '100 150 200 250 300 400' -d 'At most W watts power draw'
complete -c with-gpu -n $not_in_command -l require-idle -d 'No compute or graphics process at all'

# Waiting
complete -c with-gpu -n $not_in_command -l wait -d 'Wait in a fair queue until the GPUs are free'
complete -c with-gpu -n $not_in_command -l timeout -x -a '30s 5m 10m 30m 1h 2h 12h' -d 'Wait at most DURATION, then exit 124'
complete -c with-gpu -n $not_in_command -l poll -x -a '1s 2s 5s 10s 30s' -d 'Re-read NVML this often while waiting'

# Guarding the job's GPUs
complete -c with-gpu -n $not_in_command -l hold -d 'Hold memory on the claimed GPUs until the job uses them (--hold=0.5, --hold=8G)'
complete -c with-gpu -n $not_in_command -l hold-timeout -x -a '1m 5m 10m 30m' -d 'Let a hold go after DURATION'
complete -c with-gpu -n $not_in_command -l on-misplaced -x -a 'warn kill' -d 'When the job uses a GPU it did not claim'

# Looking instead of running
complete -c with-gpu -n $not_in_command -l status -d 'Show every GPU, its processes and claim holder'
complete -c with-gpu -n $not_in_command -l dry-run -d 'Show what would be chosen and why'
complete -c with-gpu -n $not_in_command -l json -d 'Machine-readable output'
complete -c with-gpu -n $not_in_command -l watch -d 'With --status: redraw until Ctrl-C'

# SLURM
complete -c with-gpu -n $not_in_command -l slurm-gres-conf -d 'Print gres.conf lines for this machine'
complete -c with-gpu -n $not_in_command -l slurm-prolog -d 'For slurmd Prolog=: hold the job GPUs'
complete -c with-gpu -n $not_in_command -l slurm-epilog -d 'For slurmd Epilog=: release them'

# Setup
complete -c with-gpu -n $not_in_command -l lock-dir -x -a '(__fish_complete_directories)' -d 'Shared claim directory'
complete -c with-gpu -n $not_in_command -l nvml-library -r -F -d 'Load NVML from PATH'
complete -c with-gpu -n $not_in_command -s q -l quiet -d 'No notes on stderr'
complete -c with-gpu -n $not_in_command -s v -l verbose -d 'Say which GPUs were chosen and why'
complete -c with-gpu -n $not_in_command -l profile -x -a '(__with_gpu_profiles)' -d 'Use [profiles.NAME] of the configuration files'
complete -c with-gpu -n $not_in_command -l show-config -d 'Print the effective settings, then exit'
complete -c with-gpu -n $not_in_command -s h -l help -d 'Print help and exit'
complete -c with-gpu -n $not_in_command -s V -l version -d 'Print the version and exit'

# The command, then its own arguments as that command completes them. (No "--" before the
# list: __fish_complete_subcommand would take it for an option with a value. The list starts
# with -n, so none of it is read as that function's own --options.)
complete -c with-gpu -a "(__fish_complete_subcommand $__with_gpu_options_with_value)"
