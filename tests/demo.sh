#!/bin/bash
# The README's first command ends here (./setup.sh demo, after the build): make the synthetic
# dataset, pretrain the smoke job's tiny ViT MAE on 2 MPI ranks, and show what it wrote.
# (It becomes the Fashion-MNIST pretraining and evaluation demo when `maec eval` exists.)
set -euo pipefail
cd "$(dirname "$0")/.."
maec=${MAEC_BUILD_DIR:-build}/maec
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
run=runs/demo

echo "== demo 1/3: maec prep synthetic -o data/smoke.h5"
[ -f data/smoke.h5 ] || "$maec" prep synthetic -o data/smoke.h5
"$maec" inspect data/smoke.h5

echo "== demo 2/3: mpiexec -n 2 maec train jobs/smoke.yaml (checkpoints in $run)"
rm -rf "$run" # the demo's own folder: each demo run starts fresh
mpiexec -n 2 "$maec" train jobs/smoke.yaml --set checkpoint.dir="$run"

echo "== demo 3/3: what the run wrote"
ls -l "$run"
"$maec" inspect "$(ls "$run"/checkpoint-*.h5 | tail -1)" 2>/dev/null || true
echo "metrics (first and last line of $run/metrics.jsonl):"
head -1 "$run/metrics.jsonl"
tail -1 "$run/metrics.jsonl"
