#!/bin/bash
# Runs the training benchmark side by side: maec (1 rank x 2 threads, 2 ranks x 1 thread) and the
# PyTorch reference (torch.set_num_threads(1) with OpenBLAS on 2 threads, its fastest setting
# here) for each configuration, and prints a markdown table (docs/performance.md keeps the latest).
# The three runs of a configuration alternate ROUNDS times and each column shows the run with the
# median images/s: on a shared machine, load that comes and goes then falls on all three alike.
#
#   tests/bench/run_performance.sh [BUILD_DIR] [STEPS] [ROUNDS]      (defaults: build, 20, 1)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
steps=${2:-20}
rounds=${3:-1}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
bench=$build/tests/bench/bench_train
[ -x "$bench" ] || { echo "run_performance.sh: $bench is missing: build first (./setup.sh)" >&2; exit 1; }

field() { sed -n "s/.*RESULT.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
# The RESULT line with the median images/s among the lines on stdin.
median_run() {
  grep RESULT | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^images_per_s=/) print substr($i, 14), $0 }' |
    sort -g | awk '{ line[NR] = $0 } END { print line[int((NR + 1) / 2)] }'
}

echo "| config | maec 1x2 img/s | maec 2x1 img/s | PyTorch img/s | maec / PyTorch (1x2, 2x1) | sgemm ceiling img/s (1x2, 2x1) | % of ceiling (1x2, 2x1) | fwd+bwd / opt / comm ms (2x1) | GFLOP/s (2x1) | peak RSS MiB (1x2) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for config in mnist-tiny pathology-tiny pathology-small; do
  runs=$(for ((r = 0; r < rounds; r++)); do
    OPENBLAS_NUM_THREADS=1 "$bench" "$config" --threads 2 --steps "$steps" | sed 's/^RESULT/RESULT one/'
    OPENBLAS_NUM_THREADS=1 mpiexec -n 2 --bind-to none "$bench" "$config" --threads 1 --steps "$steps" |
      sed 's/^RESULT/RESULT two/'
    OPENBLAS_NUM_THREADS=2 /usr/bin/python3 tests/bench/bench_torch.py "$config" --threads 1 --steps "$steps" |
      sed 's/^RESULT/RESULT torch/'
  done | tee >(cat >&2))
  one=$(grep '^RESULT one' <<<"$runs" | median_run)
  two=$(grep '^RESULT two' <<<"$runs" | median_run)
  torch=$(grep '^RESULT torch' <<<"$runs" | median_run)
  m1=$(field images_per_s "$one") m2=$(field images_per_s "$two") pt=$(field images_per_s "$torch")
  c1=$(field ceiling "$one") c2=$(field ceiling "$two")
  awk -v c="$config" -v m1="$m1" -v m2="$m2" -v pt="$pt" -v c1="$c1" -v c2="$c2" \
      -v f="$(field compute_ms "$two")" -v o="$(field optimizer_ms "$two")" \
      -v cm="$(field comm_ms "$two")" -v g="$(field gflops "$two")" -v r="$(field rss_mib "$one")" \
      'BEGIN { printf "| %s | %.1f | %.1f | %.1f | %.2fx, %.2fx | %.1f, %.1f | %.0f%%, %.0f%% | %.0f / %.0f / %.1f | %.0f | %s |\n",
               c, m1, m2, pt, m1 / pt, m2 / pt, c1, c2, 100 * m1 / c1, 100 * m2 / c2, f, o, cm, g, r }'
done
