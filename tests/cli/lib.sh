# Helpers for the shell tests: each test runs in a fresh temporary folder, a failed check prints
# what was expected and what came out, and finish() gives the exit status.
failures=0
work=$(mktemp -d /tmp/maec-cli-test-XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

fail() {
  echo "FAIL (line ${BASH_LINENO[0]}): $*" >&2
  failures=$((failures + 1))
}

# Runs a command; its stdout and stderr are left in $out and $err, its status in $status.
run() {
  out=$("$@" 2>"$work/.stderr")
  status=$?
  err=$(cat "$work/.stderr")
}

run_ok() {
  run "$@"
  [ "$status" -eq 0 ] || fail "'$*' exited $status: $err"
}

# run_fails STATUS FRAGMENT COMMAND...: the command must exit STATUS with FRAGMENT on stderr.
run_fails() {
  local want=$1 fragment=$2
  shift 2
  run "$@"
  [ "$status" -eq "$want" ] || fail "'$*' exited $status, want $want; stderr: $err"
  [[ "$err" == *"$fragment"* ]] || fail "'$*': stderr lacks '$fragment': $err"
}

expect_in() {
  [[ "$1" == *"$2"* ]] || fail "expected '$2' in: $1"
}

finish() {
  [ "$failures" -eq 0 ] && echo "all checks passed" || echo "$failures checks failed" >&2
  [ "$failures" -eq 0 ]
}
