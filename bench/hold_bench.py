#!/usr/bin/env python3
"""--hold on the simulators: how soon memory is held after the launch, how soon a hold is let
go once the job's own process appears on the GPU (the hand-over), and what the with-gpu
process costs in CPU while it holds and after.

  bench/hold_bench.py BUILD [RUNS]

BUILD holds bin/with-gpu and sim-driver/ (libnvidia-ml.so.1, libcuda.so.1). The held memory
is read from the CUDA simulator's state directory (docs/simulator.md), polled every 1 ms, so
each figure includes up to 1 ms of polling. Prints medians; docs/benchmarks.md records them."""

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 20
BIN = os.path.join(BUILD, "bin", "with-gpu")


def gpu(index, processes=()):
    return {"name": "NVIDIA A100-SXM4-80GB", "uuid": f"GPU-{index:08x}-1111-4222-8333-{index:012x}",
            "pci_bus_id": f"00000000:{0x10 + index:02X}:00.0", "memory_total_mib": 81920,
            "utilization_percent": 0, "temperature_c": 30, "power_mw": 60000,
            "power_limit_mw": 400000,
            "processes": [{"pid": p, "used_memory_mib": 512, "type": "compute"} for p in processes]}


def write_machine(path, processes=()):
    with open(path + ".tmp", "w") as f:
        json.dump({"driver_version": "550.54.15", "gpus": [gpu(0, processes)]}, f)
    os.replace(path + ".tmp", path)


def held_by(state_dir, pid):
    try:
        with open(os.path.join(state_dir, f"cuda-{pid}.json")) as f:
            return sum(json.load(f)["memory_bytes"].values())
    except (OSError, ValueError):
        return 0


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(0.001)
    raise RuntimeError("timed out")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(work, measure_cpu=False):
    machine = os.path.join(work, "machine.json")
    write_machine(machine)
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(BUILD, "sim-driver"),
               WITH_GPU_SIM_MACHINE=machine, WITH_GPU_LOCK_DIR=os.path.join(work, "locks"),
               XDG_CONFIG_HOME=os.path.join(work, "none"))
    env.pop("WITH_GPU_NVML_LIBRARY", None)
    state = machine + ".d"
    start = time.monotonic()
    child = subprocess.Popen([BIN, "-q", "--hold", "--hold-timeout", "1h", "sh", "-c",
                              "echo $$; exec sleep 300"], env=env, stdout=subprocess.PIPE,
                             text=True, start_new_session=True)
    job = int(child.stdout.readline())
    held_at = wait_for(lambda: held_by(state, child.pid) > 20 * 2**30)
    result = {"held_after_launch": held_at - start}
    if measure_cpu:
        before = cpu_seconds(child.pid)
        time.sleep(5)
        result["cpu_holding"] = (cpu_seconds(child.pid) - before) / 5
    shown = time.monotonic()
    write_machine(machine, processes=[job])  # the job's own process appears on the GPU
    released = wait_for(lambda: held_by(state, child.pid) == 0)
    result["hand_over"] = released - shown
    if measure_cpu:
        before = cpu_seconds(child.pid)
        time.sleep(5)
        result["cpu_after"] = (cpu_seconds(child.pid) - before) / 5
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    shutil.rmtree(os.path.join(work, "locks"), ignore_errors=True)
    shutil.rmtree(state, ignore_errors=True)
    return result


def main():
    work = tempfile.mkdtemp(prefix="with-gpu-hold-bench-")
    try:
        runs = [one_run(work) for _ in range(RUNS)]
        cpu = one_run(work, measure_cpu=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ms = lambda key: statistics.median(r[key] for r in runs) * 1000  # noqa: E731
    print(f"--hold on 1 simulated GPU, medians of {RUNS} runs:")
    print(f"  launch to 20 GiB held (spawn, claim, CUDA driver, allocation): {ms('held_after_launch'):7.1f} ms")
    print(f"  job's process shown in NVML to hold released (hand-over):      {ms('hand_over'):7.1f} ms")
    print(f"  CPU of with-gpu while holding (100 ms NVML reads), 5 s:        {cpu['cpu_holding'] * 100:7.2f} % of a core")
    print(f"  CPU of with-gpu after the hold (placement check every 2 s), 5 s: {cpu['cpu_after'] * 100:5.2f} % of a core")


if __name__ == "__main__":
    main()
