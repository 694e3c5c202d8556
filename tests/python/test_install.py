"""Where the package comes from: the build tree as is, and `pip install .` from the sources,
offline, into a venv made with --system-site-packages."""

import os
import subprocess
import sys

SOURCE = os.environ["WITH_GPU_SOURCE_DIR"]


def test_the_build_tree_is_importable_as_is():
    import with_gpu
    import gpu_scheduler
    build_python = os.environ["PYTHONPATH"].split(os.pathsep)[0]
    assert with_gpu.__file__ == os.path.join(build_python, "with_gpu", "__init__.py")
    assert gpu_scheduler.__file__.startswith(build_python)
    assert with_gpu.__version__


def test_pip_install_from_the_sources_works_offline(tmp_path, machine):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PIP_NO_INDEX"] = "1"  # offline: nothing may come from an index
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    r = subprocess.run([str(venv / "bin" / "pip"), "install", SOURCE], env=env,
                       capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    code = ("import with_gpu, gpu_scheduler\n"
            "with with_gpu.acquire(count=2) as lease:\n"
            "    print(with_gpu.__file__, lease.indices)\n")
    r = subprocess.run([str(venv / "bin" / "python"), "-c", code], env=env, cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    path, indices = r.stdout.split(" ", 1)
    assert path.startswith(str(venv)), path
    assert indices.strip() == "[0, 1]"
