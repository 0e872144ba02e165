#!/usr/bin/env bash
# Stops the test cluster that .ci/slurm/start.sh started: slurmd, slurmctld and munged, by their pid files.
set -euo pipefail
DIR=${PRUNETTS_SLURM_DIR:-/var/tmp/prunetts-slurm}
# only the cluster start.sh set up (its slurm.conf carries the mark): never a real host's munged or daemons
if ! grep -qF "# written by prunetts .ci/slurm/start.sh" /etc/slurm/slurm.conf 2>/dev/null; then
    echo "slurm: /etc/slurm/slurm.conf was not written by .ci/slurm/start.sh: nothing of ours to stop" >&2
    exit 1
fi
for pidfile in "$DIR/slurmd.pid" "$DIR/slurmctld.pid" /run/munge/munged.pid; do
    [[ -s $pidfile ]] || continue
    pid=$(cat "$pidfile")
    kill -0 "$pid" 2>/dev/null || continue
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    echo "slurm: stopped $(basename "$pidfile" .pid) ($pid)"
done
