#!/usr/bin/env bash
# image::Mount through tests/tools/mount_probe, as the unprivileged test user: the FUSE view of a
# packed tree must equal the tree (types, modes, sizes, sha256, link targets, hard links, xattrs),
# SIF partitions are served in place, teardown leaves nothing behind, a missing or 0600 /dev/fuse
# is reported clearly, and the extraction fallback works and cleans up even after Ctrl-C.
. "$(dirname "$0")/lib.sh"

# The probe is built next to the unit tests (ninja -C BUILD mount_probe).
find_probe() {
  if [ -n "${RBOX_MOUNT_PROBE:-}" ]; then echo "$RBOX_MOUNT_PROBE"; return; fi
  ls -t "$RBOX_SOURCE_DIR"/build*/tests/mount_probe 2>/dev/null | head -1
}
probe_src=$(find_probe)
if [ -z "$probe_src" ] || [ ! -x "$probe_src" ]; then
  echo "30-mount.sh: mount_probe not found: build it (ninja -C build mount_probe) or set RBOX_MOUNT_PROBE" >&2
  exit 1
fi
W=$RBOX_IT_DIR/mount
mkdir -p "$W"
chmod 0755 "$W"
PROBE=$W/mount_probe
cp "$probe_src" "$PROBE"
chmod 0755 "$PROBE"
BUSYBOX_SIF=${RBOX_CONFORMANCE_DIR:-/work/shared/conformance}/apptainer-images/busybox_amd64.sif

# Manifest of a tree (tree_manifest.py), owners left out (the owner policy is checked on its
# own); copied where the test user can read it.
cp "$(dirname "$0")/tree_manifest.py" "$W/manifest.py"

# A tree with every file type, packed twice (zstd with 64 KiB blocks, gzip).
make_fixtures() {
  local t=$W/tree
  mkdir -p "$t/dir/sub" "$t/private" "$t/empty-dir"
  echo hello >"$t/dir/file"
  : >"$t/empty"
  head -c 65536 /dev/urandom >"$t/exact-block"
  head -c 300001 /dev/urandom >"$t/multi-block"
  yes 'some text' | head -c 1000000 >"$t/text"
  truncate -s 5M "$t/sparse" && echo tail >>"$t/sparse"
  ln -s dir/file "$t/link"
  ln -s /nonexistent "$t/dangling"
  ln "$t/dir/file" "$t/hard1"
  ln "$t/dir/file" "$t/dir/sub/hard2"
  mkfifo "$t/fifo"
  mknod "$t/chr" c 1 3
  mknod "$t/blk" b 7 0
  python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$t/socket"
  echo secret >"$t/private/secret"
  chmod 0600 "$t/private/secret"
  chmod 0700 "$t/private"
  echo owned >"$t/other-owner"
  chown 1234:1234 "$t/other-owner"
  cp /bin/true "$t/setuid" && chmod 4755 "$t/setuid"
  cp /bin/true "$t/capable" && setcap cap_net_raw+ep "$t/capable"
  setfattr -n user.comment -v "hi there" "$t/dir/file"
  setfattr -n user.empty "$t/text"
  chmod 0555 "$t/dir/sub"
  mksquashfs "$t" "$W/tree-zstd.sqfs" -noappend -quiet -no-progress -comp zstd -Xcompression-level 3 -b 64K >/dev/null
  mksquashfs "$t" "$W/tree-gzip.sqfs" -noappend -quiet -no-progress -comp gzip >/dev/null
  # The same filesystem behind a 64 KiB header, as in a SIF.
  { head -c 65536 /dev/zero; cat "$W/tree-zstd.sqfs"; } >"$W/tree-offset.img"
  python3 "$W/manifest.py" "$t" >"$W/tree.manifest"
  chmod -R a+rX "$W"/*.sqfs "$W"/*.img "$W/manifest.py"
}
make_fixtures

manifest_through() {  # IMAGE [probe options...]: the manifest as the test user sees the mount
  local img=$1
  shift
  as_user "$PROBE" "$@" "$img" -- python3 "$W/manifest.py" .
}

# Runs CMD as the test user in a mount namespace whose /dev lacks fuse (missing) or holds a 0600
# fuse node (restricted). Root sets it up; the user's namespaces inherit it.
with_dev_fuse() {  # missing|restricted CMD...
  local mode=$1
  shift
  unshare -m bash -c '
    set -e
    mount --make-rprivate /
    if [ "$1" = missing ]; then
      mount -t tmpfs tmpfs /dev
      mknod -m 666 /dev/null c 1 3; mknod -m 666 /dev/zero c 1 5; mknod -m 666 /dev/urandom c 1 9
    else
      node=$(mktemp -u /tmp/rbox-fuse0600-XXXXXX); mknod -m 600 "$node" c 10 229
      mount --bind "$node" /dev/fuse; rm -f "$node"
    fi
    shift
    exec "$@"' with-dev-fuse "$mode" "$@"
}

test_fuse_view_equals_the_tree_zstd() {
  local got
  got=$(manifest_through "$W/tree-zstd.sqfs")
  assert_eq "$(cat "$W/tree.manifest")" "$got" "FUSE view of the zstd image differs from the tree"
}

test_fuse_view_equals_the_tree_gzip() {
  local got
  got=$(manifest_through "$W/tree-gzip.sqfs")
  assert_eq "$(cat "$W/tree.manifest")" "$got" "FUSE view of the gzip image differs from the tree"
}

test_partition_at_an_offset_is_served_in_place() {
  local got
  got=$(manifest_through "$W/tree-offset.img" --offset 65536)
  assert_eq "$(cat "$W/tree.manifest")" "$got" "image at offset 65536"
  assert_status 255 as_user "$PROBE" --offset 4096 "$W/tree-offset.img" -- true
}

test_it_is_really_fuse_and_owned_by_the_user() {
  local out
  out=$(as_user "$PROBE" --verbose "$W/tree-zstd.sqfs" -- sh -c '
    grep -c " - fuse.rbox " /proc/self/mountinfo; stat -c "%u:%g %U" . other-owner; cat private/secret' 2>&1)
  assert_contains "$out" "method=fuse"
  assert_contains "$out" $'1\n0:0 root\n0:0 root\nsecret' "all files owned by the caller (namespace root); 0700 dir readable"
  # --image-owners keeps recorded ids: 1234 is not mapped in a single-id namespace.
  out=$(as_user "$PROBE" --image-owners "$W/tree-zstd.sqfs" -- stat -c "%u" other-owner)
  assert_eq "65534" "$out" "unmapped image owner shows as overflow id"
}

test_busybox_sif_runs_chrooted() {
  [ -r "$BUSYBOX_SIF" ] || { fail "missing $BUSYBOX_SIF"; return; }
  local out
  out=$(as_user "$PROBE" --chroot "$BUSYBOX_SIF" -- /bin/sh -c 'echo "in:$(id -u)"; ls /.singularity.d')
  assert_contains "$out" "in:0"
  assert_contains "$out" "runscript"
}

test_teardown_leaves_no_mount_and_no_directory() {
  local before after
  before=$(ls -d /tmp/rbox-mnt-* 2>/dev/null | wc -l)
  assert_status 0 as_user "$PROBE" "$W/tree-zstd.sqfs" -- true
  after=$(ls -d /tmp/rbox-mnt-* 2>/dev/null | wc -l)
  assert_eq "$before" "$after" "mount point directory left behind"
  if grep -q 'fuse.rbox' /proc/self/mountinfo; then fail "a fuse.rbox mount is visible on the host"; fi
  # A straggler keeps the mount busy: teardown detaches and serves until it exits.
  local start=$SECONDS
  assert_status 0 as_user "$PROBE" "$W/tree-zstd.sqfs" -- sh -c '(sleep 2; cat text >/dev/null) & exit 0'
  [ $((SECONDS - start)) -ge 2 ] || fail "the launcher returned before its straggler finished"
  after=$(ls -d /tmp/rbox-mnt-* 2>/dev/null | wc -l)
  assert_eq "$before" "$after" "mount point left behind after a busy teardown"
}

test_exit_status_passes_through() {
  assert_status 3 as_user "$PROBE" "$W/tree-zstd.sqfs" -- sh -c 'exit 3'
  assert_status 127 as_user "$PROBE" --chroot "$W/tree-zstd.sqfs" -- /no/such/program
}

test_missing_dev_fuse_gives_the_clear_error() {
  local out rc
  out=$(with_dev_fuse missing runuser -u "$RBOX_TEST_USER" -- "$PROBE" --no-fallback "$W/tree-zstd.sqfs" -- true 2>&1)
  rc=$?
  [ "$rc" -ne 0 ] || fail "mounted without /dev/fuse"
  assert_contains "$out" "/dev/fuse does not exist"
  assert_contains "$out" "modprobe fuse"
  assert_contains "$out" "--unsquash"
  assert_eq 1 "$(printf '%s\n' "$out" | wc -l)" "the error is one line"
}

test_dev_fuse_0600_gives_the_clear_error() {
  local out
  out=$(with_dev_fuse restricted runuser -u "$RBOX_TEST_USER" -- "$PROBE" --no-fallback "$W/tree-zstd.sqfs" -- true 2>&1)
  assert_contains "$out" "/dev/fuse is not accessible (mode 0600)"
  assert_contains "$out" "chmod 0666 /dev/fuse"
}

# Extraction cannot create device nodes in a user namespace; everything else must survive
# (squash_extract.hpp: setuid bits are kept rootless, where the files belong to the user).
expected_extracted_manifest() {
  grep -v -e '^blk ' -e '^chr ' "$W/tree.manifest"
}

test_extraction_fallback_without_dev_fuse() {
  local before out
  before=$(ls -d /tmp/rbox-unsquash-* 2>/dev/null | wc -l)
  out=$(with_dev_fuse missing runuser -u "$RBOX_TEST_USER" -- "$PROBE" "$W/tree-zstd.sqfs" -- \
    python3 "$W/manifest.py" . 2>"$W/fallback.err")
  assert_eq "$(expected_extracted_manifest)" "$out" "extracted tree differs"
  assert_contains "$(cat "$W/fallback.err")" "extracting $W/tree-zstd.sqfs into a temporary directory instead"
  assert_eq "$before" "$(ls -d /tmp/rbox-unsquash-* 2>/dev/null | wc -l)" "extraction directory left behind"
}

test_unsquash_matches_the_tree_and_cleans_up() {
  local before out
  before=$(ls -d /tmp/rbox-unsquash-* 2>/dev/null | wc -l)
  out=$(manifest_through "$W/tree-gzip.sqfs" --unsquash)
  assert_eq "$(expected_extracted_manifest)" "$out" "--unsquash tree differs"
  assert_eq "$before" "$(ls -d /tmp/rbox-unsquash-* 2>/dev/null | wc -l)" "extraction directory left behind"
}

test_unsquash_cleans_up_after_ctrl_c() {
  # Enough files that extraction takes seconds (one write per file).
  local big=$W/big
  mkdir -p "$big"
  python3 -c '
import os, sys
for d in range(100):
    os.mkdir("%s/d%d" % (sys.argv[1], d))
    for f in range(100):
        with open("%s/d%d/f%d" % (sys.argv[1], d, f), "w") as fh:
            fh.write("x" * (f * 37))' "$big"
  mksquashfs "$big" "$W/big.sqfs" -noappend -quiet -no-progress -comp gzip >/dev/null
  chmod a+r "$W/big.sqfs"
  rm -rf "$big"
  local before
  before=$(ls -d /tmp/rbox-unsquash-* 2>/dev/null | wc -l)
  # setsid: the probe leads its own process group, like a foreground job; Ctrl-C = SIGINT to it.
  runuser -u "$RBOX_TEST_USER" -- setsid "$PROBE" --unsquash "$W/big.sqfs" -- true 2>"$W/sigint.err" &
  local job=$! pid="" n
  for n in $(seq 1 100); do
    pid=$(pgrep -u "$RBOX_TEST_USER" -f -o "^$PROBE --unsquash $W/big.sqfs") && [ -n "$(ls -d /tmp/rbox-unsquash-"$pid"-* 2>/dev/null)" ] && break
    sleep 0.05
  done
  [ -n "$pid" ] || { fail "probe did not start"; wait "$job"; return; }
  kill -INT -- "-$pid"
  wait "$job"
  local rc=$?
  assert_eq 130 "$rc" "exit status after SIGINT"
  assert_eq "$before" "$(ls -d /tmp/rbox-unsquash-* 2>/dev/null | wc -l)" "extraction directory left after Ctrl-C"
}

test_kernel_squashfs_for_real_root() {
  local out
  out=$("$PROBE" --verbose "$W/tree-zstd.sqfs" -- python3 "$W/manifest.py" . 2>"$W/kernel.err")
  assert_contains "$(cat "$W/kernel.err")" "method=kernel squashfs"
  # The kernel reports image owners; everything else must match the tree.
  assert_eq "$(cat "$W/tree.manifest")" "$out" "kernel squashfs view differs"
  # A SIF partition at its offset, over a loop device that goes away with the mount.
  out=$("$PROBE" --verbose --chroot "$BUSYBOX_SIF" -- /bin/sh -c 'ls /.singularity.d' 2>&1)
  assert_contains "$out" "runscript"
  assert_contains "$out" "method=kernel squashfs"
  if losetup -a | grep -q "$BUSYBOX_SIF"; then fail "loop device left attached"; fi
}

test_corrupt_images_are_rejected_clearly() {
  head -c 20000 "$W/tree-zstd.sqfs" >"$W/truncated.sqfs"
  head -c 8192 /dev/urandom >"$W/junk.img"
  chmod a+r "$W/truncated.sqfs" "$W/junk.img"
  local out
  out=$(as_user "$PROBE" "$W/truncated.sqfs" -- true 2>&1)
  assert_contains "$out" "$W/truncated.sqfs"
  assert_contains "$out" "truncated"
  out=$(as_user "$PROBE" "$W/junk.img" -- true 2>&1)
  assert_contains "$out" "$W/junk.img: not a SIF"
  out=$(as_user "$PROBE" --offset 0 "$W/junk.img" -- true 2>&1)
  assert_contains "$out" "$W/junk.img: not a readable SquashFS 4.0 filesystem"
}

run_tests "$@"
