"""Configuration files, profiles and WITH_GPU_* variables, end to end."""

import json
import os
import unittest

from harness import Case, gpu, GIB

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
        self.files = {"WITH_GPU_SYSTEM_CONFIG": self.system, "XDG_CONFIG_HOME": self.xdg}

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


if __name__ == "__main__":
    unittest.main()
