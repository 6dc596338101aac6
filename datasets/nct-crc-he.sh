#!/bin/bash
# NCT-CRC-HE-100K or CRC-VAL-HE-7K (Kather et al. 2018, Zenodo 10.5281/zenodo.1214456): 224x224
# RGB tiles at 0.5 um/px in class folders ADI BACK DEB LYM MUC MUS NORM STR TUM.
#
#   wget https://zenodo.org/record/1214456/files/NCT-CRC-HE-100K.zip && unzip NCT-CRC-HE-100K.zip
#   datasets/nct-crc-he.sh 100k [NCT-CRC-HE-100K folder] [OUTPUT_DIR]  -> 16 shards, 100,000 tiles
#   wget https://zenodo.org/record/1214456/files/CRC-VAL-HE-7K.zip && unzip CRC-VAL-HE-7K.zip
#   datasets/nct-crc-he.sh 7k [CRC-VAL-HE-7K folder] [OUTPUT_DIR]      -> one file, 7,180 tiles
set -euo pipefail
case "${1:-}" in
  100k) in=${2:-NCT-CRC-HE-100K}; name=nct-crc-he-100k; shards=16 ;;
  7k) in=${2:-CRC-VAL-HE-7K}; name=crc-val-he-7k; shards=1 ;;
  *) echo "usage: nct-crc-he.sh 100k|7k [INPUT_DIR] [OUTPUT_DIR]" >&2; exit 2 ;;
esac
out=${3:-data}
maec=${MAEC:-maec}
[ -d "$in/ADI" ] || { echo "nct-crc-he.sh: $in/ADI is missing; download and unpack the zip first (see above)" >&2; exit 1; }
mkdir -p "$out"
# NCT_CLASSES=8 leaves out BACK (background), the 8-class variant some papers report.
if [ "${NCT_CLASSES:-9}" = 8 ]; then
  eight=$(mktemp -d)
  trap 'rm -rf "$eight"' EXIT
  for c in ADI DEB LYM MUC MUS NORM STR TUM; do ln -s "$(cd "$in/$c" && pwd)" "$eight/$c"; done
  in=$eight name=$name-8class
fi
set -x
"$maec" prep tiles "$in" --mpp 0.5 --shards "$shards" --seed 0 --threads 2 -o "$out/$name.h5"
