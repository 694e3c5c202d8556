"""Shared helpers for the end-to-end tests: run the real with-gpu binary on a
simulated machine (the project's NVML simulator) with a private lock directory."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

BIN = os.environ["WITH_GPU_BIN"]
SIM_DIR = os.environ["WITH_GPU_SIM_DIR"]
MACHINES = os.environ["WITH_GPU_MACHINES"]
JOB_RECORDER = os.environ.get("WITH_GPU_JOB_RECORDER", "")
# with-gpu built with the test hook WITH_GPU_TEST_SYSTEM_CONFIG (tests/e2e/test_build_main.cpp).
TEST_BUILD_BIN = os.environ.get("WITH_GPU_TEST_BUILD_BIN", "")

GIB = 1024  # in MiB, the simulator's unit


def gpu(index, **fields):
    """One simulated GPU; keyword arguments override the idle A100 defaults."""
    g = {
        "name": "NVIDIA A100-SXM4-80GB",
        "uuid": uuid_of(index),
        "pci_bus_id": bus_id_of(index),
        "memory_total_mib": 80 * GIB,
        "utilization_percent": 0,
        "temperature_c": 30,
        "power_mw": 60000,
        "power_limit_mw": 400000,
        "processes": [],
    }
    g.update(fields)
    return g


def uuid_of(index):
    return f"GPU-{index:08x}-1111-4222-8333-{index:012x}"


def bus_id_of(index):
    return f"00000000:{0x10 + index:02X}:00.0"


def busy(pid, mib):
    return {"pid": pid, "used_memory_mib": mib, "type": "compute"}


def check_no_overlap(testcase, records):
    """records: (uuids, start_ns, end_ns, pid). Fails if two intervals on one GPU overlap."""
    by_gpu = {}
    for uuids, start, end, pid in records:
        testcase.assertLess(start, end)
        for uuid in uuids:
            by_gpu.setdefault(uuid, []).append((start, end, pid))
    for uuid, intervals in by_gpu.items():
        intervals.sort()
        for (s1, e1, p1), (s2, e2, p2) in zip(intervals, intervals[1:]):
            testcase.assertLessEqual(e1, s2, f"jobs {p1} and {p2} shared {uuid}")
    return by_gpu


def wait_until(predicate, timeout=30.0, what="condition"):
    """Polls `predicate` until it returns a true value (returned); fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def read_job_log(path):
    """The job_recorder log: list of dicts with uuids, start, end, pid, label."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        rows = [line.split() for line in f if line.strip()]
    return [{"uuids": u.split(","), "start": int(s), "end": int(e), "pid": int(p), "label": l}
            for u, s, e, p, l in rows]


class Case(unittest.TestCase):
    """A test with its own temporary directory, machine file and lock directory."""

    binary = BIN  # TEST_BUILD_BIN where a test needs its own system configuration file

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="with-gpu-e2e-")
        self.lock_dir = os.path.join(self.tmp, "locks")
        self.machine_path = os.path.join(self.tmp, "machine.json")
        self.children = []

    def tearDown(self):
        for child in self.children:
            # Each child leads its own process group (popen_wg): killing the group ends the job
            # with-gpu started too, which would otherwise outlive the test holding its claim.
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if child.poll() is None:
                child.kill()
            child.wait()
            for stream in (child.stdin, child.stdout, child.stderr):
                if stream is not None:
                    stream.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- machines ---------------------------------------------------------
    def machine(self, gpus, driver_version="550.54.15", **extra):
        """Writes a machine description (atomically, as the simulator re-reads it)."""
        doc = {"driver_version": driver_version, "gpus": gpus}
        doc.update(extra)
        tmp = self.machine_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, self.machine_path)
        return self.machine_path

    def shipped_machine(self, name):
        self.machine_path = os.path.join(MACHINES, name)
        return self.machine_path

    # -- running ----------------------------------------------------------
    def env(self, extra=None, drop=()):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("WITH_GPU_", "SLURM_"))
               and k not in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")}
        env["LD_LIBRARY_PATH"] = SIM_DIR
        env["WITH_GPU_SIM_MACHINE"] = self.machine_path
        env["WITH_GPU_LOCK_DIR"] = self.lock_dir
        for k in drop:
            env.pop(k, None)
        env.update(extra or {})
        return env

    def run_wg(self, *args, env=None, drop=(), timeout=60, stdin=subprocess.DEVNULL, **kw):
        kw.setdefault("cwd", self.tmp)  # where a crashing test command may leave a core file
        return subprocess.run([self.binary, *args], env=self.env(env, drop), capture_output=True,
                              text=True, timeout=timeout, stdin=stdin, **kw)

    def popen_wg(self, *args, env=None, **kw):
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("cwd", self.tmp)
        kw.setdefault("start_new_session", True)  # see tearDown
        child = subprocess.Popen([self.binary, *args], env=self.env(env), text=True, **kw)
        self.children.append(child)
        return child

    def chosen(self, *args, env=None):
        """Runs with-gpu and returns the CUDA_VISIBLE_DEVICES the command saw."""
        r = self.run_wg(*args, "--", "sh", "-c", 'printf %s "$CUDA_VISIBLE_DEVICES"', env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def status(self):
        r = self.run_wg("--status", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def assert_clean_error(self, result, code, *fragments):
        """with-gpu failed with `code` and a message (not a crash) containing the fragments."""
        self.assertEqual(result.returncode, code, f"stdout={result.stdout!r} stderr={result.stderr!r}")
        self.assertIn("with-gpu:", result.stderr)
        for bad in ("terminate called", "Traceback", "Segmentation", "AddressSanitizer"):
            self.assertNotIn(bad, result.stderr)
        for fragment in fragments:
            self.assertIn(fragment, result.stderr)

    # -- waiting for conditions (never a fixed sleep) -----------------------
    def wait_until(self, predicate, timeout=30.0, what="condition"):
        return wait_until(predicate, timeout, what)

    def claim_of(self, index):
        return self.status()["gpus"][index]["claim"]

    def queue(self):
        return self.status()["queue"]

    def wait_for_queue_length(self, n):
        return self.wait_until(lambda: len(self.queue()) == n, what=f"{n} waiters in the queue")

    def tickets_on_disk(self):
        if not os.path.isdir(self.lock_dir):
            return []
        return sorted(n for n in os.listdir(self.lock_dir) if n.startswith("queue-"))
