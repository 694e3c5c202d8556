"""Text from other users and processes, and requests the machine can never meet: what
with-gpu prints stays valid UTF-8 without control characters, and errors are clear."""

import json
import os
import signal
import subprocess
import unittest

from harness import BIN, Case, GIB, busy, gpu

# What another user may put in a command line: a window-title OSC ending in BEL, clear
# screen, a fake line of output, an 8-bit CSI (as UTF-8: C1 control U+009B), a bidi override.
# Short enough to survive the cut of long command lines in reasons.
HOSTILE = "\x1b]0;PWN\x07\x1b[2J\nFAKE\u009b1m\u202ex"
SHOWN = "?]0;PWN??[2J?FAKE?1m?x"
FORBIDDEN = ("\x1b", "\x07", "\u009b", "\u202e", "\nFAKE")


class HostileTextTest(Case):
    def run_bytes(self, *args, env=None):
        """with-gpu's output as bytes, so that invalid UTF-8 cannot hide behind decoding."""
        return subprocess.run([BIN, *args], env=self.env(env), capture_output=True, timeout=60,
                              stdin=subprocess.DEVNULL, cwd=self.tmp)

    def assert_safe(self, text, where):
        for bad in FORBIDDEN:
            self.assertNotIn(bad, text, f"{bad!r} reached {where}: {text!r}")

    def hold_gpu_0_with_hostile_command(self):
        # $0 of the script is the hostile text: it is in the claim record and in /proc.
        holder = self.popen_wg("--gpu", "0", "sh", "-c", "exec sleep 300", HOSTILE)
        self.addCleanup(holder.stdout.close)
        self.addCleanup(holder.stderr.close)
        self.addCleanup(holder.wait, 30)
        self.addCleanup(holder.terminate)  # passed on to the job: nothing is left behind
        self.wait_until(lambda: (c := self.claim_of(0)) and c.get("pid"), what="claim record")
        return holder

    def test_status_json_survives_a_command_line_that_is_not_utf8(self):
        # Not the last command of the script, so that sh cannot exec it and stays in /proc.
        # Its own process group, so that the cleanup ends sleep too: a sleep left behind would
        # hold the test runner's output pipe open.
        sleeper = subprocess.Popen(["sh", "-c", "sleep 300; exit 0", b"caf\xe9"],
                                   start_new_session=True, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        self.addCleanup(sleeper.wait)
        self.addCleanup(os.killpg, sleeper.pid, signal.SIGKILL)
        self.machine([gpu(0, processes=[busy(sleeper.pid, GIB)])])
        r = self.run_bytes("--status", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout.decode("utf-8"))  # strict: the whole document is UTF-8
        self.assertEqual(doc["gpus"][0]["processes"][0]["command"], "sh -c sleep 300; exit 0 caf\ufffd")
        r = self.run_bytes("--status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("sh -c sleep 300; exit 0 caf\ufffd", r.stdout.decode("utf-8"))

    def test_another_users_escape_sequences_never_reach_the_terminal(self):
        self.machine([gpu(0), gpu(1)])
        self.hold_gpu_0_with_hostile_command()

        r = self.run_wg("--gpu", "0", "true")
        self.assert_clean_error(r, 75, "GPU 0: claimed by", SHOWN)
        self.assert_safe(r.stderr, "the exit-75 message")

        r = self.run_wg("--dry-run", "--gpu", "0")
        self.assertEqual(r.returncode, 75, r.stderr)
        self.assertIn(SHOWN, r.stdout)
        self.assert_safe(r.stdout + r.stderr, "--dry-run")

        r = self.run_wg("--dry-run", "--json", "--gpu", "0")
        self.assertEqual(r.returncode, 75, r.stderr)
        self.assert_safe(r.stdout, "--dry-run --json")
        reason = json.loads(r.stdout)["gpus"][0]["reasons"][0]["reason"]
        self.assertIn(SHOWN, reason)
        self.assert_safe(reason, "the reason in --dry-run --json")

        r = self.run_wg("--status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_safe(r.stdout, "--status")

        waiter = self.popen_wg("--wait", "--gpu", "0", "true")
        self.addCleanup(waiter.stdout.close)
        self.addCleanup(waiter.stderr.close)
        err = waiter.stderr.readline()  # stderr is not a terminal: one line per new reason
        waiter.terminate()
        waiter.wait(timeout=30)
        err += waiter.stderr.read()
        self.assertIn("with-gpu: waiting for 1 GPU, 1st in queue: GPU 0: claimed by", err)
        self.assertIn(SHOWN, err)
        self.assert_safe(err, "the waiting line")

    def test_another_waiters_user_name_is_sanitised_in_reasons(self):
        # The queue's "wanted by" reason carries a waiter's user name from its ticket file.
        self.machine([gpu(0)])
        self.hold_gpu_0_with_hostile_command()
        waiter = self.popen_wg("--wait", "true")
        self.wait_for_queue_length(1)
        ticket = [n for n in self.tickets_on_disk()][0]
        path = os.path.join(self.lock_dir, ticket)
        with open(path) as f:
            doc = json.loads(f.readline())
        doc["user"] = HOSTILE
        with open(path, "w") as f:  # the waiter keeps its lock on the same inode
            f.write(json.dumps(doc) + "\n")
        r = self.run_wg("--dry-run")
        self.assertEqual(r.returncode, 75, r.stderr)
        self.assertIn("wanted by " + SHOWN + " waiting before us", r.stdout)
        self.assert_safe(r.stdout, "--dry-run with a hostile ticket")
        r = self.run_wg("--status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_safe(r.stdout, "--status with a hostile ticket")
        waiter.terminate()
        waiter.wait(timeout=30)
        waiter.stderr.close()
        waiter.stdout.close()


class ImpossibleRequestTest(Case):
    def test_memory_only_an_empty_card_without_reserved_memory_has_is_impossible(self):
        # 80 GiB cards of which the driver keeps 512 MiB: 80G can never be free.
        self.machine([gpu(0, memory_reserved_mib=512), gpu(1, memory_reserved_mib=512)])
        r = self.run_wg("--dry-run", "--min-memory", "80G")
        self.assertEqual(r.returncode, 125, r.stdout + r.stderr)
        self.assertIn("512 MiB reserved by the driver", r.stdout)
        # --wait must not wait (and, as the queue's head, block everyone) for what cannot come.
        r = self.run_wg("--wait", "--min-memory", "80G", "true", timeout=60)
        self.assert_clean_error(r, 125, "can never be met", "reserved by the driver")
        self.assertEqual(self.tickets_on_disk(), [])
        # What is left after the reservation is still possible.
        r = self.run_wg("--dry-run", "--min-memory", "81408M")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_an_ambiguous_uuid_prefix_is_a_usage_error_naming_both_gpus(self):
        a = "GPU-5a1b2c3d-0000-4000-8000-000000000000"
        b = "GPU-5f9e8d7c-0000-4000-8000-000000000001"
        self.machine([gpu(0, uuid=a), gpu(1, uuid=b), gpu(2)])
        for args in (["--gpu", "GPU-5", "true"], ["--dry-run", "--gpu", "gpu-5"],
                     ["--exclude", "GPU-5", "true"]):
            r = self.run_wg(*args)
            self.assert_clean_error(r, 2, "is ambiguous", f"GPU 0 ({a})", f"GPU 1 ({b})")
        self.assertEqual(self.chosen("--gpu", "GPU-5f"), "1")

    def test_a_count_too_large_names_the_right_bound(self):
        self.machine([gpu(0)])
        r = self.run_wg("-n", "4294967296", "true")
        self.assert_clean_error(r, 2, "4294967296 is out of range (at most 4294967295)")
        self.assertNotIn("at least", r.stderr)


if __name__ == "__main__":
    unittest.main()
