#!/usr/bin/env python3
"""Queue benchmarks on the NVML simulator, each against a naive poll-every-second
baseline (the peers' approach: try, and if nothing is free sleep 1 s and retry)
measured in the same run.

  bench/queue_bench.py BUILD_DIR [handoff|makespan|waiting|all]

BUILD_DIR holds bin/with-gpu, bin/job_recorder and sim-driver/ (a Release build with
benchmarks on). Prints the figures recorded in docs/benchmarks.md."""

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build-bench")
WHAT = sys.argv[2] if len(sys.argv) > 2 else "all"
BIN = os.path.join(BUILD, "bin", "with-gpu")
JOB = os.path.join(BUILD, "bin", "job_recorder")
SIM = os.path.join(BUILD, "sim-driver")


class Machine:
    def __init__(self, gpus):
        self.dir = tempfile.mkdtemp(prefix="with-gpu-bench-")
        self.path = os.path.join(self.dir, "machine.json")
        with open(self.path, "w") as f:
            json.dump({"gpus": [{"name": "NVIDIA H100 80GB HBM3"} for _ in range(gpus)]}, f)
        self.lock_dir = os.path.join(self.dir, "locks")
        self.log = os.path.join(self.dir, "jobs.log")
        self.env = dict(os.environ, LD_LIBRARY_PATH=SIM, WITH_GPU_SIM_MACHINE=self.path,
                        WITH_GPU_LOCK_DIR=self.lock_dir)
        self.env.pop("CUDA_VISIBLE_DEVICES", None)

    def popen(self, *args):
        return subprocess.Popen([BIN, *args], env=self.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def queue_length(self):
        out = subprocess.run([BIN, "--status", "--json"], env=self.env, capture_output=True, text=True)
        return len(json.loads(out.stdout)["queue"])

    def wait_for_queue(self, n, timeout=120):
        deadline = time.monotonic() + timeout
        while self.queue_length() < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"queue never reached {n}")
            time.sleep(0.02)

    def hold_all(self, gpus):
        """A job claiming every GPU until killed; returns its supervisor."""
        holder = subprocess.Popen([BIN, "-n", str(gpus), "sh", "-c", "echo $$; exec sleep 600"],
                                  env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        job = int(holder.stdout.readline())
        return holder, job

    def records(self):
        with open(self.log) as f:
            rows = [line.split() for line in f]
        return sorted((int(s), int(e)) for _, s, e, _, _ in rows)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def poller(machine, args):
    """The naive baseline: try; if nothing is free (75), sleep 1 s and try again."""
    while True:
        r = subprocess.run([BIN, "-q", *args], env=machine.env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode != 75:
            return
        time.sleep(1.0)


def run_pollers(machine, count, args):
    threads = [threading.Thread(target=poller, args=(machine, args)) for _ in range(count)]
    for t in threads:
        t.start()
    return threads


def handoffs(records):
    return [(records[i + 1][0] - records[i][1]) / 1e6 for i in range(len(records) - 1)]


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p * (len(values) - 1))))]


def bench_handoff():
    jobs, hold_ms = 52, "20"
    m = Machine(1)
    holder, job = m.hold_all(1)
    waiters = []
    for i in range(jobs):
        waiters.append(m.popen("--wait", "-q", JOB, m.log, hold_ms, f"w{i}"))
    m.wait_for_queue(jobs)
    os.kill(job, 9)
    for w in waiters:
        w.wait()
    holder.wait()
    ours = handoffs(m.records())
    m.cleanup()

    b = Machine(1)
    holder, job = b.hold_all(1)
    threads = run_pollers(b, 11, [JOB, b.log, hold_ms, "p"])
    time.sleep(1.5)  # every poller has tried once and is sleeping
    os.kill(job, 9)
    for t in threads:
        t.join()
    holder.wait()
    base = handoffs(b.records())
    b.cleanup()
    print(f"hand-off latency, with-gpu --wait: {len(ours)} hand-offs, median {statistics.median(ours):.1f} ms, "
          f"p99 {pct(ours, 0.99):.1f} ms, max {max(ours):.1f} ms")
    print(f"hand-off latency, poll every 1 s:  {len(base)} hand-offs, median {statistics.median(base):.1f} ms, "
          f"p99 {pct(base, 0.99):.1f} ms")


def bench_makespan():
    jobs, gpus, hold = 64, 4, 0.2
    ideal = jobs * hold / gpus

    def run(use_queue):
        m = Machine(gpus)
        start = time.monotonic_ns()
        if use_queue:
            procs = [m.popen("--wait", "-q", JOB, m.log, str(int(hold * 1000)), f"j{i}") for i in range(jobs)]
            for p in procs:
                p.wait()
        else:
            for t in run_pollers(m, jobs, [JOB, m.log, str(int(hold * 1000)), "p"]):
                t.join()
        end = max(e for _, e in m.records())
        m.cleanup()
        return (end - start) / 1e9

    ours, base = run(True), run(False)
    print(f"makespan, {jobs} jobs x {hold}s on {gpus} GPUs: ideal {ideal:.2f} s")
    print(f"  with-gpu --wait:  {ours:.2f} s, efficiency {ideal / ours:.3f}")
    print(f"  poll every 1 s:   {base:.2f} s, efficiency {ideal / base:.3f}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_waiting():
    waiters, window = 200, 10.0
    m = Machine(1)
    holder, job = m.hold_all(1)
    procs = [m.popen("--wait", "-q", "true") for _ in range(waiters)]
    m.wait_for_queue(waiters)
    before = {p.pid: cpu_seconds(p.pid) for p in procs}
    time.sleep(window)
    used = sum(cpu_seconds(p.pid) - before[p.pid] for p in procs)
    alive = sum(p.poll() is None for p in procs)
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()
    os.kill(job, 9)
    holder.wait()
    m.cleanup()

    b = Machine(1)
    holder, job = b.hold_all(1)
    start = resource.getrusage(resource.RUSAGE_CHILDREN)
    stop = time.monotonic() + window
    def timed_poller():
        while time.monotonic() < stop:
            subprocess.run([BIN, "-q", "true"], env=b.env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
    threads = [threading.Thread(target=timed_poller) for _ in range(waiters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    end = resource.getrusage(resource.RUSAGE_CHILDREN)
    base = (end.ru_utime - start.ru_utime) + (end.ru_stime - start.ru_stime)
    os.kill(job, 9)
    holder.wait()
    b.cleanup()
    print(f"waiting cost, {waiters} waiters blocked for {window:.0f} s ({alive} still waiting at the end):")
    print(f"  with-gpu --wait:  {used:.3f} CPU s in all = {100 * used / window:.2f}% of one core")
    print(f"  poll every 1 s:   {base:.3f} CPU s in all = {100 * base / window:.1f}% of one core")


if WHAT in ("handoff", "all"):
    bench_handoff()
if WHAT in ("makespan", "all"):
    bench_makespan()
if WHAT in ("waiting", "all"):
    bench_waiting()
