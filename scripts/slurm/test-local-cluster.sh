#!/usr/bin/env bash
# End-to-end test of the Slurm scripts on a one-node cluster on localhost.
#
# Installs Debian's slurm-wlm and munge if missing (needs root and apt), starts munged,
# slurmctld and slurmd with a minimal configuration for a container (no cgroups, private
# state under $BASE), submits a 4-task array of experiments/mm1-sweep.toml with submit.sh,
# waits for the merge job (bounded), and compares the merged CSVs byte for byte with a local
# unsharded run. The daemons it started are stopped on exit. Safe to run again.
#
#   scripts/slurm/test-local-cluster.sh          # env: DSSIM (binary), BASE, SLURM_TEST_PORT
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
base=${BASE:-/tmp/dssim-slurm-test}
port=${SLURM_TEST_PORT:-16817}
shards=4
experiment=experiments/mm1-sweep.toml
wait_s=300
t0=$(date +%s)
say() { echo "[slurm-test +$(($(date +%s) - t0))s] $*"; }

if [ "$(id -u)" != 0 ]; then
    echo "run as root (it installs packages and runs slurmd as root)" >&2
    exit 2
fi
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
    ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    say "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

if [ -z "${DSSIM:-}" ]; then
    say "building dssim (cargo build --release)"
    cargo build --release --quiet
fi
dssim=${DSSIM:-$root/target/release/dssim}
export DSSIM=$dssim

# Stop daemons a previous, killed run of this script left behind (by their pid files).
stop_daemons() {
    for pidfile in "$base/slurmd.pid" "$base/slurmctld.pid" "$base/munge/munged.pid"; do
        if [ -s "$pidfile" ]; then
            pid=$(cat "$pidfile")
            if kill "$pid" 2>/dev/null; then
                for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
                kill -9 "$pid" 2>/dev/null || true
            fi
            rm -f "$pidfile"
        fi
    done
}
cleanup() {
    rc=$?
    if [ $rc != 0 ] && [ -d "$base" ]; then
        for log in "$base"/slurmctld.log "$base"/slurmd.log "$base"/results/logs/*.out; do
            [ -f "$log" ] && { echo "--- $log"; tail -n 20 "$log"; }
        done
    fi
    stop_daemons
    exit $rc
}
stop_daemons
rm -rf "$base"
mkdir -p "$base/munge" "$base/state" "$base/spool"
chmod 700 "$base/munge"
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting munged"
dd if=/dev/urandom of="$base/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$base/munge/munge.key"
munged --force --key-file="$base/munge/munge.key" --socket="$base/munge/munge.sock" \
    --pid-file="$base/munge/munged.pid" --log-file="$base/munge/munged.log" \
    --seed-file="$base/munge/munged.seed" 2>/dev/null

host=$(hostname -s)
cat >"$base/slurm.conf" <<CONF
ClusterName=dssimtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$base/munge/munge.sock
StateSaveLocation=$base/state
SlurmdSpoolDir=$base/spool
SlurmctldPidFile=$base/slurmctld.pid
SlurmdPidFile=$base/slurmd.pid
SlurmctldLogFile=$base/slurmctld.log
SlurmdLogFile=$base/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
ReturnToService=2
MpiDefault=none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$base/slurm.conf

say "starting slurmctld and slurmd ($(nproc) CPUs, port $port)"
slurmctld -c -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 60); do
    sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)' && break
    sleep 0.5
done
sinfo -h -o %T | grep -qE '^(idle|mixed|allocated)' || {
    echo "the node did not come up:" >&2
    sinfo >&2 || true
    exit 1
}

say "local unsharded run"
"$dssim" run "$experiment" --out "$base/local" --jobs 1 >/dev/null

say "submitting $shards shards and the merge"
submitted=$("$root/scripts/slurm/submit.sh" "$experiment" "$shards" "$base/results")
echo "$submitted"
merge_id=$(echo "$submitted" | sed -n 's/.*merge job \([0-9]*\).*/\1/p')
[ -n "$merge_id" ] || { echo "submit.sh printed no merge job id" >&2; exit 1; }

deadline=$(($(date +%s) + wait_s))
while squeue -h -j "$merge_id" 2>/dev/null | grep -q .; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "timed out after ${wait_s}s waiting for the jobs:" >&2
        squeue >&2 || true
        exit 1
    fi
    sleep 1
done
state=$(scontrol show job "$merge_id" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
if [ "$state" != COMPLETED ]; then
    echo "merge job $merge_id ended in state ${state:-unknown}" >&2
    exit 1
fi

say "comparing the merged folder with the local run"
for f in runs.csv points.csv latency.csv timeseries.csv components.csv; do
    cmp "$base/local/$f" "$base/results/$f"
done
runs=$(($(wc -l <"$base/results/runs.csv") - 1))
say "ok: $shards shards on Slurm, merged, byte-identical to the local run ($runs runs)"
