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
    # Built without optimisation: what is tested is that the package builds and installs
    # offline, and the default Release build made this CI's longest test (175 s).
    r = subprocess.run([str(venv / "bin" / "pip"), "install", "--config-settings",
                        "build-type=Debug", SOURCE],
                       env=env, capture_output=True, text=True, timeout=1500)
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


def test_an_unknown_build_type_is_refused_with_the_choices():
    sys.path.insert(0, os.path.join(SOURCE, "python", "packaging"))
    try:
        import with_gpu_build
    finally:
        sys.path.pop(0)
    assert with_gpu_build._build_type(None) == "Release"
    assert with_gpu_build._build_type({"build-type": "Debug"}) == "Debug"
    try:
        with_gpu_build._build_type({"build-type": "Fast"})
    except SystemExit as e:
        assert "unknown build-type 'Fast'" in str(e) and "RelWithDebInfo" in str(e)
    else:
        raise AssertionError("an unknown build type was accepted")
