#!/usr/bin/env python3
"""Acquiring and releasing one GPU from Python: with_gpu.acquire() against the seed's way,
measured in the same process, run by run alternated.

The seed (the GPUScheduler package) asks `nvidia-smi` in a subprocess for every GPU's
figures, parses its CSV, picks a GPU that passes the thresholds and takes a `filelock` on a
per-GPU lock file. The stand-in below does exactly that with a fake `nvidia-smi`: a shell
script that prints the CSV of 8 idle A100s. A real nvidia-smi takes tens of milliseconds to
start and query the driver, so the seed's figure here is a lower bound: the comparison flatters
the seed. with_gpu reads the NVML simulator serving the same 8 GPUs, claims under the decision
lock and records the holder, as it does on a real machine.

  PYTHONPATH=BUILD/python python3 bench/python_acquire.py BUILD [RUNS]

BUILD is a build tree with the Python package (build/python) and the simulator (sim-driver/).
Prints the medians and their ratio; docs/benchmarks.md records them."""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import filelock

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 30
SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FAKE_NVIDIA_SMI = """#!/bin/sh
# Answers the seed's query: index, name, memory.total, memory.free, power.draw, power.limit,
# utilization.gpu (csv, noheader, nounits), for 8 idle A100s.
for i in 0 1 2 3 4 5 6 7; do
  echo "$i, NVIDIA A100-SXM4-80GB, 81920, 81251, 61.20, 400.00, 0"
done
"""


def seed_way(nvidia_smi, lock_dir):
    """The seed's acquisition of one GPU: query, parse, threshold, lock; then release."""
    out = subprocess.run([nvidia_smi, "--query-gpu=index,name,memory.total,memory.free,"
                          "power.draw,power.limit,utilization.gpu",
                          "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.strip().splitlines():
        index, _name, _total, free, power, _limit, util = [f.strip() for f in line.split(",")]
        if float(free) / 1024 >= 20 and float(power) <= 80 and float(util) <= 1:
            lock = filelock.FileLock(os.path.join(lock_dir, f"gpu_{index}.lock"), timeout=10)
            lock.acquire()
            lock.release()
            return int(index)
    raise RuntimeError("no GPU")


def with_gpu_way(with_gpu):
    lease = with_gpu.acquire()
    lease.release()
    return lease.indices[0]


def main():
    sys.path.insert(0, os.path.join(BUILD, "python"))
    work = tempfile.mkdtemp(prefix="with-gpu-bench-")
    try:
        nvidia_smi = os.path.join(work, "nvidia-smi")
        with open(nvidia_smi, "w") as f:
            f.write(FAKE_NVIDIA_SMI)
        os.chmod(nvidia_smi, 0o755)
        os.makedirs(os.path.join(work, "seed-locks"))
        os.environ["WITH_GPU_SIM_MACHINE"] = os.path.join(SOURCE, "sim", "machines",
                                                          "a100x8.json")
        os.environ["WITH_GPU_NVML_LIBRARY"] = os.path.join(BUILD, "sim-driver",
                                                           "libnvidia-ml.so.1")
        os.environ["WITH_GPU_LOCK_DIR"] = os.path.join(work, "locks")
        os.environ["XDG_CONFIG_HOME"] = os.path.join(work, "no-config")
        import with_gpu
        with_gpu_way(with_gpu)  # warm: the module and the lock directory exist from here on
        seed_way(nvidia_smi, os.path.join(work, "seed-locks"))
        times = {"with_gpu": [], "seed": []}
        for _ in range(RUNS):
            for name, run in (("with_gpu", lambda: with_gpu_way(with_gpu)),
                              ("seed", lambda: seed_way(nvidia_smi,
                                                        os.path.join(work, "seed-locks")))):
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
        ours = statistics.median(times["with_gpu"]) * 1000
        seed = statistics.median(times["seed"]) * 1000
        print(f"acquire + release 1 of 8 GPUs, median of {RUNS} alternated runs:")
        print(f"  with_gpu.acquire():                     {ours:7.2f} ms")
        print(f"  seed's way (nvidia-smi CSV + filelock): {seed:7.2f} ms  (fake nvidia-smi)")
        print(f"  ratio with_gpu / seed:                  {ours / seed:7.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
