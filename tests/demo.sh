#!/bin/bash
# The README's first command ends here (./setup.sh demo, after the build). For now the demo
# trains a small ViT MAE on a built-in synthetic batch and prints the loss falling; it becomes
# the Fashion-MNIST pretraining and evaluation demo when `maec train` and `maec eval` exist.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${MAEC_BUILD_DIR:-build}
echo "== demo: 200 AdamW steps of MAE (ViT 64-d x 2, decoder 32-d x 1) on 8 synthetic 32x32 RGB images"
exec "$build/tests/unit/test_mae_overfit"
