#!/bin/bash
# Fashion-MNIST (Debian package dataset-fashion-mnist) -> fashion-mnist-{train,test}.h5
#   datasets/fashion-mnist.sh [INPUT_DIR] [OUTPUT_DIR]
set -euo pipefail
in=${1:-/usr/share/datasets/fashion-mnist}
out=${2:-data}
maec=${MAEC:-maec}
[ -f "$in/train-images-idx3-ubyte.gz" ] ||
  { echo "fashion-mnist.sh: $in/train-images-idx3-ubyte.gz is missing; apt-get install dataset-fashion-mnist" >&2; exit 1; }
mkdir -p "$out"
names=T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle-boot
for split in train t10k; do
  name=$([ "$split" = train ] && echo train || echo test)
  set -x
  "$maec" prep idx "$in/$split-images-idx3-ubyte.gz" "$in/$split-labels-idx1-ubyte.gz" \
    --class-names "$names" -o "$out/fashion-mnist-$name.h5"
  { set +x; } 2>/dev/null
done
