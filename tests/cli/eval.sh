#!/bin/bash
# maec eval end to end on synthetic feature files: kNN and the linear probe reach near-perfect
# accuracy on separated clusters and stay near chance on random labels, the JSON report holds
# what it promises, and bad inputs fail with a message naming the file.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
py=/usr/bin/python3 # Debian's, with h5py
make() { "$py" "$MAEC_SOURCE_ROOT/tests/cli/make_features.py" "$@" || fail "make_features.py $*"; }
json_value() { "$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
# at_least FILE KEY MIN / at_most FILE KEY MAX: a number in the JSON report.
at_least() { "$py" -c 'import sys; sys.exit(not float(sys.argv[1]) >= float(sys.argv[2]))' "$(json_value "$1" "$2")" "$3" || fail "$1: $2 = $(json_value "$1" "$2"), want >= $3"; }
at_most() { "$py" -c 'import sys; sys.exit(not float(sys.argv[1]) <= float(sys.argv[2]))' "$(json_value "$1" "$2")" "$3" || fail "$1: $2 = $(json_value "$1" "$2"), want <= $3"; }

make train.h5 --count 800 --sample-seed 1
make test.h5 --count 400 --sample-seed 2
make train-random.h5 --count 800 --sample-seed 1 --random-labels
make test-random.h5 --count 800 --sample-seed 2 --random-labels

# ---- kNN ----
run_ok "$MAEC" eval knn --train train.h5 --test test.h5 --json knn.json
expect_in "$out" "balanced accuracy"
expect_in "$out" "lymphocytes"
expect_in "$out" "confusion matrix"
at_least knn.json accuracy 0.95
at_least knn.json balanced_accuracy 0.95
at_least knn.json macro_f1 0.95
"$py" - knn.json <<'PY' || fail "knn.json does not hold the promised members"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["method"] == "knn" and r["options"] == {"k": 20, "temperature": 0.07}, r
assert r["source_checkpoint"] == "synthetic" and r["pooling"] == "cls", r
assert r["per_class"] == 0 and r["folds"] == 1 and r["accuracy_std"] == 0 and len(r["fold_scores"]) == 1, r
p = r["pooled"]
assert p["count"] == 400 and r["train_count"] == 800 and r["dim"] == 16, r
assert p["accuracy"] == r["accuracy"] == r["fold_scores"][0]["accuracy"], r
assert [c["name"] for c in p["classes"]] == ["tumour", "stroma", "lymphocytes", "mucus"], r
assert sum(map(sum, p["confusion"])) == 400 and sum(c["support"] for c in p["classes"]) == 400, r
PY
run_ok "$MAEC" eval knn --train train-random.h5 --test test-random.h5 --k 10 --temperature 0.1 --json knn-random.json -q
[ -z "$out" ] || fail "--quiet printed: $out"
at_most knn-random.json accuracy 0.35 # chance is 0.25
at_least knn-random.json accuracy 0.15
echo "kNN accuracy: separated $(json_value knn.json accuracy), random labels $(json_value knn-random.json accuracy)"

# ---- linear probe ----
run_ok "$MAEC" eval linprobe --train train.h5 --test test.h5 --epochs 20 --json probe.json
expect_in "$out" "epoch 20/20"
at_least probe.json accuracy 0.95
run_ok "$MAEC" eval linprobe --train train.h5 --test test.h5 --epochs 20 --json probe-again.json -q
cmp -s probe.json probe-again.json || fail "two linear probes with one seed differ"
# A hard task (accuracy near 0.6), so that any difference in the probe shows in the report.
make hard-train.h5 --count 800 --spread 0.3 --sample-seed 1
make hard-test.h5 --count 400 --spread 0.3 --sample-seed 2
for t in 1 2; do
  run_ok "$MAEC" eval linprobe --train hard-train.h5 --test hard-test.h5 --epochs 5 --batch 64 --threads $t \
    --json hard-$t.json -q
done
cmp -s hard-1.json hard-2.json || fail "the linear probe's report differs between 1 and 2 threads"
run_ok "$MAEC" eval linprobe --train train-random.h5 --test test-random.h5 --epochs 20 --json probe-random.json -q
at_most probe-random.json accuracy 0.35
at_least probe-random.json accuracy 0.15
run_ok "$MAEC" eval linprobe --train train.h5 --test test.h5 --epochs 3 --batch 32 --lr 0.05 --weight-decay 1e-4 \
  --warmup-epochs 1 --momentum 0.8 --seed 5 --threads 2 --json - -q
expect_in "$out" '"seed":5'
echo "linear probe accuracy: separated $(json_value probe.json accuracy), random labels $(json_value probe-random.json accuracy)"

# ---- few labels: stratified draws per fold, mean and std, reproducible for a seed ----
run_ok "$MAEC" eval knn --train train.h5 --test test.h5 --per-class 10 --folds 5 --json few.json
expect_in "$out" "fold 5/5"
expect_in "$out" "mean +- std"
at_least few.json accuracy 0.9
"$py" - few.json <<'PY' || fail "few.json does not hold the promised members"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["per_class"] == 10 and r["folds"] == 5 and r["train_count"] == 40, r
assert len(r["fold_scores"]) == 5 and r["accuracy_std"] > 0 and r["macro_f1_std"] > 0, r
p = r["pooled"]
assert p["count"] == 5 * 400 and sum(map(sum, p["confusion"])) == 2000, r
mean = sum(f["accuracy"] for f in r["fold_scores"]) / 5
assert abs(mean - r["accuracy"]) < 1e-9 and abs(mean - p["accuracy"]) < 1e-9, r  # one test set: pooled = mean
PY
echo "kNN with 10 labels per class, 5 folds: accuracy $(json_value few.json accuracy) +- $(json_value few.json accuracy_std)"
run_ok "$MAEC" eval linprobe --train hard-train.h5 --test hard-test.h5 --per-class 5 --epochs 10 --json few-a.json -q
run_ok "$MAEC" eval linprobe --train hard-train.h5 --test hard-test.h5 --per-class 5 --epochs 10 --json few-b.json -q
cmp -s few-a.json few-b.json || fail "two few-shot runs with one seed differ"
run_ok "$MAEC" eval linprobe --train hard-train.h5 --test hard-test.h5 --per-class 5 --epochs 10 --seed 1 --json few-c.json -q
cmp -s few-a.json few-c.json && fail "another --seed gave the same few-shot report"
run_fails 1 "train.h5: class 0 has" "$MAEC" eval knn --train train.h5 --test test.h5 --per-class 500
run_fails 2 "--folds needs --per-class" "$MAEC" eval knn --train train.h5 --test test.h5 --folds 3

# ---- unlabeled samples are left out, with a warning ----
make some-unlabeled.h5 --count 400 --sample-seed 2 --unlabeled 0.25
run_ok "$MAEC" eval knn --train train.h5 --test some-unlabeled.h5 --json part.json -q
expect_in "$err" "unlabeled samples (label -1) left out"
"$py" -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["pooled"]["count"] >= 400)' part.json ||
  fail "the unlabeled test samples were scored"

# ---- features of another checkpoint: a warning ----
make other-checkpoint.h5 --count 100 --sample-seed 2 --checkpoint runs/b/checkpoint-00010.h5
run_ok "$MAEC" eval knn --train train.h5 --test other-checkpoint.h5 -q
expect_in "$err" "from checkpoint synthetic but other-checkpoint.h5 from runs/b/checkpoint-00010.h5"

# ---- help and usage errors (exit 2) ----
for m in "" knn linprobe; do
  run_ok "$MAEC" eval $m --help
  expect_in "$out" "usage: maec eval"
done
run_fails 2 "not an evaluation method" "$MAEC" eval kmeans --train train.h5 --test test.h5
run_fails 2 "--test FILE are required" "$MAEC" eval knn --train train.h5
run_fails 2 "not an option of 'eval knn'" "$MAEC" eval knn --train train.h5 --test test.h5 --epochs 3
run_fails 2 "not an option of 'eval linprobe'" "$MAEC" eval linprobe --train train.h5 --test test.h5 --k 3
run_fails 2 "out of range" "$MAEC" eval knn --train train.h5 --test test.h5 --k 0
run_fails 2 "not a number" "$MAEC" eval linprobe --train train.h5 --test test.h5 --lr fast
run_fails 2 "leaves no epoch" "$MAEC" eval linprobe --train train.h5 --test test.h5 --epochs 5 --warmup-epochs 5
run_fails 2 "unexpected argument" "$MAEC" eval knn --train train.h5 --test test.h5 extra.h5

# ---- bad inputs (exit 1, the file named) ----
make wide.h5 --count 50 --dim 24
make renamed.h5 --count 50 --classes tumour,stroma,lymph,mucus
make fewer.h5 --count 50 --classes tumour,stroma
make mean.h5 --count 50 --pooling mean
make unlabeled.h5 --count 50 --unlabeled 1
make nolabels.h5 --count 50 --no-labels
make empty.h5 --count 0
make dataset.h5 --count 50 --format maec-dataset
run_fails 1 "wide.h5 has 24-dimensional features but test.h5 has 16" "$MAEC" eval knn --train wide.h5 --test test.h5
run_fails 1 "class 2 is 'lymphocytes' in train.h5 but 'lymph' in renamed.h5" "$MAEC" eval knn --train train.h5 --test renamed.h5
run_fails 1 "train.h5 has 4 classes but fewer.h5 has 2" "$MAEC" eval linprobe --train train.h5 --test fewer.h5
run_fails 1 "pools tokens by 'cls' but mean.h5 by 'mean'" "$MAEC" eval knn --train train.h5 --test mean.h5
run_fails 1 "unlabeled.h5: no labelled samples" "$MAEC" eval linprobe --train unlabeled.h5 --test test.h5
run_fails 1 "nolabels.h5: no /labels dataset" "$MAEC" eval knn --train train.h5 --test nolabels.h5
run_fails 1 "empty.h5: /features is empty" "$MAEC" eval knn --train empty.h5 --test test.h5
run_fails 1 "dataset.h5: a 'maec-dataset' file" "$MAEC" eval knn --train train.h5 --test dataset.h5
run_fails 1 "absent.h5: No such file" "$MAEC" eval knn --train absent.h5 --test test.h5
run_fails 1 "cannot write --json" "$MAEC" eval knn --train train.h5 --test test.h5 --json no/such/dir/r.json -q

finish
