"""--status --watch and the board's terminal handling: redraws in place on a terminal, follows
the machine as it changes, ends cleanly on Ctrl-C / SIGTERM; colours only where wanted."""

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
import unittest

from harness import BIN, Case, busy, gpu, GIB

CLEAR = b"\033[H\033[2J"
HIDE_CURSOR = b"\033[?25l"
SHOW_CURSOR = b"\033[?25h"
SGR = re.compile(rb"\033\[[0-9;]*m")  # a colour (or bold/dim) sequence
DEADLINE = 30.0


class Reader:
    """Everything a child writes to one descriptor, read until a condition holds (with a deadline)."""

    def __init__(self, testcase, fd):
        self.testcase = testcase
        self.fd = fd
        self.output = b""
        self.eof = False

    def read_until(self, predicate, what, timeout=DEADLINE):
        deadline = time.monotonic() + timeout
        while not predicate(self.output):
            left = deadline - time.monotonic()
            if left <= 0 or self.eof:
                self.testcase.fail(f"{'end of output' if self.eof else 'timed out'} waiting for "
                                   f"{what}; got {self.output[-2000:]!r}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                self._read_some()
        return self.output

    def read_to_end(self, timeout=DEADLINE):
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                self.testcase.fail(f"timed out waiting for the output to end; got {self.output[-2000:]!r}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                self._read_some()
        return self.output

    def _read_some(self):
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the terminal's other side is closed
            data = b""
        if data:
            self.output += data
        else:
            self.eof = True


class WatchCase(Case):
    def on_terminal(self, *args, env=None, columns=100):
        """Starts with-gpu on a new pseudo-terminal `columns` wide; returns (pid, Reader)."""
        pid, fd = pty.fork()
        if pid == 0:
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
                os.execve(BIN, [BIN, *args], self.env(env, drop=("NO_COLOR",)))
            finally:
                os._exit(127)
        self.addCleanup(os.close, fd)
        self.addCleanup(self.reap, pid)
        return pid, Reader(self, fd)

    def reap(self, pid):
        try:
            if os.waitpid(pid, os.WNOHANG) == (0, 0):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        except ChildProcessError:
            pass

    def exit_status(self, pid):
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)

    def frames(self, output):
        return output.count(CLEAR)


class WatchTest(WatchCase):
    def test_redraws_follows_the_machine_and_quits_on_ctrl_c(self):
        self.machine([gpu(0, temperature_c=30), gpu(1, processes=[busy(4300001, 10 * GIB)])])
        pid, term = self.on_terminal("--status", "--watch", "200ms", env={"TERM": "xterm"})
        out = term.read_until(lambda o: self.frames(o) >= 2, "two frames")
        self.assertTrue(out.startswith(HIDE_CURSOR), out[:100])
        self.assertIn(b"Ctrl-C to quit", out)
        self.assertIn(b"every 200ms", out)
        self.assertIn(b"NVIDIA driver 550.54.15, 2 GPUs", out)
        self.assertRegex(out, SGR)  # a terminal that can show colours gets them
        self.assertNotIn(b"77\xc2\xb0C", out)

        # The simulator re-reads the file; the same NVML session must show the change.
        seen = len(out)
        self.machine([gpu(0, temperature_c=77), gpu(1, processes=[busy(4300001, 10 * GIB)])])
        term.read_until(lambda o: b"77\xc2\xb0C" in o[seen:], "the new temperature in a later frame")
        term.read_until(lambda o: self.frames(o[seen:]) >= 1, "a redraw after the change")

        os.write(term.fd, b"\x03")
        out = term.read_to_end()
        self.assertEqual(self.exit_status(pid), 0)
        tail = out[out.rindex(CLEAR):]
        self.assertIn(SHOW_CURSOR, tail, "the cursor must be shown again")
        self.assertTrue(out.endswith(b"\r\n"), out[-50:])
        for bad in (b"terminate called", b"Sanitizer", b"with-gpu:"):
            self.assertNotIn(bad, out)

    def test_sigterm_ends_the_watch_cleanly(self):
        self.machine([gpu(0)])
        pid, term = self.on_terminal("--status", "--watch", "100ms", env={"TERM": "xterm"})
        term.read_until(lambda o: self.frames(o) >= 2, "two frames")
        os.kill(pid, signal.SIGTERM)
        out = term.read_to_end()
        self.assertEqual(self.exit_status(pid), 0)
        self.assertIn(SHOW_CURSOR, out[out.rindex(CLEAR):])

    def test_no_color_under_a_terminal(self):
        self.machine([gpu(0), gpu(1, lost=True)])
        pid, term = self.on_terminal("--status", "--watch", "200ms", env={"NO_COLOR": "1", "TERM": "xterm"})
        out = term.read_until(lambda o: self.frames(o) >= 2, "two frames")
        os.write(term.fd, b"\x03")
        out = term.read_to_end()
        self.assertEqual(self.exit_status(pid), 0)
        self.assertIn(b"error: GPU is lost", out)
        self.assertIsNone(SGR.search(out), out[:400])

    def test_dumb_terminal_gets_no_colour(self):
        self.machine([gpu(0)])
        pid, term = self.on_terminal("--status", env={"TERM": "dumb"})
        out = term.read_to_end()
        self.assertEqual(self.exit_status(pid), 0)
        self.assertIn(b"free", out)
        self.assertNotIn(b"\033", out)

    def test_board_fits_the_terminal_width(self):
        long_name = "NVIDIA GeForce RTX 4090 With A Name Far Too Long For Any Table"
        self.machine([gpu(0, name=long_name), gpu(1, lost=True)])
        pid, term = self.on_terminal("--status", env={"TERM": "xterm"}, columns=80)
        out = term.read_to_end()
        self.assertEqual(self.exit_status(pid), 0)
        self.assertIn(b"GeForce RTX", out)
        self.assertIn(b"\xe2\x80\xa6", out)  # the name was cut with an ellipsis
        for line in SGR.sub(b"", out).decode().splitlines():
            self.assertLessEqual(len(line), 80, line)

    def test_piped_output_has_no_escape_bytes(self):
        self.machine([gpu(0, processes=[busy(4300002, 30 * GIB)], temperature_c=90,
                          utilization_percent=99), gpu(1, lost=True), gpu(2, utilization_percent=None)])
        r = self.run_wg("--status", env={"TERM": "xterm"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("\033", r.stdout)
        self.assertTrue(r.stdout.startswith("NVIDIA driver 550.54.15, 3 GPUs\n"), r.stdout)
        for line in r.stdout.splitlines():
            self.assertLessEqual(len(line), 100, line)

    def test_piped_watch_prints_frames_without_escapes(self):
        self.machine([gpu(0)])
        child = subprocess.Popen([BIN, "--status", "--watch", "100ms"], env=self.env({"TERM": "xterm"}),
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, cwd=self.tmp)
        self.children.append(child)
        self.addCleanup(child.stdout.close)
        reader = Reader(self, child.stdout.fileno())
        reader.read_until(lambda o: o.count(b"Ctrl-C to quit") >= 2, "two frames")
        child.send_signal(signal.SIGINT)
        out = reader.read_to_end()
        self.assertEqual(child.wait(timeout=DEADLINE), 0)
        self.assertNotIn(b"\033", out)
        self.assertTrue(out.endswith(b"\n"))


if __name__ == "__main__":
    unittest.main()
