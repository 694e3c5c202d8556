"""Every exit code of the public contract: the command's own, 75, 125, 126, 127."""

import os
import stat
import unittest

from harness import Case, busy, gpu, GIB


class ExitCodeTest(Case):
    def setUp(self):
        super().setUp()
        self.machine([gpu(0), gpu(1, processes=[busy(4100001, 79 * GIB)], utilization_percent=97)])

    def test_command_exit_status_passes_through(self):
        for code in (0, 1, 3, 42, 255):
            with self.subTest(code=code):
                r = self.run_wg("sh", "-c", f"exit {code}")
                self.assertEqual(r.returncode, code, r.stderr)

    def test_75_when_nothing_suitable_is_free_now(self):
        r = self.run_wg("-n", "2", "true")
        self.assert_clean_error(r, 75, "no suitable GPU is free now", "GPU 1:", "free <")

    def test_125_when_the_request_can_never_be_met(self):
        r = self.run_wg("-n", "3", "true")
        self.assert_clean_error(r, 125, "can never be met")
        r = self.run_wg("--min-memory", "100G", "true")
        self.assert_clean_error(r, 125, "can never be met", "total")
        r = self.run_wg("--gpu-type", "H100", "--strict", "true")
        self.assert_clean_error(r, 125, "can never be met")
        r = self.run_wg("--gpu", "7", "true")
        self.assert_clean_error(r, 125)

    def test_125_without_nvml(self):
        missing = os.path.join(self.tmp, "nowhere", "libnvidia-ml.so.1")
        for args in (["true"], ["--status"], ["--status", "--json"], ["--dry-run"]):
            with self.subTest(args=args):
                r = self.run_wg(*args, env={"WITH_GPU_NVML_LIBRARY": missing})
                self.assert_clean_error(r, 125, "NVML", "hint:")
                self.assertIn(missing, r.stderr)
                r = self.run_wg("--nvml-library", missing, *args)
                self.assert_clean_error(r, 125, "NVML")

    def test_125_when_the_driver_is_not_loaded(self):
        self.machine([gpu(0)], init_error="DRIVER_NOT_LOADED")
        for args in (["true"], ["--status"]):
            with self.subTest(args=args):
                r = self.run_wg(*args)
                self.assert_clean_error(r, 125, "Driver Not Loaded")

    def test_127_command_not_found_and_nothing_claimed(self):
        r = self.run_wg("definitely-not-a-command-xyz", "--flag")
        self.assert_clean_error(r, 127, "command not found: definitely-not-a-command-xyz")
        self.assertFalse(os.path.exists(self.lock_dir), "a typo must not even touch the lock directory")

    def test_126_command_not_executable(self):
        script = os.path.join(self.tmp, "script.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\necho hi\n")
        os.chmod(script, 0o644)
        r = self.run_wg(script)
        self.assert_clean_error(r, 126, script)
        r = self.run_wg(self.tmp)  # a directory
        self.assert_clean_error(r, 126)

    def test_125_for_a_symlinked_lock_dir(self):
        real = os.path.join(self.tmp, "real")
        os.mkdir(real)
        os.chmod(real, 0o1777)
        os.symlink(real, self.lock_dir)
        r = self.run_wg("true")
        self.assert_clean_error(r, 125, "symbolic link")

    @unittest.skipUnless(os.geteuid() == 0, "needs root to make a directory owned by another user")
    def test_125_for_a_lock_dir_others_can_tamper_with(self):
        os.mkdir(self.lock_dir)
        os.chown(self.lock_dir, 65534, 65534)
        os.chmod(self.lock_dir, 0o777)  # world-writable, no sticky bit
        r = self.run_wg("true")
        self.assert_clean_error(r, 125, self.lock_dir)
        os.chmod(self.lock_dir, 0o1777)
        r = self.run_wg("true")
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()
