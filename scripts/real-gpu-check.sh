#!/usr/bin/env bash
# The real-GPU checks of issues 8 and 9, as one script for a machine with an NVIDIA driver:
# the status board and JSON, a launch, --hold against the real CUDA driver (hold made,
# released when the job's own process takes memory, freed by kill -9), and start-up times.
# Prints everything to stdout; docs/real-gpu.md records a run.
#
#   scripts/real-gpu-check.sh BUILD_DIR            # on the machine with the GPU
#   scripts/real-gpu-check.sh BUILD_DIR --sim      # rehearsal on the simulators (no GPU)
#
# BUILD_DIR: a build with benchmarks (bin/with-gpu, bin/cuda_job). Needs nvidia-smi on a real
# machine (only to show what the driver itself says).
set -uo pipefail

build=$(cd "${1:?usage: $0 BUILD_DIR [--sim]}" && pwd)
source_dir=$(cd "$(dirname "$0")/.." && pwd)
wg=$build/bin/with-gpu
job=$build/bin/cuda_job
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export WITH_GPU_LOCK_DIR=$work/locks XDG_CONFIG_HOME=$work/no-config
if [[ ${2:-} == --sim ]]; then
    cp "$source_dir/sim/machines/a100x8.json" "$work/machine.json"
    export LD_LIBRARY_PATH=$build/sim-driver WITH_GPU_SIM_MACHINE=$work/machine.json
fi
step() { printf '\n== %s\n' "$*"; }
smi() { command -v nvidia-smi >/dev/null && nvidia-smi "$@"; }

step "machine"
date -u; uname -r; "$wg" --version
smi --query-gpu=index,name,pci.bus_id,memory.total,memory.used --format=csv

step "with-gpu --status"
"$wg" --status
step "with-gpu --status --json (first GPU)"
"$wg" --status --json | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["gpus"][0], indent=1))'
step "with-gpu --dry-run"
"$wg" --dry-run
step "with-gpu -- env (what the job gets)"
"$wg" -- sh -c 'env | grep -E "^(CUDA_|WITH_GPU_UUIDS)" | sort'

bus_id=$("$wg" --status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["gpus"][0]["pci_bus_id"])')
step "--hold on GPU 0 ($bus_id): the job takes 1 GiB after 3 s and keeps it 4 s"
"$wg" --hold --gpu 0 -- "$job" "$bus_id" 3 4 >"$work/job.log" 2>"$work/wg.log" &
wg_pid=$!
for t in 1 2 5; do
    sleep "$t"
    printf -- '-- after %ss more\n' "$t"
    "$wg" --status | sed -n '1,4p'
    "$wg" --status --json | python3 -c 'import json,sys; g=json.load(sys.stdin)["gpus"][0]; print("hold:", g["hold"]); print("processes:", [(p["pid"], p["used_memory_mib"], p["squatter"]) for p in g["processes"]])'
    smi --query-compute-apps=pid,used_memory --format=csv,noheader
done
wait "$wg_pid"; echo "with-gpu exited $?"
cat "$work/job.log" "$work/wg.log"

step "--hold, then kill -9 of with-gpu: the driver frees the held memory"
"$wg" --hold --gpu 0 -- sleep 60 &
wg_pid=$!
sleep 3
"$wg" --status --json | python3 -c 'import json,sys; print("hold before:", json.load(sys.stdin)["gpus"][0]["hold"])'
kill -9 "$wg_pid"; wait "$wg_pid" 2>/dev/null
sleep 1
smi --query-compute-apps=pid,used_memory --format=csv,noheader
"$wg" --status | sed -n '1,4p'

step "start-up: 20 runs each of with-gpu -- true and --status (ms)"
python3 - "$wg" <<'PY'
import statistics, subprocess, sys, time
wg = sys.argv[1]
for args in (["--", "true"], ["--status"], ["--dry-run"]):
    times = []
    for _ in range(20):
        start = time.perf_counter()
        subprocess.run([wg, *args], stdout=subprocess.DEVNULL, check=False)
        times.append((time.perf_counter() - start) * 1000)
    print(f"with-gpu {' '.join(args)}: median {statistics.median(times):.1f} ms, min {min(times):.1f} ms")
PY
