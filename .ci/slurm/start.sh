#!/usr/bin/env bash
# A single-node Slurm cluster on this host, for tests/workflow/test_slurm.py (and .ci/run, which calls this first).
#
# Installs Debian's slurmctld, slurmd, slurm-client and munge when they are missing, writes /etc/slurm/slurm.conf and
# gres.conf for this host, starts munged, slurmctld and slurmd from here (no systemd) and waits until the node is idle.
# Idempotent: when the cluster is already up with this configuration it returns at once. Prints its start-up time.
# Run as root. Stop it with .ci/slurm/stop.sh.
#
# The cluster: one node (this host, on 127.0.0.1) with all its CPUs, 85 % of its memory and 2 fake GPUs (a gpu GRES
# without device files, so the slurm profile's gpu=1 requests are scheduled; the jobs still run on the CPU), one
# default partition, no accounting database (the executor plugin must use `--slurm-status-command squeue`, which needs
# MinJobAge >= 120 s: it is an hour here, which also keeps finished jobs in `scontrol show job`), jobcomp/filetxt
# recording every finished job in $DIR/jobcomp.log, proctrack/linuxproc and task/none (no cgroups). State, logs and
# pid files live in $PRUNETTS_SLURM_DIR.
set -euo pipefail
t0=$(date +%s.%N)
DIR=${PRUNETTS_SLURM_DIR:-/var/tmp/prunetts-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by prunetts .ci/slurm/start.sh"
HOST=$(hostname -s)

say() { echo "slurm: $*"; }
die() {
    echo "slurm: $*" >&2
    exit 1
}
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
# alive PIDFILE: its process runs (not a zombie left by a killed daemon, not a reused pid of another program)
alive() {
    local pid
    pid=$(cat "$1" 2>/dev/null) && [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$(basename "$1" .pid)" ]] &&
        ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null
}
node_state() { timeout 5 sinfo -h -n "$HOST" -o %t 2>/dev/null | head -n1 || true; }
ready() { [[ $(node_state) =~ ^(idle|mix|alloc)$ ]]; }

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts daemons)"
if [[ -f $CONF ]] && ! grep -qF "$MARK" "$CONF"; then
    die "$CONF exists and was not written by this script: refusing to replace a real cluster's configuration"
fi

# 1. packages (about 20 s the first time)
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null ||
    ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || die "Slurm is not installed and apt-get is not available"
    export DEBIAN_FRONTEND=noninteractive
    pkgs=(slurmctld slurmd slurm-client munge)
    say "installing ${pkgs[*]}"
    apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null; }
fi

# 2. configuration for this host
cpus=$(nproc --all) # --all: not lowered by an OMP_NUM_THREADS in the environment
mem_mb=$(($(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) / 1024 * 85 / 100))
mkdir -p /etc/slurm "$DIR/state" "$DIR/spool"
new_conf=$(
    cat <<CONF
$MARK (rewritten on every start): a single-node test cluster
ClusterName=prunetts
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
GresTypes=gpu
ReturnToService=2
MinJobAge=3600
SchedulerType=sched/backfill
SlurmdParameters=config_overrides
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb Gres=gpu:2 State=UNKNOWN
PartitionName=main Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
)
# two GPUs bound to harmless character devices: Slurm only stats the files (task/none constrains no devices)
new_gres="$MARK
NodeName=$HOST Name=gpu File=/dev/null
NodeName=$HOST Name=gpu File=/dev/zero"
changed=0
if [[ ! -f $CONF ]] || [[ $(cat "$CONF") != "$new_conf" ]] ||
    [[ $(cat /etc/slurm/gres.conf 2>/dev/null) != "$new_gres" ]]; then
    printf '%s\n' "$new_conf" >"$CONF"
    printf '%s\n' "$new_gres" >/etc/slurm/gres.conf
    changed=1
fi

if [[ $changed -eq 0 ]] && alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid" && ready; then
    say "already up (node $HOST $(node_state)); checked in $(elapsed) s"
    exit 0
fi

# 3. munge (authentication between the daemons and the client commands)
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
fi
# (only ask munged for a credential when its pid is alive: with no daemon the client retries for about 10 s)
if ! { alive /run/munge/munged.pid && timeout 5 bash -c 'munge -n | unmunge' >/dev/null 2>&1; }; then
    if alive /run/munge/munged.pid; then kill "$(cat /run/munge/munged.pid)" && sleep 0.5; fi
    rm -f /run/munge/munged.pid
    runuser -u munge -- munged
fi

# 4. the daemons (restarted when the configuration changed)
if [[ $changed -eq 1 ]]; then
    for d in slurmd slurmctld; do
        if alive "$DIR/$d.pid"; then
            pid=$(cat "$DIR/$d.pid")
            kill "$pid"
            for _ in $(seq 100); do alive "$DIR/$d.pid" || break; sleep 0.1; done
        fi
    done
fi
alive "$DIR/slurmctld.pid" || slurmctld
alive "$DIR/slurmd.pid" || slurmd

# 5. wait for the node (ReturnToService=2 brings a node that was down back by itself; resume it if it was drained)
for i in $(seq 300); do
    ready && break
    if [[ $((i % 10)) -eq 0 ]]; then # after a second's grace (the daemons write their pid files once detached)
        for d in slurmctld slurmd; do
            alive "$DIR/$d.pid" || die "$d exited; the end of $DIR/$d.log: $(tail -n 3 "$DIR/$d.log" 2>/dev/null)"
        done
    fi
    if [[ $i -eq 50 ]] && [[ $(node_state) =~ ^(down|drain|drng|fail) ]]; then
        scontrol update NodeName="$HOST" State=RESUME || true
    fi
    sleep 0.1
done
ready || die "node $HOST is '$(node_state)' after $(elapsed) s; see $DIR/slurmctld.log and $DIR/slurmd.log"
say "up in $(elapsed) s (node $HOST $(node_state), $cpus CPUs, $mem_mb MB, 2 fake GPUs; logs in $DIR)"
