#!/bin/bash
# maec embed end to end: 1 and 2 ranks give identical features, both poolings and the random-
# init baseline work, the features feed maec eval, and bad inputs are refused with a message.
set -uo pipefail
: "${MAEC:?set by meson}" "${MAEC_SOURCE_ROOT:?set by meson}" "${MAKE_TILES:?set by meson}"
work=$(mktemp -d /tmp/maec-embed-XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
ok() { echo "ok   $*"; }
py() { /usr/bin/python3 - "$@"; }

"$MAEC" prep synthetic -o "$work/data.h5" --count 96 --quiet || exit 1
"$MAEC" prep synthetic -o "$work/gray.h5" --count 8 --channels 1 --quiet || exit 1
"$MAEC" prep synthetic -o "$work/three.h5" --count 30 --classes 3 --quiet || exit 1
"$MAKE_TILES" "$work/tiles" 4 32 0 png 3 >/dev/null && "$MAEC" prep tiles "$work/tiles" -o "$work/unlabeled.h5" --quiet || exit 1
"$MAEC" train "$MAEC_SOURCE_ROOT/jobs/smoke.yaml" --quiet --set data.train="$work/data.h5" \
  --set checkpoint.dir="$work/run" --set optim.steps=4 --set optim.warmup_steps=1 || exit 1
ckpt=$(ls "$work"/run/checkpoint-*.h5 | tail -1)

"$MAEC" embed "$ckpt" "$work/data.h5" -o "$work/one.h5" -q --batch 7 || fail "embed on 1 rank"
mpiexec -n 2 "$MAEC" embed "$ckpt" "$work/data.h5" -o "$work/two.h5" -q --batch 7 || fail "embed on 2 ranks"
py "$work/one.h5" "$work/two.h5" <<'PY' && ok "1 and 2 ranks: identical features" || fail "1 and 2 ranks differ"
import sys, h5py, numpy as np
a, b = (h5py.File(p) for p in sys.argv[1:3])
assert a["features"].shape == (96, 64), a["features"].shape
assert np.array_equal(a["features"][()], b["features"][()])
assert np.array_equal(a["labels"][()], b["labels"][()]) and a["labels"][()].max() > 0
PY
"$MAEC" embed "$ckpt" "$work/data.h5" -o "$work/mean.h5" -q --pool mean || fail "--pool mean"
"$MAEC" embed "$ckpt" "$work/data.h5" -o "$work/rand.h5" -q --random-init || fail "--random-init"
py "$work/one.h5" "$work/mean.h5" "$work/rand.h5" <<'PY' && ok "pooling and random init change the features" || fail "pool/random"
import sys, h5py, numpy as np
one, mean, rand = (h5py.File(p)["features"][()] for p in sys.argv[1:4])
assert not np.allclose(one, mean) and not np.allclose(one, rand)
PY
"$MAEC" eval knn --train "$work/one.h5" --test "$work/one.h5" >"$work/knn.txt" 2>&1 && ok "eval knn reads the features" ||
  { fail "eval knn on embedded features"; cat "$work/knn.txt"; }

# maec eval finetune end to end: a short run writes its report; --random-init trains from scratch.
"$MAEC" eval finetune "$ckpt" --train "$work/data.h5" --test "$work/data.h5" --per-class 2 --folds 2 \
  --epochs 2 -q --json "$work/ft.json" >"$work/ft.txt" 2>&1 || { fail "eval finetune"; cat "$work/ft.txt"; }
py "$work/ft.json" <<'PY' && ok "eval finetune report" || fail "eval finetune report"
import sys, json
d = json.load(open(sys.argv[1]))
assert d["method"] == "finetune" and d["folds"] == 2 and len(d["fold_accuracy"]) == 2
assert 0 <= d["accuracy"] <= 1 and "confusion" in d["last_fold"]
PY

expect() { # name, text, command...
  local name=$1 text=$2; shift 2
  if "$@" >"$work/out" 2>"$work/err"; then fail "$name: exit status 0"; return; fi
  grep -qF -- "$text" "$work/err" && ok "$name: $(head -1 "$work/err")" || { fail "$name"; cat "$work/err"; }
}
expect "existing output" "--force" "$MAEC" embed "$ckpt" "$work/data.h5" -o "$work/one.h5"
expect "channel mismatch" "channels" "$MAEC" embed "$ckpt" "$work/gray.h5" -o "$work/x.h5"
expect "not a checkpoint" "not a maec checkpoint" "$MAEC" embed "$work/data.h5" "$work/data.h5" -o "$work/x.h5"
expect "missing checkpoint" "absent.h5" "$MAEC" embed "$work/absent.h5" "$work/data.h5" -o "$work/x.h5"
expect "missing output option" "-o FEATURES.h5" "$MAEC" embed "$ckpt" "$work/data.h5"
expect "bad pool" "--pool" "$MAEC" embed "$ckpt" "$work/data.h5" -o "$work/x.h5" --pool max
expect "finetune: channel mismatch" "channels" "$MAEC" eval finetune "$ckpt" --train "$work/gray.h5" --test "$work/gray.h5"
expect "finetune: too few per class" "fewer than" "$MAEC" eval finetune "$ckpt" --train "$work/data.h5" --test "$work/data.h5" --per-class 50 --epochs 1
expect "finetune: missing --test" "--test DATA" "$MAEC" eval finetune "$ckpt" --train "$work/data.h5"
expect "finetune: other classes" "must share their classes" \
  "$MAEC" eval finetune "$ckpt" --train "$work/data.h5" --test "$work/three.h5"
expect "finetune: unlabeled train" "needs a labelled dataset" \
  "$MAEC" eval finetune "$ckpt" --train "$work/unlabeled.h5" --test "$work/data.h5"
expect "2 ranks, channel mismatch" "channels" mpiexec -n 2 "$MAEC" embed "$ckpt" "$work/gray.h5" -o "$work/x.h5"

echo "$failures failed"
[ "$failures" -eq 0 ]
