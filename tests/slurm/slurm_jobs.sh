#!/bin/bash
# The slurm suite: each case starts a private single-node Slurm (slurm-up.sh), submits the
# scripts of slurm/ with sbatch exactly as a user would, and stops every daemon it started by
# process id on exit (slurm-down.sh), whatever happened.
#   harness     srun --mpi=pmix -n 2 of an MPI program; a dummy job that traps SIGUSR1 and
#               requeues itself runs twice (tests Slurm, not maec)
#   train       slurm/train.sbatch, 2 tasks, a tiny job: exit 0 and the final checkpoint; the
#               three scripts explain themselves when run outside Slurm
#   requeue     SIGUSR1 mid-run: checkpoint, requeue, resume, finish; the final parameters are
#               bit-identical to an uninterrupted run; a job submitted --dependency=afterok on
#               it starts only after the last segment
#   prep_array  slurm/prep-array.sbatch over 3 slides (2 shards each) plus its check job; a list
#               with a missing slide makes the check fail and name the task to resubmit
#   eval        prep array -> train -> slurm/eval.sbatch (embed + eval) chained by dependencies
#               (skipped, exit 77, where the binary has no `maec eval`)
# Usage: slurm_jobs.sh CASE [MPI_HELLO] (meson passes the mpi_hello program); needs root.
# Run: meson setup build -Dslurm_tests=true && meson test -C build --suite slurm
set -euo pipefail
case_name=$1
mpi_hello=${2:+$(realpath "$2")} # before any cd: meson passes it relative to the build folder
: "${MAEC:?set by meson}" "${MAEC_SOURCE_ROOT:?set by meson}"
here=$MAEC_SOURCE_ROOT/tests/slurm
slurm_dir=$MAEC_SOURCE_ROOT/slurm

if [ "$case_name" = eval ] && ! "$MAEC" eval --help >/dev/null 2>&1; then
  echo "SKIP: '$MAEC eval --help' fails: this maec has no embed/eval (issue 7); slurm/eval.sbatch is untested"
  exit 77
fi

work=$(mktemp -d /tmp/maec-slurm-XXXXXX)
chmod 0755 "$work" # munged (user munge) reaches its socket folder below this one
cluster=$work/cluster

finish() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    for f in "$work"/*.out; do
      [ -e "$f" ] && { echo "--- $f"; cat "$f"; }
    done
    for f in "$cluster"/log/slurmctld.log "$cluster"/log/slurmd.log; do
      [ -e "$f" ] && { echo "--- last lines of $f"; tail -n 20 "$f"; }
    done
  fi
  "$here/slurm-down.sh" "$cluster" || true
  rm -rf "$work"
  exit "$rc"
}
trap finish EXIT

fail() {
  echo "slurm_jobs.sh $case_name: FAIL: $*" >&2
  exit 1
}

"$here/slurm-up.sh" "$cluster"
# shellcheck source=/dev/null # written by slurm-up.sh
. "$cluster/env"
cd "$work"
export MAEC # train.sbatch and the others run this binary (sbatch passes the environment on)

# field JOBID NAME: one field of `scontrol show job`, empty when the job is unknown
field() { scontrol -o show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n1; }

submit() { # sbatch arguments...; prints the job id
  local id
  id=$(sbatch --parsable "$@") || fail "sbatch $* was refused (message above)"
  echo "${id%%;*}"
}

# wait_done JOBID SECONDS: waits for a final state (a requeued job goes back to PENDING and
# is waited for too); fails unless it is COMPLETED with exit code 0:0.
wait_done() {
  local id=$1 limit=$2 state=
  for _ in $(seq $((limit * 5))); do
    state=$(field "$id" JobState)
    case $state in
    COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED) break ;;
    esac
    sleep 0.2
  done
  local code
  code=$(field "$id" ExitCode)
  echo "job $id: $state, exit code $code, restarts $(field "$id" Restarts)"
  if [ "$state" != COMPLETED ] || [ "$code" != 0:0 ]; then
    fail "job $id ended $state with exit code $code (expected COMPLETED 0:0)"
  fi
}

# release_requeued JOBID: waits until the job is requeued, then lets it start now instead of
# after Slurm's requeue delay (its BeginTime is set about 120 s ahead). Not in the second of the
# requeue: slurmd revokes the old start's credential with a time in whole seconds and refuses a
# new start in that same second ("Job credential revoked"; the job then ends FAILED).
release_requeued() {
  local id=$1
  local restarts=0
  for _ in $(seq 300); do
    restarts=$(field "$id" Restarts)
    [ "${restarts:-0}" -ge 1 ] && [ "$(field "$id" JobState)" = PENDING ] && break
    sleep 0.2
  done
  [ "${restarts:-0}" -ge 1 ] || fail "job $id was not requeued within 60 s (state $(field "$id" JobState))"
  sleep 2
  scontrol update JobId="$id" StartTime=now
}

wait_for_line() { # FILE PATTERN SECONDS
  for _ in $(seq $(($3 * 10))); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "'$2' did not appear in $1 within $3 s"
}

expect_in() { # FILE PATTERN
  grep -q -- "$2" "$1" || fail "$1 does not say '$2'"
}

# smoke_args RUN STEPS: maec train arguments for the smoke model on data.h5, STEPS steps,
# checkpoints in RUN only at the end or on a signal, a progress line every step
smoke_args() {
  echo "$MAEC_SOURCE_ROOT/jobs/smoke.yaml --set data.train=$work/data.h5 --set checkpoint.dir=$work/$1" \
    "--set optim.steps=$2 --set optim.warmup_steps=5 --set optim.global_batch=16 --set checkpoint.every_steps=0" \
    "--set log.every_steps=1"
}

case $case_name in
harness)
  : "${mpi_hello:?slurm_jobs.sh harness MPI_HELLO: give the path of the tests/slurm/mpi_hello program}"
  cat >hello.sbatch <<EOF
#!/bin/bash
#SBATCH --ntasks=2 --time=1
set -euo pipefail
srun --mpi=pmix -n 2 "$mpi_hello"
EOF
  id=$(submit --output=hello.out hello.sbatch)
  wait_done "$id" 60
  expect_in hello.out "mpi_hello: 2 ranks, sum 1"
  # Requeue mechanics alone: SIGUSR1 to the batch shell, passed to its step; the shell requeues.
  cat >dummy.sbatch <<'EOF'
#!/bin/bash
#SBATCH --ntasks=1 --time=2 --requeue --open-mode=append
set -euo pipefail
echo "start ${SLURM_RESTART_COUNT:-0}"
[ "${SLURM_RESTART_COUNT:-0}" -ge 1 ] && { echo "second start: done"; exit 0; }
got=0
srun bash -c 'trap "echo step: USR1; exit 0" USR1; echo step: running; while :; do sleep 0.1; done' &
pid=$!
trap 'got=1; kill -USR1 "$pid"' USR1
rc=0; wait "$pid" || rc=$?
while [ "$rc" -gt 128 ] && kill -0 "$pid" 2>/dev/null; do rc=0; wait "$pid" || rc=$?; done
[ "$got" -eq 1 ] && [ "$rc" -eq 0 ] && scontrol requeue "$SLURM_JOB_ID"
EOF
  id=$(submit --output=dummy.out dummy.sbatch)
  wait_for_line dummy.out "step: running" 30
  scancel --batch --signal=USR1 "$id"
  release_requeued "$id"
  wait_done "$id" 60
  expect_in dummy.out "step: USR1"
  expect_in dummy.out "second start: done"
  ;;
train)
  for script in train prep-array eval; do # outside Slurm each says so and what to do instead
    rc=0
    env -u SLURM_JOB_ID bash "$slurm_dir/$script.sbatch" jobs/x.yaml >guard.txt 2>&1 || rc=$?
    [ "$rc" -eq 2 ] || fail "$script.sbatch outside Slurm exited $rc, expected 2"
    expect_in guard.txt "not running under Slurm"
    expect_in guard.txt "sbatch "
  done
  "$MAEC" prep synthetic -o data.h5 --count 192 --size 32 --quiet
  # shellcheck disable=SC2046 # smoke_args is a list of words
  id=$(submit --ntasks=2 --cpus-per-task=1 --time=5 --output=train.out "$slurm_dir/train.sbatch" $(smoke_args run 20))
  wait_done "$id" 120
  [ -f run/checkpoint-00000020.h5 ] || fail "no final checkpoint run/checkpoint-00000020.h5 (run/ holds: $(ls run))"
  expect_in train.out "2 ranks x 1 threads"
  expect_in train.out "memory per rank"
  expect_in train.out "train.sbatch: run finished"
  ;;
requeue)
  "$MAEC" prep synthetic -o data.h5 --count 192 --size 32 --quiet
  steps=400
  # the uninterrupted reference, same ranks and threads, outside Slurm
  # shellcheck disable=SC2046
  mpiexec -n 2 "$MAEC" train $(smoke_args straight $steps) --set threads=1 --quiet
  # shellcheck disable=SC2046
  id=$(submit --ntasks=2 --cpus-per-task=1 --time=10 --output=train.out "$slurm_dir/train.sbatch" $(smoke_args split $steps))
  after=$(submit --dependency=afterok:"$id" --ntasks=1 --time=1 --output=after.out --wrap "ls $work/split")
  wait_for_line train.out "step 20/$steps" 60
  scancel --batch --signal=USR1 "$id"
  release_requeued "$id"
  wait_done "$id" 180
  expect_in train.out "stopped after step"
  expect_in train.out "requeueing job $id"
  expect_in train.out "resumed from"
  expect_in train.out "train.sbatch: run finished"
  stopped=$(sed -n 's/.*stopped after step \([0-9]*\).*/\1/p' train.out)
  [ "$stopped" -lt "$steps" ] || fail "the signal arrived only after the last step ($stopped): nothing was resumed"
  echo "stopped after step $stopped of $steps, requeued, resumed"
  /usr/bin/python3 "$MAEC_SOURCE_ROOT/tests/mpi/compare_checkpoints.py" --exact \
    straight/checkpoint-00000400.h5 split/checkpoint-00000400.h5
  wait_done "$after" 60
  expect_in after.out "checkpoint-00000400.h5"
  ;;
prep_array)
  "$MAKE_TILES" slides 3 256 0 tiled 3
  printf '# three test slides\n%s\n\n%s\n%s\n' "$work"/slides/00000{0,1,2}.tif >slides.txt
  prep=(--tile 32 --min-tissue 0)
  array=$(submit --array=1-3 --output=prep-%a.out "$slurm_dir/prep-array.sbatch" slides.txt tiles "${prep[@]}" --shards 2)
  check=$(submit --dependency=afterany:"$array" --output=check.out "$slurm_dir/prep-array.sbatch" --check slides.txt tiles)
  wait_done "$check" 120
  for t in 1 2 3; do
    [ "$(field "${array}_$t" JobState)" = COMPLETED ] || fail "array task $t: $(field "${array}_$t" JobState)"
  done
  expect_in check.out "complete: 3 slides, 6 files, 192 tiles"
  [ "$(wc -l <tiles/inspect.jsonl)" -eq 6 ] || fail "tiles/inspect.jsonl should describe 6 files"
  # without shards; a slide that does not exist: its task fails, the check names it
  printf '%s\n%s\n' "$work/slides/000000.tif" "$work/slides/missing.tif" >bad.txt
  array=$(submit --array=1-2 --output=bad-%a.out "$slurm_dir/prep-array.sbatch" bad.txt badtiles "${prep[@]}")
  check=$(submit --dependency=afterany:"$array" --output=badcheck.out "$slurm_dir/prep-array.sbatch" --check bad.txt badtiles)
  for _ in $(seq 600); do [ -z "$(squeue -h -j "$check" 2>/dev/null)" ] && break; sleep 0.2; done
  [ "$(field "$check" JobState)" = FAILED ] || fail "the check of an incomplete set ended $(field "$check" JobState), expected FAILED"
  expect_in badcheck.out "missing.tif"
  expect_in badcheck.out "--array=2"
  ;;
eval)
  "$MAKE_TILES" slides 3 256 0 tiled 3
  printf '%s\n' "$work"/slides/00000{0,1,2}.tif >slides.txt
  printf 'slide,label\n000000,a\n000001,b\n000002,a\n' >labels.csv
  array=$(submit --array=1-3 --output=prep-%a.out "$slurm_dir/prep-array.sbatch" slides.txt tiles \
    --tile 32 --min-tissue 0 --labels labels.csv)
  check=$(submit --dependency=afterany:"$array" --output=check.out "$slurm_dir/prep-array.sbatch" --check slides.txt tiles)
  train=$(submit --dependency=afterok:"$check" --ntasks=2 --time=5 --output=train.out "$slurm_dir/train.sbatch" \
    "$MAEC_SOURCE_ROOT/jobs/smoke.yaml" --set "data.train=$work/tiles/*.h5" --set checkpoint.dir="$work/run" \
    --set optim.steps=20 --set optim.global_batch=16)
  evaluation=$(submit --dependency=afterok:"$train" --ntasks=2 --time=5 --output=eval.out "$slurm_dir/eval.sbatch" \
    run "$work/tiles/*.h5" "$work/tiles/*.h5" results)
  wait_done "$check" 120
  wait_done "$train" 180
  wait_done "$evaluation" 180
  expect_in eval.out "results in results/knn.json"
  for f in results/knn.json results/linprobe.json; do [ -s "$f" ] || fail "eval wrote no $f"; done
  ;;
*)
  fail "unknown case (harness, train, requeue, prep_array, eval)"
  ;;
esac
echo "slurm_jobs.sh $case_name: ok"
