#!/bin/bash
# CRC-VAL-HE-7K (Zenodo 10.5281/zenodo.1214456) -> crc-val-he-7k.h5, 7,180 224x224 RGB tiles.
#   wget https://zenodo.org/record/1214456/files/CRC-VAL-HE-7K.zip && unzip CRC-VAL-HE-7K.zip
#   datasets/crc-val-he-7k.sh [CRC-VAL-HE-7K folder] [OUTPUT_DIR]
set -euo pipefail
in=${1:-CRC-VAL-HE-7K}
out=${2:-data}
maec=${MAEC:-maec}
[ -d "$in/ADI" ] || { echo "crc-val-he-7k.sh: $in/ADI is missing; unpack CRC-VAL-HE-7K.zip first" >&2; exit 1; }
mkdir -p "$out"
set -x
"$maec" prep tiles "$in" --mpp 0.5 --threads 2 -o "$out/crc-val-he-7k.h5"
