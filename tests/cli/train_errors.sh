#!/bin/bash
# `maec train` refuses bad jobs with a message that says what, where and what to do, and an
# exit status that is not 0 (2 for a bad job file or command line, 1 for a failed run), on
# 1 and 2 ranks alike, without hanging.
set -uo pipefail
: "${MAEC:?set by meson}" "${MAEC_SOURCE_ROOT:?set by meson}"
work=$(mktemp -d /tmp/maec-cli-XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0

expect_failure() { # name, expected status, expected text in stderr, command...
  local name=$1 status=$2 text=$3
  shift 3
  local rc=0
  timeout 120 "$@" >"$work/out" 2>"$work/err" || rc=$?
  if [ "$rc" -ne "$status" ] || ! grep -qF -- "$text" "$work/err"; then
    echo "FAIL $name: status $rc (expected $status), stderr:"
    sed 's/^/    /' "$work/err"
    echo "    (expected to contain: $text)"
    failures=$((failures + 1))
  else
    echo "ok   $name: $(grep -F -- "$text" "$work/err" | head -1)"
  fi
}

"$MAEC" prep synthetic -o "$work/data.h5" --count 64 --size 32 --quiet || exit 1
job=$MAEC_SOURCE_ROOT/jobs/smoke.yaml
ok=(--set data.train="$work/data.h5" --set checkpoint.dir="$work/run")

cat >"$work/typo.yaml" <<'YAML'
model:
  preset: vit-tiny-light
optim:
  stpes: 10
YAML
expect_failure "misspelt key" 2 "typo.yaml:4:3" "$MAEC" train "$work/typo.yaml"
expect_failure "misspelt key suggestion" 2 "optim.steps" "$MAEC" train "$work/typo.yaml"
cat >"$work/type.yaml" <<'YAML'
model:
  preset: vit-tiny-light
optim:
  steps: ten
YAML
expect_failure "type error" 2 "type.yaml:4:10" "$MAEC" train "$work/type.yaml"
expect_failure "missing job file" 2 "nothere.yaml" "$MAEC" train "$work/nothere.yaml"
expect_failure "no job file" 2 "no job file" "$MAEC" train
expect_failure "unknown option" 2 "--bogus" "$MAEC" train "$job" --bogus
expect_failure "bad --set" 2 "optim.blr" "$MAEC" train "$job" "${ok[@]}" --set optim.blr=-1
expect_failure "missing dataset" 1 "$work/absent.h5" "$MAEC" train "$job" "${ok[@]}" --set data.train="$work/absent.h5"
expect_failure "channel mismatch" 1 "model.in_chans" "$MAEC" train "$job" "${ok[@]}" --set model.in_chans=1
expect_failure "batch larger than data" 1 "fewer than one global batch" "$MAEC" train "$job" "${ok[@]}" --set optim.batch_per_rank=100
expect_failure "uneven global batch, 2 ranks" 1 "does not split evenly" \
  mpiexec -n 2 "$MAEC" train "$job" "${ok[@]}" --set optim.global_batch=15
expect_failure "missing dataset, 2 ranks" 1 "$work/absent.h5" \
  mpiexec -n 2 "$MAEC" train "$job" "${ok[@]}" --set data.train="$work/absent.h5"
expect_failure "batch larger than data, 2 ranks" 1 "fewer than one global batch" \
  mpiexec -n 2 "$MAEC" train "$job" "${ok[@]}" --set optim.batch_per_rank=50
"$MAEC" prep synthetic -o "$work/mixed-00000-of-00002.h5" --count 32 --size 32 --quiet || exit 1
"$MAEC" prep synthetic -o "$work/mixed-00001-of-00002.h5" --count 32 --size 16 --quiet || exit 1
expect_failure "shards that disagree, 2 ranks" 1 "mixed-00001-of-00002.h5" \
  mpiexec -n 2 "$MAEC" train "$job" "${ok[@]}" --set "data.train=$work/mixed-*-of-00002.h5"
# A standard deviation of 1e-40 (a denormal) makes the normalised pixels infinite: the loss is NaN.
expect_failure "non-finite loss" 1 "(not finite); the parameters were not updated" \
  "$MAEC" train "$job" "${ok[@]}" --set checkpoint.dir="$work/nan" --set data.normalize=custom \
  --set "data.mean=[0.5,0.5,0.5]" --set "data.std=[1e-40,1e-40,1e-40]"

# A finished run's directory is not silently reused; --resume auto continues it.
"$MAEC" train "$job" "${ok[@]}" --set optim.steps=4 --set optim.warmup_steps=1 --quiet || { echo "FAIL a 4-step run"; failures=$((failures + 1)); }
# checkpoint.keep_last: a checkpoint every step, the two newest kept.
"$MAEC" train "$job" "${ok[@]}" --set checkpoint.dir="$work/keep" --set optim.steps=5 --set optim.warmup_steps=1 \
  --set checkpoint.every_steps=1 --set checkpoint.keep_last=2 --quiet || { echo "FAIL a 5-step run"; failures=$((failures + 1)); }
kept=$(cd "$work/keep" && echo checkpoint-*.h5)
if [ "$kept" = "checkpoint-00000004.h5 checkpoint-00000005.h5" ]; then echo "ok   keep_last 2: $kept"
else echo "FAIL keep_last 2 kept: $kept"; failures=$((failures + 1)); fi
# maec inspect describes the checkpoint the run wrote.
ckpt=$(ls "$work"/run/checkpoint-*.h5 | tail -1)
if "$MAEC" inspect "$ckpt" | grep -q "step       4 (global batch 16; 1 ranks, allreduce)" &&
   "$MAEC" inspect --json "$ckpt" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["step"] == 4 and "optim:" in d["config"]'; then
  echo "ok   inspect checkpoint"
else
  echo "FAIL inspect checkpoint:"; "$MAEC" inspect "$ckpt" | head -5; failures=$((failures + 1))
fi
# The checkpoint loads into the PyTorch reference model with strict name and shape checks.
if /usr/bin/python3 - "$ckpt" "$MAEC_SOURCE_ROOT/tests/reference" <<'PY'
import sys, h5py, torch
sys.path.insert(0, sys.argv[2])
from mae_torch import mae_model
with h5py.File(sys.argv[1]) as f:
    state = {n: torch.from_numpy(f["model"][n][()]) for n in f["model"]}
model = mae_model(img_size=32, patch_size=4, in_chans=3, embed_dim=64, depth=2, num_heads=2,
                  decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2)
model.load_state_dict(state, strict=True)
PY
then echo "ok   checkpoint loads into PyTorch"; else echo "FAIL checkpoint load into PyTorch"; failures=$((failures + 1)); fi
expect_failure "existing checkpoints" 1 "--resume auto" "$MAEC" train "$job" "${ok[@]}" --set optim.steps=4 --set optim.warmup_steps=1
expect_failure "resume with another model" 1 "another model" \
  "$MAEC" train "$job" "${ok[@]}" --set optim.steps=8 --set optim.warmup_steps=1 --set model.depth=3 --resume auto
expect_failure "resume with another objective" 1 "another model, mask or objective" \
  "$MAEC" train "$job" "${ok[@]}" --set optim.steps=8 --set optim.warmup_steps=1 --set objective.norm_pix_loss=false \
  --resume auto

# ---- objectives ----
listed=$("$MAEC" objectives)
if grep -q "^mae " <<<"$listed" && grep -q "^supmae " <<<"$listed"; then
  echo "ok   maec objectives: $(wc -l <<<"$listed") lines"
else
  echo "FAIL maec objectives:"; echo "$listed"; failures=$((failures + 1))
fi
expect_failure "unknown objective" 2 "objective.name: expected one of mae, supmae" \
  "$MAEC" train "$job" "${ok[@]}" --set objective.name=supmea
expect_failure "key of another objective" 2 "the keys of objective mae are: norm_pix_loss" \
  "$MAEC" train "$job" "${ok[@]}" --set objective.cls_loss_ratio=0.5
supjob=$MAEC_SOURCE_ROOT/jobs/smoke-supmae.yaml
"$MAKE_TILES" "$work/tiles" 4 32 0 png 3 >/dev/null && "$MAEC" prep tiles "$work/tiles" -o "$work/unlabeled.h5" --quiet || exit 1
unlabeled=(--set data.train="$work/unlabeled.h5" --set checkpoint.dir="$work/sup" --set optim.batch_per_rank=2)
expect_failure "supmae without labels" 1 "trains on labels, but $work/unlabeled.h5 has none" \
  "$MAEC" train "$supjob" "${unlabeled[@]}"
expect_failure "supmae without labels, 2 ranks" 1 "has none" mpiexec -n 2 "$MAEC" train "$supjob" "${unlabeled[@]}"
expect_failure "supmae with too few classes" 1 "raise it or set it to 0" \
  "$MAEC" train "$supjob" --set data.train="$work/data.h5" --set checkpoint.dir="$work/sup" --set objective.num_classes=3

echo "$failures failed"
[ "$failures" -eq 0 ]
