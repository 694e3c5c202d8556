"""gpu_scheduler: the GPUScheduler drop-in (its parameters, defaults and return values) on
with-gpu's claims."""

import os

import pytest

import gpu_scheduler
import with_gpu
from gpu_scheduler import GPUScheduler
from conftest import GIB, gpu


def busy(pid, mib):
    return {"pid": pid, "used_memory_mib": mib, "type": "compute"}


@pytest.fixture
def lab(machine):
    # 0: busy (70 GiB used, 90 %, 300 W), 1: idle, 2: idle but only 16 GiB, 3: idle.
    machine.gpus([
        gpu(0, utilization_percent=90, power_mw=300000, processes=[busy(4242, 70 * GIB)]),
        gpu(1),
        gpu(2, name="Tesla T4", memory_total_mib=16 * GIB),
        gpu(3),
    ])
    yield machine
    gpu_scheduler.BANNED_GPUS[:] = []
    gpu_scheduler.BANNED_GPU_NAMES[:] = []


def test_the_context_manager_returns_ids_and_claims_them(lab):
    with GPUScheduler(num_gpus=2, memory_free_threshold_gb=10) as gpu_ids:
        assert sorted(gpu_ids) == [1, 3]
        assert lab.claim_of(1)["pid"] == os.getpid()
        assert lab.claim_of(3)["pid"] == os.getpid()
    assert lab.claim_of(1) is None


def test_thresholds_are_the_originals(lab):
    # The defaults: 20 GiB free, at most 80 W, at most 1 % busy: GPU 2 (16 GiB) and 0 fail.
    with GPUScheduler(num_gpus=2, max_wait_time=0) as gpu_ids:
        assert sorted(gpu_ids) == [1, 3]
    with GPUScheduler(memory_free_threshold_gb=8, specific_gpus=[2], max_wait_time=0) as ids:
        assert ids == [2]
    with pytest.raises(with_gpu.NoGpuAvailable):
        with GPUScheduler(specific_gpus=[0], max_wait_time=0, memory_free_threshold_gb=1):
            pass
    with GPUScheduler(specific_gpus=[0], power_threshold_w=None,
                      utilization_threshold_percent=100, memory_free_threshold_gb=5,
                      max_wait_time=0) as ids:
        assert ids == [0]


def test_the_seeds_lock_file_timeout_is_accepted_and_changes_nothing(lab):
    with GPUScheduler(num_gpus=2, timeout=0.001, max_wait_time=0) as gpu_ids:
        assert sorted(gpu_ids) == [1, 3]
    with GPUScheduler(num_gpus=2, timeout=3600, max_wait_time=0) as gpu_ids:
        assert sorted(gpu_ids) == [1, 3]


def test_debug_mode_skips_the_health_checks_but_still_claims(lab):
    with GPUScheduler(specific_gpus=[0], debug_mode=True, max_wait_time=0) as ids:
        assert ids == [0]
        assert lab.claim_of(0)["pid"] == os.getpid()


def test_banned_gpus_and_names(lab):
    gpu_scheduler.BANNED_GPUS[:] = [1]
    gpu_scheduler.BANNED_GPU_NAMES[:] = ["T4"]
    with GPUScheduler(num_gpus=1, memory_free_threshold_gb=1, max_wait_time=0) as ids:
        assert ids == [3]
    assert gpu_scheduler.find_free_gpus(memory_free_threshold_gb=1) == [3]


def test_a_finite_max_wait_time_raises_timeout_error(lab):
    holder = lab.cli("--gpu", "1,3", "-n", "2", "sh", "-c", "echo ready; exec sleep 300")
    assert holder.stdout.readline().strip() == "ready"
    with pytest.raises(TimeoutError):
        with GPUScheduler(num_gpus=2, max_wait_time=0.5, poll_interval=0.1):
            pass
    assert lab.tickets_on_disk() == []


def test_query_functions_read_the_gpus(lab):
    info = gpu_scheduler.get_gpu_info()
    assert [g["gpu_id"] for g in info] == [0, 1, 2, 3]
    assert info[2]["name"] == "Tesla T4"
    assert info[0]["memory_total"] == 80 * GIB
    assert info[0]["memory_free"] == 10 * GIB
    assert info[0]["utilization"] == 90
    assert info[0]["power_draw"] == 300
    assert gpu_scheduler.get_total_num_gpus() == 4
    assert gpu_scheduler.get_gpu_names()[2] == "Tesla T4"
    assert gpu_scheduler.get_gpu_memory_usage()[0] == 70 * GIB
    assert gpu_scheduler.get_gpu_utilization() == [90, 0, 0, 0]
    assert gpu_scheduler.get_gpu_power_usage()[0] == 300
    assert gpu_scheduler.find_free_gpus() == [1, 3]
    with GPUScheduler(specific_gpus=[1], max_wait_time=0):
        assert gpu_scheduler.find_free_gpus() == [3]  # claimed GPUs are not free


def test_ids_are_this_processs_cuda_ids(lab, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    assert [g["gpu_id"] for g in gpu_scheduler.get_gpu_info()] == [0, 1]
    with GPUScheduler(specific_gpus=[1], max_wait_time=0) as ids:
        assert ids == [1]
        assert lab.claim_of(1)["pid"] == os.getpid()  # CUDA id 1 is NVML GPU 1 here
    with GPUScheduler(specific_gpus=[0], max_wait_time=0) as ids:
        assert ids == [0]
        assert lab.claim_of(3)["pid"] == os.getpid()
    with pytest.raises(with_gpu.UsageError):
        with GPUScheduler(specific_gpus=[2]):
            pass
