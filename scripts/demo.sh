#!/usr/bin/env bash
# Installs the dependencies, builds with-gpu and shows it at work on a simulated
# 8x A100 machine (no GPU needed).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake --preset dev -G Ninja >/dev/null
cmake --build --preset dev -j "$(nproc)" --target with-gpu nvidia-ml-sim

demo_dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait; rm -rf "$demo_dir"' EXIT
export PATH="$PWD/build/bin:$PATH"
export LD_LIBRARY_PATH="$PWD/build/sim-driver"         # the NVML simulator
export WITH_GPU_SIM_MACHINE="$PWD/sim/machines/a100x8.json"
export WITH_GPU_LOCK_DIR="$demo_dir/locks"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step with-gpu --status
with-gpu --status

step with-gpu --dry-run -n 2 --min-memory 60G --max-util 10 --max-temp 80
with-gpu --dry-run -n 2 --min-memory 60G --max-util 10 --max-temp 80 || true

step "with-gpu -n 2 --min-memory 60G -- sh -c 'echo ...'"
with-gpu -n 2 --min-memory 60G -- sh -c \
  'echo "the job sees CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES CUDA_DEVICE_ORDER=$CUDA_DEVICE_ORDER"'

step "with-gpu -n 4 -- sleep 3 &   (a job claims four GPUs for 3 seconds)"
with-gpu -n 4 -- sleep 3 &
until with-gpu --status --json | grep -q '"supervisor_pid"'; do sleep 0.05; done
with-gpu --status

step "with-gpu -n 2 -- sh -c 'echo ...'   (a second job gets other GPUs)"
with-gpu -n 2 -- sh -c 'echo "the second job got GPUs $CUDA_VISIBLE_DEVICES"'

step "with-gpu -n 2 --min-memory 40G --max-util 10 true   (nothing suitable left: exit 75)"
with-gpu -n 2 --min-memory 40G --max-util 10 true || echo "exit status $?"

step "with-gpu --wait -n 2 --min-memory 40G --max-util 10 -- sh -c 'echo ...'   (wait in line)"
with-gpu --wait -n 2 --min-memory 40G --max-util 10 -- \
  sh -c 'echo "started on GPUs $CUDA_VISIBLE_DEVICES the moment the first job ended"'

printf '\nDone. Try it yourself with the same three variables:\n'
printf '  export LD_LIBRARY_PATH=%q WITH_GPU_SIM_MACHINE=%q\n' "$LD_LIBRARY_PATH" "$WITH_GPU_SIM_MACHINE"
