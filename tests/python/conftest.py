"""Fixtures for the Python package's tests: a simulated machine (the project's NVML
simulator), a private lock directory, and the real `with-gpu` binary beside the package.

The package under test is the build tree's python/ folder (PYTHONPATH, set by CTest). The
simulator is named through WITH_GPU_NVML_LIBRARY, so the package loads it as it would load
the real driver; the machine is re-read from its file on every NVML read."""

import json
import os
import signal
import subprocess
import sys

import pytest

# The end-to-end tests' machine descriptions, job log and overlap checker serve here too.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from harness import (BIN, GIB, JOB_RECORDER, SIM_DIR, check_no_overlap,  # noqa: E402,F401
                     gpu, read_job_log, uuid_of, wait_until)

SIM_NVML = os.path.join(SIM_DIR, "libnvidia-ml.so.1")


class Machine:
    """The simulated machine and lock directory of one test; children it starts die with it."""

    def __init__(self, tmp, monkeypatch):
        self.tmp = str(tmp)
        self.path = os.path.join(self.tmp, "machine.json")
        self.lock_dir = os.path.join(self.tmp, "locks")
        self.children = []
        for name in [k for k in os.environ if k.startswith(("WITH_GPU_", "SLURM_"))]:
            if name not in ("WITH_GPU_BIN", "WITH_GPU_SIM_DIR", "WITH_GPU_JOB_RECORDER"):
                monkeypatch.delenv(name)
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
        monkeypatch.setenv("XDG_CONFIG_HOME", os.path.join(self.tmp, "config"))
        monkeypatch.setenv("WITH_GPU_SIM_MACHINE", self.path)
        monkeypatch.setenv("WITH_GPU_LOCK_DIR", self.lock_dir)
        monkeypatch.setenv("WITH_GPU_NVML_LIBRARY", SIM_NVML)

    def gpus(self, gpus):
        """Describes the machine (atomically: the simulator may be reading it)."""
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"driver_version": "550.54.15", "gpus": gpus}, f)
        os.replace(tmp, self.path)

    def user_config(self, text):
        path = os.path.join(self.tmp, "config", "with-gpu", "config.toml")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    # -- other processes --------------------------------------------------
    def popen(self, argv, **kw):
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("text", True)
        kw.setdefault("start_new_session", True)  # killed as a group at the end
        child = subprocess.Popen(argv, **kw)
        self.children.append(child)
        return child

    def cli(self, *args, **kw):
        """Starts the with-gpu command."""
        return self.popen([BIN, *args], **kw)

    def run_cli(self, *args, timeout=60):
        return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def python(self, code, *args, **kw):
        """Starts a Python program (Debian's python3, as the package is built for it)."""
        return self.popen([sys.executable, "-c", code, *args], **kw)

    def status(self):
        r = self.run_cli("--status", "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def claim_of(self, index):
        return self.status()["gpus"][index]["claim"]

    def queue(self):
        return self.status()["queue"]

    def tickets_on_disk(self):
        if not os.path.isdir(self.lock_dir):
            return []
        return sorted(n for n in os.listdir(self.lock_dir) if n.startswith("queue-"))

    def close(self):
        for child in self.children:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            child.wait()


@pytest.fixture
def machine(tmp_path, monkeypatch):
    m = Machine(tmp_path, monkeypatch)
    m.gpus([gpu(i) for i in range(4)])
    yield m
    m.close()
