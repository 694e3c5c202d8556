#!/usr/bin/env python3
"""One worker per GPU: each worker claims one GPU for itself, or exits when all are taken.

    for i in 1 2 3 4 5 6; do python3 worker.py & done   # on 4 GPUs: 4 run, 2 exit

This replaces the PID-lock-file scheme (one .gpu_locks/gpu_N.lock file per GPU, stale locks
cleaned up by hand): the claim is a lock the kernel drops when the worker dies, so there is
nothing stale to clean up, and a with-gpu command or another program never gets the same GPU.
"""

import os
import sys
import time

import with_gpu


def work(gpu):
    # A real worker would train here, on f"cuda:{gpu}". Stand-in: run until told to stop.
    stop = os.environ.get("WORKER_STOP_FILE")
    while stop and not os.path.exists(stop):
        time.sleep(0.05)


def main():
    try:
        lease = with_gpu.acquire(min_memory=os.environ.get("WORKER_MIN_MEMORY", "4G"))
    except with_gpu.NoGpuAvailable:
        print(f"worker {os.getpid()}: no GPU available (all claimed); exiting", flush=True)
        return 0
    with lease:
        print(f"worker {os.getpid()}: running on GPU {lease.indices[0]} "
              f"({lease.uuids[0]}), cuda:{lease.cuda_ids[0]}", flush=True)
        work(lease.cuda_ids[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
