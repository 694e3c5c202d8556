"""--hold: memory held on the claimed GPUs beside the job (through the CUDA driver simulator)
until the job's own processes use them; squatters; the placement check (--on-misplaced)."""

import os
import signal
import subprocess
import time
import unittest

from harness import GIB, SIM_DIR, Case, gpu, wait_until


def on_gpu(pid, mib=1024):
    return {"pid": pid, "used_memory_mib": mib, "type": "compute"}


class HoldCase(Case):
    def setUp(self):
        super().setUp()
        self.gpus = [gpu(0), gpu(1)]
        self.machine(self.gpus)

    def show(self, placed):
        """Lists processes on GPUs in the simulated machine: {index: [pid, ...]}."""
        gpus = [dict(g, processes=[on_gpu(pid) for pid in placed.get(i, [])])
                for i, g in enumerate(self.gpus)]
        self.machine(gpus)

    def start(self, *args, job="echo $$; exec sleep 300"):
        """with-gpu with `args` running a shell job that prints pids; returns (child, pids)."""
        child = self.popen_wg(*args, "sh", "-c", job)
        line = child.stdout.readline()
        self.assertTrue(line, child.stderr.read() if child.poll() is not None else "no output")
        return child, [int(word) for word in line.split()]

    def hold_of(self, index):
        return self.status()["gpus"][index]["hold"]

    def holder_memory(self, index, pid):
        """MiB the process `pid` has on GPU `index`, per NVML (the simulator)."""
        for p in self.status()["gpus"][index]["processes"]:
            if p["pid"] == pid:
                return p["used_memory_mib"]
        return None


class HoldTest(HoldCase):
    def test_a_quarter_of_free_memory_is_held_beside_the_job_until_it_ends(self):
        child, (job,) = self.start("--hold", "-n", "2")
        for index in (0, 1):
            # Stated bound (docs/hold.md): within 10 s of the launch, on a loaded 2-core machine.
            hold = wait_until(lambda: self.hold_of(index), timeout=10,
                              what=f"a hold on GPU {index}")
            self.assertAlmostEqual(hold["bytes"] / 2**30, 20, delta=0.5)  # 1/4 of 80 GiB
            self.assertTrue(hold["since"].endswith("Z"))
            # NVML shows it as with-gpu's own memory (the context's on top).
            self.assertGreaterEqual(self.holder_memory(index, child.pid), 20 * GIB)
        board = self.run_wg("--status").stdout
        self.assertIn("holding 20 GiB", board)
        os.kill(job, signal.SIGTERM)
        child.wait(timeout=30)
        self.assertEqual([g["processes"] for g in self.status()["gpus"]], [[], []])

    def test_a_size_and_a_fraction_are_held_as_asked(self):
        child, _ = self.start("--hold=8G", "--gpu", "0")
        hold = wait_until(lambda: self.hold_of(0), what="a hold of 8G")
        self.assertEqual(hold["bytes"], 8 * 2**30)
        child.kill()
        child.wait()
        child, _ = self.start("--hold=0.5", "--gpu", "1")
        hold = wait_until(lambda: self.hold_of(1), what="a hold of half")
        self.assertAlmostEqual(hold["bytes"] / 2**30, 40, delta=0.5)

    def test_the_jobs_grandchild_releases_its_gpu_only_and_a_squatter_releases_nothing(self):
        child, (grandchild,) = self.start("--hold", "-n", "2",
                                          job="sleep 300 & echo $!; wait")
        for index in (0, 1):
            wait_until(lambda: self.hold_of(index), what=f"a hold on GPU {index}")
        squatter = subprocess.Popen(["sleep", "300"])  # not the job's: started by the test
        self.addCleanup(squatter.wait)
        self.addCleanup(squatter.kill)
        # The squatter appears on GPU 0 and the job's grandchild on GPU 1, in one snapshot.
        self.show({0: [child.pid, squatter.pid], 1: [child.pid, grandchild]})
        wait_until(lambda: self.hold_of(1) is None, what="GPU 1's hold to end")
        self.assertIsNotNone(self.hold_of(0), "a foreign process released the hold")
        procs = {p["pid"]: p for p in self.status()["gpus"][0]["processes"]}
        self.assertTrue(procs[squatter.pid]["squatter"])
        self.assertFalse(procs[child.pid]["squatter"])
        self.assertIn("squatter", self.run_wg("--status").stdout)
        # --dry-run and the waiting line name it.
        dry = self.run_wg("--dry-run", "--gpu", "0", "true")
        self.assertIn(f"squatter pid {squatter.pid}", dry.stdout + dry.stderr)
        waiter = self.popen_wg("--wait", "--gpu", "0", "true")
        self.wait_for_queue_length(1)
        self.assertIn(f"squatter pid {squatter.pid}", waiter.stderr.readline())
        waiter.terminate()
        waiter.wait(timeout=30)

    def test_the_hold_timeout_ends_the_hold_while_the_job_runs(self):
        child, (job,) = self.start("--hold", "--hold-timeout", "1s", "--gpu", "0")
        wait_until(lambda: self.hold_of(0), what="the hold")
        wait_until(lambda: self.hold_of(0) is None, what="the timeout to end the hold")
        self.assertIsNone(child.poll(), "the job goes on")
        os.kill(job, signal.SIGTERM)  # the job ends, and with-gpu with it
        _, err = child.communicate(timeout=30)
        self.assertIn("released after --hold-timeout", err)

    def test_kill_9_of_with_gpu_frees_the_held_memory(self):
        child, _ = self.start("--hold", "--gpu", "0")
        wait_until(lambda: self.holder_memory(0, child.pid), what="the held memory")
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        wait_until(lambda: self.holder_memory(0, child.pid) is None,
                   what="the memory of the dead with-gpu to go")
        # The job lives on with the claim; its record still names the hold, which --status
        # no longer shows, since the memory is gone.
        self.assertIsNotNone(self.claim_of(0))
        self.assertIsNone(self.hold_of(0))
        self.assertNotIn("holding", self.run_wg("--status").stdout)

    def test_without_libcuda_the_job_runs_unheld_with_a_warning(self):
        only_nvml = os.path.join(self.tmp, "only-nvml")
        os.mkdir(only_nvml)
        os.symlink(os.path.join(SIM_DIR, "libnvidia-ml.so.1"),
                   os.path.join(only_nvml, "libnvidia-ml.so.1"))
        r = self.run_wg("--hold", "sh", "-c", "exit 7", env={"LD_LIBRARY_PATH": only_nvml})
        self.assertEqual(r.returncode, 7, r.stderr)
        self.assertIn("warning: --hold:", r.stderr)
        self.assertIn("libcuda.so.1", r.stderr)

    def test_bad_hold_values_are_usage_errors(self):
        for args, fragment in ((("--hold=2",), "nor a size"), (("--hold=1.5",), "fraction"),
                               (("--on-misplaced=nuke",), "not one of warn, kill")):
            with self.subTest(args=args):
                self.assert_clean_error(self.run_wg(*args, "true"), 2, fragment)


class SecondLookTest(Case):
    def test_a_program_that_takes_a_chosen_gpu_before_the_claim_makes_with_gpu_choose_again(self):
        # GPU 0 (most free memory, chosen first) is taken by a program started without
        # with-gpu between the NVML read and the claim: the simulator lists it from the second
        # process-list call on. The second look after claiming sees it and, the request being
        # --require-idle, chooses GPU 1.
        intruder = subprocess.Popen(["sleep", "300"])
        self.addCleanup(intruder.wait)
        self.addCleanup(intruder.kill)
        late = {"pid": intruder.pid, "used_memory_mib": 0, "type": "compute",
                "listed_after_calls": 1}
        self.machine([gpu(0, processes=[late]), gpu(1, memory_total_mib=40 * GIB)])
        r = self.run_wg("--require-idle", "sh", "-c", "echo $CUDA_VISIBLE_DEVICES")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "1")
        # Listed a call later, after the second look: too late to be seen, GPU 0 is taken.
        # (Without the second look the first case gives this answer too.)
        late["listed_after_calls"] = 2
        self.machine([gpu(0, processes=[late]), gpu(1, memory_total_mib=40 * GIB)])
        r = self.run_wg("--require-idle", "sh", "-c", "echo $CUDA_VISIBLE_DEVICES")
        self.assertEqual(r.stdout.strip(), "0")


class PlacementTest(HoldCase):
    def test_a_job_on_a_gpu_it_did_not_claim_is_warned_and_recorded(self):
        child, (job,) = self.start("--gpu", "0", "--poll", "100ms")
        self.show({1: [job]})
        wait_until(lambda: (self.status()["gpus"][0]["claim"] or {}).get("misplaced"),
                   what="the misplaced GPU in the claim record")
        self.assertEqual(self.status()["gpus"][0]["claim"]["misplaced"], ["GPU 1"])
        self.assertIn("also on GPU 1", self.run_wg("--status").stdout)
        self.assertIsNone(child.poll(), "warn does not stop the job")
        os.kill(job, signal.SIGTERM)  # the job ends, and with-gpu with it
        _, err = child.communicate(timeout=30)
        self.assertIn(f"the job's process {job}", err)
        self.assertIn("uses GPU 1", err)

    def test_the_guard_thread_starts_only_when_the_first_placement_check_is_due(self):
        """Without --hold the guard has nothing to do before the first check, --poll after the
        job starts: a job that ends sooner never has a thread beside it (issue 9)."""
        count = "ls /proc/$PPID/task | wc -l"  # $PPID: with-gpu, which started the job
        child, (job, threads) = self.start("--gpu", "0", "--poll", "10m",
                                           job=f"echo $$ $({count}); exec sleep 300")
        self.assertEqual(threads, 1, "no guard thread before the first check is due")
        os.kill(job, signal.SIGTERM)
        child.communicate(timeout=30)
        child, (job, threads) = self.start("--gpu", "0", "--poll", "100ms",
                                           job=f"echo $$ $({count}); exec sleep 300")
        wait_until(lambda: len(os.listdir(f"/proc/{child.pid}/task")) == 2,
                   what="the guard thread, once the check is due")
        os.kill(job, signal.SIGTERM)
        child.communicate(timeout=30)

    def test_on_misplaced_kill_stops_the_job(self):
        child, (job,) = self.start("--gpu", "0", "--poll", "100ms", "--on-misplaced=kill")
        self.show({1: [job]})
        self.assertEqual(child.wait(timeout=60), -signal.SIGTERM)
        self.assertIn("--on-misplaced=kill", child.stderr.read())


if __name__ == "__main__":
    unittest.main()
