#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine (for the l1ml synth tests): munge, slurmctld and slurmd as root,
# cores and memory scheduled (select/cons_tres, CR_Core_Memory), jobs over their memory request killed
# (OverMemoryKill). Installs Debian's slurm-wlm and munge when missing. Idempotent: exits 0 when already up.
# Usage: sudo scripts/start-slurm.sh        Stop: scripts/start-slurm.sh stop
set -euo pipefail
CONF_DIR=/etc/slurm
if [ "${1:-}" = stop ]; then
  pkill -x slurmd || true; pkill -x slurmctld || true
  for _ in $(seq 1 20); do pgrep -x 'slurmd|slurmctld' >/dev/null || exit 0; sleep 0.5; done
  echo "start-slurm.sh: Slurm daemons still running after 10 s" >&2; exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "start-slurm.sh: needs root (it installs and starts system daemons)" >&2
  exit 1
fi
if timeout 5 sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
  exit 0
fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  echo "installing Debian packages: slurm-wlm munge" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

# munge: a key, and the daemon
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
[ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge 2>/dev/null || true
chmod 400 /etc/munge/munge.key
pgrep -x munged >/dev/null || su -s /bin/sh munge -c "munged --force" 2>/dev/null || munged --force

host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
mkdir -p "$CONF_DIR" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat > "$CONF_DIR/slurm.conf" <<EOF
# written by l1ml scripts/start-slurm.sh
ClusterName=l1ml
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=1
JobAcctGatherParams=OverMemoryKill
AccountingStorageType=accounting_storage/none
MinJobAge=3600
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
MessageTimeout=30
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 1 30); do
  if timeout 5 sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
    echo "Slurm is up: node $host, $cpus cores, $mem_mb MB" >&2
    exit 0
  fi
  scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
  sleep 1
done
echo "start-slurm.sh: Slurm did not come up; see /var/log/slurm/" >&2
exit 1
