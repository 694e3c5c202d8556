#!/bin/bash
# A real one-node SLURM cluster (Debian's slurm-wlm and munge) on fake GPUs, and with-gpu in
# it: jobs and steps stay inside their allocations, --gres=none, the gres.conf generator as
# slurmd reads it, and the prolog/epilog claim holder. See docs/slurm.md.
#
#   tests/slurm/slurm_test.sh BUILD_DIR
#
# Needs root (mknod, slurmd). Exits 77 (SKIP) with the reason where it cannot run. Every
# daemon and job it starts is stopped by pid on exit, and the device nodes are removed.
set -euo pipefail

build=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
bin=$build/bin/with-gpu
sim=$(find "$build" -name libnvidia-ml.so.1 -path '*sim*' | head -n 1)

skip() {
  # CI sets WITH_GPU_REQUIRE_ALL_TESTS=1: there, a test that cannot run is a failure.
  if [ "${WITH_GPU_REQUIRE_ALL_TESTS:-0}" = 1 ]; then
    echo "FAIL: required (WITH_GPU_REQUIRE_ALL_TESTS=1) but cannot run: $*"
    exit 1
  fi
  echo "SKIP: $*"
  exit 77
}
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

[ "$(id -u)" = 0 ] || skip "needs root (device nodes, slurmd)"
for tool in munged slurmctld slurmd srun sbatch scontrol sinfo squeue scancel; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (scripts/install-deps.sh installs slurm-wlm and munge)"
done
[ -x "$bin" ] && [ -n "$sim" ] || fail "build $build first (with-gpu and the NVML simulator)"
if compgen -G '/dev/nvidia*' >/dev/null; then
  skip "/dev/nvidia* exist (a real driver?): the test will not replace them"
fi

work=$(mktemp -d /tmp/with-gpu-slurm.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/etc" "$work/state" "$work/spool" "$work/out" "$work/munge"
chmod 700 "$work/munge"
daemons=()   # pids, in start order
devices=()

stop_pid() { # pid: TERM, wait (bounded), KILL
  local pid=$1 i
  kill "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

cleanup() {
  local status=$?
  set +e
  if [ ${#daemons[@]} -gt 0 ]; then
    scancel --full --quiet --user=root 2>/dev/null
    await 30 "all jobs gone" no_jobs 2>/dev/null
  fi
  # Claim holders left by a failed run: their pids are in the claim records.
  if [ -d "$work/locks" ]; then
    for pid in $(sed -n 's/.*"pid":\([0-9]*\).*"slurm_job".*/\1/p' "$work"/locks/gpu-*.lock 2>/dev/null | sort -u); do
      grep -qz -- --slurm-prolog "/proc/$pid/cmdline" 2>/dev/null && stop_pid "$pid"
    done
  fi
  for ((i = ${#daemons[@]} - 1; i >= 0; i--)); do stop_pid "${daemons[i]}"; done
  for dev in "${devices[@]}"; do rm -f "$dev"; done
  if [ $status -ne 0 ] && [ $status -ne 77 ]; then
    for log in slurmctld.log slurmd.log munged.log; do
      echo "---- $log (last lines)"; tail -n 25 "$work/$log" 2>/dev/null
    done
  fi
  rm -rf "$work"
  exit $status
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# await SECONDS WHAT COMMAND...: polls until COMMAND succeeds.
await() {
  local limit=$1 what=$2 i
  shift 2
  for ((i = 0; i < limit * 10; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  fail "timed out after ${limit}s waiting for: $what"
}
no_jobs() { [ -z "$(squeue -h -o %i 2>/dev/null)" ]; }

# ---- fake GPUs: device nodes and a simulator machine that describes the same GPUs.
# NVML index order differs from minor-number order on purpose: SLURM names GPUs by minor
# number, and with-gpu must never mistake one for the other.
minors=(1 0 3 2)
for n in 0 1 2 3; do
  mknod "/dev/nvidia$n" c 195 "$n" 2>/dev/null || skip "mknod /dev/nvidia$n is not permitted here"
  devices+=("/dev/nvidia$n")
done
cpus=$(nproc)
{
  echo '{"driver_version": "550.54.15", "gpus": ['
  for i in 0 1 2 3; do
    printf '  {"name": "NVIDIA A100-SXM4-80GB", "uuid": "GPU-5e0d0000-0000-4000-8000-00000000000%d",' "$i"
    printf ' "pci_bus_id": "00000000:%02X:00.0", "minor_number": %d, "cpu_affinity": "0-%d"}%s\n' \
      $((0x17 + i)) "${minors[i]}" $((cpus - 1)) "$([ $i -lt 3 ] && echo ,)"
  done
  echo ']}'
} >"$work/machine.json"
uuid_minor() { # UUID -> its minor number
  local i
  for i in 0 1 2 3; do
    [ "$1" = "GPU-5e0d0000-0000-4000-8000-00000000000$i" ] && { echo "${minors[i]}"; return; }
  done
  echo "?"
}

export WITH_GPU_NVML_LIBRARY=$sim WITH_GPU_SIM_MACHINE=$work/machine.json
export WITH_GPU_LOCK_DIR=$work/locks
export SLURM_CONF=$work/etc/slurm.conf
unset CUDA_VISIBLE_DEVICES SLURM_JOB_ID SLURM_STEP_ID SLURM_JOB_GPUS SLURM_STEP_GPUS

# ---- configuration: gres.conf from with-gpu --slurm-gres-conf, as an administrator would.
node=$(hostname -s)
step "with-gpu --slurm-gres-conf"
"$bin" --slurm-gres-conf >"$work/etc/gres.conf"
cat "$work/etc/gres.conf"
grep -q "^Name=gpu Type=a100-sxm4-80gb File=/dev/nvidia0 Cores=0-$((cpus - 1))" "$work/etc/gres.conf" \
  || { [ "$cpus" = 1 ] && grep -q "File=/dev/nvidia0 Cores=0$" "$work/etc/gres.conf"; } \
  || fail "gres.conf lacks the line for /dev/nvidia0"
gres=$(sed -n "s/^# NodeName=$node \(Gres=.*\)$/\1/p" "$work/etc/gres.conf")
[ "$gres" = "Gres=gpu:a100-sxm4-80gb:4" ] || fail "unexpected slurm.conf line: '$gres'"
hardware=$(slurmd -C | head -n 1 | sed -e 's/^NodeName=[^ ]* //' -e 's/ *RealMemory=[0-9]*//')
port=$((20000 + $$ % 20000))
for script in prolog epilog; do
  cat >"$work/etc/$script.sh" <<SCRIPT
#!/bin/sh
# slurmd runs this as root with a small environment; it also records that environment.
env | sort >"$work/out/$script-env.\$SLURM_JOB_ID"
[ "$script" = epilog ] && [ "\$SLURM_JOB_NAME" = no-epilog ] && exit 0
export WITH_GPU_NVML_LIBRARY=$sim WITH_GPU_SIM_MACHINE=$work/machine.json
export WITH_GPU_LOCK_DIR=$work/locks SLURM_CONF=$SLURM_CONF PATH=/usr/bin:/bin:/usr/sbin:/sbin
# Only the job named no-epilog relies on its holder noticing the end by itself; the others'
# holders ask SLURM once an hour, so their GPUs come back through the epilog alone.
poll=1h
[ "\$SLURM_JOB_NAME" = no-epilog ] && poll=500ms
exec "$bin" --slurm-$script --poll \$poll
SCRIPT
  chmod 755 "$work/etc/$script.sh"
done
cat >"$work/etc/slurm.conf" <<CONF
ClusterName=withgpu
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$work/munge/munge.sock
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
PrologFlags=Alloc
Prolog=$work/etc/prolog.sh
Epilog=$work/etc/epilog.sh
GresTypes=gpu
NodeName=$node NodeAddr=127.0.0.1 $hardware $gres State=UNKNOWN
PartitionName=main Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF

# ---- daemons, each in the foreground of its own background process, stopped by pid.
step "starting munged, slurmctld, slurmd"
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge/munge.key"
munged --foreground --force --key-file="$work/munge/munge.key" --socket="$work/munge/munge.sock" \
  --pid-file="$work/munge/munged.pid" --seed-file="$work/munge/seed" --log-file="$work/munged.log" \
  >>"$work/munged.log" 2>&1 &
daemons+=($!)
await 60 "munged's socket" test -S "$work/munge/munge.sock"
slurmctld -D -i -f "$SLURM_CONF" >>"$work/slurmctld.log" 2>&1 &
daemons+=($!)
await 60 "slurmctld answers" sh -c 'scontrol ping | grep -q UP'
slurmd -D -f "$SLURM_CONF" >>"$work/slurmd.log" 2>&1 &
daemons+=($!)
await 60 "node idle" sh -c "sinfo -h -n $node -o %t | grep -qx idle"
scontrol show node "$node" | grep -q "Gres=gpu:a100-sxm4-80gb:4" \
  || fail "slurmd did not take the generated gres.conf: $(scontrol show node "$node")"
echo "slurmd accepted the generated gres.conf: $(scontrol show node "$node" | grep -o 'Gres=[^ ]*')"

# ---- 1. two concurrent jobs of 2 GPUs, each running with-gpu -n 1 twice at the same time;
# then, in each, the environment ConstrainDevices=yes gives (CUDA ids 0..n-1).
step "two concurrent srun --gres=gpu:2 steps, two with-gpu -n 1 each"
cat >"$work/step.sh" <<'STEP'
#!/bin/sh
# $1: output prefix. Two launches that must hold their GPUs at the same time.
out=$1
record='echo "$SLURM_STEP_GPUS|$CUDA_VISIBLE_DEVICES|$WITH_GPU_UUIDS" >"$0.tmp" && mv "$0.tmp" "$0"'
wait_for='i=0; while [ ! -e "$1" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done'
with-gpu -n 1 -- sh -c "$record; $wait_for" "$out.a" "$out.b" &
with-gpu -n 1 -- sh -c "$record; $wait_for" "$out.b" "$out.a" || exit 1
wait $! || exit 1
# ConstrainDevices=yes: the job's CUDA sees its GPUs as 0..n-1, SLURM_STEP_GPUS keeps the
# real numbers.
n=$(echo "$SLURM_STEP_GPUS" | tr ',' '\n' | wc -l)
CUDA_VISIBLE_DEVICES=$(seq -s, 0 $((n - 1))) with-gpu -n 2 -- sh -c "$record" "$out.c"
STEP
chmod 755 "$work/step.sh"
export PATH=$build/bin:$PATH
srun --gres=gpu:2 -n 1 "$work/step.sh" "$work/out/job1" &
first=$!
srun --gres=gpu:2 -n 1 "$work/step.sh" "$work/out/job2" &
second=$!
wait $first || fail "first step failed"
wait $second || fail "second step failed"
all_uuids=""
for job in job1 job2; do
  IFS='|' read -r gpus_a cuda_a uuid_a <"$work/out/$job.a"
  IFS='|' read -r gpus_b cuda_b uuid_b <"$work/out/$job.b"
  IFS='|' read -r gpus_c cuda_c uuids_c <"$work/out/$job.c"
  echo "$job: SLURM_STEP_GPUS=$gpus_a; launches got GPU minor $(uuid_minor "$uuid_a") (CUDA $cuda_a) and $(uuid_minor "$uuid_b") (CUDA $cuda_b); constrained: CUDA_VISIBLE_DEVICES=$cuda_c"
  [ "$uuid_a" != "$uuid_b" ] || fail "$job: both launches got $uuid_a"
  for pair in "$uuid_a:$cuda_a" "$uuid_b:$cuda_b"; do
    minor=$(uuid_minor "${pair%%:*}")
    case ",$gpus_a," in *",$minor,"*) ;; *) fail "$job: GPU minor $minor is not in SLURM_STEP_GPUS=$gpus_a" ;; esac
    [ "${pair#*:}" = "$minor" ] || fail "$job: CUDA_VISIBLE_DEVICES=${pair#*:} for minor $minor"
  done
  # Constrained: each chosen GPU's CUDA id is its position in SLURM_STEP_GPUS.
  IFS=',' read -r -a slurm_ids <<<"$gpus_c"
  IFS=',' read -r -a given <<<"$cuda_c"
  IFS=',' read -r -a chosen <<<"$uuids_c"
  for k in 0 1; do
    minor=$(uuid_minor "${chosen[k]}")
    for p in 0 1; do
      [ "${slurm_ids[p]}" = "$minor" ] && [ "${given[k]}" != "$p" ] \
        && fail "$job constrained: minor $minor is CUDA $p in the job, with-gpu gave ${given[k]}"
    done
  done
  all_uuids+="$uuid_a $uuid_b "
done
[ "$(echo $all_uuids | tr ' ' '\n' | sort -u | wc -l)" = 4 ] || fail "two jobs shared a GPU: $all_uuids"

# ---- 2. --gres=none and a batch job.
step "srun --gres=none"
if srun --gres=none -n 1 with-gpu -n 1 true 2>"$work/out/none.err"; then
  fail "with-gpu ran without GPUs"
else
  status=$?
fi
cat "$work/out/none.err"
[ $status = 125 ] || fail "--gres=none: exit $status, expected 125"
grep -q "holds no GPU" "$work/out/none.err" || fail "--gres=none: unclear message"

step "sbatch --gres=gpu:1 (SLURM_JOB_GPUS)"
sbatch --wait --gres=gpu:1 -o "$work/out/batch.out" --wrap \
  'with-gpu -n 1 -- sh -c "echo \$SLURM_JOB_GPUS \$CUDA_VISIBLE_DEVICES \$WITH_GPU_UUIDS"' >/dev/null \
  || fail "batch job failed: $(cat "$work/out/batch.out")"
read -r job_gpus cuda uuid <"$work/out/batch.out"
echo "batch: SLURM_JOB_GPUS=$job_gpus, with-gpu gave CUDA_VISIBLE_DEVICES=$cuda ($uuid)"
[ "$(uuid_minor "$uuid")" = "$job_gpus" ] && [ "$cuda" = "$job_gpus" ] || fail "batch job got the wrong GPU"

# ---- 3. prolog/epilog: users outside SLURM never get a running job's GPUs.
step "prolog holds a running job's GPUs; the epilog releases them"
job_claims() { # JOB -> the number of GPUs claimed for it
  "$bin" --status --json | grep -c "\"slurm_job\": \"$1\"" || true
}
claims_are() { [ "$(job_claims "$1")" = "$2" ]; } # RUNNING comes before the prolog ends
claims_gone() { claims_are "$1" 0; }
sbatch_hold() { # NAME -> job id of a 2-GPU job that runs until $work/out/release.NAME exists
  sbatch --parsable -J "$1" --gres=gpu:2 -o /dev/null --wrap \
    "while [ ! -e $work/out/release.$1 ]; do sleep 0.1; done"
}
job=$(sbatch_hold held)
await 60 "job $job running" sh -c "squeue -h -j $job -o %T | grep -qx RUNNING"
await 60 "the prolog claiming job $job's 2 GPUs" claims_are "$job" 2
"$bin" --status | grep -q "slurm job $job (root)" || fail "--status does not name the job"
"$bin" --status | grep "slurm job"
grep -q "^SLURM_JOB_GPUS=" "$work/out/prolog-env.$job" || fail "slurmd gave the prolog no SLURM_JOB_GPUS"
echo "the prolog's environment: $(grep -oE '^(SLURM_JOB_(ID|USER|UID|GPUS)|CUDA_VISIBLE_DEVICES)=[^ ]*' "$work/out/prolog-env.$job" | tr '\n' ' ')"
status=0
"$bin" -n 3 true 2>/dev/null || status=$?
[ $status = 75 ] || fail "with-gpu -n 3 next to job $job: exit $status, expected 75 (2 GPUs free)"
"$bin" -n 2 -- printenv WITH_GPU_UUIDS >"$work/out/outside" || fail "the two free GPUs were not given"
for uuid in $(tr ',' ' ' <"$work/out/outside"); do
  "$bin" --status --json | grep -A12 "$uuid" | grep -q "\"slurm_job\": \"$job\"" \
    && fail "outside user got $uuid of job $job"
done
touch "$work/out/release.held"
await 60 "job $job's GPUs released by the epilog" claims_gone "$job"
await 60 "all 4 GPUs free again" "$bin" -n 4 true

step "a holder whose job ended without the epilog ends by itself"
job=$(sbatch_hold no-epilog)
await 60 "job $job running" sh -c "squeue -h -j $job -o %T | grep -qx RUNNING"
await 60 "the prolog claiming job $job's 2 GPUs" claims_are "$job" 2
touch "$work/out/release.no-epilog"
await 60 "holder of job $job ended by itself" "$bin" -n 4 true

echo "PASS"
