#!/usr/bin/env bash
# Stop the single-node cluster of `.ci/slurm-up.sh`: slurmd, slurmctld, then munged (unless --keep-munge), each by
# the pid its pid file names. Jobs still running are killed with slurmd; slurmctld keeps their records in
# /var/spool/slurmctld for the next start. Packages and configuration stay.
set -euo pipefail

stop() {  # stop NAME PIDFILE: SIGTERM, then wait up to 10 s for the process to end
    local name=$1 pidfile=$2 pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        echo "slurm-down: stopping $name (pid $pid)"
        kill "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$pidfile"
}

stop slurmd /run/slurmd.pid
stop slurmctld /run/slurmctld.pid
if [ "${1:-}" != "--keep-munge" ]; then
    stop munged /run/munge/munged.pid
fi
