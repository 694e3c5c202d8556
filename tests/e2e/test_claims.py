"""Claims: exclusive, all-or-nothing, as long as the job lives and not a moment longer."""

import os
import signal
import stat
import unittest

from harness import BIN, Case, gpu, uuid_of


class ClaimTest(Case):
    def setUp(self):
        super().setUp()
        self.machine([gpu(0), gpu(1)])

    def hold(self, *args):
        """Starts a job that keeps its GPUs until killed; returns (supervisor, job pid)."""
        sup = self.popen_wg(*args, "sh", "-c", "echo $$; exec sleep 300")
        job_pid = int(sup.stdout.readline())
        return sup, job_pid

    def test_a_claimed_gpu_is_not_given_to_another_job(self):
        sup, _ = self.hold("--gpu", "0")
        r = self.run_wg("--gpu", "0", "true")
        self.assert_clean_error(r, 75, "GPU 0: claimed by")
        self.assertEqual(self.chosen(), "1")  # the other GPU is still free
        sup.terminate()
        sup.wait(timeout=30)
        self.assertEqual(self.chosen("--gpu", "0"), "0")

    def test_kill_9_of_the_job_frees_the_gpu_at_once(self):
        sup, job_pid = self.hold("-n", "2")
        self.assertEqual(self.run_wg("true").returncode, 75)
        os.kill(job_pid, signal.SIGKILL)
        self.assertEqual(sup.wait(timeout=30), -signal.SIGKILL)
        # No waiting, no polling: the very next launch gets both GPUs.
        self.assertEqual(self.chosen("-n", "2"), "0,1")

    def test_kill_9_of_with_gpu_keeps_the_claim_while_the_job_runs(self):
        sup, job_pid = self.hold("--gpu", "1")
        os.kill(sup.pid, signal.SIGKILL)
        sup.wait(timeout=30)
        os.kill(job_pid, 0)  # the job is still running on the GPU ...
        self.assertEqual(self.run_wg("--gpu", "1", "true").returncode, 75)  # ... so it stays claimed
        self.assertIsNotNone(self.claim_of(1))
        os.kill(job_pid, signal.SIGKILL)
        self.wait_until(lambda: not os.path.exists(f"/proc/{job_pid}") or
                        open(f"/proc/{job_pid}/stat").read().split()[2] == "Z",
                        what="job to exit")
        # The job was re-parented; once it is gone (or a zombie, its files closed) the GPU is free.
        self.assertEqual(self.chosen("--gpu", "1"), "1")

    def test_multi_gpu_claims_are_all_or_nothing(self):
        sup, _ = self.hold("--gpu", "1")
        r = self.run_wg("-n", "2", "true")
        self.assertEqual(r.returncode, 75, r.stderr)
        self.assertIsNone(self.claim_of(0), "a failed 2-GPU request must not keep GPU 0")
        self.assertEqual(self.chosen(), "0")
        sup.terminate()
        sup.wait(timeout=30)

    def test_lock_directory_and_files(self):
        self.assertEqual(self.chosen("-n", "2"), "0,1")
        mode = os.stat(self.lock_dir).st_mode
        self.assertEqual(stat.S_IMODE(mode), 0o1777)
        names = sorted(os.listdir(self.lock_dir))
        for index in (0, 1):
            name = f"gpu-{uuid_of(index)}.{os.geteuid()}.lock"  # per GPU and user
            self.assertIn(name, names)
            st = os.lstat(os.path.join(self.lock_dir, name))
            self.assertTrue(stat.S_ISREG(st.st_mode))
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o644)
        # Lock files are never deleted: deleting would let a newcomer lock a fresh file.
        self.assertEqual(self.chosen("-n", "2"), "0,1")
        self.assertEqual(sorted(os.listdir(self.lock_dir)), names)

    def test_a_symlink_planted_as_a_lock_file_is_refused(self):
        os.makedirs(self.lock_dir)
        os.chmod(self.lock_dir, 0o1777)
        victim = os.path.join(self.tmp, "victim")
        with open(victim, "w") as f:
            f.write("precious\n")
        planted = os.path.join(self.lock_dir, f"gpu-{uuid_of(0)}.{os.geteuid()}.lock")
        os.symlink(victim, planted)
        r = self.run_wg("--gpu", "0", "true")  # only that GPU is unusable, with a note
        self.assert_clean_error(r, 75, planted)
        self.assertEqual(self.chosen(), "1")
        with open(victim) as f:
            self.assertEqual(f.read(), "precious\n")

    def test_looking_creates_nothing_and_works_in_a_read_only_lock_directory(self):
        # Issue 12, item 16: --status used to create decide.lock (125 where it could not).
        os.makedirs(self.lock_dir)
        os.chmod(self.lock_dir, 0o555)
        for args in (("--status",), ("--status", "--json"), ("--dry-run",)):
            r = self.run_wg(*args)
            self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.listdir(self.lock_dir), [])



class NestedLaunchTest(Case):
    """with-gpu inside a with-gpu job inherits its parent's claims: it fails at once instead
    of waiting for them (docs/design/locking.md, "Nested launches")."""

    def setUp(self):
        super().setUp()
        self.machine([gpu(0), gpu(1), gpu(2)])

    def test_a_nested_launch_fails_fast_instead_of_waiting_for_its_parent(self):
        # It used to wait forever, "claimed by" its own parent.
        r = self.run_wg("-n", "2", BIN, "--wait", "-n", "1", "true", timeout=60)
        self.assert_clean_error(r, 125, "runs inside the command of another with-gpu",
                                "holds GPU 0, GPU 1 for it")
        # Without --wait it is the same error, not "no GPU free now" (75).
        r = self.run_wg("-n", "1", BIN, "true", timeout=60)
        self.assert_clean_error(r, 125, "runs inside the command of another with-gpu")

    def test_nested_siblings_both_fail_fast(self):
        script = ('"$0" -n 1 true & a=$!; "$0" --wait -n 1 true & b=$!; '
                  'wait $a; x=$?; wait $b; echo "$x $?"')
        r = self.run_wg("-n", "2", "sh", "-c", script, BIN, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), ["125", "125"], r.stderr)
        self.assertEqual(r.stderr.count("a nested with-gpu cannot claim"), 2, r.stderr)

    def test_gpus_the_parent_does_not_hold_are_not_affected(self):
        # With CUDA_VISIBLE_DEVICES reset, the nested launch may take a GPU nobody holds.
        r = self.run_wg("--gpu", "0", "env", "-u", "CUDA_VISIBLE_DEVICES", BIN, "--wait", "-n", "2",
                        "sh", "-c", 'printf %s "$CUDA_VISIBLE_DEVICES"', timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "1,2")
        # The parent's GPU held by an unrelated launch is still waited for as usual.
        holder = self.popen_wg("--gpu", "1", "sh", "-c", "echo go; exec sleep 300")
        self.assertEqual(holder.stdout.readline().strip(), "go")
        r = self.run_wg("--gpu", "0", "env", "-u", "CUDA_VISIBLE_DEVICES", BIN, "--gpu", "1", "true",
                        timeout=60)
        self.assert_clean_error(r, 75, "claimed by")


if __name__ == "__main__":
    unittest.main()
