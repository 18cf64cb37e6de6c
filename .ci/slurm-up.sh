#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for the tests marked `slurm` and for trying the studies' SLURM path
# (docs/studies.md, "SLURM on one machine"). Run as root. Idempotent: installs slurm-wlm and munge where they are
# missing (Debian/Ubuntu packages), writes /etc/slurm/slurm.conf (only if absent or written by this script),
# starts munged, slurmctld and slurmd where they are not running, waits until the node takes jobs, and prints
# where the logs are. `.ci/slurm-down.sh` stops it.
#
# The node: this machine's memory (less 1 GB for the system) and SLURM_UP_CPUS CPUs (default: 4 per core, so
# that the tests' small jobs run side by side; CPUs, not cores, are what jobs are given: CR_CPU_Memory).
# AuthInfo=cred_expire=10 makes a requeued job eligible 11 s after its requeue (SLURM's default: 121 s) and the
# scheduler looks at pending jobs every 2 s (default: 60 s). No accounting database: sacct is off, squeue and
# `scontrol show job` (jobs that ended in the last MinJobAge = 600 s) are what a client can ask.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARK="# written by cognitive-reserve .ci/slurm-up.sh"
LOGS=/var/log/slurm
say() { echo "slurm-up: $*"; }

if [ "$(id -u)" != 0 ]; then
    echo "slurm-up: must run as root (it installs packages and starts the SLURM daemons)" >&2
    exit 1
fi

missing=()
for command in munged slurmctld slurmd sbatch srun squeue scontrol scancel; do
    command -v "$command" >/dev/null || missing+=("$command")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing slurm-wlm and munge (missing: ${missing[*]})"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --reinstall slurm-wlm slurm-client slurmctld slurmd munge >/dev/null
fi

# munge: a key, a socket directory, the daemon (as its own user)
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! munge -n </dev/null >/dev/null 2>&1; then
    say "starting munged"
    runuser -u munge -- /usr/sbin/munged
fi

# slurm.conf: one node, this machine
host=$(hostname -s)
memory_mb=$(( $(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))
cpus=${SLURM_UP_CPUS:-$(( $(nproc) * 4 ))}
wanted=$(cat <<EOF
$MARK
ClusterName=cognitive-reserve
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerParameters=sched_interval=2,bf_interval=2
ReturnToService=2
JobRequeue=1
MinJobAge=600
KillWait=30
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
NodeName=$host CPUs=$cpus RealMemory=$memory_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
)
if [ -f "$CONF" ] && ! head -n 1 "$CONF" | grep -qF "$MARK"; then
    echo "slurm-up: $CONF exists and was not written by this script; leaving this machine's SLURM alone" >&2
    exit 1
fi
changed=0
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$wanted" ]; then
    mkdir -p /etc/slurm
    printf '%s\n' "$wanted" > "$CONF"
    changed=1
    say "wrote $CONF ($host: $cpus CPUs, $memory_mb MB)"
fi
mkdir -p /var/spool/slurmctld /var/spool/slurmd "$LOGS"

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if running /run/slurmctld.pid && running /run/slurmd.pid; then
    if [ "$changed" = 1 ]; then
        say "configuration changed: restarting the daemons"
        "$(dirname "$0")/slurm-down.sh" --keep-munge
    fi
fi
if ! running /run/slurmctld.pid; then
    say "starting slurmctld"
    slurmctld
fi
if ! running /run/slurmd.pid; then
    say "starting slurmd"
    slurmd
fi

for _ in $(seq 60); do
    state=$(sinfo -h -n "$host" -o %t 2>/dev/null || true)
    case "$state" in
        idle*|mix*|alloc*) break ;;
        down*|drain*) scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
done
state=$(sinfo -h -n "$host" -o %t 2>/dev/null || true)
case "$state" in
    idle*|mix*|alloc*) ;;
    *) echo "slurm-up: node $host is '${state:-unreachable}' after 30 s; see $LOGS/slurmctld.log and $LOGS/slurmd.log" >&2
       exit 1 ;;
esac
say "cluster up: node $host ($state), partition debug; logs: $LOGS/slurmctld.log, $LOGS/slurmd.log, /var/log/munge/munged.log"
