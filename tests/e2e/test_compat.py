"""Drop-in compatibility: each flag borrowed from a peer (the original with-gpu,
gpu-waiter, the Python GPUScheduler) gives the same choice as its native equivalent."""

import unittest

from harness import Case, busy, gpu, GIB


def machine():
    return [
        gpu(0, processes=[busy(4100001, 60 * GIB)], utilization_percent=50, power_mw=200000),
        gpu(1, temperature_c=85, power_mw=100000),
        gpu(2, name="NVIDIA A100-SXM4-40GB", memory_total_mib=40 * GIB, utilization_percent=5,
            power_mw=350000),
        gpu(3, name="Tesla V100-SXM2-16GB", memory_total_mib=16 * GIB, power_mw=50000),
    ]


class CompatTest(Case):
    def setUp(self):
        super().setUp()
        self.machine(machine())

    def same(self, peer_args, native_args, expected, env=None):
        peer = self.chosen(*peer_args, env=env)
        native = self.chosen(*native_args)
        self.assertEqual(peer, native, f"{peer_args} vs {native_args}")
        self.assertEqual(peer, expected)

    def test_original_with_gpu_flags(self):
        # --min-memory in MB (a bare number) as the original with-gpu reads it.
        self.same(["--min-memory", "30720"], ["--min-memory", "30GiB"], "1")
        self.same(["--min-memory", "30720", "-n", "2"], ["--min-memory", "30G", "-n", "2"], "1,2")
        self.same(["--min-gpus", "2"], ["-n", "2"], "1,2")
        self.same(["--min-gpus", "2", "--max-gpus", "3"], ["--min-gpus", "2", "--max-gpus", "3"], "1,2,0")
        self.same(["--gpu", "2,3", "--min-gpus", "2"], ["--gpu", "2,3", "-n", "2"], "2,3")
        self.same(["--max-util", "10"], ["--max-util", "10%"], "1")
        self.same(["--require-idle", "-n", "3"], ["--require-idle", "--count", "3"], "1,2,3")
        self.same(["--gpu-type", "V100"], ["--gpu-type", "v100"], "3")
        self.same(["--gpu-type", "A100", "--strict", "--max-util", "10"],
                  ["--gpu-type", "A100", "--strict", "--max-util", "10%"], "1")
        # --lock-dir and WITH_GPU_LOCK_DIR name the same directory.
        self.same(["--lock-dir", self.lock_dir], [], "1")
        # --wait / --timeout S (seconds): a free GPU is taken at once.
        self.same(["--wait", "--timeout", "30"], ["--timeout", "30s"], "1")

    def test_gpu_waiter_flags(self):
        self.same(["-n", "2"], ["--count", "2"], "1,2")

    def test_gpu_scheduler_parameters(self):
        # GPUScheduler(num_gpus=2, min_free_memory=..., max_power=..., max_utilization=...,
        #              banned_gpus=[...], specific_gpus=[...])
        self.same(["--count", "2", "--min-memory", "10G", "--max-power", "250", "--max-util", "10"],
                  ["-n", "2", "--min-memory", "10240", "--max-power", "250W", "--max-util", "10%"],
                  "1,3")
        self.same(["--exclude", "1"], ["--exclude", "name:80GB"], "2")
        self.same(["--gpu", "0,3", "-n", "2"], ["--gpu", "3,0", "-n", "2"], "0,3")

    def test_status_json_for_original_users(self):
        r = self.run_wg("--status", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.run_wg("--json", "true")
        self.assert_clean_error(r, 2, "--json is for --status")


if __name__ == "__main__":
    unittest.main()
