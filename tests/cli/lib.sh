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

# A B: the same groups, datasets, attributes and values, but for the file name and the recorded
# command line (which names the output and the rank count's options).
same_content() {
  diff <(h5dump "$1" | tail -n +2 | grep -v '"maec prep ') <(h5dump "$2" | tail -n +2 | grep -v '"maec prep ') \
    >/dev/null || fail "$1 and $2 differ"
}

# IDX files (MNIST format) for maec prep idx: idx_images FILE COUNT, idx_labels FILE LABEL...
byte() { printf "\\x$(printf %02x "$1")"; }
idx_images() { # FILE COUNT: COUNT 4x4 images
  { printf '\x00\x00\x08\x03\x00\x00\x00'; byte "$2"; printf '\x00\x00\x00\x04\x00\x00\x00\x04'
    head -c $(($2 * 16)) /dev/urandom; } >"$1"
}
idx_labels() { # FILE LABEL...
  local f=$1; shift
  { printf '\x00\x00\x08\x01\x00\x00\x00'; byte $#; for l in "$@"; do byte "$l"; done; } >"$f"
}

finish() {
  [ "$failures" -eq 0 ] && echo "all checks passed" || echo "$failures checks failed" >&2
  [ "$failures" -eq 0 ]
}
