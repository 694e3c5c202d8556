"""Which GPUs the command gets under each filter, as the command itself sees them."""

import json
import os
import unittest

from harness import Case, busy, bus_id_of, gpu, uuid_of, GIB


def four_gpus():
    return [
        # 20 GiB free, one process, busy, warm
        gpu(0, processes=[busy(4100001, 60 * GIB)], utilization_percent=50, temperature_c=40,
            power_mw=200000),
        # 80 GiB free, idle, but hot
        gpu(1, temperature_c=85, power_mw=100000),
        # 40 GiB card, idle, power hungry
        gpu(2, name="NVIDIA A100-SXM4-40GB", memory_total_mib=40 * GIB, utilization_percent=5,
            temperature_c=35, power_mw=350000),
        # 16 GiB V100, idle
        gpu(3, name="Tesla V100-SXM2-16GB", memory_total_mib=16 * GIB, temperature_c=30,
            power_mw=50000, power_limit_mw=300000),
    ]


class SelectionTest(Case):
    def setUp(self):
        super().setUp()
        self.machine(four_gpus())

    def test_ranking_most_free_memory_first(self):
        self.assertEqual(self.chosen(), "1")
        self.assertEqual(self.chosen("-n", "2"), "1,2")
        self.assertEqual(self.chosen("-n", "4"), "1,2,0,3")

    def test_fewest_processes_then_lowest_index_break_ties(self):
        self.machine([gpu(0, processes=[busy(4100001, 0)]), gpu(1), gpu(2)])
        self.assertEqual(self.chosen("-n", "2"), "1,2")

    def test_min_memory(self):
        self.assertEqual(self.chosen("--min-memory", "30G", "-n", "2"), "1,2")
        self.assertEqual(self.chosen("--min-memory", "50GiB"), "1")
        r = self.run_wg("--min-memory", "50G", "-n", "2", "true")
        self.assert_clean_error(r, 75, "20 GiB free < 50 GiB")

    def test_bare_min_memory_is_mib_and_decimal_units(self):
        self.machine([gpu(0, memory_total_mib=3 * GIB, memory_other_used_mib=GIB + 512),
                      gpu(1, memory_total_mib=3 * GIB)])
        # GPU 0 has 1.5 GiB free; bare 1024 = 1 GiB: both qualify, GPU 1 ranks first.
        self.assertEqual(self.chosen("--min-memory", "1024", "-n", "2"), "1,0")
        self.assertEqual(self.chosen("--min-memory", "2048", "-n", "1"), "1")
        self.assertEqual(self.chosen("--min-memory", "1600MB", "--gpu", "0"), "0")  # 1.49 GiB
        r = self.run_wg("--min-memory", "1700MB", "--gpu", "0", "true")
        self.assertEqual(r.returncode, 75, r.stderr)

    def test_max_util(self):
        self.assertEqual(self.chosen("--max-util", "1", "-n", "2"), "1,3")
        self.assertEqual(self.chosen("--max-util", "10%", "-n", "3"), "1,2,3")

    def test_max_temp(self):
        self.assertEqual(self.chosen("--max-temp", "80"), "2")

    def test_max_power(self):
        self.assertEqual(self.chosen("--max-power", "300", "-n", "2"), "1,0")
        self.assertEqual(self.chosen("--max-power", "150W", "-n", "2"), "1,3")

    def test_require_idle(self):
        self.assertEqual(self.chosen("--require-idle", "-n", "3"), "1,2,3")

    def test_gpu_list_by_index_uuid_and_bus_id(self):
        self.assertEqual(self.chosen("--gpu", "3"), "3")
        self.assertEqual(self.chosen("--gpu", uuid_of(2)), "2")
        self.assertEqual(self.chosen("--gpu", uuid_of(2)[:12]), "2")
        self.assertEqual(self.chosen("--gpu", bus_id_of(0)), "0")
        self.assertEqual(self.chosen("--gpu", "0000:10:00.0"), "0")
        self.assertEqual(self.chosen("--gpu", "3,0", "-n", "2"), "0,3")

    def test_exclude(self):
        self.assertEqual(self.chosen("--exclude", "1"), "2")
        self.assertEqual(self.chosen("--exclude", "1," + uuid_of(2)), "0")
        self.assertEqual(self.chosen("--exclude", "name:a100"), "3")

    def test_gpu_type_prefers_then_strict_restricts(self):
        self.assertEqual(self.chosen("--gpu-type", "V100"), "3")
        self.assertEqual(self.chosen("--gpu-type", "v100", "-n", "2"), "3,1")
        self.assertEqual(self.chosen("--gpu-type", "H100"), "1")
        self.assertEqual(self.chosen("--gpu-type", "40GB", "--strict"), "2")
        r = self.run_wg("--gpu-type", "40GB", "--strict", "-n", "2", "true")
        self.assert_clean_error(r, 125, "can never be met")

    def test_min_and_max_gpus_take_as_many_as_are_free(self):
        self.assertEqual(self.chosen("--min-gpus", "2", "--max-gpus", "3"), "1,2,0")
        self.assertEqual(self.chosen("--max-gpus", "8", "--max-util", "1"), "1,3")
        self.assertEqual(self.chosen("--min-gpus", "2", "--max-util", "1"), "1,3")
        r = self.run_wg("--min-gpus", "3", "--max-gpus", "4", "--max-util", "1", "true")
        self.assertEqual(r.returncode, 75, r.stderr)

    def test_a_lost_gpu_is_reported_and_skipped(self):
        gpus = four_gpus()
        gpus[1]["lost"] = True
        self.machine(gpus)
        self.assertEqual(self.chosen(), "2")
        r = self.run_wg("--gpu", "1", "true")
        self.assert_clean_error(r, 125, "GPU 1", "lost")

    def test_unknown_metrics_fail_the_thresholds_that_need_them(self):
        self.machine([gpu(0, utilization_percent=None, temperature_c=None, power_mw=None),
                      gpu(1, memory_total_mib=40 * GIB)])
        self.assertEqual(self.chosen(), "0")  # no threshold: unknown is fine
        self.assertEqual(self.chosen("--max-util", "50"), "1")
        self.assertEqual(self.chosen("--max-temp", "90"), "1")
        self.assertEqual(self.chosen("--max-power", "500"), "1")


    def nvml_calls(self, *args):
        """The NVML entry points one run calls, with how often (the simulator's call log)."""
        log = os.path.join(self.tmp, "calls.log")
        if os.path.exists(log):
            os.unlink(log)
        r = self.run_wg(*args, env={"WITH_GPU_SIM_CALL_LOG": log})
        self.assertIn(r.returncode, (0, 75), r.stderr)
        calls = {}
        with open(log) as f:
            for line in f:
                calls[line.strip()] = calls.get(line.strip(), 0) + 1
        return calls

    def test_a_launch_asks_the_driver_only_what_it_chooses_by(self):
        # Issue 9: each figure is one or two NVML calls per GPU, and real drivers take time.
        gauges = {"util": "nvmlDeviceGetUtilizationRates", "temp": "nvmlDeviceGetTemperature",
                  "power": "nvmlDeviceGetPowerUsage", "limit": "nvmlDeviceGetEnforcedPowerLimit",
                  "minor": "nvmlDeviceGetMinorNumber", "cpus": "nvmlDeviceGetCpuAffinity"}
        plain = self.nvml_calls("true")
        for name, call in gauges.items():
            self.assertNotIn(call, plain, name)
        self.assertEqual(plain["nvmlDeviceGetUUID"], 4)
        self.assertEqual(plain["nvmlDeviceGetMemoryInfo_v2"], 4)
        self.assertEqual(self.chosen("--max-temp", "80", "-n", "3"), "2,0,3")  # still obeyed
        hot = self.nvml_calls("--max-temp", "80", "true")
        self.assertEqual(hot.get(gauges["temp"]), 4)
        self.assertNotIn(gauges["util"], hot)
        power = self.nvml_calls("--max-power", "300", "true")
        self.assertEqual((power.get(gauges["power"]), power.get(gauges["limit"])), (4, 4))
        busy_only = self.nvml_calls("--max-util", "10", "true")
        self.assertEqual(busy_only.get(gauges["util"]), 4)
        for shown in (("--dry-run", "true"), ("--status",)):  # showing needs every figure
            every = self.nvml_calls(*shown)
            for name, call in gauges.items():
                self.assertEqual(every.get(call), 4, (shown, name))



class DryRunTest(Case):
    def setUp(self):
        super().setUp()
        self.machine(four_gpus())

    def dry_run(self, *args):
        r = self.run_wg("--dry-run", "--json", *args)
        return r.returncode, json.loads(r.stdout)

    def test_reports_every_gpu_and_runs_nothing(self):
        marker = os.path.join(self.tmp, "ran")
        code, decision = self.dry_run("--max-util", "1", "--max-temp", "80", "touch", marker)
        self.assertEqual(code, 0)
        self.assertFalse(os.path.exists(marker))
        self.assertEqual(decision["outcome"], "chosen")
        self.assertEqual(decision["chosen"], [3])
        gpus = decision["gpus"]
        self.assertEqual([g["index"] for g in gpus], [0, 1, 2, 3])
        self.assertEqual([g["chosen"] for g in gpus], [False, False, False, True])
        reasons0 = " ".join(r["reason"] for r in gpus[0]["reasons"])
        self.assertIn("50% > 1%", reasons0)
        reasons1 = [r["reason"] for r in gpus[1]["reasons"]]
        self.assertTrue(any("85" in r and "80" in r for r in reasons1), reasons1)
        self.assertEqual(gpus[3]["uuid"], "GPU-00000003-1111-4222-8333-000000000003")
        self.assertFalse(os.path.exists(self.lock_dir), "--dry-run must not create the lock directory")

    def test_exit_75_and_125(self):
        code, decision = self.dry_run("-n", "2", "--min-memory", "50G")
        self.assertEqual((code, decision["outcome"]), (75, "none_now"))
        code, decision = self.dry_run("-n", "5")
        self.assertEqual((code, decision["outcome"]), (125, "impossible"))
        permanent = [r for g in decision["gpus"] for r in g["reasons"] if r["permanent"]]
        self.assertEqual(permanent, [])  # enough GPUs are not a property of any one GPU

    def test_text_output_names_each_gpu(self):
        r = self.run_wg("--dry-run", "--max-temp", "80")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertTrue(lines[1].startswith("GPU 1"), lines)
        self.assertIn("rejected", lines[1])
        self.assertIn("chosen", lines[2])


if __name__ == "__main__":
    unittest.main()
