#!/bin/bash
# slurm-down.sh DIR: stop the cluster slurm-up.sh DIR started. Cancels its jobs, then stops
# slurmd, slurmctld and munged by the process ids in their pid files (never by name), waiting
# for each to exit (SIGKILL after 10 s). Safe to run twice or after a failed start.
set -euo pipefail
dir=${1:?usage: slurm-down.sh DIR (the folder given to slurm-up.sh)}
export SLURM_CONF=$dir/etc/slurm.conf

ctld_pid_file=$dir/run/slurmctld.pid
if [ -s "$ctld_pid_file" ] && kill -0 "$(cat "$ctld_pid_file")" 2>/dev/null; then
  jobs=$(squeue -h -o %i 2>/dev/null || true)
  if [ -n "$jobs" ]; then
    # shellcheck disable=SC2086 # one job id per word
    scancel $jobs 2>/dev/null || true
    for _ in $(seq 100); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.1; done
  fi
fi

# running: the process exists, is not a zombie (stopped daemons linger as <defunct> where PID 1
# does not reap them) and is the named program (a stale pid file may name a reused id)
running() { # pid, program
  [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" != "" ] && [ "$(ps -o stat= -p "$1" | cut -c1)" != Z ] &&
    [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]
}

for daemon in slurmd:run/slurmd.pid slurmctld:run/slurmctld.pid munged:munge/munged.pid; do
  name=${daemon%%:*} pid_file=$dir/${daemon#*:}
  [ -s "$pid_file" ] || continue
  pid=$(cat "$pid_file")
  running "$pid" "$name" || continue
  kill "$pid"
  for _ in $(seq 100); do running "$pid" "$name" || break; sleep 0.1; done
  if running "$pid" "$name"; then
    echo "slurm-down: $name ($pid) did not exit on SIGTERM within 10 s; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  echo "slurm-down: stopped $name ($pid)"
done
