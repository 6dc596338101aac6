#!/bin/bash
# maec prep under mpiexec: the files must be the same, byte for byte in content (h5dump), whether
# one, two or three ranks decode the inputs; skipped inputs and failures behave as on one rank.
set -uo pipefail
source "$(dirname "$0")/../cli/lib.sh"

for ranks in 1 2 3; do
  mkdir -p "r$ranks"
  run_ok mpiexec -n "$ranks" "$MAEC" prep synthetic -q -o "r$ranks/syn.h5" --count 301 --size 12 --shards 3 \
    --val-fraction 0.2 --seed 9
done
for f in syn-00000-of-00003.h5 syn-00001-of-00003.h5 syn-00002-of-00003.h5 syn-val.h5; do
  same_content "r1/$f" "r2/$f"
  same_content "r1/$f" "r3/$f"
done

run_ok "$MAKE_TILES" tiles 20 16 4 mixed 3
head -c 100 tiles/class-1/000005.png >tiles/class-1/000005b.png
run_ok "$MAEC" prep tiles tiles -q -o one.h5 --threads 2
run_ok mpiexec -n 2 "$MAEC" prep tiles tiles -q -o two.h5
same_content one.h5 two.h5
run_ok "$MAEC" inspect two.h5
expect_in "$out" "skipped    1"

idx_images img.idx 40
idx_labels lab.idx $(for i in $(seq 40); do echo $((i % 3)); done)
run_ok "$MAEC" prep idx img.idx lab.idx -q -o idx1.h5 --shards 2 --val-fraction 0.25
run_ok mpiexec -n 2 "$MAEC" prep idx img.idx lab.idx -q -o idx2.h5 --shards 2 --val-fraction 0.25
for f in idx1-00000-of-00002.h5 idx1-00001-of-00002.h5 idx1-val.h5; do same_content "$f" "${f/idx1/idx2}"; done

run_fails 1 "--strict" mpiexec -n 2 "$MAEC" prep tiles tiles -q -o strict.h5 --strict
[ ! -e strict.h5 ] && [ ! -e strict.h5.partial ] || fail "a failed run left strict.h5 or strict.h5.partial"
n=$(grep -c "maec prep: error" <<<"$err")
[ "$n" -eq 1 ] || fail "the error was printed $n times, want once: $err"

finish
