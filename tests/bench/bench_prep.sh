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

since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

start=$(date +%s.%N)
"$make_tiles" "$work/tiles" "$count" 224 9 tif 3
echo "made $count tiles in $(since "$start") s ($(du -sh "$work/tiles" | cut -f1))"
find "$work/tiles" -type f -exec cat {} + >/dev/null # the first timed run should not pay for a cold page cache

for t in ${threads[@]}; do
  start=$(date +%s.%N)
  "$maec" prep tiles "$work/tiles" -q -o "$work/out.h5" --force --threads "$t"
  seconds=$(since "$start")
  awk -v n="$count" -v s="$seconds" -v t="$t" 'BEGIN {
    printf "prep tiles: %d tiles, threads %s: %.1f s, %.0f tiles/s; 100000 tiles: %.0f s\n", n, t, s, n / s, 100000 * s / n }'
done
ls -la "$work/out.h5"
