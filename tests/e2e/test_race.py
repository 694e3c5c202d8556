"""Many launches at once: a checker proves from the jobs' own records that no two
jobs ever ran on the same GPU at the same time."""

import os
import random
import subprocess
import threading
import time
import unittest

from harness import JOB_RECORDER, Case, check_no_overlap, gpu, uuid_of

LAUNCHES = 32
GPUS = 4


class RaceTest(Case):
    def setUp(self):
        super().setUp()
        self.machine([gpu(i, name="NVIDIA H100 80GB HBM3") for i in range(GPUS)])
        self.log = os.path.join(self.tmp, "jobs.log")

    def launch_until_it_runs(self, args, results, slot):
        """One user's launch, retried while every GPU is claimed (exit 75)."""
        attempts = 0
        while True:
            attempts += 1
            r = subprocess.run([self.bin, *args, JOB_RECORDER, self.log, "40"], env=self.env(),
                               capture_output=True, text=True, timeout=300)
            if r.returncode != 75:
                results[slot] = (r.returncode, r.stderr, attempts)
                return
            time.sleep(random.uniform(0.001, 0.01))  # back-off between retries, not synchronisation

    def read_records(self):
        with open(self.log) as f:
            lines = [line.split() for line in f]
        return [(uuids.split(","), int(s), int(e), int(p)) for uuids, s, e, p, _ in lines]

    def run_storm(self, requests):
        from harness import BIN
        self.bin = BIN
        results = [None] * len(requests)
        barrier = threading.Barrier(len(requests))

        def worker(slot):
            barrier.wait()
            self.launch_until_it_runs(requests[slot], results, slot)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(requests))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for code, stderr, _ in results:
            self.assertEqual(code, 0, stderr)
        records = self.read_records()
        self.assertEqual(len(records), len(requests), "every launch ran exactly once")
        return records, results

    def test_32_concurrent_single_gpu_launches_never_share(self):
        records, results = self.run_storm([["-n", "1"]] * LAUNCHES)
        by_gpu = check_no_overlap(self, records)
        self.assertEqual(set(by_gpu), {uuid_of(i) for i in range(GPUS)})
        self.assertGreater(max(a for _, _, a in results), 1, "the launches really contended")
        self.assertTrue(all(g["claim"] is None for g in self.status()["gpus"]), "nothing left claimed")

    def test_mixed_one_and_two_gpu_launches_never_share(self):
        requests = [["-n", "2"] if i % 3 == 0 else ["-n", "1"] for i in range(LAUNCHES)]
        records, _ = self.run_storm(requests)
        check_no_overlap(self, records)
        self.assertEqual(sorted(len(u) for u, _, _, _ in records),
                         sorted(int(r[1]) for r in requests))

    def test_the_checker_catches_an_overlap(self):
        with self.assertRaises(AssertionError):
            check_no_overlap(self, [(["GPU-a"], 0, 10, 1), (["GPU-a"], 5, 15, 2)])
        check_no_overlap(self, [(["GPU-a"], 0, 10, 1), (["GPU-a"], 10, 15, 2), (["GPU-b"], 5, 9, 3)])


if __name__ == "__main__":
    unittest.main()
