# Shared helpers for integration tests (sourced). Each tests/integration/*.sh file defines
# functions named test_* and ends with `run_tests "$@"`; run.sh runs every file.
#
# Environment (set by run.sh):
#   RBOX            the rbox binary under test (world-readable copy)
#   RBOX_IT_DIR     a scratch directory for this run, world-writable (1777)
#   RBOX_TEST_USER  the unprivileged user created by scripts/setup-test-env.sh
#   RBOX_TESTENV    file with registry addresses etc. (source it when you need them)
#   RBOX_CONFORMANCE_DIR  ../shared/conformance by default
set -u

# Exit codes (mirror src/util/exit_codes.hpp).
EXIT_USAGE=2
EXIT_RUNTIME_FAILURE=255
EXIT_IMAGE_SERVER_DIED=254
EXIT_HOST_UNSUPPORTED=253
EXIT_CANNOT_EXECUTE=126
EXIT_NOT_FOUND=127

_failures=0
_current=""

fail() {
  echo "    FAIL: $*" >&2
  _failures=$((_failures + 1))
  return 1
}

assert_eq() {  # expected actual [message]
  [ "$1" == "$2" ] || fail "${3:-values differ}: expected [$1], got [$2]"
}

assert_contains() {  # haystack needle [message]
  case "$1" in *"$2"*) ;; *) fail "${3:-missing text}: [$2] not in [$1]" ;; esac
}

assert_not_contains() {
  case "$1" in *"$2"*) fail "${3:-unexpected text}: [$2] in [$1]" ;; *) ;; esac
}

assert_status() {  # expected_status command...
  local want=$1
  shift
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  [ "$rc" -eq "$want" ] || fail "exit $rc (want $want) from: $* :: ${out:0:600}"
}

assert_file() { [ -e "$1" ] || fail "missing file $1"; }
assert_no_file() { [ ! -e "$1" ] || fail "file should not exist: $1"; }

# Runs a command as the unprivileged test user, in its home, with a clean login-like env.
# Extra variables can be passed as leading NAME=VALUE words: as_user FOO=1 cmd args.
as_user() {
  local envs=()
  while [[ $# -gt 0 && "$1" == *=* && "$1" != -* ]]; do envs+=("$1"); shift; done
  local home
  home=$(getent passwd "$RBOX_TEST_USER" | cut -d: -f6)
  runuser -u "$RBOX_TEST_USER" -- env -i HOME="$home" USER="$RBOX_TEST_USER" LOGNAME="$RBOX_TEST_USER" \
    PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin TERM="${TERM:-dumb}" \
    RBOX_CONFORMANCE_DIR="${RBOX_CONFORMANCE_DIR:-}" "${envs[@]}" "$@"
}

# Runs a command as the unprivileged user in directory $1.
as_user_in() {
  local dir=$1
  shift
  as_user sh -c 'cd "$1" && shift && exec "$@"' sh "$dir" "$@"
}

skip() {
  echo "    SKIP: $*"
  _skipped=1
}

run_tests() {
  local filter=${1:-}
  local names total=0 failed=0
  names=$(declare -F | awk '{print $3}' | grep '^test_' || true)
  for t in $names; do
    [ -n "$filter" ] && [[ "$t" != *"$filter"* ]] && continue
    total=$((total + 1))
    _current=$t
    _failures=0
    _skipped=0
    local start=$SECONDS
    echo "  RUN  $t"
    # A subshell per test: cd and variables do not leak; the subshell's status carries the
    # failures counted inside it (a test fails if any assertion failed or it returned non-zero).
    (
      set +e
      "$t"
      rc=$?
      [ "$_failures" -eq 0 ] || exit 1
      exit $rc
    )
    local rc=$?
    if [ $rc -ne 0 ]; then
      echo "  FAIL $t ($((SECONDS - start)) s)"
      failed=$((failed + 1))
    else
      echo "  ok   $t ($((SECONDS - start)) s)"
    fi
  done
  echo "  $(basename "$0"): $((total - failed))/$total passed"
  [ "$failed" -eq 0 ]
}
