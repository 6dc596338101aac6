#!/bin/bash
# maec set-up: install the Debian packages maec needs, build, and optionally run the demo or
# the tests. Idempotent; safe to re-run. On a fresh Debian 12 machine, as root:
#
#   ./setup.sh            install what is missing, then build into ./build
#   ./setup.sh demo       ... then run the demo (the README's first command)
#   ./setup.sh test       ... then run the test suites (the README's second command)
#
# Environment: CI=true builds with -Werror; MAEC_BUILD_DIR (default build) picks the build folder;
# MAEC_SKIP_INSTALL=1 skips the package step (for machines set up by hand).
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(
  # build
  build-essential meson ninja-build pkg-config git
  # libraries maec links
  libopenblas-dev libopenmpi-dev openmpi-bin libhdf5-openmpi-dev libyaml-dev
  libtiff-dev libpng-dev libjpeg-dev zlib1g-dev libopenslide-dev
  # tools the tests and docs use
  hdf5-tools openslide-tools libtiff-tools
  # the demo's data
  dataset-fashion-mnist
  # the PyTorch reference (parity fixtures, benchmark side by side)
  python3 python3-torch python3-h5py python3-numpy
  # a real single-node Slurm for the slurm suite
  slurm-wlm munge
)

install_packages() {
  [ "${MAEC_SKIP_INSTALL:-0}" = 1 ] && return 0
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: these Debian packages are missing: ${missing[*]}" >&2
    echo "setup.sh: run as root (sudo ./setup.sh), or install them and re-run with MAEC_SKIP_INSTALL=1" >&2
    exit 1
  fi
  echo "setup.sh: installing ${#missing[@]} packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -q
  apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
}

build() {
  local dir=${MAEC_BUILD_DIR:-build}
  local opts=()
  if [ "${CI:-}" = true ]; then opts+=(-Dwerror=true); fi
  if [ -f "$dir/build.ninja" ]; then
    meson configure "$dir" "${opts[@]}" >/dev/null
  else
    meson setup "$dir" "${opts[@]}"
  fi
  ninja -C "$dir"
}

install_packages
build
case "${1:-}" in
  "") ;;
  demo) exec bash tests/demo.sh ;;
  test) exec bash tests/run.sh ;;
  *) echo "setup.sh: unknown action '$1' (expected: demo, test, or nothing)" >&2; exit 2 ;;
esac
