#!/usr/bin/env bash
# SIF compatibility with the reference implementation: `rbox sif list|info|header|dump` print
# exactly what sylabs' siftool prints for all 21 files of its test corpus and for an image built by
# Singularity 3.8; siftool reads SIFs written by rbox; truncated and corrupted SIFs are refused
# with one clear line and a non-zero exit; `rbox inspect` shows the real image's metadata.
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1090
[ -r "${RBOX_TESTENV:-/nonexistent}" ] && . "$RBOX_TESTENV"

W=$RBOX_IT_DIR/sif
mkdir -p "$W"
chmod 1777 "$W"
CONF=${RBOX_CONFORMANCE_DIR:-$RBOX_SOURCE_DIR/../shared/conformance}
CORPUS=$CONF/sif-images
BUSYBOX=$CONF/apptainer-images/busybox_amd64.sif

SIFTOOL=${RBOX_SIFTOOL:-}
if [ -z "$SIFTOOL" ] || [ ! -x "$SIFTOOL" ]; then
  SIFTOOL=$W/siftool
  bash "$RBOX_SOURCE_DIR/../shared/tools/siftool/build.sh" "$SIFTOOL" >/dev/null ||
    { echo "20-sif.sh: cannot build siftool" >&2; exit 1; }
fi

ids_of() { "$SIFTOOL" list "$1" | tail -n +4 | awk '{print $1}'; }

# Compares rbox's and siftool's output of one subcommand, stdout and exit status.
same_as_siftool() {  # SUBCOMMAND ARGS...
  local want got
  want=$("$SIFTOOL" "$@" 2>&1)
  got=$("$RBOX" sif "$@" 2>&1)
  [ "$want" == "$got" ] || fail "rbox sif $* differs from siftool:
$(diff <(echo "$want") <(echo "$got") | head -20)"
}

test_corpus_matches_siftool() {
  local n=0 f id
  for f in "$CORPUS"/*.sif; do
    n=$((n + 1))
    same_as_siftool list "$f"
    same_as_siftool header "$f"
    for id in $(ids_of "$f"); do
      same_as_siftool info "$id" "$f"
      cmp -s <("$SIFTOOL" dump "$id" "$f") <("$RBOX" sif dump "$id" "$f") || fail "dump $id $f differs"
    done
  done
  assert_eq 21 "$n" "corpus size"
}

test_apptainer_image_matches_siftool() {
  same_as_siftool list "$BUSYBOX"
  same_as_siftool header "$BUSYBOX"
  local id
  for id in $(ids_of "$BUSYBOX"); do same_as_siftool info "$id" "$BUSYBOX"; done
  # Its data starts at 32768 (Singularity 3.8), not 32176: offsets come from the file.
  assert_contains "$("$RBOX" sif header "$BUSYBOX")" "Data Offset:          32768"
  assert_contains "$("$RBOX" sif list "$BUSYBOX")" "45056-790528              |FS (Squashfs/*System/amd64)"
}

test_inspect_shows_definition_and_labels() {
  local out
  out=$(as_user "$RBOX" inspect "$BUSYBOX")
  assert_contains "$out" "BootStrap: docker"
  assert_contains "$out" "From: busybox:1.33.1"
  assert_contains "$out" "org.label-schema.usage.singularity.version: 3.8.1"
  assert_contains "$out" "org.label-schema.build-arch: amd64"
  assert_contains "$out" "OCI_CMD='\"sh\"'"  # runscript
  assert_contains "$out" "/.singularity.d/env/10-docker2singularity.sh"
  out=$(as_user "$RBOX" inspect --json "$BUSYBOX")
  assert_eq "busybox:1.33.1" "$(echo "$out" | /usr/bin/python3 -c \
    'import json,sys; print(json.load(sys.stdin)["data"]["attributes"]["labels"]["org.label-schema.usage.singularity.deffile.from"])')"
}

test_busybox_partition_found_and_extracted() {
  assert_status 0 as_user "$RBOX" build --sandbox "$W/bb" "$BUSYBOX"
  assert_file "$W/bb/bin/busybox"
  assert_eq 400 "$(stat -c %h "$W/bb/bin/busybox")" "busybox hard links"
  assert_eq "$(id -u "$RBOX_TEST_USER")" "$(stat -c %u "$W/bb/bin/busybox")" "extracted files belong to the user"
  # The metadata read from the SquashFS itself (no SIF objects) matches the SIF's.
  assert_contains "$(as_user "$RBOX" inspect "$W/bb")" "From: busybox:1.33.1"
}

test_siftool_reads_sifs_written_by_rbox() {
  as_user sh -c 'mkdir -p "$1/bin" "$1/.singularity.d" && cp /bin/busybox "$1/bin/sh" &&
    printf "{\"a\": \"b\"}" >"$1/.singularity.d/labels.json" &&
    printf "Bootstrap: scratch\n" >"$1/.singularity.d/Singularity"' sh "$W/tree"
  assert_status 0 as_user "$RBOX" build "$W/rbox.sif" "$W/tree/"
  local list
  list=$("$SIFTOOL" list "$W/rbox.sif") || fail "siftool list failed on rbox's SIF"
  assert_contains "$list" "1    |1       |NONE    |32176-"
  assert_contains "$list" "|Def.FILE"
  assert_contains "$list" "|JSON.Generic"
  assert_contains "$list" "|FS (Squashfs/*System/amd64)"
  assert_eq 3 "$(echo "$list" | tail -n +4 | wc -l)" "descriptor count"
  local h
  h=$("$SIFTOOL" header "$W/rbox.sif") || fail "siftool header failed"
  assert_contains "$h" "Launch Script:        #!/usr/bin/env run-singularity"
  assert_contains "$h" "Primary Architecture: amd64"
  assert_contains "$h" "Descriptors Free:     45"
  assert_contains "$("$SIFTOOL" info 2 "$W/rbox.sif")" "Name:         inspect-metadata.json"
  assert_eq "Bootstrap: scratch" "$("$SIFTOOL" dump 1 "$W/rbox.sif")" "DefFile object"
  "$SIFTOOL" dump 3 "$W/rbox.sif" >"$W/part.sqfs" || fail "siftool dump of the partition failed"
  assert_contains "$(unsquashfs -s "$W/part.sqfs")" "Compression zstd"
  # The partition is 4096-aligned and the file is executable, as Apptainer writes it.
  local start
  start=$(echo "$list" | awk -F'|' '/\*System/ {split($4, p, "-"); print p[1]}')
  assert_eq 0 $((start % 4096)) "partition alignment"
  [ -x "$W/rbox.sif" ] || fail "SIF is not executable"
  same_as_siftool list "$W/rbox.sif"
  same_as_siftool header "$W/rbox.sif"
}

expect_refusal() {  # FILE NEEDLE: every reader refuses FILE with one line naming it
  local f=$1 needle=$2 out rc
  for cmd in "sif list" "sif header" "inspect"; do
    # shellcheck disable=SC2086
    out=$("$RBOX" $cmd "$f" 2>&1)
    rc=$?
    [ "$rc" -ne 0 ] || fail "rbox $cmd accepted $(basename "$f")"
    assert_contains "$out" "$f" "message names the file"
    assert_contains "$out" "$needle"
    assert_eq 1 "$(echo "$out" | wc -l)" "one-line error for rbox $cmd $(basename "$f"): $out"
  done
  out=$(as_user "$RBOX" build --sandbox "$W/never" "$f" 2>&1)
  [ $? -ne 0 ] || fail "extraction of $(basename "$f") succeeded"
  assert_no_file "$W/never"
}

test_truncated_and_corrupted_sifs_are_refused() {
  local good=$W/good.sif
  cp "$BUSYBOX" "$good"
  head -c 100 "$good" >"$W/t100.sif"
  expect_refusal "$W/t100.sif" "truncated"
  head -c 20000 "$good" >"$W/t20000.sif"
  expect_refusal "$W/t20000.sif" "descriptor table"
  head -c 500000 "$good" >"$W/t500000.sif"
  expect_refusal "$W/t500000.sif" "extends past the end"
  cp "$good" "$W/magic.sif"
  printf 'XIF' | dd of="$W/magic.sif" bs=1 seek=32 conv=notrunc status=none
  expect_refusal "$W/magic.sif" "not a SIF file"
  cp "$good" "$W/version.sif"
  printf '99' | dd of="$W/version.sif" bs=1 seek=42 conv=notrunc status=none
  expect_refusal "$W/version.sif" "unsupported SIF version"
  # Object 2's offset (descriptor 2 at 4096 + 585, offset field at +17) moved onto object 1.
  cp "$good" "$W/overlap.sif"
  printf '\x00\x80\x00\x00\x00\x00\x00\x00' | dd of="$W/overlap.sif" bs=1 seek=$((4096 + 585 + 17)) conv=notrunc status=none
  expect_refusal "$W/overlap.sif" "overlap"
  # Object 3 (a JSON object) turned into a second primary partition.
  cp "$good" "$W/prim.sif"
  dd if="$good" of="$W/prim.sif" bs=1 skip=$((4096 + 3 * 585)) seek=$((4096 + 2 * 585)) count=4 conv=notrunc status=none
  dd if="$good" of="$W/prim.sif" bs=1 skip=$((4096 + 3 * 585 + 201)) seek=$((4096 + 2 * 585 + 201)) count=12 \
    conv=notrunc status=none
  expect_refusal "$W/prim.sif" "two primary system partitions"
  # The partition no longer starts with a SquashFS superblock: readable SIF, unusable image.
  cp "$good" "$W/nosquash.sif"
  printf 'XXXX' | dd of="$W/nosquash.sif" bs=1 seek=45056 conv=notrunc status=none
  local out
  out=$("$RBOX" inspect "$W/nosquash.sif" 2>&1)
  [ $? -ne 0 ] || fail "inspect accepted a partition without SquashFS"
  assert_contains "$out" "does not start with a SquashFS superblock"
  assert_status 0 "$RBOX" sif list "$W/nosquash.sif"
  # A file that is no image at all.
  head -c 5000 /dev/urandom >"$W/random.bin"
  out=$("$RBOX" inspect "$W/random.bin" 2>&1)
  [ $? -ne 0 ] || fail "inspect accepted random bytes"
  assert_contains "$out" "not a SIF file, SquashFS image or sandbox directory"
}

test_sif_command_errors() {
  local out
  out=$("$RBOX" sif info 9 "$BUSYBOX" 2>&1)
  assert_eq 1 $? "info of a missing object"
  assert_contains "$out" "no object with ID 9"
  out=$("$RBOX" sif info x "$BUSYBOX" 2>&1)
  assert_eq 2 $? "info with a bad ID"
  assert_contains "$out" "not a number"
  assert_status 1 "$RBOX" sif list "$W/does-not-exist.sif"
}

run_tests "$@"
