#!/bin/bash
# maec prep on the real inputs of ../shared/data: NCT-CRC-HE tiles (TIFF, PackBits) and two
# Aperio slides (JPEG and JPEG 2000). Skipped (exit 77) when the folder is absent.
# MAEC_SHARED_DATA points elsewhere (e.g. for a checkout that is not beside shared/).
set -uo pipefail
data=${MAEC_SHARED_DATA:-$(cd "$MAEC_SOURCE_ROOT/.." && pwd)/shared/data}
if [ ! -d "$data" ]; then
  echo "skipped: $data is absent (it holds the real test images; see DESIGN.md; set MAEC_SHARED_DATA)"
  exit 77
fi
source "$(dirname "$0")/../cli/lib.sh"
cmu=$data/wsi/CMU-1-Small-Region.svs
tcga=$data/wsi/tcga-cr-7395-01a-01-ts1.svs

# ---- tiles ----
run_ok "$MAEC" prep tiles "$data/tiles/nct-crc-he" -q -o nct.h5 --mpp 0.5
run_ok "$MAEC" inspect nct.h5
expect_in "$out" "mpp        0.5"
expect_in "$out" "9 of 224x224x3"
expect_in "$out" "ADI=1 BACK=1 DEB=1 LYM=1 MUC=1 MUS=1 NORM=1 STR=1 TUM=1"
# H&E: red above blue above green on average.
run_ok "$MAEC" inspect --json nct.h5
mean=$(sed 's/.*"mean":\[\([^]]*\)\].*/\1/' <<<"$out")
awk -F, '{ exit !($1 > $3 && $3 > $2 && $1 < 0.9) }' <<<"$mean" || fail "unlikely H&E channel means: $mean"
run_ok "$MAEC" prep tiles "$data/tiles/nct-crc-he" -q -o small.h5 --resize 112 --center-crop 96 --shards 3
run_ok "$MAEC" inspect small-00002-of-00003.h5
expect_in "$out" "3 of 96x96x3"
run_ok "$MAEC" prep tiles "$data/tiles/crc-val-he-7k" -q -o val7k.h5
run_ok "$MAEC" inspect val7k.h5
expect_in "$out" "NORM=1"

# ---- whole slides ----
run_ok "$MAEC" prep wsi "$cmu" "$tcga" -q -o all.h5 --min-tissue 0
run_ok "$MAEC" inspect --json all.h5
expect_in "$out" '"count":402,' # the whole grids: 9 x 13 and 19 x 15 tiles
run_ok mpiexec -n 2 "$MAEC" prep wsi "$cmu" "$tcga" -q -o all2.h5 --min-tissue 0
same_content all.h5 all2.h5
echo "not a slide" >fake.svs
run_ok "$MAEC" prep wsi "$cmu" fake.svs -q -o withbad.h5 --min-tissue 0
expect_in "$err" "fake.svs"
run_ok "$MAEC" inspect withbad.h5
expect_in "$out" "skipped    1"
run_ok "$MAEC" prep wsi "$cmu" "$tcga" -q -o tissue.h5
run_ok "$MAEC" inspect --json tissue.h5
n=$(sed 's/.*"count":\([0-9]*\),"height".*/\1/' <<<"$out")
[ "$n" -gt 100 ] && [ "$n" -lt 402 ] || fail "tissue detection kept $n of 402 tiles"
h5dump -d /meta/x -d /meta/y -y tissue.h5 | awk '/DATA/ { data = 1; next } data && /}/ { data = 0 }
  data { gsub(/,/, " "); for (i = 1; i <= NF; i++) if ($i % 224) bad = 1 } END { exit bad }' ||
  fail "/meta/x, /meta/y hold positions off the 224-pixel grid"
run_ok "$MAEC" prep wsi "$cmu" -q -o mpp.h5 --mpp 1.0 --tile 112
run_ok "$MAEC" inspect mpp.h5
expect_in "$out" "mpp        1"
run_fails 1 "no tiles to convert" "$MAEC" prep wsi "$cmu" -o none.h5 --tile 2048 --min-tissue 1
printf 'slide,label\nCMU-1-Small-Region,tumor\ntcga-cr-7395-01a-01-ts1.svs,tumor\n' >labels.csv
run_ok "$MAEC" prep wsi "$cmu" "$tcga" -q -o lab.h5 --labels labels.csv --val-fraction 0.5 --seed 1
run_ok "$MAEC" inspect lab-val.h5 lab.h5
[ "$(h5dump -d /meta/sources lab-val.h5 | grep -c '\.svs')" -eq 1 ] || fail "the validation file holds parts of two slides"
printf 'slide,label\nCMU-1-Small-Region,normal\n' >partial.csv
run_fails 1 "has no row in partial.csv" "$MAEC" prep wsi "$cmu" "$tcga" -o p.h5 --labels partial.csv
run_fails 1 "cannot be honoured" "$MAEC" prep wsi "$tcga" -o p.h5 --mpp 0.5 --strict

finish
