#!/bin/bash
# Benchmark (not a test): converts N synthetic 224x224 RGB TIFF tiles (strips, PackBits, like
# NCT-CRC-HE-100K) in 9 class folders with maec prep tiles, and prints tiles/s and what that
# means for the 100,000 tiles of NCT-CRC-HE-100K.
#
#   tests/bench/bench_prep.sh [N] [THREADS...]     (defaults: 5000, "1 2")
#   MAEC=build/maec MAKE_TILES=build/tests/tools/make_tiles tests/bench/bench_prep.sh 5000 1 2
#   meson test -C build --benchmark prep_tiles
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
maec=${MAEC:-$root/build/maec}
make_tiles=${MAKE_TILES:-$root/build/tests/tools/make_tiles}
count=${1:-5000}
shift || true
threads=("${@:-1 2}")
work=$(mktemp -d /tmp/maec-bench-prep-XXXXXX)
trap 'rm -rf "$work"' EXIT

start=$(date +%s.%N)
"$make_tiles" "$work/tiles" "$count" 224 9 tif 3
echo "made $count tiles in $(echo "$(date +%s.%N) - $start" | bc) s ($(du -sh "$work/tiles" | cut -f1))"
cat "$work"/tiles/*/* >/dev/null # the first timed run should not pay for a cold page cache

for t in ${threads[@]}; do
  start=$(date +%s.%N)
  "$maec" prep tiles "$work/tiles" -q -o "$work/out.h5" --force --threads "$t"
  seconds=$(echo "$(date +%s.%N) - $start" | bc)
  rate=$(echo "$count / $seconds" | bc)
  echo "prep tiles: $count tiles, threads $t: $seconds s, $rate tiles/s; 100000 tiles: $(echo "100000 / $rate" | bc) s"
done
ls -la "$work/out.h5"
