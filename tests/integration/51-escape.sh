#!/usr/bin/env bash
# Escape attempts made from inside a container, all of which must fail — as root and as the
# unprivileged test user, for a SIF and a sandbox, with and without a PID namespace: writing
# through a read-only bind or into the image, device nodes, other uids, signalling or tracing
# another user's process, reaching unbound host paths (.., image symlinks, /proc tricks, the
# classic chroot escape), remounting read-write, and rbox's own /proc entry.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/runtime-lib.sh"
make_runtime_images || exit 1

MARKER=/rbox-escape-marker-$$
VICTIM_PID=""

setup_host_fixtures() {
  mkdir -p "$MARKER"
  echo secret >"$MARKER/secret"
  chmod 0755 "$MARKER"
  mkdir -p "$RBOX_IT_DIR/robind"
  echo original >"$RBOX_IT_DIR/robind/file"
  chown -R "$RBOX_TEST_USER" "$RBOX_IT_DIR/robind"
  # A process of a third user: neither root nor the test user may touch it.
  runuser -u nobody -- sleep 600 &
  sleep 0.3
  VICTIM_PID=$(pgrep -u nobody -n -x sleep)
}
cleanup_host_fixtures() {
  rm -rf "$MARKER"
  [ -n "$VICTIM_PID" ] && kill "$VICTIM_PID" 2>/dev/null
}
setup_host_fixtures
trap cleanup_host_fixtures EXIT

# probe_all WHO IMG PIDFLAG ARGS...: rbox exec … rbox-probe ARGS, output only.
probe() {
  local who=$1 img=$2 pid=$3
  shift 3
  rbox_as "$who" exec $pid -B "$RBOX_IT_DIR/robind:/mnt/ro:ro" "$(image_path "$img")" rbox-probe "$@" 2>&1
}

# Runs body WHO IMG PIDFLAG for every variant.
for_variants() {
  local v who img pid
  for v in $(runtime_variants); do
    IFS=: read -r who img pid <<<"$v"
    [ "$pid" = nopid ] && pid=""
    "$1" "$who" "$img" "$pid"
  done
}

test_read_only_bind_cannot_be_written() {
  body() {
    assert_contains "$(probe "$@" write /mnt/ro/file pwned)" "error:" "$1/$2/$3 write"
    assert_contains "$(probe "$@" remount-rw /mnt/ro)" "error:" "$1/$2/$3 remount"
    assert_contains "$(probe "$@" umount /mnt/ro)" "error:" "$1/$2/$3 umount to reach what is below"
  }
  for_variants body
  assert_eq original "$(cat "$RBOX_IT_DIR/robind/file")" "host file unchanged"
}

test_image_cannot_be_written() {
  body() {
    assert_contains "$(probe "$@" write /data/file pwned)" "error: EROFS" "$1/$2/$3 image file"
    assert_contains "$(probe "$@" write /bin/new pwned)" "error:" "$1/$2/$3 new file"
    assert_contains "$(probe "$@" remount-rw /)" "error:" "$1/$2/$3 remount /"
  }
  for_variants body
  assert_eq image-data "$(cat "$RT/sandbox/data/file")" "sandbox unchanged"
  assert_no_file "$RT/sandbox/bin/new"
}

test_no_usable_device_nodes() {
  body() {
    assert_contains "$(probe "$@" mknod /tmp/rbox-escape-null-$$)" "error:" "$1/$2/$3 mknod"
    rm -f "/tmp/rbox-escape-null-$$"
  }
  for_variants body
  # --fakeroot pretends mknod worked; the node must not exist.
  local out
  out=$(as_user "$RBOX" exec -f "$RT/image.sif" rbox-probe mknod /tmp/rbox-escape-fr-$$)
  assert_contains "$out" "error:" "--fakeroot mknod is not a real device"
  rm -f "/tmp/rbox-escape-fr-$$"
}

test_no_other_uid() {
  body() {
    local other=0
    [ "$1" = root ] && other=1
    assert_contains "$(probe "$@" setuid "$other")" "error:" "$1/$2/$3 setuid $other"
    assert_contains "$(probe "$@" setgid "$other")" "error:" "$1/$2/$3 setgid $other"
    local caps
    caps=$(probe "$@" caps)
    assert_contains "$caps" "NoNewPrivs:	1" "$1/$2/$3 no_new_privs"
    [ "$1" = user ] && assert_contains "$caps" "CapEff:	0000000000000000" "$1/$2/$3 no capabilities"
  }
  for_variants body
}

test_other_users_processes_are_out_of_reach() {
  [ -n "$VICTIM_PID" ] || { fail "no victim process"; return; }
  body() {
    assert_contains "$(probe "$@" kill "$VICTIM_PID" 15)" "error:" "$1/$2/$3 kill"
    assert_contains "$(probe "$@" ptrace "$VICTIM_PID")" "error:" "$1/$2/$3 ptrace"
    assert_contains "$(probe "$@" ls "/proc/$VICTIM_PID/root/")" "error:" "$1/$2/$3 /proc/PID/root"
  }
  for_variants body
  kill -0 "$VICTIM_PID" 2>/dev/null || fail "the victim died"
}

test_unbound_host_paths_are_unreachable() {
  body() {
    local p
    for p in "$MARKER" "/..$MARKER" "/../../..$MARKER" "/escape-dotdot/..$MARKER" "/escape-abs$MARKER" \
      "/proc/self/root$MARKER" "/proc/self/cwd/../../../..$MARKER"; do
      assert_contains "$(probe "$@" stat "$p")" "error: ENOENT" "$1/$2/$3 $p"
    done
    assert_not_contains "$(probe "$@" chroot-escape)" "${MARKER#/}" "$1/$2/$3 chroot escape"
    # The image's symlink to /proc/1/root: with a PID namespace PID 1 is rbox's init (the
    # container); without one it is the host's init, which only root may enter.
    if [ "$1" = user ] || [ -n "$3" ]; then
      assert_contains "$(probe "$@" stat "/escape-proc1$MARKER")" "error:" "$1/$2/$3 /proc/1/root"
    fi
  }
  for_variants body
}

# rbox's launcher keeps the host's root: its /proc entry must not lead there.
test_launcher_proc_root_is_closed() {
  local who img out
  for who in root user; do
    for img in sif sandbox; do
      out=$(rbox_as "$who" exec "$(image_path "$img")" sh -c 'rbox-probe ls /proc/$PPID/root/; rbox-probe readlink /proc/$PPID/cwd')
      assert_not_contains "$out" "${MARKER#/}" "$who/$img launcher root"
      assert_contains "$out" "error: EACCES" "$who/$img /proc/<rbox>/root refused"
    done
  done
}

test_proc_sys_is_not_writable() {
  body() {
    assert_contains "$(probe "$@" write /proc/sys/kernel/hostname pwned)" "error:" "$1/$2/$3 /proc/sys"
    assert_contains "$(probe "$@" write /sys/kernel/uevent_helper x)" "error:" "$1/$2/$3 /sys"
  }
  for_variants body
}

run_tests "$@"
