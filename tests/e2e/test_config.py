"""Configuration files, profiles and WITH_GPU_* variables, end to end."""

import json
import os
import subprocess
import unittest

from harness import BIN, TEST_BUILD_BIN, Case, gpu, GIB

SYSTEM = """
[defaults]
banned = ["name:V100"]

[profiles.llm]
min_memory = "30G"
"""

USER = """
[defaults]
max_util = 10

[profiles.llm]
count = 2
"""


class ConfigTest(Case):
    # The system file is a test file: only the test build reads WITH_GPU_TEST_SYSTEM_CONFIG.
    binary = TEST_BUILD_BIN

    def setUp(self):
        super().setUp()
        self.machine([gpu(0), gpu(1, utilization_percent=50),
                      gpu(2, name="Tesla V100-SXM2-16GB", memory_total_mib=16 * GIB),
                      gpu(3, name="NVIDIA A100-SXM4-40GB", memory_total_mib=40 * GIB)])
        self.system = os.path.join(self.tmp, "system.toml")
        with open(self.system, "w") as f:
            f.write(SYSTEM)
        self.xdg = os.path.join(self.tmp, "xdg")
        os.makedirs(os.path.join(self.xdg, "with-gpu"))
        self.user = os.path.join(self.xdg, "with-gpu", "config.toml")
        with open(self.user, "w") as f:
            f.write(USER)
        self.files = {"WITH_GPU_TEST_SYSTEM_CONFIG": self.system, "XDG_CONFIG_HOME": self.xdg}

    def test_defaults_and_banned_gpus_apply(self):
        # max_util 10 (user) rules out GPU 1; banned V100 (system) rules out GPU 2.
        self.assertEqual(self.chosen("-n", "2", env=self.files), "0,3")

    def test_banned_gpus_are_named_as_banned_not_as_excluded(self):
        r = self.run_wg("--dry-run", "--exclude", "3", env=self.files)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertRegex(lines[2], r"^GPU 2 .*rejected: banned by the system configuration$")
        self.assertRegex(lines[3], r"^GPU 3 .*rejected: excluded by --exclude 3$")
        self.assertNotIn("--exclude name:V100", r.stdout)
        r = self.run_wg("--dry-run", "--json", env=self.files)
        self.assertEqual(r.returncode, 0, r.stderr)
        reasons = json.loads(r.stdout)["gpus"][2]["reasons"]
        self.assertEqual(reasons, [{"reason": "banned by the system configuration", "permanent": True}])

    def test_profile_then_environment_then_flags(self):
        self.assertEqual(self.chosen("--profile", "llm", env=self.files), "0,3")
        r = self.run_wg("--profile", "llm", "--min-memory", "50G", "true", env=self.files)
        # Only GPUs 0 and 1 have 50G in all; GPU 1 is busy now, which can change: 75.
        self.assert_clean_error(r, 75, "need 2 GPUs")
        env = dict(self.files, WITH_GPU_PROFILE="llm", WITH_GPU_MAX_UTIL="60")
        self.assertEqual(self.chosen(env=env), "0,1")
        self.assertEqual(self.chosen("-n", "1", env=env), "0")

    def test_show_config_names_origins(self):
        r = self.run_wg("--profile", "llm", "--max-temp", "80", "--show-config",
                        env=dict(self.files, WITH_GPU_POLL="5s"))
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = {line.split()[0]: line for line in r.stdout.splitlines() if line.strip() and not line.startswith("#")}
        self.assertIn("profile llm", lines["min_memory"])
        self.assertIn(self.system, lines["min_memory"])
        self.assertIn(self.user, lines["max_util"])
        self.assertIn("WITH_GPU_POLL", lines["poll"])
        self.assertIn("--max-temp", lines["max_temp"])

    def test_errors_point_at_the_file(self):
        with open(self.user, "w") as f:
            f.write("[defaults]\nmax_utl = 5\n")
        r = self.run_wg("true", env=self.files)
        self.assert_clean_error(r, 2, f"{self.user}:2:1", "max_util")
        with open(self.user, "w") as f:
            f.write("[defaults]\nlock_dir = \"/tmp/elsewhere\"\n")
        r = self.run_wg("true", env=self.files)
        self.assert_clean_error(r, 2, "lock_dir")
        with open(self.user, "w") as f:
            f.write(USER)
        r = self.run_wg("--profile", "nope", "true", env=self.files)
        self.assert_clean_error(r, 2, "nope", "llm")

    def test_installed_program_reads_no_other_system_file(self):
        # No variable points the real with-gpu at another system file: neither the old
        # WITH_GPU_SYSTEM_CONFIG (/dev/null used to drop `banned` and `lock_dir`) nor the
        # test build's hook.
        for variable in ("WITH_GPU_SYSTEM_CONFIG", "WITH_GPU_TEST_SYSTEM_CONFIG"):
            with self.subTest(variable=variable):
                r = subprocess.run([BIN, "--show-config"], env=self.env({variable: self.system}),
                                   capture_output=True, text=True, timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertNotIn(self.system, r.stdout)
        # The test build does read it (so the test above can fail).
        r = self.run_wg("--show-config", env=self.files)
        self.assertIn(self.system, r.stdout)

    def test_relative_lock_dir_is_refused_from_every_source(self):
        # A relative lock directory would depend on the working directory: two launches in
        # different directories would not see each other's claims.
        r = self.run_wg("true", env=dict(self.files, WITH_GPU_LOCK_DIR="wg"))
        self.assert_clean_error(r, 2, "WITH_GPU_LOCK_DIR", "absolute")
        r = self.run_wg("--lock-dir", "wg", "true", env=self.files)
        self.assert_clean_error(r, 2, "--lock-dir", "absolute")
        with open(self.system, "w") as f:
            f.write('[defaults]\nlock_dir = "wg"\n')
        r = self.run_wg("true", env=self.files, drop=("WITH_GPU_LOCK_DIR",))
        self.assert_clean_error(r, 2, f"{self.system}:2:", "absolute")
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "wg")))

    def test_a_config_path_that_is_not_a_regular_file_is_an_error(self):
        # A directory, a FIFO (no writer: opening must not block) and a device that never
        # ends (reading must not grow forever) are errors that name the path.
        fifo = os.path.join(self.tmp, "fifo")
        os.mkfifo(fifo)
        cases = {"a directory": (None, "is a directory"),
                 "a FIFO": (fifo, "not a regular file"),
                 "/dev/zero": ("/dev/zero", "not a regular file")}
        for what, (target, message) in cases.items():
            with self.subTest(what=what):
                if os.path.isdir(self.user) and not os.path.islink(self.user):
                    os.rmdir(self.user)
                else:
                    os.remove(self.user)
                if target is None:
                    os.mkdir(self.user)
                else:
                    os.symlink(target, self.user)
                r = self.run_wg("true", env=self.files, timeout=30)
                self.assert_clean_error(r, 2, self.user, message)
                r = self.run_wg("true", env=dict(self.files, WITH_GPU_TEST_SYSTEM_CONFIG=self.user),
                                timeout=30)
                self.assert_clean_error(r, 2, self.user, message)

    def test_a_config_file_over_the_size_limit_is_an_error(self):
        with open(self.user, "w") as f:
            f.write("[defaults]\n" + "# padding\n" * (110 * 1024))  # 1.1 MiB
        r = self.run_wg("true", env=self.files)
        self.assert_clean_error(r, 2, self.user, "larger than 1024 KiB")
        with open(self.user, "w") as f:
            f.write(USER + "# padding\n" * (100 * 1024))  # just under 1 MiB: fine
        self.assertEqual(self.chosen("-n", "2", env=self.files), "0,3")


if __name__ == "__main__":
    unittest.main()
