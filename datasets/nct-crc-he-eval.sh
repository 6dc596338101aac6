#!/bin/bash
# Evaluates a checkpoint pretrained on NCT-CRC-HE-100K (jobs/nct-crc-he-100k.yaml) on
# CRC-VAL-HE-7K, the usual protocol: frozen features (CLS token) -> weighted kNN (k=20, T=0.07)
# and linear probe trained on 100K, scored on 7K (balanced accuracy is the pathology figure);
# then few-shot fine-tuning with 12 tiles per class (~100 labels, as MMAE) over 5 folds.
#
#   datasets/nct-crc-he-eval.sh CHECKPOINT [DATA_DIR] [OUT_DIR]    (RANKS=N for mpiexec)
# Inputs: DATA_DIR/nct-crc-he-100k-*-of-00016.h5 and DATA_DIR/crc-val-he-7k.h5 from
# datasets/nct-crc-he.sh (NCT_CLASSES=8 for both to evaluate the 8 classes without BACK; then
# set SUFFIX=-8class here).
set -euo pipefail
ckpt=${1:?usage: nct-crc-he-eval.sh CHECKPOINT [DATA_DIR] [OUT_DIR]}
data=${2:-data}
out=${3:-runs/nct-eval}
maec=${MAEC:-maec}
suffix=${SUFFIX:-}
train="$data/nct-crc-he-100k$suffix-*-of-00016.h5"
test="$data/crc-val-he-7k$suffix.h5"
mkdir -p "$out"
set -x
mpiexec -n "${RANKS:-1}" "$maec" embed "$ckpt" "$train" -o "$out/train.h5" --force
mpiexec -n "${RANKS:-1}" "$maec" embed "$ckpt" "$test" -o "$out/test.h5" --force
"$maec" eval knn --train "$out/train.h5" --test "$out/test.h5" --json "$out/knn.json"
"$maec" eval linprobe --train "$out/train.h5" --test "$out/test.h5" --json "$out/linprobe.json"
"$maec" eval finetune "$ckpt" --train "$train" --test "$test" --per-class 12 --folds 5 --json "$out/finetune.json"
