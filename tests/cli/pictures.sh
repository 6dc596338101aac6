#!/bin/bash
# maec recon and maec plot end to end on a model trained for a few steps: the reconstruction
# picture decodes to the expected size with the masked patches grey and the visible ones pasted
# back (gray and RGB models), the curves are valid SVG with one point per metrics line, and bad
# inputs are refused with a message that names the problem.
set -uo pipefail
: "${MAEC:?set by meson}" "${MAEC_SOURCE_ROOT:?set by meson}"
source "$MAEC_SOURCE_ROOT/tests/cli/lib.sh"
check_png() { /usr/bin/python3 "$MAEC_SOURCE_ROOT/tests/cli/check_recon_png.py" "$@" >/dev/null || fail "$1: $*"; }

train() { # DATA DIR [--set ...]
  local data=$1 dir=$2
  shift 2
  run_ok "$MAEC" train "$MAEC_SOURCE_ROOT/jobs/smoke.yaml" --quiet --set data.train="$data" \
    --set checkpoint.dir="$dir" --set optim.steps=4 --set optim.warmup_steps=1 --set log.every_steps=1 "$@"
}

run_ok "$MAEC" prep synthetic -o rgb.h5 --count 64 --quiet
run_ok "$MAEC" prep synthetic -o gray.h5 --count 16 --channels 1 --quiet
run_ok "$MAEC" prep synthetic -o big.h5 --count 4 --size 48 --quiet
train rgb.h5 run
train gray.h5 gray --set model.in_chans=1 --set optim.batch_per_rank=4
ckpt=run/checkpoint-00000004.h5

# recon: 32 px images, patches of 4 px, enlarged 4 times; 0.75 of 64 patches masked by default.
run_ok "$MAEC" recon "$ckpt" rgb.h5 --indices 0,5,9 -o recon.png
expect_in "$out" "48 of 64 patches masked"
check_png recon.png 3 32 4 4 3 48
run_ok "$MAEC" recon "$ckpt" rgb.h5 --indices 63 --mask-ratio 0.5 --scale 2 -o half.png -q
check_png half.png 1 32 4 2 3 32
run_ok "$MAEC" recon gray/checkpoint-00000004.h5 gray.h5 --indices 1,2 -o gray.png -q
check_png gray.png 2 32 4 4 1 48
# 48 px images are resampled to the model's 32 px, as training would.
run_ok "$MAEC" recon "$ckpt" big.h5 --indices 3 -o big.png -q
check_png big.png 1 32 4 4 3 48
run_ok "$MAEC" recon "$ckpt" rgb.h5 --indices 0,5,9 -o again.png -q
cmp -s recon.png again.png || fail "the same seed must draw the same picture"
run_ok "$MAEC" recon "$ckpt" rgb.h5 --indices 0,5,9 --seed 1 -o seed1.png -q
cmp -s recon.png seed1.png && fail "--seed 1 must draw other masks"

run_fails 2 "--indices" "$MAEC" recon "$ckpt" rgb.h5 -o x.png
run_fails 2 "not a comma-separated list" "$MAEC" recon "$ckpt" rgb.h5 --indices 1,a -o x.png
run_fails 1 "64 is out of range: rgb.h5 holds 64 images (indices 0 to 63)" \
  "$MAEC" recon "$ckpt" rgb.h5 --indices 3,64 -o x.png
run_fails 1 "gray.h5 has 1 channels, the model of $ckpt 3" "$MAEC" recon "$ckpt" gray.h5 --indices 0 -o x.png
run_fails 1 "missing.h5" "$MAEC" recon missing.h5 rgb.h5 --indices 0 -o x.png
run_fails 1 "nothing.h5" "$MAEC" recon "$ckpt" nothing.h5 --indices 0 -o x.png
run_fails 1 "leaves 0 of 64 patches visible" "$MAEC" recon "$ckpt" rgb.h5 --indices 0 --mask-ratio 1 -o x.png
run_fails 1 "cannot write the PNG file no/such/dir.png" "$MAEC" recon "$ckpt" rgb.h5 --indices 0 -o no/such/dir.png
[ -e x.png ] && fail "a refused recon must not write its output"
run_ok "$MAEC" recon --help
expect_in "$out" "reconstruction with the visible patches pasted back"

# plot: one polyline per panel and file, one point per metrics line, a legend entry per file.
run_ok "$MAEC" plot run/metrics.jsonl gray/metrics.jsonl -o curves.svg
/usr/bin/python3 - curves.svg <<'PY' || fail "curves.svg is not the expected SVG"
import sys, xml.etree.ElementTree as ET
ns = {"s": "http://www.w3.org/2000/svg"}
root = ET.parse(sys.argv[1]).getroot()
for panel in ("loss", "lr"):
    lines = root.findall(f"s:polyline[@class='{panel}']", ns)
    assert len(lines) == 2, f"{len(lines)} {panel} curves"
    for line in lines:
        points = [tuple(map(float, p.split(","))) for p in line.get("points").split()]
        assert len(points) == 4, f"{panel}: {len(points)} points"
        assert all(0 <= x <= 760 and 0 <= y <= 636 for x, y in points), points
        assert points == sorted(points), "steps go left to right"
legend = [t.text for t in root.findall("s:text[@class='legend']", ns)]
assert legend == ["run/metrics.jsonl", "gray/metrics.jsonl"], legend
texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
assert {"step", "loss", "learning rate"} <= set(texts), texts
PY
# A resumed run logs steps again: the later lines replace the earlier ones.
{ cat run/metrics.jsonl; echo; sed -n 2,4p run/metrics.jsonl; } > resumed.jsonl
run_ok "$MAEC" plot resumed.jsonl -o resumed.svg
[ "$(grep -o 'class="loss"[^>]*' resumed.svg | grep -o ',' | wc -l)" -eq 4 ] || fail "resumed steps are not replaced"

printf '{"step": 1, "loss": 2.5, "lr": 0.1}\n{"step": 2, "loss": oops, "lr": 0.1}\n' > bad.jsonl
run_fails 1 "bad.jsonl:2:21: expected a value" "$MAEC" plot bad.jsonl -o x.svg
printf '{"step": 1, "lr": 0.1}\n' > noloss.jsonl
run_fails 1 "noloss.jsonl:1: no finite number for \"loss\"" "$MAEC" plot noloss.jsonl -o x.svg
printf '{"step": 1, "loss": 1, "lr": 0.1} extra\n' > trailing.jsonl
run_fails 1 "trailing.jsonl:1:35: text after the object" "$MAEC" plot trailing.jsonl -o x.svg
: > empty.jsonl
run_fails 1 "empty.jsonl holds no metrics lines" "$MAEC" plot empty.jsonl -o x.svg
run_fails 1 "cannot open missing.jsonl" "$MAEC" plot missing.jsonl -o x.svg
run_fails 2 "expected METRICS.jsonl" "$MAEC" plot run/metrics.jsonl
run_fails 2 "must end in .svg" "$MAEC" plot run/metrics.jsonl -o curves.png
[ -e x.svg ] && fail "a refused plot must not write its output"
run_ok "$MAEC" plot --help
expect_in "$out" "learning rate"

finish
