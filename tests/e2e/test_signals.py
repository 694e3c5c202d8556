"""Signals and terminals behave as if the user had run the command directly."""

import os
import pty
import select
import signal
import subprocess
import time
import unittest

from harness import BIN, Case, gpu

LOOP = "while :; do sleep 0.05; done"


class SignalTest(Case):
    def setUp(self):
        super().setUp()
        self.machine([gpu(0)])

    def start(self, script):
        child = self.popen_wg("sh", "-c", script)
        self.assertEqual(child.stdout.readline(), "ready\n")
        return child

    def test_death_by_signal_is_passed_on(self):
        for sig in (signal.SIGTERM, signal.SIGKILL, signal.SIGSEGV, signal.SIGINT):
            with self.subTest(sig=sig):
                r = self.run_wg("sh", "-c", f"kill -{int(sig)} $$")
                self.assertEqual(r.returncode, -int(sig), r.stderr)
                self.assertNotIn("core dumped", r.stderr)

    def test_term_hup_usr1_sent_to_with_gpu_reach_the_command(self):
        for sig, code in ((signal.SIGTERM, 7), (signal.SIGHUP, 8), (signal.SIGUSR1, 9)):
            with self.subTest(sig=sig):
                name = signal.Signals(sig).name[3:]
                child = self.start(f'trap "exit {code}" {name}; echo ready; {LOOP}')
                child.send_signal(sig)
                self.assertEqual(child.wait(timeout=30), code)

    def test_untrapped_term_kills_command_and_with_gpu_alike(self):
        child = self.start(f"echo ready; {LOOP}")
        child.send_signal(signal.SIGTERM)
        # sh dies of TERM; with-gpu then dies of TERM too.
        self.assertEqual(child.wait(timeout=30), -signal.SIGTERM)

    def run_in_pty(self, script, keys=b"", expect=b"ready"):
        """Runs with-gpu as the foreground job of a new terminal; returns (status, output)."""
        pid, fd = pty.fork()
        if pid == 0:
            os.execve(BIN, [BIN, "sh", "-c", script], self.env())
        output = b""
        deadline = time.monotonic() + 30
        sent = False
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    data = os.read(fd, 1024)
                except OSError:  # EIO: every process holding the terminal has exited
                    data = b""
                if not data:
                    break
                output += data
            if not sent and expect in output:
                os.write(fd, keys)
                sent = True
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(fd)
            self.fail(f"with-gpu did not finish in the terminal; output={output!r}")
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        return status, output

    def test_ctrl_c_interrupts_the_command_once(self):
        # The terminal sends SIGINT to the whole foreground group; with-gpu must not send a
        # second one (the counter would read 2).
        script = ('n=0; trap \'n=$((n+1))\' INT; echo ready; '
                  'while [ $n -eq 0 ]; do sleep 0.05; done; sleep 0.3; echo "got $n"; exit 5')
        status, output = self.run_in_pty(script, keys=b"\x03")
        self.assertTrue(os.WIFEXITED(status), status)
        self.assertEqual(os.WEXITSTATUS(status), 5, output)
        self.assertIn(b"got 1", output)

    def test_ctrl_c_without_a_trap_ends_both(self):
        status, output = self.run_in_pty(f"echo ready; {LOOP}", keys=b"\x03")
        self.assertTrue(os.WIFSIGNALED(status), (status, output))
        self.assertEqual(os.WTERMSIG(status), signal.SIGINT)

    def test_command_owns_the_terminal(self):
        status, output = self.run_in_pty("test -t 0 && test -t 1 && echo ready-tty", expect=b"")
        self.assertEqual(os.WEXITSTATUS(status), 0, output)
        self.assertIn(b"ready-tty", output)


if __name__ == "__main__":
    unittest.main()
