"""Command-line parsing: help, version, and usage errors (exit 2) with clear messages."""

import os
import unittest

from harness import Case, gpu

HELP_GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit", "golden",
                           "help.txt")


class CliTest(Case):
    def setUp(self):
        super().setUp()
        self.machine([gpu(0)])

    def test_help_explains_itself(self):
        r = self.run_wg("--help")
        self.assertEqual(r.returncode, 0)
        for text in ("--min-memory", "--gpu-type", "--status", "--dry-run", "Examples:",
                     "CUDA_VISIBLE_DEVICES", "Exit status", "WITH_GPU_LOCK_DIR"):
            self.assertIn(text, r.stdout)
        # The whole text, as the unit test HelpGolden checks it (regenerate it as that says).
        with open(HELP_GOLDEN, encoding="utf-8") as golden:
            self.assertEqual(r.stdout, golden.read())

    def test_version(self):
        r = self.run_wg("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^with-gpu \d+\.\d+\.\d+")

    def test_usage_errors_exit_2_with_a_hint(self):
        cases = [
            (["--bogus", "true"], "unknown option --bogus"),
            (["-n", "0", "true"], "-n/--count"),
            (["-n", "two", "true"], "-n/--count"),
            (["--min-memory", "20Q", "true"], "--min-memory"),
            (["--min-memory", "-5G", "true"], "--min-memory"),
            (["--max-util", "101", "true"], "101"),
            (["--max-temp", "hot", "true"], "--max-temp"),
            (["--max-power", "250X", "true"], "--max-power"),
            (["-n", "2", "--min-gpus", "2", "true"], "cannot be combined"),
            (["--min-gpus", "3", "--max-gpus", "2", "true"], "--max-gpus"),
            (["--strict", "true"], "--strict needs --gpu-type"),
            (["--json", "true"], "--json is for --status and --dry-run"),
            ([], "no command given"),
            (["--status", "true"], "--status takes no command"),
            (["--status", "--dry-run"], "cannot be combined"),
            (["--gpu", "zero", "true"], "zero"),
            (["--gpu", "name:A100", "true"], "name:"),
            (["--gpu", "0,,1", "true"], "--gpu"),
        ]
        for args, fragment in cases:
            with self.subTest(args=args):
                r = self.run_wg(*args)
                self.assert_clean_error(r, 2, fragment)
                self.assertIn("hint:", r.stderr)

    def test_options_after_the_command_belong_to_the_command(self):
        r = self.run_wg("sh", "-c", 'printf "%s|" "$@"', "sh", "-n", "5", "--status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "-n|5|--status|")

    def test_double_dash_starts_the_command(self):
        r = self.run_wg("-n", "1", "--", "sh", "-c", 'printf "%s|" "$@"', "sh", "--gpu", "")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "--gpu||")


if __name__ == "__main__":
    unittest.main()
