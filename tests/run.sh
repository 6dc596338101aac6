#!/bin/bash
# Runs maec's test suites and ends with one line "N passed, N failed" counted from meson's own
# results. Exit status 0 only if nothing failed.
#
#   1. every registered suite in the release build (./build), the slurm suite when CI=true
#   2. the unit, prep, mpi and cli suites again in an ASan+UBSan build (./build-asan)
#
# Set MAEC_TEST_SANITIZE=0 to skip step 2, MAEC_TEST_SUITES="unit parity" to restrict step 1.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${MAEC_BUILD_DIR:-build}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

passed=0 failed=0 skipped=0
count_results() { # meson build dir
  local log=$1/meson-logs/testlog.json p f s
  [ -f "$log" ] || { echo "run.sh: no test log in $1" >&2; failed=$((failed + 1)); return; }
  p=$(grep -c '"result": "OK"' "$log")
  s=$(grep -c '"result": "SKIP"' "$log")
  f=$(grep -cE '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log")
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

suite_args=()
for s in ${MAEC_TEST_SUITES:-}; do suite_args+=(--suite "$s"); done
if [ "${CI:-}" = true ] && [ -z "${MAEC_TEST_SUITES:-}" ]; then
  meson configure "$build" -Dslurm_tests=true >/dev/null
  ninja -C "$build" >/dev/null
fi
echo "== tests: $build ${MAEC_TEST_SUITES:-(all suites)}"
meson test -C "$build" --print-errorlogs "${suite_args[@]}"
count_results "$build"

if [ "${MAEC_TEST_SANITIZE:-1}" = 1 ]; then
  asan=build-asan
  echo "== tests: ASan+UBSan build ($asan)"
  if [ ! -f "$asan/build.ninja" ]; then
    werror=(); [ "${CI:-}" = true ] && werror=(-Dwerror=true)
    meson setup "$asan" -Dbuildtype=debugoptimized -Db_sanitize=address,undefined "${werror[@]}" >/dev/null
  fi
  if ninja -C "$asan" >/dev/null; then
    export LSAN_OPTIONS="suppressions=$root/tests/lsan-openmpi.supp:print_suppressions=0:fast_unwind_on_malloc=0"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    meson test -C "$asan" --print-errorlogs --suite unit --suite prep --suite mpi --suite cli \
      --timeout-multiplier 4
    count_results "$asan"
  else
    echo "run.sh: the sanitizer build failed" >&2
    failed=$((failed + 1))
  fi
fi

echo "($skipped skipped)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
