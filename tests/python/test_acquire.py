"""with_gpu.acquire() in this process: every setting, the lease, the device numbering and
the exceptions, against the simulator."""

import inspect
import json
import os
import threading
import time

import pytest

import with_gpu
from conftest import GIB, gpu, uuid_of, wait_until


def busy(pid, mib):
    return {"pid": pid, "used_memory_mib": mib, "type": "compute"}


def test_a_lease_holds_the_gpu_until_released(machine):
    lease = with_gpu.acquire()
    assert lease.held
    assert lease.indices == [0]
    assert lease.uuids == [uuid_of(0)]
    assert lease.cuda_ids == [0]
    claim = machine.claim_of(0)
    assert claim["pid"] == os.getpid()
    assert "pytest" in claim["command"] or "python" in claim["command"]
    # A second claim in the same process takes another GPU; the CLI sees both taken.
    second = with_gpu.acquire(count=3)
    assert sorted(second.indices) == [1, 2, 3]
    r = machine.run_cli("--dry-run", "true")
    assert r.returncode == 75, r.stdout + r.stderr
    lease.release()
    assert not lease.held
    lease.release()  # idempotent
    assert machine.claim_of(0) is None
    assert machine.run_cli("-q", "true").returncode == 0
    second.release()


def test_the_with_block_releases_even_on_an_exception(machine):
    with pytest.raises(RuntimeError):
        with with_gpu.acquire(count=4) as lease:
            assert lease.indices == [0, 1, 2, 3]
            raise RuntimeError("the job failed")
    assert [g["claim"] for g in machine.status()["gpus"]] == [None] * 4


def test_a_lease_that_is_garbage_collected_releases(machine):
    with_gpu.acquire(count=4)  # dropped at once
    import gc
    gc.collect()
    assert machine.claim_of(0) is None


# GPU 0 is a busy A100 (60G free, 50 %, 80 C, 300 W, one process), 1 an idle A100 80GB,
# 2 an idle A100 40GB (PCIe), 3 an idle H100 with 64G. Best first is most free memory first:
# 1, 3, 0, 2.
BUSY_MACHINE = [
    gpu(0, utilization_percent=50, temperature_c=80, power_mw=300000,
        processes=[busy(4242, 20 * GIB)]),
    gpu(1),
    gpu(2, name="NVIDIA A100-PCIE-40GB", memory_total_mib=40 * GIB),
    gpu(3, name="NVIDIA H100 80GB HBM3", memory_total_mib=64 * GIB),
]
ANY = {"min_gpus": 1, "max_gpus": 4}


@pytest.mark.parametrize("kwargs, expected", [
    ({}, [1]),
    ({"count": 2}, [1, 3]),
    ({"min_gpus": 1, "max_gpus": 3}, [1, 3, 0]),
    ({"gpus": [2]}, [2]),
    ({"gpus": "3,0", "count": 2}, [3, 0]),
    ({"gpus": [uuid_of(2)[:12]]}, [2]),
    ({"exclude": ["name:H100", 1]}, [0]),
    ({"exclude": [1, 3]}, [0]),
    ({"exclude": "1,3", "count": 2}, [0, 2]),
    ({"gpu_type": "H100"}, [3]),
    ({"gpu_type": "A100", "count": 3}, [1, 0, 2]),
    ({"gpu_type": "PCIE", "strict": True, **ANY}, [2]),
    ({"min_memory": 70 * GIB, **ANY}, [1]),
    ({"min_memory": "62G", **ANY}, [1, 3]),
    ({"max_util": 10, **ANY}, [1, 3, 2]),
    ({"max_temp": 60, **ANY}, [1, 3, 2]),
    ({"max_power": 100, **ANY}, [1, 3, 2]),
    ({"require_idle": True, **ANY}, [1, 3, 2]),
    ({"wait": False}, [1]),
    ({"wait": True}, [1]),
    ({"timeout": 5}, [1]),
    ({"timeout": "5m"}, [1]),
    ({"poll": "100ms", "wait": True}, [1]),
])
def test_every_setting_is_applied(machine, kwargs, expected):
    machine.gpus(BUSY_MACHINE)
    # The command with the same flags chooses the same GPUs.
    cli = machine.run_cli("--dry-run", "--json", *_flags(kwargs))
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["chosen"] == expected
    assert with_gpu.would_choose(**kwargs)["chosen"] == expected
    with with_gpu.acquire(**kwargs) as lease:
        assert lease.indices == expected
        assert lease.uuids == [uuid_of(i) for i in expected]
        assert lease.cuda_ids == expected


def _flags(kwargs):
    flags = []
    for name, value in kwargs.items():
        if name in ("wait", "timeout", "poll"):
            continue  # for waiting, which --dry-run does not do
        flag = "--gpu" if name == "gpus" else "--" + name.replace("_", "-")
        if value is True:
            flags.append(flag)
        elif value is not False:
            flags += [flag, ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    return flags


def test_a_profile_and_the_configuration_files_apply_and_arguments_win(machine):
    machine.user_config('[defaults]\ncount = 2\n[profiles.big]\ncount = 3\n')
    with with_gpu.acquire() as lease:
        assert len(lease.indices) == 2
    with with_gpu.acquire(profile="big") as lease:
        assert len(lease.indices) == 3
    with with_gpu.acquire(profile="big", count=1) as lease:
        assert len(lease.indices) == 1
    with pytest.raises(with_gpu.UsageError, match="nosuch"):
        with_gpu.acquire(profile="nosuch")


def test_lock_dir_is_a_setting_too(machine, tmp_path):
    other = str(tmp_path / "other-locks")
    with with_gpu.acquire(lock_dir=other, count=4):
        # Claims in another lock directory are invisible to this one.
        assert machine.run_cli("-q", "-n", "4", "true").returncode == 0
        assert any(n.startswith("gpu-") for n in os.listdir(other))


def test_numbering_under_an_inherited_cuda_visible_devices(machine, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    with with_gpu.acquire(gpus=[3]) as lease:
        assert lease.indices == [3]
        assert lease.cuda_ids == [1]  # GPU 3 is this process's second CUDA device
    with with_gpu.acquire(count=2) as lease:
        assert sorted(lease.indices) == [2, 3]
        assert sorted(lease.cuda_ids) == [0, 1]
    with pytest.raises(with_gpu.Impossible):
        with_gpu.acquire(count=3)  # only two are visible
    assert os.environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"  # set when unset


def test_restrict_visible_sets_cuda_visible_devices(machine, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with with_gpu.acquire(gpus=[2], restrict_visible=True) as lease:
        assert os.environ["CUDA_VISIBLE_DEVICES"] == uuid_of(2)
        assert lease.cuda_ids == [0]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


@pytest.mark.parametrize("kwargs, exception, fragment", [
    ({"nosuch": 1}, with_gpu.UsageError, "nosuch"),
    ({"min_memory": "20Q"}, with_gpu.UsageError, "min_memory"),
    ({"count": 0}, with_gpu.UsageError, "count"),
    ({"count": 2, "min_gpus": 3}, with_gpu.UsageError, "min_gpus"),
    ({"strict": True}, with_gpu.UsageError, "gpu_type"),
    ({"gpu_type": "H200", "strict": True}, with_gpu.Impossible, "H200"),
    ({"gpus": [7]}, with_gpu.Impossible, "7"),
    ({"gpus": ["GPU-ffff"]}, with_gpu.Impossible, "GPU-ffff"),
    ({"timeout": float("nan")}, with_gpu.UsageError, "timeout"),
    ({"count": 5}, with_gpu.Impossible, "5"),
    ({"min_memory": "200G"}, with_gpu.Impossible, "200 GiB"),
    ({"nvml_library": "/nonexistent/libnvidia-ml.so.1"}, with_gpu.NvmlError, "NVML"),
])
def test_bad_requests_raise_the_right_exception(machine, kwargs, exception, fragment):
    with pytest.raises(exception) as raised:
        with_gpu.acquire(**kwargs)
    assert fragment in str(raised.value)
    assert isinstance(raised.value, with_gpu.Error)
    assert raised.value.exit_code in (2, 125)


def test_nothing_free_raises_no_gpu_available_and_a_timeout_is_a_timeout_error(machine):
    with with_gpu.acquire(count=4):
        with pytest.raises(with_gpu.NoGpuAvailable) as raised:
            with_gpu.acquire()
        assert raised.value.exit_code == 75
        assert "claimed" in str(raised.value)
    holder = machine.cli("-n", "4", "sh", "-c", "echo ready; exec sleep 300")
    assert holder.stdout.readline().strip() == "ready"
    started = time.monotonic()
    with pytest.raises(TimeoutError) as raised:
        with_gpu.acquire(timeout="300ms")
    assert isinstance(raised.value, with_gpu.Timeout)
    assert raised.value.exit_code == 124
    assert time.monotonic() - started < 20
    assert machine.tickets_on_disk() == []


def test_a_process_never_waits_for_its_own_lease(machine):
    with with_gpu.acquire(gpus=[1]):
        with pytest.raises(with_gpu.Error, match="already holds"):
            with_gpu.acquire(gpus=[1], wait=True)
        with pytest.raises(with_gpu.NoGpuAvailable):
            with_gpu.acquire(gpus=[1])


def test_waiting_releases_the_gil(machine):
    holder = machine.cli("-n", "4", "sh", "-c", "echo ready; exec sleep 300")
    assert holder.stdout.readline().strip() == "ready"
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    progress = []
    thread = threading.Thread(target=tick)
    thread.start()
    try:
        with pytest.raises(with_gpu.Timeout):
            with_gpu.acquire(timeout=1.5)
    finally:
        stop.set()
        thread.join()
    # The other thread ran all along the wait: its ticks span most of it.
    assert len(ticks) > 20
    assert ticks[-1] - ticks[0] > 1.0
    del progress


def test_a_waiting_acquire_reports_progress_and_gets_the_gpu_when_freed(machine, caplog):
    holder = machine.cli("sh", "-c", "echo $$; exec sleep 300")
    job = int(holder.stdout.readline())
    caplog.set_level("INFO", logger="with_gpu")
    threading.Timer(1.0, os.kill, (job, 9)).start()
    with with_gpu.acquire(wait=True, gpus=[0], poll="1h") as lease:
        assert lease.indices == [0]
    assert any("waiting for 1 GPU" in r.getMessage() for r in caplog.records)


def test_status_is_the_commands_json(machine):
    with with_gpu.acquire(gpus=[1]):
        mine = with_gpu.status()
        cli = machine.status()
    assert mine.keys() == cli.keys()
    assert [g.keys() for g in mine["gpus"]] == [g.keys() for g in cli["gpus"]]
    assert mine["gpus"][1]["claim"] == cli["gpus"][1]["claim"]
    assert mine["gpus"][1]["claim"]["pid"] == os.getpid()


def test_would_choose_claims_nothing(machine):
    decision = with_gpu.would_choose(count=2)
    assert decision["chosen"] == [0, 1]
    assert machine.claim_of(0) is None


def test_the_keywords_are_the_setting_table(machine):
    names = [s["name"] for s in with_gpu.settings()]
    for keyword in ("count", "min_gpus", "max_gpus", "gpus", "exclude", "gpu_type", "strict",
                    "min_memory", "max_util", "max_temp", "max_power", "require_idle", "wait",
                    "timeout", "poll", "lock_dir"):
        assert keyword in names
        assert keyword in inspect.signature(with_gpu.acquire).parameters
        assert keyword in with_gpu.acquire.__doc__
    assert "banned" not in names  # the administrator's
    stub = os.path.join(os.path.dirname(with_gpu.__file__), "__init__.pyi")
    with open(stub) as f:
        text = f.read()
    for name in names:
        assert f"    {name}:" in text
