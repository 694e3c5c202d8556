"""with-gpu inside SLURM allocations, --slurm-gres-conf and the prolog/epilog claim holder,
with SLURM's environment given by hand and a stand-in scontrol (tests/slurm/ runs a real
slurmd). The simulated GPUs' minor numbers are 1, 0, 3, 2: position and minor number differ."""

import json
import os
import stat
import unittest

from harness import Case, gpu, uuid_of

MINORS = [1, 0, 3, 2]  # NVML index -> minor number (/dev/nvidiaN)


def by_minor(minor):
    return uuid_of(MINORS.index(minor))


class SlurmCase(Case):
    def setUp(self):
        super().setUp()
        self.machine([gpu(i, minor_number=MINORS[i], cpu_affinity="0") for i in range(4)])

    def step_env(self, step_gpus, cuda, **extra):
        env = {"SLURM_JOB_ID": "42", "SLURM_STEP_ID": "0", "SLURM_STEP_GPUS": step_gpus,
               "CUDA_VISIBLE_DEVICES": cuda}
        env.update(extra)
        return env

    def hold_in(self, env, *args):
        """Starts with-gpu ARGS with a job that runs until the returned path exists."""
        release = os.path.join(self.tmp, "release")
        ready = os.path.join(self.tmp, "ready")
        holder = self.popen_wg(*args, "--", "sh", "-c",
                               f'touch {ready}; while [ ! -e {release} ]; do sleep 0.05; done',
                               env=env)
        self.wait_until(lambda: os.path.exists(ready), what="the holding launch to run")
        os.unlink(ready)
        return holder, release

    def given(self, *args, env):
        """Runs with-gpu ARGS in `env`; returns {uuid: CUDA id} the command got."""
        r = self.run_wg(*args, "--", "sh", "-c",
                        'printf "%s|%s" "$CUDA_VISIBLE_DEVICES" "$WITH_GPU_UUIDS"', env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        cuda, uuids = r.stdout.split("|")
        return dict(zip(uuids.split(","), cuda.split(",")))


class InsideAnAllocation(SlurmCase):
    def test_constrain_devices_ids_are_mapped_by_minor_number(self):
        # ConstrainDevices=yes: SLURM gave minors 2,3; the job's CUDA calls them 0,1.
        got = self.given("-n", "2", env=self.step_env("2,3", "0,1"))
        self.assertEqual(got, {by_minor(2): "0", by_minor(3): "1"})

    def test_without_constraint_the_ids_are_slurms(self):
        got = self.given("-n", "2", env=self.step_env("2,3", "2,3"))
        self.assertEqual(got, {by_minor(2): "2", by_minor(3): "3"})

    def test_batch_script_uses_slurm_job_gpus(self):
        env = {"SLURM_JOB_ID": "43", "SLURM_JOB_GPUS": "3", "CUDA_VISIBLE_DEVICES": "0",
               "SLURM_GPUS_ON_NODE": "1"}
        self.assertEqual(self.given(env=env), {by_minor(3): "0"})

    def test_launches_in_one_allocation_share_it_with_claims(self):
        env = self.step_env("0", "0")
        holder, release = self.hold_in(env, "-n", "1")
        # Three GPUs are free on the node, none in the allocation.
        r = self.run_wg("-n", "1", "true", env=env)
        self.assertEqual(r.returncode, 75, r.stderr)
        self.assertIn("claimed", r.stderr)
        open(release, "w").close()
        holder.communicate(timeout=60)
        self.assertEqual(holder.returncode, 0)

    def test_launches_in_one_allocation_wait_in_line_for_its_gpus(self):
        env = self.step_env("0", "0")
        holder, release = self.hold_in(env, "-n", "1")
        # Three GPUs are free on the node; the waiter waits for the allocation's one.
        waiter = self.popen_wg("--wait", "-n", "1", "--", "sh", "-c",
                               'printf %s "$WITH_GPU_UUIDS"', env=env)
        self.wait_for_queue_length(1)
        self.assertIsNone(waiter.poll())
        open(release, "w").close()
        out, err = waiter.communicate(timeout=60)
        self.assertEqual(waiter.returncode, 0, err)
        self.assertEqual(out, by_minor(0))
        holder.communicate(timeout=60)

    def test_gres_none_is_an_error_not_all_gpus(self):
        env = {"SLURM_JOB_ID": "44", "SLURM_STEP_ID": "1", "CUDA_VISIBLE_DEVICES": "NoDevFiles"}
        r = self.run_wg("-n", "1", "true", env=env)
        self.assert_clean_error(r, 125, "SLURM job 44 step 1 holds no GPU")

    def test_malformed_values_are_usage_errors(self):
        for env, fragment in [
            (self.step_env("2,x", "0,1"), 'SLURM_STEP_GPUS="2,x"'),
            (self.step_env("2,3", "0"), "CUDA_VISIBLE_DEVICES"),
            (self.step_env("2", "0", SLURM_GPUS_ON_NODE="one"), "SLURM_GPUS_ON_NODE"),
        ]:
            with self.subTest(env=env):
                self.assert_clean_error(self.run_wg("true", env=env), 2, fragment)

    def test_status_says_which_gpus_the_allocation_holds(self):
        env = self.step_env("2,3", "0,1")
        r = self.run_wg("--status", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("SLURM job 42 step 0 holds GPU 3, GPU 2 (SLURM_STEP_GPUS=2,3)", r.stdout)
        doc = json.loads(self.run_wg("--status", "--json", env=env).stdout)
        self.assertEqual(doc["slurm"]["gpus"], [3, 2])
        self.assertEqual(doc["slurm"]["gpu_ids"], [2, 3])
        self.assertEqual([g["minor_number"] for g in doc["gpus"]], MINORS)
        self.assertIsNone(json.loads(self.run_wg("--status", "--json").stdout)["slurm"])


class GresConf(SlurmCase):
    def test_one_line_per_gpu_in_minor_order_and_the_node_line(self):
        r = self.run_wg("--slurm-gres-conf")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = [l for l in r.stdout.splitlines() if l.startswith("Name=gpu")]
        self.assertEqual(lines, [f"Name=gpu Type=a100-sxm4-80gb File=/dev/nvidia{n} Cores=0"
                                 for n in range(4)])
        self.assertRegex(r.stdout, r"\n# NodeName=\S+ Gres=gpu:a100-sxm4-80gb:4\n")

    def test_no_gpu_is_an_error(self):
        self.machine([])
        self.assert_clean_error(self.run_wg("--slurm-gres-conf"), 125, "no GPU")


class PrologEpilog(SlurmCase):
    def setUp(self):
        super().setUp()
        # A stand-in scontrol: the job runs until the file "gone-<id>" exists.
        bin_dir = os.path.join(self.tmp, "bin")
        os.mkdir(bin_dir)
        scontrol = os.path.join(bin_dir, "scontrol")
        with open(scontrol, "w") as f:
            f.write(f"""#!/bin/sh
if [ -e {self.tmp}/gone-$4 ]; then
  echo "slurm_load_jobs error: Invalid job id specified"; exit 1
fi
echo "JobId=$4 JobName=x UserId=alice(1000) JobState=RUNNING Reason=None"
""")
        os.chmod(scontrol, stat.S_IRWXU)
        self.path = bin_dir + ":" + os.environ.get("PATH", "/usr/bin:/bin")

    def tearDown(self):
        for job in ("77", "78"):  # a holder left by a failed test ends by itself
            open(os.path.join(self.tmp, f"gone-{job}"), "w").close()
        self.wait_until(lambda: not self.slurm_claims(), what="holders gone")
        super().tearDown()

    def slurm_env(self, job, gpus=None):
        env = {"SLURM_JOB_ID": job, "SLURM_JOB_USER": "alice", "SLURM_JOB_UID": "1000",
               "PATH": self.path}
        if gpus is not None:
            env["SLURM_JOB_GPUS"] = gpus
        return env

    def slurm_claims(self):
        return {g["uuid"]: g["claim"]["slurm_job"] for g in self.status()["gpus"]
                if g["claim"] and g["claim"]["slurm_job"]}

    def test_prolog_holds_the_jobs_gpus_until_the_epilog(self):
        r = self.run_wg("--slurm-prolog", "--poll", "100ms", env=self.slurm_env("77", "0,2"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.slurm_claims(), {by_minor(0): "77", by_minor(2): "77"})
        board = self.run_wg("--status").stdout
        self.assertIn("slurm job 77 (alice)", board)
        # A with-gpu user on the node gets the other two GPUs, never the job's.
        self.assertEqual(self.run_wg("-n", "3", "true").returncode, 75)
        self.assertEqual(set(self.given("-n", "2", env={})), {by_minor(1), by_minor(3)})
        # The job's own launches use its GPUs (claims among themselves in the job's directory).
        inside = {"SLURM_JOB_ID": "77", "SLURM_JOB_GPUS": "0,2", "CUDA_VISIBLE_DEVICES": "0,2"}
        self.assertEqual(self.given("-n", "2", env=inside), {by_minor(0): "0", by_minor(2): "2"})

        # ... and wait in line for them there.
        job, release = self.hold_in(inside, "-n", "2")
        job_dir = os.path.join(self.lock_dir, "slurm-job-77")
        waiter = self.popen_wg("--wait", "-n", "1", "true", env=inside)
        self.wait_until(lambda: waiter.poll() is not None or any(
            n.startswith("queue-") for n in os.listdir(job_dir)),
            what="a ticket in the job's directory")
        self.assertIsNone(waiter.poll(), "the waiter did not wait")
        open(release, "w").close()
        self.assertEqual(waiter.wait(timeout=60), 0, waiter.stderr.read())
        job.communicate(timeout=60)

        r = self.run_wg("--slurm-epilog", env=self.slurm_env("77"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.slurm_claims(), {})  # the epilog returns once the holder is gone
        self.assertFalse(os.path.exists(os.path.join(self.lock_dir, "slurm-job-77")))
        self.assertEqual(self.run_wg("-n", "4", "true").returncode, 0)

    def test_holder_whose_job_is_gone_ends_by_itself(self):
        r = self.run_wg("--slurm-prolog", "--poll", "100ms", env=self.slurm_env("78", "1"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.slurm_claims(), {by_minor(1): "78"})
        open(os.path.join(self.tmp, "gone-78"), "w").close()
        self.wait_until(lambda: not self.slurm_claims(), what="the holder to end by itself")

    def test_job_without_gpus_needs_no_holder(self):
        r = self.run_wg("--slurm-prolog", env=self.slurm_env("79"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.slurm_claims(), {})

    def test_outside_slurmd_it_is_a_usage_error(self):
        self.assert_clean_error(self.run_wg("--slurm-prolog"), 2, "SLURM_JOB_ID is unset")
        self.assert_clean_error(self.run_wg("--slurm-epilog", "true"), 2, "stand alone")


if __name__ == "__main__":
    unittest.main()
