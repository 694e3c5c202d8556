"""The environment, arguments and standard streams the command gets."""

import subprocess
import unittest

from harness import Case, gpu, uuid_of, GIB


class EnvironmentTest(Case):
    def setUp(self):
        super().setUp()
        self.machine([gpu(0, memory_total_mib=40 * GIB), gpu(1), gpu(2, memory_total_mib=24 * GIB)])

    def env_seen(self, *args, env=None):
        r = self.run_wg(*args, "--", "env", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)

    def test_gpu_variables(self):
        seen = self.env_seen("-n", "2")
        self.assertEqual(seen["CUDA_VISIBLE_DEVICES"], "1,0")
        self.assertEqual(seen["CUDA_DEVICE_ORDER"], "PCI_BUS_ID")
        self.assertEqual(seen["WITH_GPU_UUIDS"], f"{uuid_of(1)},{uuid_of(0)}")

    def test_rest_of_the_environment_is_kept_and_ours_replaced(self):
        seen = self.env_seen(env={"MY_SETTING": "a b=c", "CUDA_DEVICE_ORDER": "FASTEST_FIRST"})
        self.assertEqual(seen["MY_SETTING"], "a b=c")
        self.assertEqual(seen["CUDA_DEVICE_ORDER"], "PCI_BUS_ID")

    def test_inherited_cuda_visible_devices_restricts_the_candidates(self):
        self.assertEqual(self.chosen(env={"CUDA_VISIBLE_DEVICES": "0,2"}), "0")
        self.assertEqual(self.chosen(env={"CUDA_VISIBLE_DEVICES": "2"}), "2")
        self.assertEqual(self.chosen(env={"CUDA_VISIBLE_DEVICES": uuid_of(2)}), "2")
        self.assertEqual(self.chosen("-n", "2", env={"CUDA_VISIBLE_DEVICES": f"2,{uuid_of(0)}"}), "0,2")
        # CUDA stops reading at the first invalid entry.
        self.assertEqual(self.chosen(env={"CUDA_VISIBLE_DEVICES": "2,bogus,1"}), "2")
        for value in ("NoDevFiles", "", "-1"):
            with self.subTest(value=value):
                r = self.run_wg("true", env={"CUDA_VISIBLE_DEVICES": value})
                self.assert_clean_error(r, 125, "CUDA_VISIBLE_DEVICES")

    def test_mig_devices_are_refused_not_misread(self):
        r = self.run_wg("true", env={"CUDA_VISIBLE_DEVICES": "MIG-4f1a2b3c-0000-0000-0000-000000000000"})
        self.assert_clean_error(r, 125, "MIG")

    def test_arguments_reach_the_command_verbatim(self):
        args = ["a b", "", "--status", "-n", "$HOME", "*", "naïve"]
        r = self.run_wg("--", "python3", "-c", "import sys, json; print(json.dumps(sys.argv[1:]))", *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        import json
        self.assertEqual(json.loads(r.stdout), args)

    def test_stdin_stdout_stderr_pass_through(self):
        r = self.run_wg("sh", "-c", "cat; echo to-stderr >&2", stdin=None, input="from stdin\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "from stdin\n")
        self.assertEqual(r.stderr, "to-stderr\n")

    def test_quiet_by_default_verbose_on_request(self):
        r = self.run_wg("true")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        r = self.run_wg("-v", "true")
        self.assertIn("running on GPU 1", r.stderr)
        r = self.run_wg("-v", "-q", "true")
        self.assertEqual(r.stderr, "")


if __name__ == "__main__":
    unittest.main()
