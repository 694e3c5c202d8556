#!/usr/bin/env python3
"""with-gpu against the floor (issue 9): the least any launcher must do, bench/floor.c.

  bench/floor_bench.py BUILD_DIR [RUNS] [WHAT...]

BUILD_DIR holds bin/with-gpu, bin/floor and sim-driver/ (the benchmark build). RUNS (default
30) is the number of timed runs of each command; every figure is a median. WHAT is any of
launch modes gpus lockdir memory head calls handoff makespan waiters (default: all of them). RUNS under 10 is a smoke
run (CTest's bench.floor_smoke): the head's measuring windows shrink from 5 s to 0.5 s.
The claims of other users need root (chown); without it that figure is skipped.
With WITH_GPU_OTHER_BIN naming a second with-gpu (e.g. one built another way), `launch`,
`modes` and `lockdir` time it too, in the same alternation, for a before/after comparison.

Every comparison is measured in one loop that runs the commands compared one after another
(A B A B ...), so that drift in the machine's load reaches all of them alike. Each command is
started with os.posix_spawn and timed from before the spawn to after waitpid, stdout to
/dev/null: what a user waits for. Nothing here is a recorded figure; everything printed was
measured in this run. docs/benchmarks.md ("Against the floor") records the results."""

import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build-bench")
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 30
WHAT = sys.argv[3:] or ["launch", "modes", "gpus", "lockdir", "memory", "head", "calls",
                        "handoff", "makespan", "waiters"]
BIN = os.path.join(BUILD, "bin", "with-gpu")
FLOOR = os.path.join(BUILD, "bin", "floor")
SIM = os.path.join(BUILD, "sim-driver")
SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
A100X8 = os.path.join(SOURCE, "sim", "machines", "a100x8.json")
TRUE = shutil.which("true")
OTHER = os.environ.get("WITH_GPU_OTHER_BIN")
WARM = 5  # untimed runs of each command first: page cache, lock directory

WORK = tempfile.mkdtemp(prefix="with-gpu-floor-")
NO_CONFIG = os.path.join(WORK, "no-config")  # XDG_CONFIG_HOME: no user configuration


def installed(path, name):
    """A copy of the program at `path`, written in one go as a package manager writes it: the
    one timed. The page cache a linker leaves behind makes a freshly linked binary start
    slower (with-gpu --version 7-13 %) than the same bytes copied or read from disk
    (2026-12-07, docs/benchmarks.md); every program compared is copied alike."""
    os.makedirs(os.path.join(WORK, "bin"), exist_ok=True)
    copy = os.path.join(WORK, "bin", name)
    with open(path, "rb") as f:
        data = f.read()
    with open(copy, "wb") as f:
        f.write(data)
    os.chmod(copy, 0o755)
    return copy


BUILT = {"with-gpu": BIN, "floor": FLOOR}
BIN, FLOOR = installed(BIN, "with-gpu"), installed(FLOOR, "floor")
if OTHER:
    BUILT["other with-gpu"] = OTHER
    OTHER = installed(OTHER, "other-with-gpu")


def uuid_of(i):
    return f"GPU-{i:08x}-2222-4333-8444-{i:012x}"


def machine_file(gpus, name):
    """A machine of `gpus` idle H100s with known UUIDs; returns its path."""
    path = os.path.join(WORK, name)
    with open(path, "w") as f:
        json.dump({"gpus": [{"name": "NVIDIA H100 80GB HBM3", "uuid": uuid_of(i),
                             "pci_bus_id": f"00000000:{0x10 + i:02X}:00.0"}
                            for i in range(gpus)]}, f)
    return path


def lock_dir(name):
    path = os.path.join(WORK, name)
    os.mkdir(path)
    os.chmod(path, 0o1777)  # as with-gpu creates it
    return path


def env_for(machine, locks, **extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WITH_GPU_", "SLURM_")) and k != "CUDA_VISIBLE_DEVICES"}
    env.update(LD_LIBRARY_PATH=SIM, WITH_GPU_SIM_MACHINE=machine, WITH_GPU_LOCK_DIR=locks,
               XDG_CONFIG_HOME=NO_CONFIG)
    env.update(extra)
    return env


class Command:
    """One command line in one environment, timed run by run."""

    def __init__(self, label, argv, env):
        self.label, self.argv, self.env, self.ms = label, argv, env, []

    def run(self, timed=True):
        actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)]
        start = time.perf_counter_ns()
        pid = os.posix_spawn(self.argv[0], self.argv, self.env, file_actions=actions)
        _, status = os.waitpid(pid, 0)
        elapsed = (time.perf_counter_ns() - start) / 1e6
        if os.waitstatus_to_exitcode(status) != 0:
            again = subprocess.run(self.argv, env=self.env, capture_output=True, text=True)
            raise SystemExit(f"{self.label} failed ({status}): {again.stderr.strip()}")
        if timed:
            self.ms.append(elapsed)

    @property
    def median(self):
        return statistics.median(self.ms)


def alternate(commands, runs=RUNS):
    """Runs the commands one after another, `runs` rounds (after WARM untimed rounds). Each
    round starts one command later, so that every command runs in every position equally
    often: a run just after a similar one is faster (caches), and with a fixed order the
    second of two binaries looked 5 % faster whichever it was (2026-12-07)."""
    for _ in range(WARM):
        for c in commands:
            c.run(timed=False)
    for r in range(runs):
        shift = r % len(commands)
        for c in commands[shift:] + commands[:shift]:
            c.run()
    return commands


def show(commands, against=None):
    for c in commands:
        ratio = f"   {c.median / against.median:5.2f}x the floor" if against and c is not against else ""
        print(f"  {c.label:34} median {c.median:7.2f} ms   (min {min(c.ms):6.2f}){ratio}")


def slope(xs, ys):
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


# --- helpers that hold things in a lock directory ---------------------------------------

HOLDER = r"""
import fcntl, json, os, resource, sys, time
locks, spec = sys.argv[1], json.loads(sys.stdin.readline())
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
# As with-gpu does: files appear under decide.lock held exclusively, and are locked before
# it is released, so no reader ever takes one for a dead waiter's.
decide = os.open(os.path.join(locks, "decide.lock"), os.O_RDWR | os.O_CREAT, 0o666)
fcntl.flock(decide, fcntl.LOCK_EX)
held = []
for name, text, uid in spec:
    fd = os.open(os.path.join(locks, name), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, text.replace("$PID", str(os.getpid())).encode())
    if uid is not None:
        os.fchown(fd, uid, uid)
    held.append(fd)
fcntl.flock(decide, fcntl.LOCK_UN)
print(len(held), flush=True)
sys.stdin.read()  # until the benchmark closes our stdin or kills us
"""


class Holder:
    """A helper process of ours holding `spec` ([(file name, text, owner uid)]) locked."""

    def __init__(self, locks, spec):
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, locks], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.proc.stdin.write(json.dumps(spec) + "\n")
        self.proc.stdin.flush()
        ready = self.proc.stdout.readline()
        if ready.strip() != str(len(spec)):
            raise SystemExit(f"holder failed: {ready!r}")

    def stop(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def claim_spec(gpus, count, first_uid=20000):
    """`count` live claims by other users, spread over the GPUs `gpus`, each with a record."""
    spec = []
    for n in range(count):
        uid = first_uid + n
        record = {"pid": "$PID", "supervisor_pid": "$PID", "user": f"user{uid}",
                  "command": "python train.py --epochs 100", "since": int(time.time())}
        text = json.dumps(record, separators=(",", ":")).replace('"$PID"', "$PID") + "\n"
        spec.append((f"gpu-{uuid_of(gpus[n % len(gpus)])}.{uid}.lock", text, uid))
    return spec


def real_ticket(machine, gpu):
    """The ticket text of a real `with-gpu --wait --gpu GPU true`, while GPU is held."""
    locks = lock_dir(f"ticket-sample-{gpu}-{time.monotonic_ns()}")
    env = env_for(machine, locks)
    holder = subprocess.Popen([BIN, "--gpu", str(gpu), "sh", "-c", "echo $$; exec sleep 300"],
                              env=env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    job = int(holder.stdout.readline())
    waiter = subprocess.Popen([BIN, "--wait", "-q", "--gpu", str(gpu), "true"], env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        return first_ticket(locks)
    finally:
        os.kill(waiter.pid, signal.SIGTERM)  # leaves the queue
        waiter.wait()
        os.kill(job, signal.SIGKILL)
        holder.wait()


def first_ticket(locks):
    """The first ticket in `locks`, parsed, once it is written whole (a line)."""
    deadline = time.monotonic() + 60
    while True:
        names = sorted(n for n in os.listdir(locks) if n.startswith("queue-"))
        if names:
            with open(os.path.join(locks, names[0])) as f:
                text = f.read()
            if text.endswith("\n"):
                return json.loads(text)
        if time.monotonic() > deadline:
            raise SystemExit("no ticket appeared")
        time.sleep(0.01)


def ticket_spec(sample, seqs):
    spec = []
    for seq in seqs:
        doc = dict(sample, seq=seq, pid=0)
        text = json.dumps(doc).replace('"pid": 0', '"pid": $PID') + "\n"
        spec.append((f"queue-{seq:020d}.ticket", text, None))
    return spec


# --- the figures ---------------------------------------------------------------------

def bench_launch():
    locks = lock_dir("launch")
    env = env_for(A100X8, locks)
    other = [Command("other with-gpu -- true", [OTHER, "--", TRUE], env)] if OTHER else []
    cmds = alternate([Command("true", [TRUE], env),
                      Command("floor true", [FLOOR, TRUE], env),
                      Command("with-gpu -- true", [BIN, "--", TRUE], env)] + other)
    bare, floor, ours = cmds[:3]
    print(f"launch, 8 simulated A100s (sim/machines/a100x8.json), {RUNS} runs each, alternated:")
    show(cmds, floor)
    if OTHER:
        print(f"  other ({BUILT['other with-gpu']}) / with-gpu: {other[0].median / ours.median:.2f}")
    print(f"  added to a bare `true`: floor {floor.median - bare.median:.2f} ms, "
          f"with-gpu {ours.median - bare.median:.2f} ms "
          f"({(ours.median - bare.median) / (floor.median - bare.median):.2f}x the floor's)")
    print(f"  GOAL with-gpu -- true <= 1.15x the floor: "
          f"{'met' if ours.median / floor.median <= 1.15 else 'NOT met'} "
          f"({ours.median / floor.median:.2f}x)")


def bench_modes():
    locks = lock_dir("modes")
    env = env_for(A100X8, locks)
    cmds = alternate([Command("floor true", [FLOOR, TRUE], env),
                      Command("with-gpu --status", [BIN, "--status"], env),
                      Command("with-gpu --dry-run true", [BIN, "--dry-run", TRUE], env),
                      Command("with-gpu --version", [BIN, "--version"], env),
                      Command("true", [TRUE], env)] +
                     ([Command("other with-gpu --status", [OTHER, "--status"], env),
                       Command("other with-gpu --version", [OTHER, "--version"], env)] if OTHER else []))
    floor, status, dry, version, bare = cmds[:5]
    print(f"looking without taking, 8 simulated A100s, {RUNS} runs each, alternated:")
    show(cmds, floor)
    if OTHER:
        print(f"  other / with-gpu: --status {cmds[5].median / status.median:.2f}, "
              f"--version {cmds[6].median / version.median:.2f}")
    print(f"  with-gpu --version - true (loading with-gpu and its runtime, parsing nothing): "
          f"{version.median - bare.median:.2f} ms")
    for c in (status, dry):
        r = c.median / floor.median
        print(f"  GOAL {c.label} <= 1.15x the floor: {'met' if r <= 1.15 else 'NOT met'} ({r:.2f}x)")


def bench_gpus():
    sizes = (1, 2, 4, 8, 16)
    cmds = []
    for n in sizes:
        env = env_for(machine_file(n, f"gpus{n}.json"), lock_dir(f"gpus{n}"))
        cmds += [Command(f"floor true, {n} GPUs", [FLOOR, TRUE], env),
                 Command(f"with-gpu -- true, {n} GPUs", [BIN, "--", TRUE], env)]
    alternate(cmds)
    print(f"start-up against the number of GPUs (idle simulated H100s), {RUNS} runs each, alternated:")
    for i in range(0, len(cmds), 2):
        show(cmds[i:i + 2], cmds[i])
    floor = [c.median for c in cmds[0::2]]
    ours = [c.median for c in cmds[1::2]]
    print(f"  per GPU (least squares over {sizes}): floor {1000 * slope(sizes, floor):.0f} us, "
          f"with-gpu {1000 * slope(sizes, ours):.0f} us")
    print(f"  1 -> 16 GPUs: floor +{floor[-1] - floor[0]:.2f} ms, with-gpu +{ours[-1] - ours[0]:.2f} ms")


def bench_lockdir():
    count = 1000
    machine = machine_file(16, "lockdir16.json")
    empty = lock_dir("lockdir-empty")
    claims_dir = lock_dir("lockdir-claims")
    tickets_dir = lock_dir("lockdir-tickets")
    # 1000 claims by 1000 other users on GPUs 8-15; with-gpu takes one of GPUs 0-7. Only
    # root can make files owned by others; without it the claims are left out.
    root = os.geteuid() == 0
    claims = tickets = None
    try:
        claims = Holder(claims_dir, claim_spec(list(range(8, 16)), count) if root else [])
        # 1000 waiters for GPU 15 alone (their tickets copied from a real waiter's): a newcomer
        # may go ahead on GPUs 0-14, which none of them can ever use, but must read each ticket.
        sample = real_ticket(machine, 15)
        tickets = Holder(tickets_dir, ticket_spec(sample, range(1, count + 1)))
        cmds = alternate([Command("with-gpu -- true, empty", [BIN, "--", TRUE], env_for(machine, empty)),
                          Command(f"with-gpu -- true, {count} claims", [BIN, "--", TRUE],
                                  env_for(machine, claims_dir)),
                          Command(f"with-gpu -- true, {count} tickets", [BIN, "--", TRUE],
                                  env_for(machine, tickets_dir)),
                          Command("floor true, empty", [FLOOR, TRUE], env_for(machine, empty))] +
                         ([Command("other with-gpu -- true, empty", [OTHER, "--", TRUE],
                                   env_for(machine, empty)),
                           Command(f"other with-gpu -- true, {count} tickets", [OTHER, "--", TRUE],
                                   env_for(machine, tickets_dir))] if OTHER else []))
        queue = json.loads(subprocess.run([BIN, "--status", "--json"], env=env_for(machine, tickets_dir),
                                          capture_output=True, text=True).stdout)["queue"]
        taken = json.loads(subprocess.run([BIN, "--status", "--json"], env=env_for(machine, claims_dir),
                                          capture_output=True, text=True).stdout)["gpus"]
    finally:
        for helper in (claims, tickets):
            if helper:
                helper.stop()
    base, with_claims, with_tickets, floor = cmds[:4]
    print(f"start-up with a full lock directory, 16 simulated GPUs, {RUNS} runs each, alternated:")
    print(f"  (--status saw {len(queue)} live tickets, and {sum(g['claim'] is not None for g in taken)} "
          f"GPUs claimed by others)")
    show(cmds, floor)
    if root:
        print(f"  per live claim:  {1000 * (with_claims.median - base.median) / count:.1f} us")
    else:
        print("  per live claim: not measured (needs root to make other users' claim files)")
    print(f"  per live ticket: {1000 * (with_tickets.median - base.median) / count:.1f} us")
    if OTHER:
        print(f"  other, per live ticket: {1000 * (cmds[5].median - cmds[4].median) / count:.1f} us")


def status_of(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def bench_memory():
    machine = machine_file(1, "memory1.json")
    locks = lock_dir("memory")
    env = env_for(machine, locks)
    holder = subprocess.Popen([BIN, "sh", "-c", "echo $$; exec sleep 300"], env=env,
                              stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    job = int(holder.stdout.readline())
    waiters = []
    try:
        for _ in range(5):
            w = subprocess.Popen([BIN, "--wait", "-q", "true"], env=env, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL)
            waiters.append(w)
        deadline = time.monotonic() + 60
        while len([n for n in os.listdir(locks) if n.startswith("queue-")]) < len(waiters):
            if time.monotonic() > deadline:
                raise SystemExit("the waiters never queued")
            time.sleep(0.01)
        time.sleep(0.5)  # settled in their waits (a figure, not synchronisation)
        waiting = [status_of(w.pid) for w in waiters]
        supervising = status_of(holder.pid)
    finally:
        for w in waiters:
            os.kill(w.pid, signal.SIGTERM)
            w.wait()
        os.kill(job, signal.SIGKILL)
        holder.wait()
    floor_env = env_for(machine, lock_dir("memory-floor"))
    floor = subprocess.Popen([FLOOR, "sh", "-c", "echo $$; exec sleep 300"], env=floor_env,
                             stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    floor_job = int(floor.stdout.readline())
    floor_status = status_of(floor.pid)
    os.kill(floor_job, signal.SIGKILL)
    floor.wait()

    def kib(fields, key):
        return int(fields[key].split()[0])

    print("resident memory (from /proc/PID/status; 1 MiB = 1024 KiB):")
    print(f"  waiting with-gpu --wait (median of {len(waiting)}): "
          f"VmHWM {statistics.median(kib(s, 'VmHWM') for s in waiting) / 1024:.2f} MiB, "
          f"VmRSS {statistics.median(kib(s, 'VmRSS') for s in waiting) / 1024:.2f} MiB")
    print(f"  with-gpu supervising a running job: VmHWM {kib(supervising, 'VmHWM') / 1024:.2f} MiB, "
          f"VmRSS {kib(supervising, 'VmRSS') / 1024:.2f} MiB")
    print(f"  floor supervising a running job:    VmHWM {kib(floor_status, 'VmHWM') / 1024:.2f} MiB, "
          f"VmRSS {kib(floor_status, 'VmRSS') / 1024:.2f} MiB")
    hwm = statistics.median(kib(s, 'VmHWM') for s in waiting) / 1024
    print(f"  GOAL a waiting with-gpu <= 3 MiB: {'met' if hwm <= 3 else 'NOT met'} ({hwm:.2f} MiB VmHWM)")


def cpu_ns(pid):
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def bench_head():
    """The head of the queue watches (inotify) and re-reads the GPUs every --poll; its CPU per
    poll with few and with many tickets behind it. The tickets behind are live ticket files of
    waiters for the same GPU, held by one helper process, as blocked waiters would hold them."""
    poll_ms, window = 100, (5.0 if RUNS >= 10 else 0.5)
    machine = machine_file(1, "head1.json")
    rounds = []
    binaries = [BIN, OTHER] if OTHER else [BIN]
    for binary, behind in [(b, n) for _ in range(2) for b in binaries for n in (10, 1000)]:
        locks = lock_dir(f"head-{behind}-{len(rounds)}")
        env = env_for(machine, locks)
        holder = subprocess.Popen([BIN, "sh", "-c", "echo $$; exec sleep 300"], env=env,
                                  stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        job = int(holder.stdout.readline())
        head = rest = None
        try:
            head = subprocess.Popen([binary, "--wait", "-q", "--poll", f"{poll_ms}ms", "true"],
                                    env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            sample = first_ticket(locks)
            first = sample["seq"] + 1
            rest = Holder(locks, ticket_spec(sample, range(first, first + behind)))
            time.sleep(2 * poll_ms / 1000)  # past the look that the new tickets triggered
            start, t0 = cpu_ns(head.pid), time.monotonic()
            time.sleep(window)
            used, elapsed = cpu_ns(head.pid) - start, time.monotonic() - t0
            still = head.poll() is None
        finally:
            if rest:
                rest.stop()
            if head:
                os.kill(head.pid, signal.SIGTERM)
                head.wait()
            os.kill(job, signal.SIGKILL)
            holder.wait()
        polls = elapsed / (poll_ms / 1000)
        rounds.append((binary, behind, used / 1e6, polls, still))
    print(f"the queue head's CPU (/proc/PID/schedstat), --poll {poll_ms}ms, {window:.1f} s windows, "
          f"rounds alternated:")
    for binary, behind, ms, polls, still in rounds:
        print(f"  {'other ' if binary != BIN else ''}{behind:5} tickets behind: {ms:7.1f} ms CPU in "
              f"{polls:.0f} polls = {ms / polls:.3f} ms per poll"
              f" = {100 * ms / 1000 / (polls * poll_ms / 1000):.2f}% of a core"
              f"{'' if still else '  (the head left the queue: figure void)'}")
    few = statistics.median(ms / p for b, n, ms, p, _ in rounds if b == BIN and n == 10)
    many = statistics.median(ms / p for b, n, ms, p, _ in rounds if b == BIN and n == 1000)
    print(f"  GOAL the head's cost per poll does not grow with the queue: "
          f"{'met' if many <= 1.1 * few else 'NOT met'} ({many / few:.1f}x with 1000 behind vs 10)")


JOB = os.path.join(BUILD, "bin", "job_recorder")


def records_of(log):
    """job_recorder's lines: (start_ns, end_ns), by start."""
    with open(log) as f:
        return sorted((int(r[1]), int(r[2])) for r in (line.split() for line in f))


def gaps_ms(records):
    """Each job's start minus the previous job's end, in ms."""
    return [(records[i + 1][0] - records[i][1]) / 1e6 for i in range(len(records) - 1)]


def wait_for_tickets(locks, n, timeout=600):
    deadline = time.monotonic() + timeout
    while len([f for f in os.listdir(locks) if f.startswith("queue-")]) < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"the queue never reached {n} waiters")
        time.sleep(0.02)


def handoff_with_gpu(jobs, hold_ms, tag):
    """`jobs` waiters queued for one held GPU; the holder ends; the hand-offs between them."""
    machine = machine_file(1, f"handoff-{tag}.json")
    locks = lock_dir(f"handoff-{tag}")
    env = env_for(machine, locks)
    log = os.path.join(WORK, f"handoff-{tag}.log")
    holder = subprocess.Popen([BIN, "sh", "-c", "echo $$; exec sleep 300"], env=env,
                              stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    job = int(holder.stdout.readline())
    waiters = []
    for i in range(jobs):
        waiters.append(subprocess.Popen([BIN, "--wait", "-q", JOB, log, str(hold_ms), f"w{i}"],
                                        env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL))
        wait_for_tickets(locks, i + 1)  # arrival order = launch order
    os.kill(job, signal.SIGKILL)
    for w in waiters:
        w.wait()
    holder.wait()
    return gaps_ms(records_of(log))


def handoff_loop(jobs, hold_ms, tag, launcher):
    """A shell loop running the jobs back to back, each through `launcher` (a list)."""
    machine = machine_file(1, f"loop-{tag}.json")
    env = env_for(machine, lock_dir(f"loop-{tag}"))
    log = os.path.join(WORK, f"loop-{tag}.log")
    words = " ".join(launcher + [JOB, log, str(hold_ms)])
    subprocess.run(["sh", "-c", f'i=0; while [ $i -lt {jobs} ]; do {words} s$i; i=$((i+1)); done'],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    return gaps_ms(records_of(log))


def bench_handoff():
    """Hand-off: one job's end to the next job's start on the same GPU. with-gpu: the next job
    waits in the queue. The floor: a shell loop that starts the next job through the floor
    launcher at once (the least a launcher that takes the GPU must do); also a shell loop that
    starts the job bare (no launcher at all), for scale. Rounds alternated."""
    jobs, hold_ms = (31, 20) if RUNS >= 10 else (4, 20)
    ours, floor, bare = [], [], []
    for r in range(3 if RUNS >= 10 else 1):
        ours += handoff_with_gpu(jobs, hold_ms, f"w{r}")
        floor += handoff_loop(jobs, hold_ms, f"f{r}", [FLOOR])
        bare += handoff_loop(jobs, hold_ms, f"b{r}", [])
    print(f"hand-off on one simulated GPU, jobs of {hold_ms} ms, {len(ours)} hand-offs each, "
          f"rounds alternated (with-gpu, floor loop, bare loop):")
    for label, gaps in (("with-gpu --wait queue", ours), ("shell loop of floor JOB", floor),
                        ("shell loop of JOB (no launcher)", bare)):
        print(f"  {label:34} median {statistics.median(gaps):7.2f} ms   (min {min(gaps):6.2f}, "
              f"max {max(gaps):6.2f})")
    ratio = statistics.median(ours) / statistics.median(floor)
    print(f"  GOAL hand-off <= 1.08x the floor's: {'met' if ratio <= 1.08 else 'NOT met'} "
          f"({ratio:.2f}x)")


def makespan_with_gpu(jobs, gpus, hold_ms, tag):
    machine = machine_file(gpus, f"makespan-{tag}.json")
    env = env_for(machine, lock_dir(f"makespan-{tag}"))
    log = os.path.join(WORK, f"makespan-{tag}.log")
    start = time.monotonic_ns()
    procs = [subprocess.Popen([BIN, "--wait", "-q", JOB, log, str(hold_ms), f"j{i}"], env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
             for i in range(jobs)]
    for p in procs:
        p.wait()
    records = records_of(log)
    if len(records) != jobs:
        raise SystemExit(f"makespan: {len(records)} of {jobs} jobs ran")
    return (max(e for _, e in records) - start) / 1e9


def makespan_loops(jobs, gpus, hold_ms, tag):
    """The floor: one shell loop per GPU, each running its share of the jobs back to back."""
    env = env_for(machine_file(gpus, f"loops-{tag}.json"), lock_dir(f"loops-{tag}"))
    log = os.path.join(WORK, f"loops-{tag}.log")
    start = time.monotonic_ns()
    loops = [subprocess.Popen(["sh", "-c", f'i=0; while [ $i -lt {jobs // gpus} ]; do '
                               f'CUDA_VISIBLE_DEVICES={g} {JOB} {log} {hold_ms} l{g}.$i; i=$((i+1)); done'],
                              env=env, stdin=subprocess.DEVNULL) for g in range(gpus)]
    for p in loops:
        p.wait()
    return (max(e for _, e in records_of(log)) - start) / 1e9


def bench_makespan():
    jobs, gpus, hold_ms = (32, 4, 300) if RUNS >= 10 else (8, 4, 50)
    ours, floor = [], []
    for r in range(5 if RUNS >= 10 else 1):
        ours.append(makespan_with_gpu(jobs, gpus, hold_ms, f"w{r}"))
        floor.append(makespan_loops(jobs, gpus, hold_ms, f"f{r}"))
    ideal = jobs * hold_ms / 1000 / gpus
    print(f"makespan: {jobs} jobs x {hold_ms} ms launched at once on {gpus} simulated GPUs "
          f"(ideal {ideal:.2f} s), {len(ours)} rounds alternated:")
    print(f"  with-gpu --wait, all launched at once  median {statistics.median(ours):.3f} s  "
          f"({', '.join(f'{x:.3f}' for x in ours)})")
    print(f"  {gpus} shell loops, jobs back to back     median {statistics.median(floor):.3f} s  "
          f"({', '.join(f'{x:.3f}' for x in floor)})")
    ratio = statistics.median(floor) / statistics.median(ours)
    print(f"  GOAL with-gpu >= 0.97 of the floor: {'met' if ratio >= 0.97 else 'NOT met'} "
          f"({ratio:.3f})")


def bench_waiters():
    """Many real waiters queued on one held GPU: the CPU of all of them over a window. A blocked
    waiter checks the one ahead every 60 s (queue::stop_check_when_told): a window of one such
    period holds exactly one check of every waiter, whatever their phases."""
    count, window = (1000, 60.0) if RUNS >= 10 else (20, 0.5)
    machine = machine_file(1, "waiters.json")
    locks = lock_dir("waiters")
    env = env_for(machine, locks)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    holder = subprocess.Popen([BIN, "sh", "-c", "echo $$; exec sleep 3000"], env=env,
                              stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    job = int(holder.stdout.readline())
    waiters = []
    try:
        started = time.monotonic()
        for _ in range(count):
            waiters.append(subprocess.Popen([BIN, "--wait", "-q", "true"], env=env,
                                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
        wait_for_tickets(locks, count)
        queued = time.monotonic() - started
        time.sleep(1.0)  # past the last arrivals' looks (a figure, not synchronisation)
        before = {w.pid: cpu_ns(w.pid) for w in waiters}
        t0 = time.monotonic()
        time.sleep(window)
        each = [cpu_ns(w.pid) - before[w.pid] for w in waiters]
        used = sum(each)
        elapsed = time.monotonic() - t0
        alive = sum(w.poll() is None for w in waiters)
        pss, sampled = 0, waiters[:50]
        for w in sampled:
            with open(f"/proc/{w.pid}/smaps_rollup") as f:
                pss += next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
    finally:
        for w in waiters:
            w.kill()
        for w in waiters:
            w.wait()
        os.kill(job, signal.SIGKILL)
        holder.wait()
    share = 100 * used / 1e9 / elapsed
    print(f"{count} waiters queued on one held GPU (all queued in {queued:.1f} s), "
          f"{elapsed:.1f} s window, /proc/PID/schedstat:")
    print(f"  CPU of all of them: {used / 1e6:.1f} ms = {share:.3f}% of a core "
          f"({alive} still waiting at the end)")
    print(f"  of which the head (first in line, polling NVML): {each[0] / 1e6:.1f} ms; the others: "
          f"median {statistics.median(each[1:]) / 1e3:.0f} us, max {max(each[1:]) / 1e3:.0f} us each")
    print(f"  proportional resident memory (Pss) per waiter, mean of {len(sampled)}: "
          f"{pss / len(sampled) / 1024:.2f} MiB")
    print(f"  GOAL < 0.5% of a core: {'met' if share < 0.5 else 'NOT met'} ({share:.3f}%)")


def calls_of(argv, env):
    log = os.path.join(WORK, f"calls-{time.monotonic_ns()}.log")
    r = subprocess.run(argv, env=dict(env, WITH_GPU_SIM_CALL_LOG=log), capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{argv} failed: {r.stderr}")
    with open(log) as f:
        calls = f.read().split()
    counts = {}
    for c in calls:
        counts[c] = counts.get(c, 0) + 1
    return len(calls), counts


def bench_calls():
    env = env_for(A100X8, lock_dir("calls"))
    print("NVML calls per run, 8 simulated A100s (WITH_GPU_SIM_CALL_LOG, docs/simulator.md):")
    for label, argv in (("floor true", [FLOOR, TRUE]), ("with-gpu -- true", [BIN, "--", TRUE]),
                        ("with-gpu --status", [BIN, "--status"]),
                        ("with-gpu --dry-run true", [BIN, "--dry-run", TRUE])):
        total, counts = calls_of(argv, env)
        detail = ", ".join(f"{n} {c}" for c, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        print(f"  {label:24} {total:4}: {detail}")


try:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.makedirs(NO_CONFIG)
    for name, path in BUILT.items():
        print(f"{name}: {path} (timed as a copy, see installed())")
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start")
    for what in WHAT:
        {"launch": bench_launch, "modes": bench_modes, "gpus": bench_gpus, "lockdir": bench_lockdir,
         "memory": bench_memory, "head": bench_head, "calls": bench_calls,
         "handoff": bench_handoff, "makespan": bench_makespan, "waiters": bench_waiters}[what]()
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
finally:
    shutil.rmtree(WORK, ignore_errors=True)
