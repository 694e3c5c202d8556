"""An in-tree PEP 517 build backend for the with-gpu Python package (`pip install .`).

It configures the project's own CMake build for the extension module and packs the wheel
itself. Why not setuptools or scikit-build-core: pip builds in an isolated environment and
installs the backend's requirements there from PyPI, and this project builds offline (from
Debian's packages only). This backend needs nothing but the standard library, cmake, a C++
compiler and pybind11's CMake files (pybind11-dev), all found on the system.
"""

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAME = "with_gpu"  # the distribution's name in file names (PEP 427 normalises "with-gpu")


def _version():
    with open(os.path.join(SOURCE, "CMakeLists.txt"), encoding="utf-8") as f:
        return re.search(r"project\(with-gpu VERSION ([0-9.]+)", f.read()).group(1)


def _tag():
    abi = sys.implementation.cache_tag.replace("cpython-", "cp")  # cp311
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"{abi}-{abi}-{platform}"


def _metadata():
    return (f"Metadata-Version: 2.1\nName: with-gpu\nVersion: {_version()}\n"
            "Summary: Claim NVIDIA GPUs that are really free, race-free, from Python "
            "(with_gpu, gpu_scheduler)\nLicense: MIT\nRequires-Python: >=3.9\n")


def _wheel_file():
    return (f"Wheel-Version: 1.0\nGenerator: with_gpu_build\nRoot-Is-Purelib: false\n"
            f"Tag: {_tag()}\n")


def _dist_info():
    return f"{NAME}-{_version()}.dist-info"


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    info = os.path.join(metadata_directory, _dist_info())
    os.makedirs(info, exist_ok=True)
    with open(os.path.join(info, "METADATA"), "w", encoding="utf-8") as f:
        f.write(_metadata())
    with open(os.path.join(info, "WHEEL"), "w", encoding="utf-8") as f:
        f.write(_wheel_file())
    return _dist_info()


BUILD_TYPES = ("Release", "RelWithDebInfo", "MinSizeRel", "Debug")


def _build_type(config_settings):
    """CMake's build type: Release, or what `pip install --config-settings build-type=Debug .` asks for."""
    chosen = (config_settings or {}).get("build-type", "Release")
    if chosen not in BUILD_TYPES:
        raise SystemExit(f"with-gpu: unknown build-type {chosen!r}; use one of "
                         f"{', '.join(BUILD_TYPES)} (pip install --config-settings build-type=Debug .)")
    return chosen


def _build_package(build, build_type):
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    subprocess.run(["cmake", "-S", SOURCE, "-B", build, *generator,
                    f"-DCMAKE_BUILD_TYPE={build_type}", "-DWITH_GPU_TESTS=OFF",
                    "-DWITH_GPU_BENCH=OFF",
                    "-DWITH_GPU_PYTHON=ON", f"-DWITH_GPU_PYTHON_EXECUTABLE={sys.executable}",
                    "-DWITH_GPU_WERROR=OFF"],  # a user's compiler may warn where ours does not
                   check=True, stdout=sys.stderr)
    subprocess.run(["cmake", "--build", build, "--target", "with_gpu_python",
                    "--parallel", str(os.cpu_count() or 2)], check=True, stdout=sys.stderr)
    return os.path.join(build, "python")


def _record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    wheel_name = f"{NAME}-{_version()}-{_tag()}.whl"
    build_type = _build_type(config_settings)
    with tempfile.TemporaryDirectory(prefix="with-gpu-wheel-") as build:
        package = _build_package(build, build_type)
        entries = []
        for top in ("with_gpu", "gpu_scheduler"):
            for directory, _, files in os.walk(os.path.join(package, top)):
                for file in sorted(files):
                    if file.endswith((".py", ".pyi", ".so", ".typed")):
                        path = os.path.join(directory, file)
                        entries.append((os.path.relpath(path, package), path))
        info = _dist_info()
        record = []
        with zipfile.ZipFile(os.path.join(wheel_directory, wheel_name), "w",
                             zipfile.ZIP_DEFLATED) as wheel:
            for name, path in sorted(entries):
                with open(path, "rb") as f:
                    data = f.read()
                wheel.writestr(name, data)
                record.append(_record_line(name, data))
            for name, text in ((f"{info}/METADATA", _metadata()),
                               (f"{info}/WHEEL", _wheel_file())):
                wheel.writestr(name, text)
                record.append(_record_line(name, text.encode()))
            record.append(f"{info}/RECORD,,")
            wheel.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return wheel_name


def build_sdist(sdist_directory, config_settings=None):
    import tarfile
    files = subprocess.run(["git", "-C", SOURCE, "ls-files"], check=True, capture_output=True,
                           text=True).stdout.split()
    base = f"{NAME}-{_version()}"
    name = f"{base}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as sdist:
        for file in files:
            sdist.add(os.path.join(SOURCE, file), arcname=f"{base}/{file}")
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        data = _metadata().encode()
        info.size = len(data)
        import io
        sdist.addfile(info, io.BytesIO(data))
    return name
