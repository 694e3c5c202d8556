"""--status in JSON and as a table: figures, processes, claims, unknowns, failures."""

import os
import pwd
import re
import subprocess
import unittest

from harness import Case, busy, gpu, uuid_of, GIB

GPU_FIELDS = {"index", "uuid", "name", "pci_bus_id", "error", "memory_total_mib", "memory_used_mib",
              "memory_free_mib", "utilization_percent", "temperature_c", "power_w", "power_limit_w",
              "processes_known", "processes", "claim", "minor_number", "hold"}


class StatusTest(Case):
    def test_json_fields_and_figures(self):
        self.machine([gpu(0, processes=[busy(4100001, 20 * GIB)], utilization_percent=87,
                          temperature_c=71, power_mw=312500, power_limit_mw=400000),
                      gpu(1)], driver_version="550.54.15")
        doc = self.status()
        self.assertEqual(doc["version"], 1)
        self.assertEqual(doc["driver_version"], "550.54.15")
        self.assertEqual(doc["queue"], [])
        self.assertEqual(len(doc["gpus"]), 2)
        g = doc["gpus"][0]
        self.assertEqual(set(g), GPU_FIELDS)
        self.assertEqual((g["index"], g["uuid"], g["name"], g["pci_bus_id"]),
                         (0, uuid_of(0), "NVIDIA A100-SXM4-80GB", "00000000:10:00.0"))
        self.assertEqual((g["memory_total_mib"], g["memory_used_mib"], g["memory_free_mib"]),
                         (80 * GIB, 20 * GIB, 60 * GIB))
        self.assertEqual((g["utilization_percent"], g["temperature_c"], g["power_w"], g["power_limit_w"]),
                         (87, 71, 312.5, 400.0))
        self.assertIsNone(g["error"])
        self.assertIsNone(g["claim"])
        self.assertEqual(len(g["processes"]), 1)
        p = g["processes"][0]
        self.assertEqual((p["pid"], p["used_memory_mib"]), (4100001, 20 * GIB))
        self.assertEqual(set(p), {"pid", "type", "used_memory_mib", "user", "command", "squatter"})

    def test_unknown_metrics_are_null_not_zero(self):
        self.machine([gpu(0, utilization_percent=None, temperature_c=None, power_mw=None,
                          power_limit_mw=None, processes=[{"pid": 4100002, "used_memory_mib": None}])])
        g = self.status()["gpus"][0]
        for field in ("utilization_percent", "temperature_c", "power_w", "power_limit_w"):
            self.assertIsNone(g[field], field)
        self.assertIsNone(g["processes"][0]["used_memory_mib"])
        r = self.run_wg("--status")
        self.assertRegex(r.stdout, r"\n  0  A100-SXM4-80GB +\[.*\] +0/80 GiB +n/a +n/a +n/a  free\n")
        self.assertIn("pid 4100002", r.stdout)

    def test_a_lost_gpu_is_reported_and_the_others_shown(self):
        self.machine([gpu(0, lost=True), gpu(1)])
        doc = self.status()
        self.assertIn("lost", doc["gpus"][0]["error"].lower())
        self.assertIsNone(doc["gpus"][1]["error"])
        self.assertEqual(doc["gpus"][1]["memory_total_mib"], 80 * GIB)
        r = self.run_wg("--status")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"\n  0  .*error: GPU is lost")
        self.assertRegex(r.stdout, r"\n  1  A100-SXM4-80GB ")

    def test_no_gpus(self):
        self.machine([])
        self.assertEqual(self.status()["gpus"], [])
        r = self.run_wg("--status")
        self.assertEqual(r.returncode, 0)
        self.assertIn("0 GPUs", r.stdout)
        r = self.run_wg("true")
        self.assert_clean_error(r, 125, "can never be met")

    def test_process_user_and_command_come_from_proc(self):
        sleeper = subprocess.Popen(["sleep", "300"])
        self.addCleanup(sleeper.wait)
        self.addCleanup(sleeper.kill)
        self.machine([gpu(0, processes=[busy(sleeper.pid, 1024)])])
        p = self.status()["gpus"][0]["processes"][0]
        self.assertEqual(p["user"], pwd.getpwuid(os.getuid()).pw_name)
        self.assertEqual(p["command"], "sleep 300")
        self.assertIn("sleep 300", self.run_wg("--status").stdout)

    def test_status_never_creates_the_lock_directory(self):
        self.machine([gpu(0)])
        self.status()
        self.assertFalse(os.path.exists(self.lock_dir))

    def test_claim_holder_is_shown_while_a_job_runs(self):
        self.machine([gpu(0), gpu(1, memory_total_mib=40 * GIB)])
        job = self.popen_wg("sh", "-c", "echo ready; exec sleep 300")
        self.addCleanup(job.stderr.close)
        self.addCleanup(job.stdout.close)
        self.assertEqual(job.stdout.readline(), "ready\n")
        claim = self.wait_until(lambda: (c := self.claim_of(0)) and c.get("pid") and c, what="claim record")
        self.assertEqual(claim["user"], pwd.getpwuid(os.getuid()).pw_name)
        self.assertEqual(claim["supervisor_pid"], job.pid)
        self.assertIn("sleep 300", claim["command"])
        self.assertRegex(claim["since"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertIsNone(self.claim_of(1))
        table = self.run_wg("--status").stdout
        self.assertRegex(table, r"\n  0  A100-SXM4-80GB .* claimed by " + re.escape(claim["user"]) + r" \d+s\n")
        self.assertRegex(table, r"\n  1  A100-SXM4-80GB .* 0/40 GiB .* free\n")
        self.assertNotIn("\033", table)
        job.terminate()
        job.wait(timeout=30)
        self.assertIsNone(self.claim_of(0), "the claim must end with the job")


if __name__ == "__main__":
    unittest.main()
