#!/bin/bash
# NCT-CRC-HE-100K (Zenodo 10.5281/zenodo.1214456) -> 16 shards of 224x224 RGB tiles at 0.5 um/px.
#   wget https://zenodo.org/record/1214456/files/NCT-CRC-HE-100K.zip && unzip NCT-CRC-HE-100K.zip
#   datasets/nct-crc-he-100k.sh [NCT-CRC-HE-100K folder] [OUTPUT_DIR]
# The folder holds ADI BACK DEB LYM MUC MUS NORM STR TUM, each with CLASS-XXXXXXXX.tif tiles.
set -euo pipefail
in=${1:-NCT-CRC-HE-100K}
out=${2:-data}
maec=${MAEC:-maec}
[ -d "$in/ADI" ] || { echo "nct-crc-he-100k.sh: $in/ADI is missing; unpack NCT-CRC-HE-100K.zip first" >&2; exit 1; }
mkdir -p "$out"
set -x
"$maec" prep tiles "$in" --mpp 0.5 --shards 16 --seed 0 --threads 2 -o "$out/nct-crc-he-100k.h5"
