"""Two real users attacking each other through a shared lock directory (issue 12, items
5, 6, 7, 10 and 15). Needs root, to create the users (removed again at the end) and to run
with-gpu as each of them; skipped with a reason otherwise."""

import json
import os
import shutil
import subprocess
import time
import unittest

from harness import BIN, Case, uuid_of, gpu

SETPRIV = shutil.which("setpriv")
USERADD = shutil.which("useradd")
USERDEL = shutil.which("userdel")
FLOCK = shutil.which("flock")


def why_skip():
    if os.geteuid() != 0:
        return "needs root to create two users"
    for name, path in (("useradd", USERADD), ("userdel", USERDEL), ("setpriv", SETPRIV),
                       ("flock", FLOCK)):
        if path is None:
            return f"needs {name}"
    return None


def cpu_seconds(pid):
    """User plus system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# CI sets WITH_GPU_REQUIRE_ALL_TESTS=1: there, a test that cannot run is a failure.
REQUIRED = os.environ.get("WITH_GPU_REQUIRE_ALL_TESTS") == "1"


@unittest.skipIf(why_skip() is not None and not REQUIRED, why_skip() or "")
class TwoUsers(Case):
    users = []

    @classmethod
    def setUpClass(cls):
        if why_skip() is not None:
            raise AssertionError(f"required (WITH_GPU_REQUIRE_ALL_TESTS=1) but {why_skip()}")
        base = f"wg{os.getpid() % 100000}"
        cls.users = []
        for suffix in ("a", "b"):
            name = base + suffix
            subprocess.run([USERADD, "-M", "-U", "-s", "/bin/sh", name], check=True,
                           capture_output=True)
            cls.users.append(name)
        cls.rt1, cls.rt2 = cls.users
        cls.uid = {name: int(subprocess.run(["id", "-u", name], check=True, capture_output=True,
                                            text=True).stdout) for name in cls.users}

    @classmethod
    def tearDownClass(cls):
        for name in cls.users:
            subprocess.run([USERDEL, name], capture_output=True)

    def setUp(self):
        super().setUp()
        os.chmod(self.tmp, 0o755)
        self.machine([gpu(i) for i in range(4)])
        os.chmod(self.machine_path, 0o644)
        # A shared lock directory, as an administrator (or the first with-gpu run) makes it.
        os.mkdir(self.lock_dir)
        os.chmod(self.lock_dir, 0o1777)

    # -- running as someone -------------------------------------------------
    def as_user(self, user, argv):
        return [SETPRIV, f"--reuid={user}", f"--regid={user}", "--init-groups", "--", *argv]

    def user_env(self):
        return self.env({"HOME": self.tmp})

    def run_as(self, user, *args, timeout=60):
        return subprocess.run(self.as_user(user, [BIN, *args]), env=self.user_env(),
                              capture_output=True, text=True, timeout=timeout, cwd=self.tmp,
                              stdin=subprocess.DEVNULL)

    def popen_as(self, user, argv, **kw):
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("start_new_session", True)  # the harness's tearDown kills the group
        child = subprocess.Popen(self.as_user(user, argv), env=self.user_env(), text=True,
                                 cwd=self.tmp, **kw)
        self.children.append(child)
        return child

    def sh_as(self, user, script):
        return subprocess.run(self.as_user(user, ["sh", "-c", script]), env=self.user_env(),
                              capture_output=True, text=True, timeout=60)

    def path(self, name):
        return os.path.join(self.lock_dir, name)

    def claim_file(self, index, user):
        return self.path(f"gpu-{uuid_of(index)}.{self.uid[user]}.lock")

    def status_as(self, user):
        """--status as `user`: unlike root, it cannot remove other users' files."""
        r = self.run_as(user, "--status", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def hold(self, user, *args, job_args=()):
        """`user` claims GPUs until release() closes the job's stdin."""
        holder = self.popen_as(user, [BIN, *args, "sh", "-c", "read line", *job_args],
                               stdin=subprocess.PIPE)
        self.wait_until(lambda: os.path.exists(f"/proc/{holder.pid}") and any(
            g["claim"] and g["claim"]["supervisor_pid"] == holder.pid
            for g in self.status_as(user)["gpus"]), what=f"{user} holding {args}")
        return holder

    def hold_all(self, user):
        return self.hold(user, "-n", "4")

    @staticmethod
    def release(holder):
        holder.stdin.close()
        holder.wait(timeout=60)

    def ticket_files(self):
        return sorted(n for n in os.listdir(self.lock_dir) if n.startswith("queue-"))

    # -- item 15 -------------------------------------------------------------
    def test_the_creator_of_a_lock_file_cannot_defeat_another_users_claim(self):
        r = self.run_as(self.rt1, "--gpu", "0", "true")  # rt1's files are there now
        self.assertEqual(r.returncode, 0, r.stderr)
        holder = self.hold(self.rt2, "--gpu", "0")
        # rt1 removes every file it may remove (its own), then launches on GPU 0.
        self.sh_as(self.rt1, f'rm -f "{self.lock_dir}"/* 2>/dev/null; true')
        r = self.run_as(self.rt1, "--gpu", "0", "true")
        self.assert_clean_error(r, 75)
        self.assertIsNone(holder.poll())
        self.release(holder)
        r = self.run_as(self.rt1, "--gpu", "0", "true")
        self.assertEqual(r.returncode, 0, r.stderr)

    # -- item 5 --------------------------------------------------------------
    def test_planted_files_cost_only_their_gpu_or_ticket(self):
        rt1 = self.rt1
        planted = {
            "decide.lock FIFO": self.path("decide.lock"),
            "own claim of GPU 0, mode 000": self.claim_file(0, rt1),
            "rt2 claim of GPU 1, a symlink": self.claim_file(1, self.rt2),
            "ticket directory": self.path("queue-00000000000000000007.ticket"),
            "ticket FIFO": self.path("queue-00000000000000000008.ticket"),
            "ticket mode 000": self.path("queue-00000000000000000009.ticket"),
        }
        script = "; ".join([
            f'mkfifo "{planted["decide.lock FIFO"]}"',
            f'touch "{planted["own claim of GPU 0, mode 000"]}"',
            f'chmod 000 "{planted["own claim of GPU 0, mode 000"]}"',
            f'ln -s /etc/shadow "{planted["rt2 claim of GPU 1, a symlink"]}"',
            f'mkdir "{planted["ticket directory"]}"',
            f'mkfifo "{planted["ticket FIFO"]}"',
            f'touch "{planted["ticket mode 000"]}"',
            f'chmod 000 "{planted["ticket mode 000"]}"',
        ])
        r = self.sh_as(rt1, script)
        self.assertEqual(r.returncode, 0, r.stderr)

        status = self.run_as(self.rt2, "--status", "--json")
        self.assertEqual(status.returncode, 0, status.stderr)
        gpus = json.loads(status.stdout)["gpus"]
        self.assertIsNotNone(gpus[0]["claim"], "a claim file we may not read counts as claimed")
        self.assertIsNotNone(gpus[1]["claim"], "rt2 cannot claim GPU 1: its file is taken")
        self.assertIsNone(gpus[2]["claim"])
        theirs = self.run_as(rt1, "--status", "--json")
        self.assertEqual(theirs.returncode, 0, theirs.stderr)
        self.assertIsNone(json.loads(theirs.stdout)["gpus"][1]["claim"])
        for name in ("decide.lock", "queue-00000000000000000007.ticket",
                     "queue-00000000000000000008.ticket", "queue-00000000000000000009.ticket",
                     os.path.basename(planted["own claim of GPU 0, mode 000"])):
            self.assertIn(name, status.stderr)

        dry = self.run_as(self.rt2, "--dry-run", "-n", "2")
        self.assertEqual(dry.returncode, 0, dry.stdout + dry.stderr)

        # rt2 cannot use GPU 1 (its own claim file's name is taken) nor GPU 0 (maybe claimed).
        r = self.run_as(self.rt2, "-n", "2", "sh", "-c", 'printf %s "$CUDA_VISIBLE_DEVICES"')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "2,3")
        self.assertIn(os.path.basename(planted["rt2 claim of GPU 1, a symlink"]), r.stderr)
        r = self.run_as(self.rt2, "--gpu", "1", "true")
        self.assert_clean_error(r, 75)
        # Someone else may use GPU 1; nobody (but root) can use GPU 0 while the file stays.
        r = self.run_as(rt1, "--gpu", "1", "true")
        self.assertEqual(r.returncode, 0, r.stderr)
        # The queue still works.
        holder = self.hold(self.rt2, "-n", "2")
        waiter = self.popen_as(self.rt2, [BIN, "--wait", "-n", "1", "true"])
        self.wait_until(lambda: len(self.ticket_files()) == 4, what="the waiter's ticket")
        self.release(holder)
        self.assertEqual(waiter.wait(timeout=120), 0, waiter.stderr.read())

    # -- item 6 --------------------------------------------------------------
    def test_a_planted_huge_ticket_number_neither_wraps_nor_breaks_the_queue(self):
        r = self.sh_as(self.rt1, f'touch "{self.path("queue-18446744073709551615.ticket")}"')
        self.assertEqual(r.returncode, 0, r.stderr)
        holder = self.hold_all(self.rt2)
        first = self.popen_as(self.rt2, [BIN, "--wait", "-n", "4", "sh", "-c", "echo first"])
        self.wait_until(lambda: "queue-00000000000000000001.ticket" in self.ticket_files(),
                        what="the first waiter's ticket, numbered 1")
        second = self.popen_as(self.rt2, [BIN, "--wait", "-n", "1", "sh", "-c", "echo second"])
        self.wait_until(lambda: "queue-00000000000000000002.ticket" in self.ticket_files(),
                        what="the second waiter's ticket, numbered 2")
        self.assertEqual(len(self.status_as(self.rt2)["queue"]), 2)
        self.release(holder)
        self.assertEqual(first.wait(timeout=120), 0, first.stderr.read())
        self.assertEqual(second.wait(timeout=120), 0, second.stderr.read())

    # -- item 7 --------------------------------------------------------------
    def test_an_oddly_named_ticket_held_by_another_user_makes_nobody_spin(self):
        odd = self.path("queue-5.ticket")
        ticket = {
            "version": 1, "seq": 5, "pid": 1, "user": self.rt1, "command": "x",
            "since": int(time.time()),
            "request": {"min_gpus": 1, "max_gpus": 1, "only": [], "exclude": [],
                        "visible": {"restricted": False, "refs": [], "original": ""},
                        "gpu_type": None, "strict_type": False, "min_free_bytes": None,
                        "max_utilization_percent": None, "max_temperature_c": None,
                        "max_power_w": None, "require_idle": False},
        }
        r = self.sh_as(self.rt1, f"cat > '{odd}' <<'EOF'\n{json.dumps(ticket)}\nEOF")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.popen_as(self.rt1, [FLOCK, "-x", odd, "sleep", "600"])
        holder = self.hold_all(self.rt2)
        waiter = self.popen_as(self.rt2, [BIN, "--wait", "true"])
        self.wait_until(lambda: any(len(t) == len("queue-00000000000000000001.ticket")
                                    for t in self.ticket_files()), what="the waiter's ticket")
        before = cpu_seconds(waiter.pid)
        time.sleep(3)  # a measuring window, not synchronisation: a spinning waiter burns it all
        used = cpu_seconds(waiter.pid) - before
        self.assertLess(used, 0.3, f"the waiter used {used:.2f}s of CPU in 3s: it spins")
        self.release(holder)
        self.assertEqual(waiter.wait(timeout=120), 0, waiter.stderr.read())

    # -- item 10 -------------------------------------------------------------
    def test_another_users_escape_sequences_never_reach_the_terminal(self):
        hostile = "\x1b]0;PWNED\x07\x1b[2J\nforged line\x9b31m"
        holder = self.hold(self.rt1, "--gpu", "0", job_args=(hostile,))
        raw = ("\x1b", "\x07", "\x9b", "forged line\n")
        for args in (("--gpu", "0", "true"), ("--dry-run", "--gpu", "0"),
                     ("--status",), ("--wait", "--timeout", "1s", "--gpu", "0", "true")):
            r = self.run_as(self.rt2, *args)
            shown = r.stdout + r.stderr
            if args != ("--status",):  # the board names the holder's user only
                self.assertIn("read line", shown, f"{args}: the holder's command is named")
            for seq in raw:
                self.assertNotIn(seq, shown, f"{args} printed {seq!r} from rt1's command line")
        self.release(holder)


    # -- issue 10: a forged SLURM holder record ----------------------------------
    def test_a_record_that_claims_to_hold_for_a_slurm_job_switches_nothing(self):
        """Anyone can write "slurm_job" into a claim record of their own; only root's (the
        prolog's) and the caller's own are believed, so rt2's job does not move into a job
        lock directory where rt1's real claim would not count."""
        holder = self.hold(self.rt1, "--gpu", "0")
        path = self.claim_file(0, self.rt1)
        with open(path) as f:
            record = json.loads(f.read())
        record["slurm_job"] = "99"
        forged = os.path.join(self.tmp, "forged")
        with open(forged, "w") as f:
            f.write(json.dumps(record) + "\n")
        os.chmod(forged, 0o644)
        r = self.sh_as(self.rt1, f'cat "{forged}" > "{path}"')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.status_as(self.rt2)["gpus"][0]["claim"]["slurm_job"], "99")
        env = self.user_env()
        env.update({"SLURM_JOB_ID": "99", "SLURM_JOB_GPUS": "0", "CUDA_VISIBLE_DEVICES": "0"})
        r = subprocess.run(self.as_user(self.rt2, [BIN, "-n", "1", "true"]), env=env,
                           capture_output=True, text=True, timeout=60, cwd=self.tmp,
                           stdin=subprocess.DEVNULL)
        self.assert_clean_error(r, 75, "claimed by")
        self.release(holder)

if __name__ == "__main__":
    unittest.main()
