#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for trying the sharded sweep (sweep.sh) and for its
# end-to-end test: munged with its own key, slurmctld and slurmd on this host, a minimal slurm.conf,
# everything (key, sockets, state, logs) under one directory. Needs Debian's slurmctld, slurmd,
# slurm-client and munge (scripts/install-deps.sh installs them) and root (slurmd starts jobs as
# their user).
#
#   bash scripts/slurm/local-cluster.sh start DIR    # prints: export SLURM_CONF=DIR/slurm.conf
#   bash scripts/slurm/local-cluster.sh stop DIR     # stops the daemons it started, keeps DIR's logs
#   bash scripts/slurm/local-cluster.sh status DIR   # exit 0 when the node is up and idle or busy
#
# The node has the machine's CPUs (nproc) and 90% of its memory; one partition, "local". Ports:
# PED_SLURM_PORT (slurmctld, default 16817) and PED_SLURM_PORT + 1 (slurmd), away from a real
# cluster's 6817/6818. Task affinity binds each job to the CPUs it asked for (--cpus-per-task).
set -euo pipefail

usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
action=$1
dir=$2
case "$action" in start | stop | status) ;; *) usage ;; esac

port=${PED_SLURM_PORT:-16817}
conf=$dir/slurm.conf

pid_of() { if [ -s "$1" ]; then cat "$1" 2>/dev/null || true; fi; }

stop() {
  local name pidfile pid
  for name in slurmd slurmctld munged; do
    pidfile=$dir/$name.pid
    pid=$(pid_of "$pidfile")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}

node_state() { SLURM_CONF=$conf sinfo -h -N -o '%t' 2>/dev/null | head -n 1; }

case "$action" in
stop)
  [ -d "$dir" ] || { echo "$0: $dir: no such directory" >&2; exit 2; }
  stop
  echo "local-cluster: stopped (logs in $dir)"
  exit 0
  ;;
status)
  state=$(node_state)
  case "$state" in
  idle* | mix* | alloc* | comp*) echo "local-cluster: node $state"; exit 0 ;;
  *) echo "local-cluster: not up (node state '${state:-unreachable}'; logs in $dir)" >&2; exit 1 ;;
  esac
  ;;
esac

# start
if [ "$(id -u)" -ne 0 ]; then
  echo "$0: start needs root: slurmd runs each job as the user who submitted it" >&2
  exit 2
fi
for program in munged slurmctld slurmd sbatch sinfo; do
  command -v "$program" >/dev/null || {
    echo "$0: $program not found: apt-get install munge slurmctld slurmd slurm-client (scripts/install-deps.sh)" >&2
    exit 2
  }
done
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
conf=$dir/slurm.conf
if [ -n "$(pid_of "$dir/slurmctld.pid")" ] && kill -0 "$(pid_of "$dir/slurmctld.pid")" 2>/dev/null; then
  echo "$0: a cluster is already running from $dir (stop it first)" >&2
  exit 2
fi
mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
chmod 700 "$dir/munge"
if [ ! -s "$dir/munge/munge.key" ]; then
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge/munge.key"
fi
socket=$dir/munge/munge.socket
host=$(hostname -s)
cpus=$(nproc --all)
memory_mib=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)

cat > "$conf" <<CONF
# Written by scripts/slurm/local-cluster.sh: one node, this host.
ClusterName=pedestrian
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/affinity
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=$((memory_mib / cpus))
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=3600
KillWait=5
NodeName=$host CPUs=$cpus RealMemory=$memory_mib State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

# A failed start leaves nothing running.
trap 'code=$?; if [ $code -ne 0 ]; then stop; echo "$0: start failed; logs in $dir/log" >&2; fi' EXIT

munged --force --key-file="$dir/munge/munge.key" --socket="$socket" --pid-file="$dir/munged.pid" \
  --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed"
SLURM_CONF=$conf slurmctld -f "$conf"
SLURM_CONF=$conf slurmd -f "$conf"

for _ in $(seq 60); do
  case "$(node_state)" in idle* | mix* | alloc*) break ;; esac
  sleep 1
done
state=$(node_state)
case "$state" in
idle* | mix* | alloc*) ;;
*)
  echo "$0: node $host did not come up within 60 s (state '${state:-unreachable}'); last log lines:" >&2
  tail -n 5 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" "$dir/log/munged.log" >&2 2>/dev/null || true
  exit 1
  ;;
esac
trap - EXIT
echo "local-cluster: node $host up ($cpus CPUs, $memory_mib MiB), partition local"
echo "export SLURM_CONF=$conf"
