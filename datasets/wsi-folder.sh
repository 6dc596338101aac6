#!/bin/bash
# A folder of whole-slide images -> 224x224 tiles at 0.5 um/px where there is tissue, 10% of the
# slides (per label) in NAME-val.h5, the rest in 8 shards.
#   datasets/wsi-folder.sh SLIDE_DIR [LABELS.csv] [OUTPUT_DIR]
# LABELS.csv: one "slide,label" row per slide (the slide's file name, with or without extension).
set -euo pipefail
in=${1:?usage: wsi-folder.sh SLIDE_DIR [LABELS.csv] [OUTPUT_DIR]}
labels=${2:-}
out=${3:-data}
maec=${MAEC:-maec}
shopt -s nullglob nocaseglob
slides=("$in"/*.{svs,ndpi,mrxs,scn,vms,bif,tif,tiff})
[ ${#slides[@]} -gt 0 ] || { echo "wsi-folder.sh: no slides in $in" >&2; exit 1; }
mkdir -p "$out"
label_args=()
[ -n "$labels" ] && label_args=(--labels "$labels" --val-fraction 0.1)
set -x
"$maec" prep wsi "${slides[@]}" --mpp 0.5 --tile 224 --min-tissue 0.5 --shards 8 "${label_args[@]}" \
  -o "$out/slides.h5"
