#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine (munge, slurmctld, slurmd;
# no slurmdbd, no cgroups) for the tests that submit real jobs
# (cmd/fess/slurm_cluster_test.go). Run as root on Debian 12 with
# slurm-wlm and munge installed:
#
#   apt-get install -y slurm-wlm munge && bash scripts/slurm-localhost.sh
#
# Idempotent: an existing munge key is kept, running daemons are reused
# when the node answers idle. Exits non-zero when the node does not come
# up idle within SLURM_WAIT seconds (default 30).
set -uo pipefail

die() { echo "slurm-localhost: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root"
for c in munged munge unmunge slurmctld slurmd sinfo scontrol; do
  command -v "$c" >/dev/null 2>&1 || die "$c not found (apt-get install -y slurm-wlm munge)"
done

host=$(hostname -s)
wait_s=${SLURM_WAIT:-30}

# --- munge -----------------------------------------------------------------
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none || die "cannot write /etc/munge/munge.key"
fi
chown munge:munge /etc/munge /etc/munge/munge.key /var/lib/munge /var/log/munge /run/munge 2>/dev/null || true
chmod 700 /etc/munge
chmod 400 /etc/munge/munge.key
chmod 755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  if command -v runuser >/dev/null 2>&1; then
    runuser -u munge -- munged --force 2>/dev/null || munged --force || true
  else
    munged --force || true
  fi
  for _ in $(seq 1 20); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
    sleep 0.25
  done
fi
munge -n | unmunge >/dev/null 2>&1 || die "munge does not work (munge -n | unmunge failed)"

# --- slurm.conf --------------------------------------------------------------
cpus=$(nproc)
memkb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
mem=$(( memkb / 1024 * 9 / 10 )) # MiB, leaving some slack so slurmd accepts it
[ "$mem" -ge 100 ] || mem=100
mkdir -p /etc/slurm /var/spool/slurm/ctld /var/spool/slurm/d /var/log/slurm /run/slurm
conf=/etc/slurm/slurm.conf
new=$(cat <<EOF
# Written by scripts/slurm-localhost.sh: a one-node test cluster.
ClusterName=fess-ci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# A requeued job waits cred_expire (default 120 s) before it may start again.
AuthInfo=cred_expire=10
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
StateSaveLocation=/var/spool/slurm/ctld
SlurmdSpoolDir=/var/spool/slurm/d
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
MinJobAge=300
KillWait=10
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=ci Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
)
changed=0
if [ ! -f "$conf" ] || [ "$(cat "$conf")" != "$new" ]; then
  printf '%s\n' "$new" > "$conf" || die "cannot write $conf"
  changed=1
fi

state() { timeout 5 sinfo -h -o %T 2>/dev/null | head -n1; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null; }

if [ "$changed" -eq 1 ]; then
  # A new configuration: restart whatever runs.
  for p in /run/slurm/slurmd.pid /run/slurm/slurmctld.pid; do
    if alive "$p"; then kill "$(cat "$p")" 2>/dev/null || true; fi
  done
  sleep 1
fi

# --- daemons -----------------------------------------------------------------
if ! alive /run/slurm/slurmctld.pid; then
  slurmctld || die "slurmctld did not start (see /var/log/slurm/slurmctld.log)"
fi
if ! alive /run/slurm/slurmd.pid; then
  slurmd || die "slurmd did not start (see /var/log/slurm/slurmd.log)"
fi

s=""
for _ in $(seq 1 $(( wait_s * 2 ))); do
  s=$(state)
  case "$s" in
    idle*|mix*|alloc*) break ;;
    down*|drain*|unk*) timeout 5 scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true ;;
  esac
  sleep 0.5
done
sinfo || true
case "$s" in
  idle*|mix*|alloc*) echo "slurm-localhost: node $host is $s" ;;
  *)
    tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 2>/dev/null || true
    die "node $host is not idle after ${wait_s}s (state '${s:-none}')" ;;
esac
