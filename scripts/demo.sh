#!/usr/bin/env bash
# Installs the dependencies, builds with-gpu and shows it at work on a simulated
# 8x A100 machine (no GPU needed). Exits 0 when every step did what it says, and non-zero
# as soon as one did not (scripts/test.sh runs it so).
# The jobs' texts are in single quotes: the job's shell expands their variables.
# shellcheck disable=SC2016
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake --preset dev -G Ninja >/dev/null
cmake --build --preset dev -j "$(nproc)" --target with-gpu nvidia-ml-sim

demo_dir=$(mktemp -d)
# On every exit: stop the jobs this script started that still run (only after a failure),
# remove the temporary directory, and exit with the script's own status.
cleanup() {
  local status=$?
  local -a pids
  mapfile -t pids < <(jobs -p)
  if ((${#pids[@]} > 0)); then
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  rm -rf "$demo_dir"
  exit "$status"
}
trap cleanup EXIT
export PATH="$PWD/build/bin:$PATH"
export LD_LIBRARY_PATH="$PWD/build/sim-driver"         # the NVML simulator
export WITH_GPU_SIM_MACHINE="$PWD/sim/machines/a100x8.json"
export WITH_GPU_LOCK_DIR="$demo_dir/locks"
export XDG_CONFIG_HOME="$demo_dir/config"              # your own settings do not change the demo

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
die() {
  echo "demo: $*" >&2
  exit 1
}
# Runs "$@" and requires exit status $1.
expect_status() {
  local expected=$1 status=0
  shift
  "$@" || status=$?
  ((status == expected)) || die "'$*' exited $status, not $expected"
  if ((status != 0)); then
    echo "exit status $status"
  fi
}
# Waits until `with-gpu --status --json` contains $1 at least $2 times. Polls (a fraction
# of a second each) so that a slow, loaded machine only makes the demo slower.
await_status() {
  local text=$1 count=$2 deadline=$((SECONDS + 120))
  until (($(with-gpu --status --json | grep -c -- "$text") >= count)); do
    ((SECONDS < deadline)) || die "with-gpu --status --json did not show $count x $text within 120 s"
    sleep 0.1
  done
}

step with-gpu --status
with-gpu --status

step with-gpu --dry-run -n 2 --min-memory 60G --max-util 10 --max-temp 80
expect_status 0 with-gpu --dry-run -n 2 --min-memory 60G --max-util 10 --max-temp 80

step "with-gpu -n 2 --min-memory 60G -- sh -c 'echo ...'"
with-gpu -n 2 --min-memory 60G -- sh -c \
  'echo "the job sees CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES CUDA_DEVICE_ORDER=$CUDA_DEVICE_ORDER"'

step "with-gpu -n 4 -- sleep 600 &   (a long job claims four GPUs)"
with-gpu -n 4 -- sleep 600 &
long_job=$!
await_status '"supervisor_pid"' 4
with-gpu --status

step "with-gpu -n 2 -- sh -c 'echo ...'   (a second job gets other GPUs)"
with-gpu -n 2 -- sh -c 'echo "the second job got GPUs $CUDA_VISIBLE_DEVICES"'

step "with-gpu -n 2 --min-memory 40G --max-util 10 true   (nothing suitable left: exit 75)"
expect_status 75 with-gpu -n 2 --min-memory 40G --max-util 10 true

step "with-gpu --timeout 5m -n 2 --min-memory 40G --max-util 10 -- sh -c 'echo ...' &   (waits in line)"
with-gpu --timeout 5m -n 2 --min-memory 40G --max-util 10 -- \
  sh -c 'echo "started on GPUs $CUDA_VISIBLE_DEVICES the moment the long job ended"' &
waiting_job=$!
await_status '"gpus_needed"' 1

step "with-gpu --status | sed -n '/^Waiting/,\$p'   (the queue, at the end of the board)"
with-gpu --status | sed -n '/^Waiting/,$p'

step "kill %1   (the long job ends; the waiting job starts at once)"
kill "$long_job"
wait "$long_job" || true # ended by the signal, as asked
wait "$waiting_job" || die "the waiting job failed (exit status $?)"

printf '\nDone. Try it yourself with the same three variables:\n'
printf '  export LD_LIBRARY_PATH=%q WITH_GPU_SIM_MACHINE=%q\n' "$LD_LIBRARY_PATH" "$WITH_GPU_SIM_MACHINE"
