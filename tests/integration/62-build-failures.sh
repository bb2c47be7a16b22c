#!/usr/bin/env bash
# What a failed, interrupted (Ctrl-C, SIGTERM) or killed (-9) build leaves behind: never a
# partial image, an existing image untouched, no temporary space (or the next build sweeps it),
# --keep-failed keeping the failed stage's tree, and a full build space named in the error.
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1090
. "${RBOX_TESTENV:-/var/tmp/rbox-testenv/env.sh}" || { echo "no test environment: run scripts/setup-test-env.sh up" >&2; exit 1; }

W=$RBOX_IT_DIR/build62
T=$RBOX_IT_DIR/build62-tmp  # RBOX_TMPDIR for these builds, so leftovers are easy to see
mkdir -p "$W" "$T"
chmod 1777 "$W" "$T"

rb() { as_user_in "$W" env RBOX_TMPDIR="$T" "$RBOX" "$@"; }
write_def() { cat >"$W/$1"; chmod 644 "$W/$1"; }
leftovers() { ls -A "$T" | grep -c '^rbox-build-' || true; }
partials() { ls -A "$W" | grep -c '\.tmp-' || true; }

good_image() {
  if [ ! -f "$W/good.sif" ]; then
    write_def good.def <<EOF
Bootstrap: docker
From: $RBOX_REG_HTTP/$RBOX_IMG_BUSYBOX

%post
echo good > /version
EOF
    rb build good.sif good.def >/dev/null 2>&1 || return 1
  fi
  sha256sum "$W/good.sif" | cut -d' ' -f1
}

slow_def() {  # a build whose %post waits on a fifo-free sleep long enough to be interrupted
  write_def slow.def <<EOF
Bootstrap: docker
From: $RBOX_REG_HTTP/$RBOX_IMG_BUSYBOX

%post
echo started-post
sleep 60
EOF
}

# Starts `rbox build --force good.sif slow.def` as the test user in the background; echoes the
# pid of rbox itself (the shell records its pid, then execs rbox). The background job must not
# hold the caller's stdout, or $(start_slow_build) would wait for the whole build.
start_slow_build() {
  rm -f "$W/pid" "$W/slow.log"
  as_user_in "$W" sh -c 'echo $$ > pid; exec env RBOX_TMPDIR="$1" "$2" build --force good.sif slow.def >slow.log 2>&1' \
    sh "$T" "$RBOX" </dev/null >/dev/null 2>&1 &
  local i
  for i in $(seq 1 200); do
    grep -q started-post "$W/slow.log" 2>/dev/null && break
    sleep 0.1
  done
  grep -q started-post "$W/slow.log" || fail "the slow build never reached %post: $(cat "$W/slow.log" 2>/dev/null)"
  cat "$W/pid"
}

wait_gone() {  # PID: waits until the process has exited (max 20 s)
  local i
  for i in $(seq 1 200); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

test_failed_post_keeps_existing_image_and_cleans_up() {
  local before
  before=$(good_image) || { fail "base build failed"; return; }
  write_def bad.def <<EOF
Bootstrap: docker
From: $RBOX_REG_HTTP/$RBOX_IMG_BUSYBOX

%post
echo about-to-fail
exit 7
EOF
  local out
  out=$(rb build --force good.sif bad.def 2>&1) && fail "a failing %post built an image"
  assert_contains "$out" "%post failed (exit 7)"
  assert_contains "$out" "about-to-fail" "%post output is shown"
  assert_eq "$before" "$(sha256sum "$W/good.sif" | cut -d' ' -f1)" "the existing image is untouched"
  assert_eq 0 "$(leftovers)" "no build space left"
  assert_eq 0 "$(partials)" "no partial image"
  out=$(rb build new.sif bad.def 2>&1)
  assert_no_file "$W/new.sif"
}

test_keep_failed_keeps_the_stage_tree() {
  write_def bad2.def <<EOF
Bootstrap: docker
From: $RBOX_REG_HTTP/$RBOX_IMG_BUSYBOX

%post
echo evidence > /evidence
false
EOF
  local out kept
  out=$(rb build --keep-failed kf.sif bad2.def 2>&1) && fail "the build succeeded"
  kept=$(printf '%s\n' "$out" | sed -n 's/.*root filesystem: \([^ ]*\) .*/\1/p' | head -1)
  [ -n "$kept" ] || { fail "no kept path in: $out"; return; }
  assert_eq "evidence" "$(cat "$kept/evidence" 2>/dev/null)" "the failed stage's tree is kept"
  assert_no_file "$W/kf.sif"
  assert_eq 0 "$(leftovers)"
  rm -rf "$(dirname "$kept")"
}

test_ctrl_c_and_sigterm_leave_old_image_and_no_temp() {
  local before sig pid
  before=$(good_image) || { fail "base build failed"; return; }
  slow_def
  for sig in INT TERM; do
    pid=$(start_slow_build) || return
    kill -s "$sig" "$pid"
    wait_gone "$pid" || fail "rbox did not exit after SIG$sig"
    wait
    assert_contains "$(cat "$W/slow.log")" "interrupted" "SIG$sig reported"
    assert_eq "$before" "$(sha256sum "$W/good.sif" | cut -d' ' -f1)" "SIG$sig: the existing image is untouched"
    assert_eq 0 "$(leftovers)" "SIG$sig: build space removed"
    assert_eq 0 "$(partials)" "SIG$sig: no partial image"
    assert_eq "" "$(pgrep -u "$RBOX_TEST_USER" -f 'sleep 60' || true)" "SIG$sig: %post processes are gone"
  done
}

test_kill_9_leaves_old_image_and_the_next_build_sweeps() {
  local before pid
  before=$(good_image) || { fail "base build failed"; return; }
  slow_def
  pid=$(start_slow_build) || return
  kill -9 "$pid"
  wait_gone "$pid" || fail "rbox did not die"
  wait
  sleep 0.5
  assert_eq "" "$(pgrep -u "$RBOX_TEST_USER" -f 'sleep 60' || true)" "everything under rbox died with it"
  assert_eq "$before" "$(sha256sum "$W/good.sif" | cut -d' ' -f1)" "the existing image is untouched"
  assert_eq 1 "$(leftovers)" "kill -9 leaves its build space"
  local out
  out=$(rb build --force good.sif good.def 2>&1) || fail "the next build failed: $out"
  assert_eq 0 "$(leftovers)" "the next build swept the stale build space"
}

test_full_build_space_names_the_variable() {
  local small=$RBOX_IT_DIR/build62-small
  mkdir -p "$small"
  mount -t tmpfs -o size=24m tmpfs "$small" || { skip "cannot mount a tmpfs"; return; }
  chmod 1777 "$small"
  write_def big.def <<EOF
Bootstrap: docker
From: $RBOX_REG_HTTP/$RBOX_IMG_BUSYBOX

%post
dd if=/dev/zero of=/filler bs=1M count=64
EOF
  local out
  out=$(as_user_in "$W" env RBOX_TMPDIR="$small" "$RBOX" build big.sif big.def 2>&1) && fail "the build fit in 24 MiB"
  assert_contains "$out" "RBOX_TMPDIR" "the error names the variable to change"
  assert_eq "" "$(ls -A "$small")" "the full build space was cleaned up"
  umount "$small"
}

run_tests "$@"
