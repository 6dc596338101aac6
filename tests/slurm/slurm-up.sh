#!/bin/bash
# slurm-up.sh DIR: start a private single-node Slurm on this machine (munged, slurmctld, slurmd),
# every file of it (configuration, state, logs, pid files, munge socket and key) under DIR, and
# wait until its node is idle. Stop it with slurm-down.sh DIR, which kills exactly these daemons
# by process id. Clients find the cluster through SLURM_CONF:
#
#   tests/slurm/slurm-up.sh /tmp/cluster && . /tmp/cluster/env && sinfo
#   tests/slurm/slurm-down.sh /tmp/cluster
#
# Needs root (slurmd runs jobs as their submitter) and the Debian packages slurm-wlm and munge,
# installed here when missing. SLURM_TEST_PORTS="CTLD SLURMD" picks other ports (default
# "6817 6818") when another Slurm already uses those. Slurm 22.05 as in Debian 12; the settings
# are explained in docs/hpc.md ("A test cluster on one machine").
set -euo pipefail
dir=${1:?usage: slurm-up.sh DIR (an empty or new folder for the cluster files)}
read -r ctld_port slurmd_port <<<"${SLURM_TEST_PORTS:-6817 6818}"
node=localhost

fail() {
  echo "slurm-up: $*" >&2
  for log in "$dir"/log/*.log "$dir/munge/munged.log"; do
    [ -s "$log" ] && { echo "--- last lines of $log" >&2; tail -n 15 "$log" >&2; }
  done
  exit 1
}

[ "$(id -u)" -eq 0 ] || fail "needs root: slurmd must be able to run jobs as any user (run the suite as root)"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  echo "slurm-up: installing slurm-wlm and munge (Debian packages)"
  apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends slurm-wlm munge >/dev/null ||
    fail "apt-get install slurm-wlm munge failed: run 'apt-get update' and retry, or install them by hand"
fi
for port in "$ctld_port" "$slurmd_port"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then # something accepts connections there
    fail "TCP port $port is already in use (another Slurm?): stop it, or set SLURM_TEST_PORTS=\"CTLD SLURMD\""
  fi
done
if [ -s "$dir/run/slurmctld.pid" ] && kill -0 "$(cat "$dir/run/slurmctld.pid")" 2>/dev/null; then
  fail "a cluster from $dir is still running: stop it first with slurm-down.sh $dir"
fi

# Fresh state on every start: a test cluster keeps no jobs from a previous run.
rm -rf "${dir:?}/etc" "$dir/spool" "$dir/log" "$dir/run" "$dir/munge"
mkdir -p "$dir"/{etc,spool/ctld,spool/d,log,run,munge,cgroup-none}
chmod 0755 "$dir"
chown munge:munge "$dir/munge"
chmod 0755 "$dir/munge" # munged: socket folder readable by all, key file 0600
runuser -u munge -- mungekey --create --keyfile="$dir/munge/munge.key" >/dev/null ||
  fail "mungekey could not create a key in $dir/munge"

# The node's hardware as slurmd sees it, under a fixed name (slurmd -N), with 10% memory kept back.
hw=$(slurmd -C | head -n1 | sed 's/^NodeName=[^ ]* //')
mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
hw=${hw/RealMemory=$mem/RealMemory=$((mem * 9 / 10))}

cat >"$dir/etc/slurm.conf" <<CONF
ClusterName=maectest
SlurmctldHost=$node
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/spool/ctld
SlurmdSpoolDir=$dir/spool/d
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
PlugStackConfig=$dir/etc/plugstack.conf
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=pmix
ReturnToService=2
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=60
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.log
NodeName=$node $hw State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
# slurmd 22.05 always loads a cgroup plugin and dies ("No filesystem mounted on /sys/fs/cgroup")
# where none is mounted; an empty mount point lets it start with or without cgroups.
cat >"$dir/etc/cgroup.conf" <<CONF
CgroupPlugin=cgroup/v1
CgroupMountpoint=$dir/cgroup-none
CONF
: >"$dir/etc/plugstack.conf"
echo "export SLURM_CONF=$dir/etc/slurm.conf" >"$dir/env"
export SLURM_CONF=$dir/etc/slurm.conf

runuser -u munge -- munged --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
  --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" ||
  fail "munged did not start"
munge --socket="$dir/munge/munge.socket" -n | unmunge --socket="$dir/munge/munge.socket" >/dev/null ||
  fail "munge credentials do not round-trip through $dir/munge/munge.socket"
slurmctld -f "$SLURM_CONF" || fail "slurmctld did not start"
slurmd -f "$SLURM_CONF" -N "$node" || fail "slurmd did not start"
for _ in $(seq 100); do
  if [ "$(sinfo -h -o %T 2>/dev/null)" = idle ]; then
    echo "slurm-up: node $node idle; clients need: . $dir/env"
    exit 0
  fi
  sleep 0.1
done
fail "node $node did not become idle within 10 s (sinfo: $(sinfo -h 2>&1))"
