"""A drop-in for the GPUScheduler package, on with-gpu's claims.

    from gpu_scheduler import GPUScheduler

    with GPUScheduler(num_gpus=2, memory_free_threshold_gb=10) as gpu_ids:
        model.to(f"cuda:{gpu_ids[0]}")

Programs written for the original run unchanged: the same names, parameters, defaults and
return values. What changed underneath, and where this module does what a user would expect
rather than what the original did:

- Claims are with-gpu's (flock on one file per GPU and user in the shared lock directory), so
  a GPUScheduler and a `with-gpu` command, or another program using with_gpu, never get the
  same GPU, and a crashed program cannot leave a stale lock: the kernel drops its claims. The
  original's ~/.gpu_locks files are not used.
- Waiting is with-gpu's first-come-first-served queue, woken by the release itself: the
  original polled in random order every poll_interval seconds. poll_interval still sets how
  often GPUs are re-read to notice programs that do not use with-gpu.
- max_wait_time=inf waits for as long as it takes; a finite value raises TimeoutError
  (with_gpu.Timeout) when it passes; 0 does not wait at all (with_gpu.NoGpuAvailable).
- `timeout` was the original's wait for its lock file. with-gpu's claims never wait for a lock
  file (they are taken at once or not at all), so it is accepted and has no effect.
- GPU ids are this process's CUDA ids (what f"cuda:{id}" means), under an inherited
  CUDA_VISIBLE_DEVICES too, and specific_gpus and BANNED_GPUS are read the same way. The
  original mixed nvidia-smi indices and torch ordinals, which differ under
  CUDA_VISIBLE_DEVICES or without CUDA_DEVICE_ORDER=PCI_BUS_ID (set here when unset).
- get_gpu_info() and the other query functions list the GPUs this process can use, in CUDA
  order; an unknown figure (power on some cards) is None rather than a made-up 0.
- debug_mode=True skips the health checks (memory, power, utilisation) but still claims: two
  debugging programs do not share a GPU by accident.
- The administrator's banned GPUs (/etc/with-gpu/config.toml) always apply, besides
  BANNED_GPUS and BANNED_GPU_NAMES here.
"""

import math
import os

import with_gpu

#: GPU ids (as this process's CUDA numbers them) never to use; as in the original.
BANNED_GPUS = []
#: Parts of GPU model names never to use, e.g. ["T4"]; as in the original.
BANNED_GPU_NAMES = []


def _visible_entries():
    """The inherited CUDA_VISIBLE_DEVICES entries, or None when unset (every GPU)."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    entries = []
    for item in value.split(","):
        item = item.strip()
        if not item or item.startswith("-"):
            break  # CUDA stops at an empty or negative entry
        entries.append(item)
    return entries


def _nvml_ref(cuda_id):
    """A CUDA id of this process as a GPU reference with-gpu takes (an NVML index or UUID)."""
    entries = _visible_entries()
    cuda_id = int(cuda_id)
    if entries is None:
        return str(cuda_id)
    if not 0 <= cuda_id < len(entries):
        raise with_gpu.UsageError(
            f"GPU id {cuda_id} is not visible to this process "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')})",
            f"use an id from 0 to {len(entries) - 1}")
    return entries[cuda_id]


def _thresholds(memory_free_threshold_gb, power_threshold_w, utilization_threshold_percent):
    settings = {}
    if memory_free_threshold_gb is not None:
        settings["min_memory"] = f"{float(memory_free_threshold_gb):g}G"
    if power_threshold_w is not None:
        settings["max_power"] = int(math.floor(power_threshold_w))
    if utilization_threshold_percent is not None:
        settings["max_util"] = int(math.floor(utilization_threshold_percent))
    return settings


def _choice_settings(specific_gpus):
    settings = {}
    if specific_gpus is not None:
        settings["gpus"] = [_nvml_ref(g) for g in specific_gpus]
    excluded = [_nvml_ref(g) for g in BANNED_GPUS] + [f"name:{n}" for n in BANNED_GPU_NAMES]
    if excluded:
        settings["exclude"] = excluded
    return settings


class GPUScheduler:
    """Claims GPUs for the `with` block and returns their ids (this process's CUDA ids).

    memory_free_threshold_gb      at least this much free memory, in GiB (default 20)
    power_threshold_w             at most this power draw, in W (default 80; None: any)
    utilization_threshold_percent at most this utilisation, in % (default 1)
    max_wait_time                 wait at most this many seconds (default inf: until free;
                                  0: do not wait)
    poll_interval                 re-read the GPUs this often while waiting, in s (default 10)
    specific_gpus                 only these GPU ids (default None: any)
    timeout                       accepted for compatibility; claims never wait for a lock file
    num_gpus                      how many GPUs (default 1)
    debug_mode                    skip the health checks, still claim (default False)

    On entry, torch.cuda.set_device(gpu_ids[0]) is called when torch is imported and CUDA is
    available, as in the original. The GPUs are released on exit, or when the process dies.
    """

    def __init__(self, memory_free_threshold_gb=20, power_threshold_w=80,
                 utilization_threshold_percent=1, max_wait_time=float("inf"), poll_interval=10,
                 specific_gpus=None, timeout=10, num_gpus=1, debug_mode=False):
        self.memory_free_threshold_gb = memory_free_threshold_gb
        self.power_threshold_w = power_threshold_w
        self.utilization_threshold_percent = utilization_threshold_percent
        self.max_wait_time = max_wait_time
        self.poll_interval = poll_interval
        self.specific_gpus = specific_gpus
        self.timeout = timeout
        self.num_gpus = num_gpus
        self.debug_mode = debug_mode
        self.gpu_ids = []
        self._lease = None

    def _settings(self):
        settings = {"count": int(self.num_gpus), "poll": float(self.poll_interval)}
        if self.debug_mode:
            settings["min_memory"] = 0
        else:
            settings.update(_thresholds(self.memory_free_threshold_gb, self.power_threshold_w,
                                        self.utilization_threshold_percent))
        settings.update(_choice_settings(self.specific_gpus))
        wait = self.max_wait_time
        if wait is None or math.isinf(wait):
            settings["wait"] = True
        elif wait > 0:
            settings["timeout"] = float(wait)
        else:
            settings["wait"] = False
        return settings

    def __enter__(self):
        self._lease = with_gpu.acquire(**self._settings())
        self.gpu_ids = list(self._lease.cuda_ids)
        return self.gpu_ids

    def __exit__(self, *exc):
        if self._lease is not None:
            self._lease.release()
            self._lease = None
        return False


def _visible_gpus():
    """(cuda_id, gpu dict of with_gpu.status()) for every GPU this process can use."""
    doc = with_gpu.status()
    gpus = [g for g in doc["gpus"] if g.get("error") is None]
    entries = _visible_entries()
    if entries is None:
        return [(g["index"], g) for g in gpus]
    visible = []
    for cuda_id, entry in enumerate(entries):
        for g in gpus:
            if entry == str(g["index"]) or (entry.startswith("GPU-") and
                                            g["uuid"].lower().startswith(entry.lower())):
                visible.append((cuda_id, g))
                break
    return visible


def get_gpu_info():
    """One dict per GPU this process can use: gpu_id, name, memory_free and memory_total (MB,
    as nvidia-smi's MiB), power_draw and power_limit (W), utilization (%)."""
    return [{
        "gpu_id": cuda_id,
        "name": g.get("name"),
        "memory_free": g.get("memory_free_mib"),
        "memory_total": g.get("memory_total_mib"),
        "power_draw": g.get("power_w"),
        "power_limit": g.get("power_limit_w"),
        "utilization": g.get("utilization_percent"),
    } for cuda_id, g in _visible_gpus()]


def get_gpu_memory_usage():
    """Used memory of each GPU, in MB, in gpu_id order."""
    return [g.get("memory_used_mib") for _, g in _visible_gpus()]


def get_gpu_names():
    """The model name of each GPU, in gpu_id order."""
    return [g.get("name") for _, g in _visible_gpus()]


def get_gpu_power_usage():
    """Power draw of each GPU, in W (None where the driver does not say), in gpu_id order."""
    return [g.get("power_w") for _, g in _visible_gpus()]


def get_gpu_utilization():
    """Utilisation of each GPU, in %, in gpu_id order."""
    return [g.get("utilization_percent") for _, g in _visible_gpus()]


def get_total_num_gpus():
    """How many GPUs this process can use."""
    return len(_visible_gpus())


def find_free_gpus(memory_free_threshold_gb=20, power_threshold_w=80,
                   utilization_threshold_percent=1, specific_gpus=None, num_gpus=1):
    """The ids of the GPUs that pass the thresholds and that nobody has claimed, best first
    (most free memory). Claims nothing: another program may take them before you do; use
    GPUScheduler to claim."""
    settings = _thresholds(memory_free_threshold_gb, power_threshold_w,
                           utilization_threshold_percent)
    settings.update(_choice_settings(specific_gpus))
    total = max(get_total_num_gpus(), 1)
    decision = with_gpu.would_choose(min_gpus=1, max_gpus=total, **settings)
    by_index = {g["index"]: cuda_id for cuda_id, g in _visible_gpus()}
    return [by_index[i] for i in decision.get("chosen", []) if i in by_index]


__all__ = ["GPUScheduler", "get_gpu_info", "get_gpu_memory_usage", "get_gpu_names",
           "get_gpu_power_usage", "get_gpu_utilization", "get_total_num_gpus", "find_free_gpus",
           "BANNED_GPUS", "BANNED_GPU_NAMES"]
