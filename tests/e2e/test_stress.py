"""Hundreds of short jobs through the queue on 4 simulated GPUs while waiters,
supervisors and jobs are killed with SIGKILL at random. A checker proves from the
jobs' own records that no GPU was ever shared, that every launch that was not
killed ran, and that no claim or ticket is left at the end."""

import json
import os
import random
import signal
import subprocess
import threading
import time
import unittest

from harness import BIN, JOB_RECORDER, Case, check_no_overlap, gpu, read_job_log

LAUNCHES = 200
GPUS = 4
KILLS = 25


class StressTest(Case):
    def test_hundreds_of_jobs_with_random_kill_9(self):
        rng = random.Random(int(os.environ.get("WITH_GPU_STRESS_SEED", "20261122")))
        self.machine([gpu(i, name="NVIDIA H100 80GB HBM3") for i in range(GPUS)])
        log = os.path.join(self.tmp, "jobs.log")
        launches = {}  # label -> Popen
        killed = set()  # labels whose supervisor or job we killed
        lock = threading.Lock()

        def launch(i):
            label = f"j{i}"
            n = "2" if rng.random() < 0.2 else "1"
            child = subprocess.Popen(
                [BIN, "--wait", "-q", "-n", n, JOB_RECORDER, log, str(rng.randint(5, 40)), label],
                env=self.env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, text=True, cwd=self.tmp)
            with lock:
                launches[label] = child

        def killer():
            for _ in range(KILLS):
                time.sleep(rng.uniform(0.01, 0.08))
                with lock:
                    alive = [(l, c) for l, c in launches.items() if c.poll() is None and l not in killed]
                if not alive:
                    continue
                label, child = rng.choice(alive)
                if rng.random() < 0.3:
                    # Kill the job itself, found through its claim record.
                    try:
                        doc = json.loads(subprocess.run([BIN, "--status", "--json"], env=self.env(),
                                                        capture_output=True, text=True).stdout)
                    except json.JSONDecodeError:
                        continue
                    for g in doc["gpus"]:
                        claim = g["claim"]
                        if claim and claim.get("pid") and claim.get("supervisor_pid"):
                            with lock:
                                owner = [l for l, c in launches.items() if c.pid == claim["supervisor_pid"]]
                            if owner:
                                killed.add(owner[0])
                                try:
                                    os.kill(claim["pid"], signal.SIGKILL)
                                except ProcessLookupError:
                                    pass
                                break
                else:
                    killed.add(label)
                    child.kill()  # a waiter, or a supervisor whose job keeps running

        starter_threads = []
        for i in range(LAUNCHES):
            launch(i)
            if i == LAUNCHES // 4:
                k = threading.Thread(target=killer)
                k.start()
                starter_threads.append(k)
        for t in starter_threads:
            t.join()
        for label, child in launches.items():
            child.wait(timeout=300)

        records = read_job_log(log)
        ran = {r["label"] for r in records}
        for label, child in launches.items():
            if label not in killed:
                self.assertEqual(child.returncode, 0, f"{label}: {child.stderr.read()}")
                self.assertIn(label, ran, f"{label} survived but its job never ran")
            child.stderr.close()
        self.assertEqual(len(records), len(ran), "a job ran twice")
        check_no_overlap(self, [(r["uuids"], r["start"], r["end"], r["pid"]) for r in records])
        self.assertGreater(len(killed), 5)

        # Jobs of killed supervisors may still be finishing; wait for their claims to end.
        self.wait_until(lambda: all(g["claim"] is None for g in self.status()["gpus"]),
                        timeout=60, what="every claim to end")
        self.assertEqual(self.queue(), [])
        self.assertEqual(self.tickets_on_disk(), [], "dead tickets are removed when the queue is read")


if __name__ == "__main__":
    unittest.main()
