"""The Python package among other processes: claims that die with their process, races
against the command, the shared queue, Ctrl-C, and the one-worker-per-GPU pattern."""

import os
import signal
import sys
import unittest

import pytest

from conftest import JOB_RECORDER, check_no_overlap, gpu, read_job_log, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "..", "..", "examples", "python", "worker.py")

# A Python job: claims (waiting in the queue), records "<uuids> <start> <end> <pid> <label>"
# like tests/e2e's job_recorder, holds for HOLD_MS, releases.
PYTHON_JOB = r"""
import os, sys, time, with_gpu
log, hold_ms, label = sys.argv[1], int(sys.argv[2]), sys.argv[3]
count = int(os.environ.get("JOB_COUNT", "1"))
with with_gpu.acquire(count=count, wait=True) as lease:
    start = time.monotonic_ns()
    time.sleep(hold_ms / 1000)
    end = time.monotonic_ns()
line = f"{','.join(lease.uuids)} {start} {end} {os.getpid()} {label}\n"
fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
os.write(fd, line.encode())
"""

# Claims, says so on stdout, then sleeps until killed.
PYTHON_HOLDER = r"""
import sys, time, with_gpu
lease = with_gpu.acquire(**eval(sys.argv[1]))
print(",".join(map(str, lease.indices)), flush=True)
time.sleep(300)
"""


def check_records(records):
    """No two jobs of the log held one GPU at once (the e2e tests' checker)."""
    check_no_overlap(unittest.TestCase(), [(r["uuids"], r["start"], r["end"], r["pid"])
                                           for r in records])


def holder(machine, **kwargs):
    child = machine.python(PYTHON_HOLDER, repr(kwargs))
    line = child.stdout.readline()
    assert line, child.stderr.read()
    return child, [int(i) for i in line.split(",")]


def test_kill_9_of_a_python_holder_frees_its_gpus(machine):
    child, got = holder(machine, count=4)
    assert got == [0, 1, 2, 3]
    assert machine.claim_of(2)["pid"] == child.pid
    assert machine.run_cli("--dry-run", "true").returncode == 75
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    r = machine.run_cli("-n", "4", "true")
    assert r.returncode == 0, r.stderr


def test_a_forked_child_holds_the_claim_until_it_exits(machine):
    code = r"""
import os, sys, time, with_gpu
lease = with_gpu.acquire(count=4)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(w)
    os.read(r, 1)  # until the parent says
    os._exit(0)
lease.release()
print(pid, flush=True)
time.sleep(300)
"""
    parent = machine.python(code)
    child = int(parent.stdout.readline())
    # The parent released, but its child still holds the descriptors: the GPUs stay claimed.
    assert machine.run_cli("--dry-run", "true").returncode == 75
    os.kill(child, signal.SIGKILL)
    wait_until(lambda: machine.run_cli("--dry-run", "true").returncode == 0,
               what="the claim to end with the child")


def test_mixed_cli_and_python_launches_never_share_a_gpu(machine, tmp_path):
    # 4 GPUs, 24 launches at once, each of 1 to 3 GPUs: many must wait, in one queue.
    log = str(tmp_path / "jobs.log")
    children = []
    for i in range(12):
        count = str(1 + i % 3)
        children.append(machine.cli("--wait", "-n", count, JOB_RECORDER, log, "40", f"cli{i}"))
        children.append(machine.python(PYTHON_JOB, log, "40", f"py{i}",
                                       env=dict(os.environ, JOB_COUNT=count)))
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
    records = read_job_log(log)
    assert len(records) == 24
    assert {r["label"][:2] for r in records} == {"cl", "py"}
    check_records(records)
    assert machine.tickets_on_disk() == []


def test_a_python_waiter_behind_a_cli_waiter_is_served_second(machine, tmp_path):
    machine.gpus([gpu(0)])
    log = str(tmp_path / "jobs.log")
    first = machine.cli("sh", "-c", "echo $$; exec sleep 300")
    job = int(first.stdout.readline())
    cli_waiter = machine.cli("--wait", JOB_RECORDER, log, "50", "cli")
    wait_until(lambda: len(machine.queue()) == 1, what="the CLI waiter's ticket")
    py_waiter = machine.python(PYTHON_JOB, log, "50", "python")
    wait_until(lambda: len(machine.queue()) == 2, what="the Python waiter's ticket")
    queue = machine.queue()
    assert queue[1]["pid"] == py_waiter.pid
    assert "python" in queue[1]["command"]
    os.kill(job, signal.SIGKILL)
    for child in (cli_waiter, py_waiter):
        _, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
    order = [r["label"] for r in sorted(read_job_log(log), key=lambda r: r["start"])]
    assert order == ["cli", "python"]


def test_ctrl_c_while_waiting_raises_keyboard_interrupt_and_leaves_no_ticket(machine):
    first = machine.cli("-n", "4", "sh", "-c", "echo $$; exec sleep 300")
    first.stdout.readline()
    code = r"""
import with_gpu
try:
    with_gpu.acquire(wait=True, poll="1h")
except KeyboardInterrupt:
    print("interrupted", flush=True)
    raise SystemExit(130)
"""
    waiter = machine.python(code)
    wait_until(lambda: len(machine.queue()) == 1, what="the Python waiter's ticket")
    os.kill(waiter.pid, signal.SIGINT)
    out, err = waiter.communicate(timeout=30)
    assert waiter.returncode == 130, err
    assert out.strip() == "interrupted"
    assert machine.tickets_on_disk() == []
    assert machine.queue() == []


def test_six_workers_on_four_gpus_four_run_and_two_exit(machine, tmp_path):
    stop = str(tmp_path / "stop")
    env = dict(os.environ, WORKER_STOP_FILE=stop)
    workers = [machine.popen([sys.executable, WORKER], env=env) for _ in range(6)]
    lines = {}
    for w in workers:
        lines[w.pid] = w.stdout.readline().strip()
    running = [line for line in lines.values() if "running on GPU" in line]
    exited = [line for line in lines.values() if "no GPU available" in line]
    assert len(running) == 4 and len(exited) == 2, lines
    gpus = sorted(int(line.split("running on GPU ")[1].split()[0]) for line in running)
    assert gpus == [0, 1, 2, 3]
    claimed = {g["claim"]["pid"] for g in machine.status()["gpus"]}
    assert claimed == {pid for pid, line in lines.items() if "running" in line}
    open(stop, "w").close()
    for w in workers:
        assert w.wait(timeout=60) == 0
    assert [g["claim"] for g in machine.status()["gpus"]] == [None] * 4
