"""Writes with_gpu/__init__.pyi from the setting table of the built module, so that the
type stub's keyword arguments are the settings acquire() takes: a setting added to the table
appears here without anyone writing it.

    python3 make_stub.py PACKAGE_DIR      (PACKAGE_DIR holds with_gpu/ with _native built)
"""

import os
import sys

sys.path.insert(0, sys.argv[1])
import with_gpu._native as native  # noqa: E402

TYPES = {
    "whole_number": "int | str",
    "gpu_list": "Sequence[int | str] | str",
    "text": "str",
    "absolute_path": "str | os.PathLike[str]",
    "boolean": "bool",
    "size": "int | str",
    "duration": "float | str",
    "hold_amount": "float | str",
}

lines = [
    "# Generated from with-gpu's setting table by python/make_stub.py; do not edit.",
    "import os",
    "from typing import Any, Sequence",
    "",
    "from .errors import (Cancelled as Cancelled, Error as Error, Impossible as Impossible,",
    "                     NoGpuAvailable as NoGpuAvailable, NvmlError as NvmlError,",
    "                     Timeout as Timeout, UsageError as UsageError)",
    "",
    "__version__: str",
    "",
    "class Lease:",
    "    indices: list[int]",
    "    uuids: list[str]",
    "    cuda_ids: list[int]",
    "    @property",
    "    def held(self) -> bool: ...",
    "    def release(self) -> None: ...",
    "    def __enter__(self) -> Lease: ...",
    "    def __exit__(self, *exc: object) -> bool: ...",
    "",
]
settings = native.settings()
params = [f"    {s['name']}: {TYPES[s['kind']]} | None = None," for s in settings]
lines += ["def acquire(", "    *,", *params, "    profile: str | None = None,",
          "    restrict_visible: bool = False,", ") -> Lease: ..."]
lines += ["def status(*, lock_dir: str | None = None, nvml_library: str | None = None)"
          " -> dict[str, Any]: ..."]
lines += ["def would_choose(", "    *,", *params, "    profile: str | None = None,",
          ") -> dict[str, Any]: ..."]
lines += ["def settings() -> list[dict[str, Any]]: ...", ""]

with open(os.path.join(sys.argv[1], "with_gpu", "__init__.pyi"), "w", encoding="utf-8") as f:
    f.write("\n".join(lines))
