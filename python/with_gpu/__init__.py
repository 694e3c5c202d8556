"""Claim NVIDIA GPUs from inside a Python program, as the `with-gpu` command does.

    import with_gpu

    with with_gpu.acquire(count=2, min_memory="20G", wait=True) as lease:
        device = f"cuda:{lease.cuda_ids[0]}"    # the GPU that was claimed, as CUDA numbers it
        ...

A claim made here and one made by a `with-gpu` command (or another program using this
package) never share a GPU: both take the same per-GPU locks, wait in the same
first-come-first-served queue and apply the same thresholds. The claim belongs to this
process. It ends with Lease.release(), at the end of the `with` block, when the Lease is
garbage collected, or when the process dies in any way (kill -9 included). A child created
with fork() (multiprocessing) holds it too until it exits.

Configuration files (/etc/with-gpu/config.toml, ~/.config/with-gpu/config.toml), profiles,
WITH_GPU_* environment variables and the administrator's banned GPUs apply as they do to the
command; keyword arguments win over all of them, as flags do.

Device numbering (docs/python.md): the ids in Lease.cuda_ids follow this process's CUDA
numbering. Under an inherited CUDA_VISIBLE_DEVICES=2,3, a claim of NVML GPU 3 is id 1. When
the lease is taken and CUDA_DEVICE_ORDER is unset, it is set to PCI_BUS_ID in os.environ,
so that CUDA numbers GPUs as NVML and nvidia-smi do. If torch is already imported and CUDA is
available, torch.cuda.set_device(cuda_ids[0]) is called.
"""

import inspect
import json
import logging
import math
import os
import sys

from . import _native
from .errors import (Cancelled, Error, Impossible, NoGpuAvailable, NvmlError, Timeout,
                     UsageError)

__version__ = _native.version

_log = logging.getLogger("with_gpu")

# Keyword arguments of acquire() that are not settings of the table.
_OWN_KEYWORDS = ("profile", "restrict_visible")


def _setting_text(name, value):
    """A keyword argument's value in the text form with-gpu's parsers take."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise UsageError(f"{name}: {value} is not a value with-gpu can use",
                             "leave it out instead")
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(str(item) for item in value)
    raise UsageError(f"{name}: a value of type {type(value).__name__} is not understood",
                     "give a number, a string, a boolean or a list")


def _settings(kwargs):
    return [(name, _setting_text(name, value)) for name, value in kwargs.items()
            if value is not None]


class Lease:
    """GPUs claimed by this process, best first. Usable as a context manager.

    indices   NVML indices (the PCI order, as nvidia-smi numbers GPUs)
    uuids     the GPUs' UUIDs
    cuda_ids  how CUDA numbers them in this process (use f"cuda:{lease.cuda_ids[0]}")
    """

    def __init__(self, native, cuda_ids=None):
        self._native = native
        gpus = native.gpus
        self.indices = [index for index, _, _ in gpus]
        self.uuids = [uuid for _, uuid, _ in gpus]
        self.cuda_ids = cuda_ids if cuda_ids is not None else [int(c) for _, _, c in gpus]

    @property
    def held(self):
        """False once the lease is released."""
        return self._native.held

    def release(self):
        """Ends the claim now. Calling it again does nothing."""
        self._native.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        return False

    def __repr__(self):
        state = "held" if self.held else "released"
        return f"<with_gpu.Lease {state}: GPU {', '.join(map(str, self.indices))}>"


def _cuda_initialised():
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_initialized():
                return True
        except Exception:  # an odd torch build: fall back to what the process has loaded
            pass
    return _native.cuda_loaded()


def _prepare_device_order():
    order = os.environ.get("CUDA_DEVICE_ORDER")
    if order is None:
        os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    elif order != "PCI_BUS_ID":
        _log.warning("CUDA_DEVICE_ORDER=%s: CUDA may number GPUs differently from NVML, so "
                     "cuda_ids may name other GPUs than the ones claimed; use PCI_BUS_ID", order)


def _set_torch_device(cuda_id):
    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        if torch.cuda.is_available():
            torch.cuda.set_device(cuda_id)
    except Exception as e:  # the claim stands; the caller can still pick the device
        _log.warning("torch.cuda.set_device(%s) failed: %s", cuda_id, e)


def acquire(*, profile=None, restrict_visible=False, **settings):
    """Claims GPUs and returns a Lease (a context manager). The keyword arguments are
    with-gpu's settings, named after the command's long flags (listed below); each is checked
    by with-gpu's own parsers, so "20G", 20480 (MiB) and "20GiB" all work for min_memory, and
    90, 1.5 or "5m" for timeout (seconds unless a unit is given).

    Without wait=True (or a timeout), raises NoGpuAvailable when nothing suitable is free
    now. With it, waits in the queue that `with-gpu --wait` uses, with the GIL released;
    Ctrl-C while waiting raises KeyboardInterrupt and leaves no trace in the queue.

    profile: use [profiles.NAME] of the configuration files ("" for none).
    restrict_visible: also set CUDA_VISIBLE_DEVICES in os.environ to the claimed GPUs, so
        that CUDA in this process sees only them (cuda_ids are then 0, 1, ...). Refused with
        UsageError if CUDA is already initialised in this process.

    Raises UsageError, NoGpuAvailable, Timeout, Impossible, NvmlError (all with_gpu.Error).
    """
    if restrict_visible and _cuda_initialised():
        raise UsageError("restrict_visible=True needs CUDA not yet initialised in this process "
                         "(CUDA reads CUDA_VISIBLE_DEVICES once, when it starts)",
                         "call acquire() before the first CUDA call, or use the lease's "
                         "cuda_ids instead of restrict_visible")
    _prepare_device_order()
    # The native wait releases the GIL and runs Python's signal handlers when woken by a
    # signal: a KeyboardInterrupt they raise ends the wait and comes out of here.
    native = _native.acquire(_settings(settings), profile, _log.info, _log.warning)
    lease = Lease(native)
    if restrict_visible:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(lease.uuids)
        lease.cuda_ids = list(range(len(lease.uuids)))
    if lease.cuda_ids:
        _set_torch_device(lease.cuda_ids[0])
    return lease


def status(**settings):
    """Every GPU with its figures, processes and claim, and the queue: the same dict as
    `with-gpu --status --json` (docs/json.md). Only lock_dir and nvml_library matter."""
    return json.loads(_native.status_json(_settings(settings), None))


def would_choose(*, profile=None, **settings):
    """What acquire() with these settings would take now and why each other GPU would not
    be taken: the same dict as `with-gpu --dry-run --json`. Claims nothing."""
    return json.loads(_native.would_choose_json(_settings(settings), profile))


def settings():
    """with-gpu's settings as acquire() takes them: a list of dicts with name, kind, default
    (None when there is none), help and example."""
    return [dict(s) for s in _native.settings()]


def _signature():
    params = [inspect.Parameter(s["name"], inspect.Parameter.KEYWORD_ONLY, default=None)
              for s in _native.settings()]
    params += [inspect.Parameter("profile", inspect.Parameter.KEYWORD_ONLY, default=None),
               inspect.Parameter("restrict_visible", inspect.Parameter.KEYWORD_ONLY,
                                 default=False)]
    return inspect.Signature(params, return_annotation=Lease)


def _settings_doc():
    lines = ["", "Settings (None leaves a setting to the configuration, as a missing flag does):"]
    for s in _native.settings():
        default = f" (default {s['default']})" if s["default"] is not None else ""
        lines.append(f"    {s['name']}: {s['help']}{default}; e.g. {s['example']!r}")
    return "\n".join(lines)


acquire.__signature__ = _signature()
acquire.__doc__ += _settings_doc()

__all__ = ["acquire", "status", "would_choose", "settings", "Lease", "Error", "UsageError",
           "NoGpuAvailable", "Timeout", "Impossible", "NvmlError", "Cancelled", "__version__"]
