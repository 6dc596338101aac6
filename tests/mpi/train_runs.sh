#!/bin/bash
# Distributed training end to end (issue 4 acceptance): runs `maec train` under mpiexec on a
# small synthetic dataset and compares the checkpoints with compare_checkpoints.py.
#   ranks     1, 2 and 4 ranks with the same global batch reach the same parameters
#   modes     allreduce, zero1 and zero2 (also with gradient accumulation) agree, and accumulating
#             two half batches equals one whole batch
#   overlap   gradients reduced during the backward pass (in many small buckets) == reduced after it
#             (bit-identical: all-reduce on 2 ranks, ZeRO-2 with accumulation on 3)
#   resume    20 steps straight == 10 + resume + 10 (bit-identical, same ranks);
#             a checkpoint of 4 ranks resumed on 2 == continuing on 4 (tolerance)
#   sigterm   SIGTERM mid-run leaves a complete checkpoint, exit 0; resuming finishes the run
#   memory    the ZeRO-1 optimizer state that each rank holds (printed at start) shrinks by the
#             rank count: 1, 2 and 4 ranks
# ranks, modes, overlap and resume run for every registered objective (`maec objectives`), each
# with its smoke job (jobs/smoke.yaml for the default, jobs/smoke-NAME.yaml for the others).
set -euo pipefail
case_name=$1
: "${MAEC:?set by meson}" "${MAEC_SOURCE_ROOT:?set by meson}"
work=$(mktemp -d /tmp/maec-mpi-XXXXXX)
trap 'rm -rf "$work"' EXIT
compare() { /usr/bin/python3 "$MAEC_SOURCE_ROOT/tests/mpi/compare_checkpoints.py" "$@"; }

"$MAEC" prep synthetic -o "$work/data.h5" --count 192 --size 32 --quiet

# A small model, 20 steps of global batch 16 with warm-up, clipping and weight decay active.
common=(--set data.train="$work/data.h5" --set optim.steps=20 --set optim.warmup_steps=5
  --set optim.global_batch=16 --set optim.clip_grad=1.0 --set checkpoint.every_steps=0 --set threads=1)
mapfile -t objectives < <("$MAEC" objectives | awk '{ print $1 }')
smoke_job() { # objective -> its smoke job
  local job="$MAEC_SOURCE_ROOT/jobs/smoke-$1.yaml"
  [ "$1" = "${objectives[0]}" ] && job="$MAEC_SOURCE_ROOT/jobs/smoke.yaml"
  [ -f "$job" ] || { echo "objective $1 has no smoke job ($job)" >&2; exit 1; }
  echo "$job"
}
job=$(smoke_job "${objectives[0]}")
train() { # ranks, run name, extra arguments...
  local ranks=$1 run=$2
  shift 2
  mpiexec -n "$ranks" "$MAEC" train "$job" --quiet "${common[@]}" --set checkpoint.dir="$work/$run" "$@"
}
final() { printf "%s/%s/checkpoint-%08d.h5" "$work" "$1" "${2:-20}"; }
# Objectives with batch statistics (BatchNorm) see each micro-batch on its own, so accumulating
# two half batches is not one whole batch for them.
has_batch_statistics() { /usr/bin/python3 -c 'import h5py, sys; f = h5py.File(sys.argv[1], "r"); sys.exit(0 if len(f.get("state", {})) else 1)' "$1"; }

for_each_objective() { # case function: runs it once per objective, each in its own folder
  for name in "${objectives[@]}"; do
    echo "--- objective $name"
    job=$(smoke_job "$name")
    mkdir -p "$work/$name"
    (work="$work/$name" "$1")
  done
}

same_for_ranks() {
  train 1 r1
  train 2 r2
  train 4 r4
  compare "$(final r1)" "$(final r2)" --rtol 1e-5
  compare "$(final r1)" "$(final r4)" --rtol 1e-5
}

same_for_modes() {
  train 2 allreduce --set dist.mode=allreduce
  train 2 zero1 --set dist.mode=zero1
  train 2 zero2 --set dist.mode=zero2
  train 2 zero2acc --set dist.mode=zero2 --set optim.accum_iter=2
  train 2 allreduceacc --set dist.mode=allreduce --set optim.accum_iter=2
  compare "$(final allreduce)" "$(final zero1)" --rtol 1e-5
  compare "$(final allreduce)" "$(final zero2)" --rtol 1e-5
  compare "$(final allreduceacc)" "$(final zero2acc)" --rtol 1e-5
  if ! has_batch_statistics "$(final allreduce)"; then
    compare "$(final allreduce)" "$(final allreduceacc)" --rtol 1e-5 # 2 x 4 images per rank == 8 at once
  fi
}

same_with_overlap() {
  small=(--set dist.bucket_mb=0.01) # about 40 buckets of this model's gradients
  train 2 during "${small[@]}"
  train 2 after "${small[@]}" --set dist.overlap=false
  compare "$(final during)" "$(final after)" --exact
  train 3 z2during "${small[@]}" --set dist.mode=zero2 --set optim.global_batch=12 --set optim.accum_iter=2
  train 3 z2after "${small[@]}" --set dist.mode=zero2 --set optim.global_batch=12 --set optim.accum_iter=2 \
    --set dist.overlap=false
  compare "$(final z2during)" "$(final z2after)" --exact
}

same_after_resume() {
  train 2 straight
  train 2 split --stop-at 10
  test -f "$(final split 10)"
  train 2 split --resume auto
  compare "$(final straight)" "$(final split)" --exact
  train 4 four --stop-at 10 --set dist.mode=zero1
  train 4 four --resume auto --set dist.mode=zero1
  train 4 moved --stop-at 10 --set dist.mode=zero1
  train 2 moved --resume auto --set dist.mode=zero1
  compare "$(final four)" "$(final moved)" --rtol 1e-5
}

case $case_name in
ranks) for_each_objective same_for_ranks ;;
modes) for_each_objective same_for_modes ;;
overlap) for_each_objective same_with_overlap ;;
resume) for_each_objective same_after_resume ;;
sigterm)
  mpiexec -n 2 "$MAEC" train "$MAEC_SOURCE_ROOT/jobs/smoke.yaml" "${common[@]}" --set checkpoint.dir="$work/sig" \
    --set optim.steps=400 --set log.every_steps=1 >"$work/log.txt" 2>&1 &
  launcher=$!
  for _ in $(seq 600); do grep -q "step 3/" "$work/log.txt" 2>/dev/null && break; sleep 0.1; done
  grep -q "step 3/" "$work/log.txt" || { cat "$work/log.txt"; echo "training never reached step 3"; exit 1; }
  pkill -TERM -f "^$MAEC train $MAEC_SOURCE_ROOT/jobs/smoke.yaml --set data.train=$work/data.h5"
  rc=0; wait $launcher || rc=$?
  cat "$work/log.txt"
  [ "$rc" -eq 0 ] || { echo "exit status $rc after SIGTERM, expected 0"; exit 1; }
  grep -q "stopped after step" "$work/log.txt"
  ckpt=$(ls "$work/sig"/checkpoint-*.h5)
  step=$(basename "$ckpt" .h5); step=$((10#${step#checkpoint-}))
  echo "checkpoint after SIGTERM: $ckpt"
  ls -a "$work/sig" | grep -q '\.tmp$' && { echo "a temporary checkpoint file was left behind"; exit 1; }
  [ "$step" -lt 400 ] || { echo "the run ended before the signal; make it longer"; exit 1; }
  train 2 sig --resume auto --set optim.steps=400
  test -f "$(final sig 400)"
  ;;
memory)
  optimizer_mib() { # ranks -> the "optimizer state N MiB" figure the run printed
    mpiexec -n "$1" "$MAEC" train "$MAEC_SOURCE_ROOT/jobs/smoke.yaml" "${common[@]}" --set optim.steps=2 \
      --set optim.warmup_steps=1 --set dist.mode=zero1 --set checkpoint.dir="$work/mem$1" >"$work/mem$1.txt" 2>&1 ||
      { cat "$work/mem$1.txt" >&2; exit 1; }
    grep -m1 "memory per rank" "$work/mem$1.txt" >&2
    sed -n 's/.*optimizer state \([0-9.]*\) MiB.*/\1/p' "$work/mem$1.txt" | head -1
  }
  one=$(optimizer_mib 1)
  two=$(optimizer_mib 2)
  four=$(optimizer_mib 4)
  /usr/bin/python3 - "$one" "$two" "$four" <<'PY'
import sys
one, two, four = map(float, sys.argv[1:])
assert one > 0, one
for ranks, mib in ((2, two), (4, four)):
    # printed to 0.01 MiB; the buffer is padded to a multiple of the world size (a few floats)
    assert abs(mib - one / ranks) <= 0.011, (ranks, mib, one / ranks)
    print(f"zero1 optimizer state per rank: {ranks} ranks {mib} MiB = 1 rank {one} MiB / {ranks}")
PY
  ;;
*) echo "train_runs.sh: unknown case '$case_name'"; exit 2 ;;
esac
echo "train_runs.sh $case_name: ok"
