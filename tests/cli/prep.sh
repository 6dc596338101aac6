#!/bin/bash
# maec prep and maec inspect end to end: every kind of input, the output options, and every kind
# of bad input (each must fail or skip with a message naming the file and the reason).
# Needs MAEC (the binary) and MAKE_TILES (tests/tools/make_tiles) in the environment.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

# ---- synthetic, inspect ----
run_ok "$MAEC" prep synthetic -q -o syn.h5
run_ok "$MAEC" inspect syn.h5
expect_in "$out" "1024 of 32x32x3"
run_ok "$MAEC" inspect --json syn.h5
expect_in "$out" '"count":1024'
expect_in "$out" '"skipped":0'
run_ok "$MAEC" prep synthetic -q -o gray.h5 --count 50 --size 16 --channels 1 --classes 5 --seed 3 --deflate 6
run_ok "$MAEC" inspect gray.h5
expect_in "$out" "50 of 16x16x1"
run_ok "$MAEC" prep --help
expect_in "$out" "--val-fraction"
run_ok "$MAEC" inspect --help

# ---- usage errors (exit 2) ----
run_fails 2 "not a kind of input" "$MAEC" prep pictures -o x.h5
run_fails 2 "-o OUT.h5 is required" "$MAEC" prep synthetic
run_fails 2 "does not apply to 'prep tiles'" "$MAEC" prep tiles . -o x.h5 --labels x.csv
run_fails 2 "takes 2 input paths" "$MAEC" prep idx one.gz -o x.h5
run_fails 2 "needs at least one folder" "$MAEC" prep tiles -o x.h5
run_fails 2 "out of range" "$MAEC" prep synthetic -o x.h5 --val-fraction 2
run_fails 2 "at least one dataset file" "$MAEC" inspect

# ---- existing output, --force, no partial files left ----
run_fails 1 "already exists; pass --force" "$MAEC" prep synthetic -q -o syn.h5
run_ok "$MAEC" prep synthetic -q -o syn.h5 --force --count 10
run_ok "$MAEC" inspect syn.h5
expect_in "$out" "10 of 32x32x3"

# ---- shards and validation ----
run_ok "$MAEC" prep synthetic -q -o sh.h5 --count 103 --shards 4 --val-fraction 0.2
for f in sh-00000-of-00004.h5 sh-00001-of-00004.h5 sh-00002-of-00004.h5 sh-00003-of-00004.h5 sh-val.h5; do
  [ -f "$f" ] || fail "$f was not written"
done
total=0
for f in sh-0000*-of-00004.h5 sh-val.h5; do
  run_ok "$MAEC" inspect --json "$f"
  n=$(sed 's/.*"count":\([0-9]*\),"height".*/\1/' <<<"$out")
  total=$((total + n))
done
[ "$total" -eq 103 ] || fail "shards and validation hold $total samples, want 103"
run_ok "$MAEC" inspect sh-val.h5
expect_in "$out" "split val"
run_fails 1 "needs at least 8 training samples" "$MAEC" prep synthetic -q -o few.h5 --count 5 --shards 8

# ---- tiles: every format, class folders ----
run_ok "$MAKE_TILES" tiles 12 24 3 mixed 3
run_ok "$MAEC" prep tiles tiles -q -o tiles.h5
run_ok "$MAEC" inspect tiles.h5
expect_in "$out" "12 of 24x24x3"
expect_in "$out" "class-0=4 class-1=4 class-2=4"
run_ok "$MAKE_TILES" unlabeled 5 24 0 png 1
run_ok "$MAEC" prep tiles unlabeled -q -o unlabeled.h5
run_ok "$MAEC" inspect unlabeled.h5
expect_in "$out" "unlabeled=5"
run_ok "$MAKE_TILES" tiles2 8 24 4 png 3
run_ok "$MAEC" prep tiles tiles tiles2 -q -o two.h5
run_ok "$MAEC" inspect two.h5
expect_in "$out" "class-0=6 class-1=6 class-2=6 class-3=2"
run_ok "$MAEC" prep tiles tiles -q -o resized.h5 --resize 20 --center-crop 16 --channels 1
run_ok "$MAEC" inspect resized.h5
expect_in "$out" "12 of 16x16x1"

# ---- tiles: bad input ----
mkdir -p empty
run_fails 1 "holds no images" "$MAEC" prep tiles empty -o e.h5
run_fails 1 "cannot read the folder" "$MAEC" prep tiles no-such-folder -o e.h5
mkdir -p emptyclass/class-9 && cp -r tiles/class-0 emptyclass/
run_fails 1 "class folder 'class-9' holds no images" "$MAEC" prep tiles emptyclass -o e.h5
mkdir -p unreadable/a unreadable/b && echo "not an image" >unreadable/a/x.png && : >unreadable/b/y.tif
run_fails 1 "none of the 2 images could be read" "$MAEC" prep tiles unreadable -o e.h5
expect_in "$err" "unreadable/a/x.png"
[ ! -e e.h5 ] && [ ! -e e.h5.partial ] || fail "a failed run left e.h5 or e.h5.partial"
cp -r tiles bad
head -c 200 bad/class-0/000000.tif >bad/class-0/truncated.tif
echo "not an image" >bad/class-1/text.png
: >bad/class-2/empty.jpg
run_ok "$MAEC" prep tiles bad -q -o bad.h5
expect_in "$err" "bad/class-0/truncated.tif"
expect_in "$err" "bad/class-1/text.png: not a TIFF, PNG or JPEG file"
expect_in "$err" "bad/class-2/empty.jpg: the file is empty"
run_ok "$MAEC" inspect bad.h5
expect_in "$out" "12 of 24x24x3"
expect_in "$out" "skipped    3"
run_fails 1 "--strict" "$MAEC" prep tiles bad -q -o strict.h5 --strict
[ ! -e strict.h5 ] && [ ! -e strict.h5.partial ] || fail "a failed run left strict.h5 or strict.h5.partial"
cp -r tiles mixed
run_ok "$MAKE_TILES" graytiles 1 24 0 tif 1
cp graytiles/000000.tif mixed/class-1/zz-gray.tif
run_fails 1 "has 1 channels but" "$MAEC" prep tiles mixed -o mixed.h5
expect_in "$err" "pass --channels"
run_ok "$MAEC" prep tiles mixed -q -o mixed.h5 --channels 3
run_ok "$MAKE_TILES" big 1 40 0 png 3
cp big/000000.png mixed/class-2/zz-big.png
run_fails 1 "pass --resize" "$MAEC" prep tiles mixed -o sizes.h5 --channels 3
expect_in "$err" "zz-big.png is 40x40"
mkdir -p both && cp -r tiles/class-0 both/ && cp big/000000.png both/
run_fails 1 "is an image file next to class folders" "$MAEC" prep tiles both -o both.h5
run_fails 1 "is an image file next to class folders" "$MAEC" prep tiles big tiles -o both.h5
run_ok "$MAEC" prep tiles both -q -o both.h5 --unlabeled --resize 24
run_ok "$MAEC" inspect both.h5
expect_in "$out" "5 of 24x24x3"
expect_in "$out" "unlabeled=5"

# ---- idx ----
idx_images img.idx 6
idx_labels lab.idx 0 1 2 0 1 2
gzip -k img.idx
run_ok "$MAEC" prep idx img.idx.gz lab.idx -q -o idx.h5 --class-names cat,dog,fox
run_ok "$MAEC" inspect idx.h5
expect_in "$out" "cat=2 dog=2 fox=2"
idx_labels short.idx 0 1 2
run_fails 1 "holds 3 labels but" "$MAEC" prep idx img.idx short.idx -o x.h5
run_fails 1 "are images and labels swapped" "$MAEC" prep idx lab.idx img.idx -o x.h5
head -c 50 img.idx >cut.idx
run_fails 1 "cut.idx: the file ends inside the IDX data" "$MAEC" prep idx cut.idx lab.idx -o x.h5
head -c 40 img.idx.gz >cut.idx.gz
run_fails 1 "cut.idx.gz: the file ends inside" "$MAEC" prep idx cut.idx.gz lab.idx -o x.h5
run_fails 1 "--class-names lists 2 classes" "$MAEC" prep idx img.idx lab.idx -o x.h5 --class-names a,b
run_fails 1 "cannot open missing.idx" "$MAEC" prep idx missing.idx lab.idx -o x.h5

# ---- wsi: a file OpenSlide cannot open ----
echo "not a slide" >fake.svs
run_fails 1 "no tiles to convert" "$MAEC" prep wsi fake.svs -o w.h5
expect_in "$err" "fake.svs"

# ---- inspect: bad files ----
echo "text" >notes.h5
run_fails 1 "notes.h5 is not an HDF5 file" "$MAEC" inspect notes.h5
head -c 3000 syn.h5 >cut.h5
run_fails 1 "cut.h5" "$MAEC" inspect cut.h5
run_fails 1 "missing.h5" "$MAEC" inspect syn.h5 missing.h5
expect_in "$out" "10 of 32x32x3"

finish
