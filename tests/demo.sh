#!/bin/bash
# The README's first command ends here (./setup.sh demo, after the build): Fashion-MNIST from
# Debian's dataset-fashion-mnist, MAE pretraining of a small ViT on 2 MPI ranks for about five
# minutes, then the pretrained encoder against a randomly initialised one on the test split:
# kNN and linear probe on frozen features, and few-shot fine-tuning (10 labels per class)
# against the same network trained from scratch. Pictures and a summary table at the end.
#
# Environment: MAEC_DEMO_STEPS (default: the job's 320) shortens the pretraining for a try.
set -euo pipefail
cd "$(dirname "$0")/.."
maec=$PWD/${MAEC_BUILD_DIR:-build}/maec
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
run=runs/demo
steps=()
[ -n "${MAEC_DEMO_STEPS:-}" ] && steps=(--set optim.steps="$MAEC_DEMO_STEPS" --set optim.warmup_steps=2)
say() { printf '\n== demo %s\n' "$*"; }
start=$(date +%s)

say "1/6: Fashion-MNIST -> data/fashion-mnist-{train,test}.h5"
if [ ! -f data/fashion-mnist-test.h5 ]; then MAEC=$maec bash datasets/fashion-mnist.sh; fi
"$maec" inspect data/fashion-mnist-train.h5 data/fashion-mnist-test.h5

say "2/6: pretraining: mpiexec -n 2 maec train jobs/fashion-mnist.yaml (checkpoints in $run)"
rm -rf "$run" # the demo's own folder: each demo run starts fresh
mpiexec -n 2 "$maec" train jobs/fashion-mnist.yaml --set checkpoint.dir="$run" "${steps[@]}"
ckpt=$(ls "$run"/checkpoint-*.h5 | tail -1)

say "3/6: features (mean of the patch tokens) of the pretrained and of a randomly initialised encoder"
for init in pretrained random; do
  extra=(); [ "$init" = random ] && extra=(--random-init)
  for split in train test; do
    mpiexec -n 2 "$maec" embed "$ckpt" "data/fashion-mnist-$split.h5" -o "$run/$init-$split.h5" -q \
      --pool mean "${extra[@]}"
  done
done

say "4/6: kNN (k=20, T=0.07) and linear probe on frozen features"
for init in pretrained random; do
  for method in knn linprobe; do
    "$maec" eval "$method" --train "$run/$init-train.h5" --test "$run/$init-test.h5" --threads 2 -q \
      --json "$run/$method-$init.json"
    echo "$method, $init encoder: accuracy $(sed -n 's/.*"accuracy":\([0-9.]*\).*/\1/p' "$run/$method-$init.json")"
  done
done

say "5/6: few-shot fine-tuning, 10 labels per class, 3 folds: pretrained vs from scratch"
for init in pretrained random; do
  extra=(); [ "$init" = random ] && extra=(--random-init)
  "$maec" eval finetune "$ckpt" --train data/fashion-mnist-train.h5 --test data/fashion-mnist-test.h5 \
    --per-class 10 --folds 3 --threads 2 -q --json "$run/finetune-$init.json" "${extra[@]}"
done

say "6/6: pictures"
"$maec" recon "$ckpt" data/fashion-mnist-test.h5 --indices 0,1,2,3,4,5,6,7 -o "$run/recon.png"
"$maec" plot "$run/metrics.jsonl" -o "$run/curves.svg"

/usr/bin/python3 - "$run" "$(( $(date +%s) - start ))" <<'PY' | tee "$run/summary.md"
import json, sys
run, seconds = sys.argv[1], int(sys.argv[2])
def acc(name):
    with open(f"{run}/{name}.json") as f:
        d = json.load(f)
    return d["accuracy"], d.get("accuracy_std")
print(f"\n| Fashion-MNIST test accuracy | pretrained MAE | random init | difference |")
print(f"|---|---|---|---|")
for label, name in [("kNN (k=20)", "knn"), ("linear probe", "linprobe"),
                    ("fine-tune, 10 labels/class (3 folds)", "finetune")]:
    (p, ps), (r, rs) = acc(f"{name}-pretrained"), acc(f"{name}-random")
    spread = lambda s: f" +- {100 * s:.1f}" if name == "finetune" else ""
    print(f"| {label} | {100 * p:.1f}%{spread(ps)} | {100 * r:.1f}%{spread(rs)} | {100 * (p - r):+.1f} points |")
print(f"\n(demo total {seconds // 60} min {seconds % 60} s; details in {run}/)")
PY
