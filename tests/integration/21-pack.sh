#!/usr/bin/env bash
# Packing and extraction, as the unprivileged test user: a tree with every file type goes through
# `rbox build out.sif tree/` and `rbox build --sandbox dir/ out.sif` and comes back equal (types,
# modes, sizes, sha256, link targets, hard-link counts, mtimes, xattrs); the kernel's own squashfs
# driver reads the packed image the same way; SOURCE_DATE_EPOCH makes packing byte-reproducible;
# targets are only replaced with --force; unreadable trees and interrupted writes leave no image.
. "$(dirname "$0")/lib.sh"

W=$RBOX_IT_DIR/pack
mkdir -p "$W"
chmod 1777 "$W"

# Manifest of a tree (tree_manifest.py; owners only with --owners), copied where the test user
# can read it.
cp "$(dirname "$0")/tree_manifest.py" "$W/manifest.py"
manifest() { /usr/bin/python3 "$W/manifest.py" "$@" --user-xattrs; }

# A tree with every file type, made by the test user (so it is rootless-packable).
make_tree() {  # DIR
  as_user sh -c '
    set -e
    t=$1
    mkdir -p "$t/etc/sub/deep" "$t/empty" "$t/sticky" "$t/locked" "$t/spaced dir/ünïcode"
    printf "hello\n" >"$t/etc/hello"
    : >"$t/etc/zero"
    head -c 3000000 /dev/urandom >"$t/etc/sub/random.bin"
    seq 1 200000 >"$t/etc/sub/deep/numbers.txt"
    truncate -s 5M "$t/etc/sparse"
    printf "tail" >>"$t/etc/sparse"
    printf "x" >"$t/spaced dir/ünïcode/file with spaces"
    ln -s etc/hello "$t/rel-link"
    ln -s /etc/passwd "$t/abs-link"
    ln -s nowhere/at/all "$t/dangling"
    ln "$t/etc/hello" "$t/etc/sub/hard1"
    ln "$t/etc/hello" "$t/hard2"
    mkfifo "$t/fifo"
    printf "#!/bin/sh\necho run\n" >"$t/run.sh"
    chmod 4755 "$t/run.sh"
    chmod 1777 "$t/sticky"
    chmod 0555 "$t/locked"
    chmod 0640 "$t/etc/zero"
    setfattr -n user.rbox.test -v hello "$t/etc/hello" 2>/dev/null || true
    setfattr -n user.rbox.dir -v d "$t/etc" 2>/dev/null || true
    touch -h -d "2001-02-03 04:05:06 UTC" "$t/etc/hello" "$t/rel-link"
    touch -d "2030-01-01 00:00:00 UTC" "$t/run.sh"
  ' sh "$1"
}

test_pack_extract_round_trip_rootless() {
  local t=$W/rt
  make_tree "$t/tree"
  assert_status 0 as_user "$RBOX" build "$t/out.sif" "$t/tree/"
  assert_status 0 as_user "$RBOX" build --sandbox "$t/back" "$t/out.sif"
  local want got
  want=$(manifest "$t/tree" --owners)
  got=$(manifest "$t/back" --owners)  # all-root image, extracted rootless: owned by the user again
  assert_eq "$want" "$got" "extracted tree differs from the source"
  assert_contains "$want" "etc/sub/hard1 type=100000 mode=0644 size=6 nlink=3" "test tree lacks its hard links"
  assert_contains "$got" "run.sh type=100000 mode=4755" "setuid bit lost rootless"
  # The image stores root as owner (rootless builds are all-root).
  local part
  part=$("$RBOX" sif list "$t/out.sif" | awk -F'|' '/\*System/ {split($4, p, "-"); print p[1]}')
  [ -n "$part" ] || fail "no primary partition in rbox sif list"
  assert_contains "$(unsquashfs -lln -o "$part" "$t/out.sif" 2>/dev/null | grep ' squashfs-root/etc/hello$')" \
    " 0/0 " "owner in the image is not root"
}

test_kernel_squashfs_reads_the_image() {
  [ "$(id -u)" = 0 ] || { skip "needs root for a loop mount"; return 0; }
  local t=$W/kernel
  make_tree "$t/tree"
  assert_status 0 as_user "$RBOX" build "$t/out.sif" "$t/tree/"
  local part
  part=$("$RBOX" sif list "$t/out.sif" | awk -F'|' '/\*System/ {split($4, p, "-"); print p[1]}')
  mkdir -p "$t/mnt"
  mount -t squashfs -o loop,ro,offset="$part" "$t/out.sif" "$t/mnt" || { fail "kernel refused the image"; return 1; }
  local want got
  want=$(manifest "$t/tree")
  got=$(manifest "$t/mnt")
  umount "$t/mnt"
  assert_eq "$want" "$got" "kernel view of the image differs from the source tree"
}

test_debian_tree_round_trip() {
  . "${RBOX_TESTENV:-/var/tmp/rbox-testenv/env.sh}" 2>/dev/null || true
  local tar=${RBOX_DEBIAN_ROOTFS_TAR:-}
  [ -r "$tar" ] || { skip "no Debian rootfs tarball (scripts/setup-test-env.sh up)"; return 0; }
  local t=$W/debian
  mkdir -p "$t/tree"
  chown "$RBOX_TEST_USER" "$t" "$t/tree"
  # Unpacked as the user, like a rootless build's sandbox (owners become the user).
  as_user tar -xf "$tar" -C "$t/tree" --no-same-owner --no-same-permissions 2>/dev/null
  as_user chmod -R u+rwX "$t/tree"
  assert_status 0 as_user "$RBOX" build "$t/deb.sif" "$t/tree/"
  assert_status 0 as_user "$RBOX" build --sandbox "$t/back" "$t/deb.sif"
  assert_eq "$(manifest "$t/tree")" "$(manifest "$t/back")" "Debian tree differs after pack and extract"
  assert_contains "$("$RBOX" sif list "$t/deb.sif")" "FS (Squashfs/*System/amd64)"
}

test_reproducible_with_source_date_epoch() {
  local t=$W/repro
  make_tree "$t/tree"
  assert_status 0 as_user SOURCE_DATE_EPOCH=1700000000 "$RBOX" build "$t/a.sif" "$t/tree/"
  as_user touch "$t/tree/etc"  # newer than SOURCE_DATE_EPOCH: clamped, so still identical
  assert_status 0 as_user SOURCE_DATE_EPOCH=1700000000 "$RBOX" build "$t/b.sif" "$t/tree/"
  cmp -s "$t/a.sif" "$t/b.sif" || fail "two packs with SOURCE_DATE_EPOCH differ"
  # Another copy of the tree: the same SquashFS (the DefFile names the source path, so only the
  # partitions are compared).
  as_user cp -a "$t/tree" "$t/copy"
  assert_status 0 as_user SOURCE_DATE_EPOCH=1700000000 "$RBOX" build "$t/c.sif" "$t/copy/"
  cmp -s <("$RBOX" sif dump 3 "$t/a.sif") <("$RBOX" sif dump 3 "$t/c.sif") || fail "partitions of two copies differ"
  local h
  h=$("$RBOX" sif header "$t/a.sif")
  assert_not_contains "$h" "ID:" "deterministic SIF has a UUID"
  assert_not_contains "$h" "Created At:" "deterministic SIF has a creation time"
  assert_status 0 as_user "$RBOX" build "$t/d.sif" "$t/tree/"
  cmp -s "$t/a.sif" "$t/d.sif" && fail "without SOURCE_DATE_EPOCH the SIF should carry a fresh UUID and time"
  assert_contains "$("$RBOX" sif header "$t/d.sif")" "ID:"
}

test_compressors_and_block_sizes() {
  local t=$W/comp
  make_tree "$t/tree"
  local want
  want=$(manifest "$t/tree")
  for c in gzip xz lz4 lz4hc zstd; do
    assert_status 0 as_user "$RBOX" build --compress "$c" --block-size 128K "$t/$c.sif" "$t/tree/"
    assert_status 0 as_user "$RBOX" build --sandbox "$t/$c" "$t/$c.sif"
    assert_eq "$want" "$(manifest "$t/$c")" "round trip with $c"
  done
  local part
  part=$("$RBOX" sif list "$t/gzip.sif" | awk -F'|' '/\*System/ {split($4, p, "-"); print p[1]}')
  assert_contains "$(unsquashfs -s -o "$part" "$t/gzip.sif")" "Compression gzip"
  assert_contains "$(unsquashfs -s -o "$part" "$t/gzip.sif")" "Block size 131072"
  assert_status 2 as_user "$RBOX" build --compress lzo "$t/bad.sif" "$t/tree/"
  assert_status 2 as_user "$RBOX" build --compress-level 40 "$t/bad.sif" "$t/tree/"
  assert_status 2 as_user "$RBOX" build --block-size 100K "$t/bad.sif" "$t/tree/"
  assert_no_file "$t/bad.sif"
}

test_existing_targets_need_force() {
  local t=$W/force
  make_tree "$t/tree"
  assert_status 0 as_user "$RBOX" build "$t/out.sif" "$t/tree/"
  cp "$t/out.sif" "$t/orig.sif"
  local out
  out=$(as_user "$RBOX" build "$t/out.sif" "$t/tree/" 2>&1)
  assert_eq 2 $? "second build without --force"
  assert_contains "$out" "already exists; add --force"
  cmp -s "$t/out.sif" "$t/orig.sif" || fail "refused build changed the target"
  assert_status 0 as_user "$RBOX" build --force "$t/out.sif" "$t/tree/"
  assert_status 0 as_user "$RBOX" build --sandbox "$t/sb" "$t/out.sif"
  assert_status 2 as_user "$RBOX" build --sandbox "$t/sb" "$t/out.sif"
  as_user touch "$t/sb/marker"
  assert_status 0 as_user "$RBOX" build --force --sandbox "$t/sb" "$t/out.sif"
  assert_no_file "$t/sb/marker"
  assert_file "$t/sb/etc/hello"
  # SIF → SIF repacks (e.g. to change the compressor).
  assert_status 0 as_user "$RBOX" build --compress gzip "$t/re.sif" "$t/out.sif"
  assert_contains "$(as_user "$RBOX" inspect "$t/re.sif")" "SIF"
}

test_unreadable_tree_fails_cleanly() {
  local t=$W/unreadable
  make_tree "$t/tree"
  as_user sh -c 'printf secret >"$1/etc/shadow" && chmod 000 "$1/etc/shadow"' sh "$t/tree"
  local out rc
  out=$(as_user "$RBOX" build "$t/out.sif" "$t/tree/" 2>&1)
  rc=$?
  [ "$rc" -ne 0 ] || fail "packing an unreadable file succeeded"
  assert_contains "$out" "etc/shadow"
  assert_contains "$out" "chmod -R u+rX"
  assert_no_file "$t/out.sif"
  [ -z "$(ls -A "$t" | grep tmp)" ] || fail "temporary file left behind: $(ls -A "$t")"
}

test_interrupted_write_keeps_old_image() {
  local t=$W/interrupt
  make_tree "$t/tree"
  assert_status 0 "$RBOX" build "$t/out.sif" "$t/tree/"
  cp "$t/out.sif" "$t/orig.sif"
  # A bigger tree so the build is still running when it is killed.
  for i in $(seq 1 40); do head -c 4000000 /dev/urandom >"$t/tree/etc/big$i"; done
  "$RBOX" --quiet build --force --compress xz "$t/out.sif" "$t/tree/" &
  local pid=$!
  sleep 1
  kill -0 "$pid" 2>/dev/null || fail "the build finished before it could be interrupted"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  cmp -s "$t/out.sif" "$t/orig.sif" || fail "interrupted build damaged the existing image"
  assert_status 0 "$RBOX" sif list "$t/out.sif"
}

test_inspect_metadata_from_sandbox_and_sif() {
  local t=$W/inspect
  make_tree "$t/tree"
  as_user sh -c '
    d=$1/.singularity.d
    mkdir -p "$d/env"
    printf "{\n\t\"maintainer\": \"rbox tests\",\n\t\"version\": \"1.2\"\n}" >"$d/labels.json"
    printf "#!/bin/sh\nexec echo hello \"\$@\"\n" >"$d/runscript"
    printf "Usage: run it\n" >"$d/runscript.help"
    printf "#!/bin/sh\nexport GREETING=hi\n" >"$d/env/90-environment.sh"
    printf "Bootstrap: scratch\n%%labels\n  maintainer rbox tests\n" >"$d/Singularity"
  ' sh "$t/tree"
  local out
  out=$(as_user "$RBOX" inspect "$t/tree")
  assert_contains "$out" "maintainer: rbox tests"
  assert_contains "$out" "exec echo hello"
  assert_contains "$out" "export GREETING=hi"
  assert_contains "$out" "Usage: run it"
  assert_status 0 as_user "$RBOX" build "$t/out.sif" "$t/tree/"
  out=$(as_user "$RBOX" inspect "$t/out.sif")
  assert_contains "$out" "version: 1.2"
  assert_contains "$out" "Bootstrap: scratch"
  assert_contains "$("$RBOX" sif dump 1 "$t/out.sif")" "Bootstrap: scratch" "DefFile object"
  out=$(as_user "$RBOX" inspect --json "$t/out.sif")
  assert_eq "rbox tests" "$(echo "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["attributes"]["labels"]["maintainer"])')"
}

run_tests "$@"
