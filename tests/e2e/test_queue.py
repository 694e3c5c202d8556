"""Waiting: first come, first served; dead waiters never block; timeouts and signals
leave nothing behind."""

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
import unittest

from harness import (BIN, JOB_RECORDER, Case, busy, check_no_overlap, gpu, read_job_log,
                     uuid_of, GIB)


# Takes the lock named by argv[1] and stops itself while holding it, as Ctrl-Z would.
STOP_HOLDING_THE_LOCK = """
import fcntl, os, signal, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
os.kill(os.getpid(), signal.SIGSTOP)
"""


def ignore_sigtstp():
    signal.signal(signal.SIGTSTP, signal.SIG_IGN)


def default_sigtstp():
    signal.signal(signal.SIGTSTP, signal.SIG_DFL)


def process_state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


class QueueCase(Case):
    def setUp(self):
        super().setUp()
        self.log = os.path.join(self.tmp, "jobs.log")

    def hold(self, *args):
        """A job that keeps its GPUs until its pid is killed; returns (supervisor, job pid)."""
        sup = self.popen_wg(*args, "sh", "-c", "echo $$; exec sleep 300")
        return sup, int(sup.stdout.readline())

    def waiter(self, label, *args, hold_ms=30, **popen):
        """Starts a --wait launch and returns once its ticket is in the queue."""
        before = len(self.queue())
        child = self.popen_wg("--wait", *args, JOB_RECORDER, self.log, str(hold_ms), label,
                              **popen)
        self.wait_for_queue_length(before + 1)
        return child

    def finish(self, children):
        for child in children:
            self.assertEqual(child.wait(timeout=60), 0, child.stderr.read())

    def start_order(self):
        return [r["label"] for r in sorted(read_job_log(self.log), key=lambda r: r["start"])]


class FifoTest(QueueCase):
    def test_single_gpu_waiters_are_served_in_arrival_order(self):
        self.machine([gpu(0)])
        _, job = self.hold()
        labels = [f"w{i}" for i in range(6)]
        waiters = [self.waiter(label) for label in labels]
        self.assertEqual([q["position"] for q in self.queue()], [1, 2, 3, 4, 5, 6])
        os.kill(job, signal.SIGKILL)
        self.finish(waiters)
        self.assertEqual(self.start_order(), labels)  # zero inversions
        check_no_overlap(self, [(r["uuids"], r["start"], r["end"], r["pid"])
                                for r in read_job_log(self.log)])
        self.assertEqual(self.queue(), [])
        self.assertEqual(self.tickets_on_disk(), [])

    def test_multi_gpu_waiters_are_served_in_arrival_order(self):
        self.machine([gpu(0), gpu(1)])
        _, job = self.hold("-n", "2")
        plan = [("a", "2"), ("b", "1"), ("c", "2"), ("d", "1"), ("e", "1"), ("f", "2")]
        waiters = [self.waiter(label, "-n", n, hold_ms=60) for label, n in plan]
        os.kill(job, signal.SIGKILL)
        self.finish(waiters)
        records = read_job_log(self.log)
        check_no_overlap(self, [(r["uuids"], r["start"], r["end"], r["pid"]) for r in records])
        order = self.start_order()
        # d and e (1 GPU each) may start together, in either order; nothing may overtake.
        self.assertEqual(order[:3], ["a", "b", "c"])
        self.assertEqual(sorted(order[3:5]), ["d", "e"])
        self.assertEqual(order[5], "f")

    def test_a_4_gpu_waiter_is_not_starved_by_1_gpu_jobs(self):
        self.machine([gpu(i) for i in range(4)])
        holders = [self.hold("--gpu", str(i))[1] for i in range(4)]
        big = self.waiter("big", "-n", "4")
        small = [self.waiter(f"s{i}") for i in range(3)]
        for job in holders:  # GPUs free one at a time
            os.kill(job, signal.SIGKILL)
            time.sleep(0.05)  # room for a wrong overtaking to happen (not synchronisation)
        self.finish([big] + small)
        order = self.start_order()
        self.assertEqual(order[0], "big")
        self.assertEqual(sorted(order[1:]), ["s0", "s1", "s2"])

    def test_jobs_for_other_gpus_go_ahead(self):
        self.machine([gpu(0), gpu(1, name="Tesla V100-SXM2-16GB", memory_total_mib=16 * GIB)])
        _, job = self.hold("--gpu", "0")
        a100 = self.waiter("a100", "--gpu-type", "A100", "--strict")
        # Nobody before us can use the V100: it runs at once, without waiting.
        r = self.run_wg("--gpu-type", "V100", "--strict", "true")
        self.assertEqual(r.returncode, 0, r.stderr)
        # But a job that could use the A100 must not jump the queue, even without --wait.
        r = self.run_wg("--gpu", "0", "true")
        self.assertEqual(r.returncode, 75, r.stderr)
        os.kill(job, signal.SIGKILL)
        self.finish([a100])

    def test_a_newcomer_does_not_take_a_free_gpu_an_earlier_waiter_needs(self):
        self.machine([gpu(0), gpu(1)])
        sup, job = self.hold("--gpu", "0")
        two = self.waiter("two", "-n", "2")
        r = self.run_wg("true")  # GPU 1 is free, but the 2-GPU waiter came first
        self.assert_clean_error(r, 75, "wanted by")
        os.kill(job, signal.SIGKILL)
        self.finish([two])


class DeadWaiterTest(QueueCase):
    def test_kill_9_of_the_head_does_not_block_the_queue(self):
        self.machine([gpu(0)])
        _, job = self.hold()
        head = self.waiter("head")
        second = self.waiter("second")
        head.kill()
        head.wait()
        self.wait_for_queue_length(1)  # a dead ticket is not a waiter
        os.kill(job, signal.SIGKILL)
        self.finish([second])
        self.assertEqual(self.start_order(), ["second"])
        self.assertEqual(self.tickets_on_disk(), [])

    def test_kill_9_of_a_waiter_in_the_middle(self):
        self.machine([gpu(0)])
        _, job = self.hold()
        first, middle, last = (self.waiter(x) for x in ("first", "middle", "last"))
        middle.kill()
        middle.wait()
        os.kill(job, signal.SIGKILL)
        self.finish([first, last])
        self.assertEqual(self.start_order(), ["first", "last"])


class StoppedWaiterTest(QueueCase):
    def stop_outside_the_decision_lock(self, pid):
        """SIGSTOP `pid` at a moment it does not hold decide.lock (held only while it looks):
        a waiter stopped inside that window blocks newcomers, a known limit (queue.md)."""
        path = os.path.join(self.lock_dir, "decide.lock")
        for _ in range(100):
            os.kill(pid, signal.SIGSTOP)
            self.wait_until(lambda: process_state(pid) in ("T", "t"), what="the waiter stopped")
            with open(path, "rb") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    pass
            os.kill(pid, signal.SIGCONT)
        self.fail("the waiter held decide.lock at every stop")

    def test_a_stopped_waiter_is_passed_over_after_the_grace(self):
        # Issue 12, item 14: a stopped (SIGSTOP, Ctrl-Z) head used to stall the machine.
        self.machine([gpu(i) for i in range(2)])
        sup, job = self.hold("-n", "2")
        # Started with SIGTSTP ignored, it cannot tell when it stops (as a library caller or
        # an older with-gpu cannot), so the waiter behind checks it every 5 s. Behind one that
        # can tell, the check is the same, once a minute (queue::stop_check_when_told).
        stopped = self.waiter("stopped", preexec_fn=ignore_sigtstp)
        self.stop_outside_the_decision_lock(stopped.pid)
        behind = self.waiter("behind")  # blocked behind the stopped one
        os.kill(job, signal.SIGKILL)
        sup.wait(timeout=60)
        # Both GPUs are free; after the grace the waiter behind goes, and so do newcomers.
        self.assertEqual(behind.wait(timeout=120), 0, behind.stderr.read())
        r = self.run_wg("true")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.start_order(), ["behind"])
        os.kill(stopped.pid, signal.SIGCONT)  # it counts again, and gets its GPU
        self.assertEqual(stopped.wait(timeout=60), 0, stopped.stderr.read())


    def test_a_waiter_stopped_with_ctrl_z_tells_the_one_behind_at_once(self):
        # Issue 9: a waiter blocked behind another that can tell when it stops (the CLI takes
        # Ctrl-Z itself) checks that one only every 60 s, so that a thousand waiters cost
        # almost nothing. Ctrl-Z must therefore reach the one behind at once.
        self.machine([gpu(i) for i in range(2)])
        sup, job = self.hold("-n", "2")
        # Its own process group in this session, as a shell's job is: a process group without
        # a parent in the session (start_new_session) is orphaned and is never stopped.
        stopped = self.waiter("stopped", start_new_session=False, process_group=0,
                              preexec_fn=default_sigtstp)  # whatever the test runner ignores
        joined = time.time()  # its ticket is in the queue by now
        self.wait_until(lambda: time.time() > joined + 11, timeout=60,
                        what="the stopped waiter's 10 s of grace")
        behind = self.waiter("behind")  # blocked behind it: its next own check is 60 s away
        os.kill(stopped.pid, signal.SIGTSTP)
        self.wait_until(lambda: process_state(stopped.pid) == "T", what="the waiter stopped")
        os.kill(job, signal.SIGKILL)
        sup.wait(timeout=60)
        # Told, the waiter behind went first at once; it would have taken 60 s otherwise.
        self.assertEqual(behind.wait(timeout=40), 0, behind.stderr.read())
        self.assertEqual(self.start_order(), ["behind"])
        self.assertEqual(process_state(stopped.pid), "T", "still stopped, still in line")
        self.assertEqual(len(self.queue()), 1)
        os.kill(stopped.pid, signal.SIGCONT)  # it counts again, and gets its GPUs
        self.assertEqual(stopped.wait(timeout=60), 0, stopped.stderr.read())
        self.assertEqual(self.start_order(), ["behind", "stopped"])


class TimeoutAndSignalTest(QueueCase):
    def test_timeout_is_on_time_and_exits_124(self):
        self.machine([gpu(0)])
        self.hold()
        for timeout, seconds in (("0.4s", 0.4), ("700ms", 0.7), ("1", 1.0)):
            with self.subTest(timeout=timeout):
                start = time.monotonic()
                # With --poll 1h, only the deadline itself can end the wait in time; the
                # bound is loose so that a loaded (or sanitizer) machine cannot fail it.
                r = self.run_wg("--timeout", timeout, "--poll", "1h", "true")
                elapsed = time.monotonic() - start
                self.assert_clean_error(r, 124, "gave up waiting")
                self.assertGreaterEqual(elapsed, seconds)
                self.assertLess(elapsed, seconds + 30, "not a poll period late")
                self.assertEqual(self.tickets_on_disk(), [])

    def test_timeout_edge_values(self):
        self.machine([gpu(0)])
        self.hold()
        # Under 1 ms used to arm a negative timer (EINVAL) and wait forever off a terminal.
        for value in ("0", "0s", "0ms"):
            with self.subTest(timeout=value):
                r = self.run_wg("--timeout", value, "true", timeout=30)
                self.assert_clean_error(r, 2, "--timeout", "must be more than 0")
        r = self.run_wg("--timeout", "1ms", "true", timeout=30)
        self.assert_clean_error(r, 124, "gave up waiting after --timeout 1ms")
        # Huge values used to overflow the clock: exit 124 at once, "after --timeout -8446...".
        r = self.run_wg("--timeout", "9999999999", "true", timeout=30)
        self.assert_clean_error(r, 2, "--timeout", "too long (at most 8760h)")
        r = self.run_wg("true", env={"WITH_GPU_TIMEOUT": "8761h"}, timeout=30)
        self.assert_clean_error(r, 2, "WITH_GPU_TIMEOUT", "too long (at most 8760h)")
        longest = self.popen_wg("--timeout", "8760h", "true")
        self.wait_for_queue_length(1)
        self.assertIsNone(longest.poll(), "the longest timeout waits")
        longest.terminate()
        self.assertEqual(longest.wait(timeout=30), -signal.SIGTERM)

    def test_timeout_holds_while_another_process_holds_the_decision_lock(self):
        # The first look used to wait for the decision lock before the timer was armed.
        self.machine([gpu(0)])
        self.assertEqual(self.run_wg("true").returncode, 0)  # creates the lock directory
        fd = os.open(os.path.join(self.lock_dir, "decide.lock"), os.O_RDONLY)
        self.addCleanup(os.close, fd)
        fcntl.flock(fd, fcntl.LOCK_EX)
        start = time.monotonic()
        r = self.run_wg("--timeout", "2", "true", timeout=60)
        self.assert_clean_error(r, 124, "gave up waiting after --timeout 2.0s")
        self.assertLess(time.monotonic() - start, 10)

    def test_a_decision_lock_held_by_a_stopped_process_stalls_nobody_for_long(self):
        # Ctrl-Z on a --status at the wrong moment left everyone waiting for decide.lock until
        # it ran again. After 10 s (the patience) with-gpu decides without it, with a note.
        self.machine([gpu(0)])
        self.assertEqual(self.run_wg("true").returncode, 0)  # creates the lock directory
        lock = os.path.join(self.lock_dir, "decide.lock")
        holder = subprocess.Popen([sys.executable, "-c", STOP_HOLDING_THE_LOCK, lock])
        self.addCleanup(holder.wait)
        self.addCleanup(os.kill, holder.pid, signal.SIGCONT)
        self.wait_until(lambda: process_state(holder.pid) in ("T", "t"), what="the stopped holder")
        start = time.monotonic()
        children = {args: self.popen_wg(*args) for args in (("true",), ("--status",), ("--dry-run",))}
        for args, child in children.items():
            with self.subTest(args=args):
                _, stderr = child.communicate(timeout=120)
                self.assertEqual(child.returncode, 0, stderr)
                self.assertIn("deciding without the decision lock", stderr)
        self.assertGreaterEqual(time.monotonic() - start, 9)

    def test_timeout_alone_implies_wait_and_succeeds_when_freed(self):
        self.machine([gpu(0)])
        _, job = self.hold()
        child = self.popen_wg("--timeout", "60", "true")
        self.wait_for_queue_length(1)
        os.kill(job, signal.SIGKILL)
        self.assertEqual(child.wait(timeout=60), 0)

    def test_term_while_waiting_leaves_nothing_behind(self):
        self.machine([gpu(0)])
        self.hold()
        child = self.popen_wg("--wait", "true")
        self.wait_for_queue_length(1)
        child.send_signal(signal.SIGTERM)
        self.assertEqual(child.wait(timeout=30), -signal.SIGTERM)
        self.assertEqual(self.tickets_on_disk(), [])
        self.assertEqual(self.queue(), [])

    def test_ctrl_c_while_waiting_in_a_terminal(self):
        self.machine([gpu(0)])
        self.hold()
        pid, fd = pty.fork()
        if pid == 0:
            os.execve(BIN, [BIN, "--wait", "true"], self.env())
        self.wait_for_queue_length(1)
        output = b""
        deadline = time.monotonic() + 10
        while b"waiting for 1 GPU" not in output and time.monotonic() < deadline:
            output += os.read(fd, 1024)  # the progress line, drawn on the terminal
        os.write(fd, b"\x03")
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        self.assertIn(b"1st in queue", output)
        self.assertTrue(os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGINT, status)
        self.assertEqual(self.tickets_on_disk(), [])

    def test_the_waiting_line_is_cut_between_characters_to_fit_the_terminal(self):
        self.machine([gpu(0)])
        # The holder's command line, shown in the waiting line, is all two-byte characters.
        holder = self.popen_wg("sh", "-c", "echo $$; exec sleep 300", "\u00e9" * 80)
        job = int(holder.stdout.readline())
        pid, fd = pty.fork()
        if pid == 0:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
            os.execve(BIN, [BIN, "--wait", "true"], self.env())
        ellipsis = "\u2026".encode()
        output = b""
        deadline = time.monotonic() + 30
        while ellipsis not in output and time.monotonic() < deadline:
            if select.select([fd], [], [], 1)[0]:
                output += os.read(fd, 4096)
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        os.close(fd)
        os.kill(job, signal.SIGKILL)
        self.assertEqual(holder.wait(timeout=30), -signal.SIGKILL)
        self.assertIn(ellipsis, output, output)
        drawn = output[:output.index(ellipsis) + len(ellipsis)].rsplit(b"\r\x1b[K", 1)[-1]
        line = drawn.decode("utf-8")  # strict: a character cut in half fails here
        self.assertIn("1st in queue", line)
        self.assertIn("\u00e9", line)
        self.assertLessEqual(len(line), 119, "one column spare, so the cursor never wraps")
        self.assertEqual(self.tickets_on_disk(), [])

    def test_impossible_requests_do_not_wait(self):
        self.machine([gpu(0)])
        r = self.run_wg("--wait", "-n", "2", "true", timeout=30)
        self.assert_clean_error(r, 125, "can never be met")

    def test_progress_lines_when_not_a_terminal_and_quiet(self):
        self.machine([gpu(0)])
        _, job = self.hold()
        loud = self.popen_wg("--wait", "true")
        self.wait_for_queue_length(1)  # first in line, whatever the scheduler does
        quiet = self.popen_wg("--wait", "-q", "true")
        self.wait_for_queue_length(2)
        os.kill(job, signal.SIGKILL)
        self.assertEqual(loud.wait(timeout=30), 0)
        self.assertEqual(quiet.wait(timeout=30), 0)
        err = loud.stderr.read()
        self.assertIn("with-gpu: waiting for 1 GPU, 1st in queue: GPU 0: claimed by", err)
        self.assertIn("after waiting", err)
        self.assertEqual(quiet.stderr.read(), "")


class LostWakeUpTest(QueueCase):
    """Issue 9: a release that nothing notices until the next --poll must never happen. Every
    waiter here polls once an hour, so only being woken by the release itself (a claim's
    descriptor closing, a ticket leaving) can end its wait within the tests' timeouts."""

    POLL = ("--poll", "1h")

    def test_the_head_is_woken_by_the_release_itself(self):
        self.machine([gpu(0)])
        sup, job = self.hold()
        head = self.waiter("head", *self.POLL)
        os.kill(job, signal.SIGKILL)
        self.assertEqual(head.wait(timeout=60), 0, head.stderr.read())
        self.assertEqual(sup.wait(timeout=60), -signal.SIGKILL)

    def test_a_job_that_ends_by_itself_wakes_the_head(self):
        self.machine([gpu(0)])
        # The first job exits 0 when its input ends: no signal, an ordinary end.
        first = self.popen_wg("cat", stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        self.wait_until(lambda: self.claim_of(0), what="the first job's claim")
        head = self.waiter("head", *self.POLL)
        first.stdin.close()
        self.finish([first, head])
        self.assertEqual(self.start_order(), ["head"])

    def test_each_hand_off_in_a_chain_wakes_the_next_waiter(self):
        # Each waiter sleeps behind the one before it, then watches its job's claim: every
        # kind of wait in turn, and every wake-up must come from the event itself.
        self.machine([gpu(0)])
        _, job = self.hold()
        labels = [f"w{i}" for i in range(4)]
        waiters = [self.waiter(label, *self.POLL) for label in labels]
        os.kill(job, signal.SIGKILL)
        self.finish(waiters)
        self.assertEqual(self.start_order(), labels)

    def test_gpus_released_one_at_a_time_wake_a_multi_gpu_waiter(self):
        self.machine([gpu(0), gpu(1)])
        holders = [self.hold("--gpu", str(i)) for i in range(2)]
        both = self.waiter("both", "-n", "2", *self.POLL)
        for sup, job in holders:
            os.kill(job, signal.SIGKILL)
            sup.wait(timeout=60)
        self.finish([both])

    def test_a_waiter_that_gives_up_wakes_the_one_behind(self):
        # GPU 1 is free but reserved for the 2-GPU head; when the head leaves (SIGTERM, then
        # kill -9 in the second round), the 1-GPU waiter behind it must take GPU 1 at once.
        for how in (signal.SIGTERM, signal.SIGKILL):
            with self.subTest(signal=how.name):
                self.machine([gpu(0), gpu(1)])
                sup, job = self.hold("--gpu", "0")
                head = self.popen_wg("--wait", "-n", "2", *self.POLL, "true")
                self.wait_for_queue_length(1)
                behind = self.waiter(f"behind-{how.name}", *self.POLL)
                head.send_signal(how)
                head.wait(timeout=60)
                self.finish([behind])
                os.kill(job, signal.SIGKILL)
                sup.wait(timeout=60)

    def test_a_release_during_the_waiters_start_is_not_lost(self):
        # The release lands at a different point of the waiter's start each round: before its
        # first look, between that look and its ticket, or after it has begun to wait.
        self.machine([gpu(0)])
        for round_ in range(12):
            with self.subTest(round=round_):
                sup, job = self.hold()
                waiter = self.popen_wg("--wait", *self.POLL, "true")
                time.sleep(0.004 * round_)  # moves the release along the start (not synchronisation)
                os.kill(job, signal.SIGKILL)
                self.assertEqual(waiter.wait(timeout=60), 0, waiter.stderr.read())
                sup.wait(timeout=60)
                self.assertEqual(self.tickets_on_disk(), [])


def open_kinds(pid):
    """What the process's descriptors are: "inotify", "[eventfd]", paths..."""
    kinds = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            kinds.append(os.readlink(f"/proc/{pid}/fd/{fd}").removeprefix("anon_inode:"))
        except OSError:
            pass  # closed meanwhile
    return kinds


class WatchTest(QueueCase):
    """A user may have 128 inotify instances (fs.inotify.max_user_instances): only a waiter
    that watches for releases may use one, not every waiter in line."""

    def test_only_the_waiter_that_watches_holds_an_inotify_instance(self):
        self.machine([gpu(0)])
        sup, job = self.hold()
        head = self.waiter("head", "--poll", "1h")
        behind = self.waiter("behind", "--poll", "1h")
        self.wait_until(lambda: "inotify" in open_kinds(head.pid), what="the head's watch")
        # Blocked behind the head's ticket: a lock wait on a helper thread, an eventfd.
        self.wait_until(lambda: "[eventfd]" in open_kinds(behind.pid),
                        what="the second waiter waiting behind the first")
        self.assertNotIn("inotify", open_kinds(behind.pid))
        # The one behind opens its watch once it is first in line, and is woken by the
        # release all the same (both poll once an hour).
        os.kill(job, signal.SIGKILL)
        self.finish([head, behind])
        self.assertEqual(self.start_order(), ["head", "behind"])
        self.assertEqual(sup.wait(timeout=60), -signal.SIGKILL)

    def test_a_waiter_that_watched_lets_its_watch_go_once_its_job_runs(self):
        self.machine([gpu(0)])
        sup, job = self.hold()
        waiter = self.popen_wg("--wait", "--poll", "1h", "sh", "-c", "echo $$; exec sleep 300")
        self.wait_until(lambda: "inotify" in open_kinds(waiter.pid), what="its watch")
        os.kill(job, signal.SIGKILL)
        its_job = int(waiter.stdout.readline())
        self.wait_until(lambda: "inotify" not in open_kinds(waiter.pid),
                        what="its watch closed while its job runs")
        os.kill(its_job, signal.SIGKILL)
        self.assertEqual(waiter.wait(timeout=60), -signal.SIGKILL)
        self.assertEqual(sup.wait(timeout=60), -signal.SIGKILL)


class QueueStatusTest(QueueCase):
    def test_status_lists_waiters(self):
        self.machine([gpu(0), gpu(1)])
        self.hold("-n", "2")
        w = self.waiter("x", "--min-gpus", "1", "--max-gpus", "2")
        entry = self.queue()[0]
        self.assertEqual(entry["pid"], w.pid)
        self.assertEqual(entry["gpus_needed"], 1)
        self.assertEqual(entry["gpus_wanted"], 2)
        self.assertEqual(entry["position"], 1)
        self.assertRegex(entry["since"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertIn(JOB_RECORDER, entry["command"])
        table = self.run_wg("--status").stdout
        self.assertIn("Waiting (1):", table)
        self.assertIn("1-2 GPUs", table)



class NvmlErrorWhileWaitingTest(QueueCase):
    """A momentary NVML error must not cost a waiter its place in line."""

    def set_fault(self, on):
        self.machine([gpu(0)], **({"faults": {"nvmlDeviceGetCount_v2": "UNKNOWN"}} if on else {}))

    def test_a_waiter_survives_a_transient_fault_and_is_served(self):
        self.set_fault(False)
        _, job = self.hold()
        err_path = os.path.join(self.tmp, "waiter.err")
        with open(err_path, "w") as err:
            # --poll 1s: the tries are 1s, 2s, 4s and 8s apart, time enough to end the fault.
            child = self.popen_wg("--wait", "--poll", "1s", "true", stderr=err)
        self.wait_for_queue_length(1)
        self.set_fault(True)

        def stderr():
            with open(err_path) as f:
                return f.read()

        self.wait_until(lambda: "trying again" in stderr(), what="a failed look")
        self.assertEqual(len(self.tickets_on_disk()), 1, "the waiter keeps its ticket")
        self.set_fault(False)
        os.kill(job, signal.SIGKILL)
        self.assertEqual(child.wait(timeout=60), 0, stderr())
        self.assertIn("(1 of 5)", stderr())

    def test_the_wait_ends_after_5_failures_in_a_row(self):
        self.set_fault(False)
        self.hold()
        child = self.popen_wg("--wait", "--poll", "20ms", "true")
        self.wait_for_queue_length(1)
        self.set_fault(True)
        self.assertEqual(child.wait(timeout=60), 125)
        err = child.stderr.read()
        self.assertEqual(err.count("trying again"), 4, err)
        self.assertIn("5 failures in a row", err)
        self.assertEqual(self.tickets_on_disk(), [])


if __name__ == "__main__":
    unittest.main()
