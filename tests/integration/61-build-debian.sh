#!/usr/bin/env bash
# Fake-root acceptance: package managers in %post and debootstrap itself, rootless, both as
# $RBOX_TEST_USER (no /etc/subuid range: root-mapped namespace + seccomp no-ops) and as
# $RBOX_TEST_SUBUID_USER (full /etc/subuid map). One Debian base SIF from the local registry is
# built once and reused (the seed-style workflow: base.sif, then `From: base.sif`); apt installs
# are kept small. Files installed in %post must be owned by root inside the image.
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1090
. "${RBOX_TESTENV:-/var/tmp/rbox-testenv/env.sh}" || { echo "no test environment: run scripts/setup-test-env.sh up" >&2; exit 1; }

W=$RBOX_IT_DIR/build61
mkdir -p "$W"
chmod 1777 "$W"
SUB=${RBOX_TEST_SUBUID_USER:-rboxsub}

rb() { as_user_in "$W" "$RBOX" "$@"; }
rb_sub() { RBOX_TEST_USER=$SUB as_user_in "$W" "$RBOX" "$@"; }
write_def() { cat >"$W/$1"; chmod 644 "$W/$1"; }

# Owner (uid/gid) of a path inside a SIF's SquashFS, read with the host's unsquashfs.
owner_in_sif() {
  local off
  off=$(python3 -c 'import sys; print(open(sys.argv[1], "rb").read().find(b"hsqs"))' "$1")
  unsquashfs -o "$off" -lln "$1" "$2" 2>/dev/null | awk -v p="squashfs-root$2" '$NF == p { print $2 }'
}

# The base every test here starts from (built once per run).
base_sif() {
  if [ ! -f "$W/debian-base.sif" ]; then
    write_def base.def <<EOF
Bootstrap: docker
From: $RBOX_REG_HTTP/$RBOX_IMG_DEBIAN
EOF
    rb build debian-base.sif base.def >"$W/base.log" 2>&1 || { cat "$W/base.log" >&2; return 1; }
    chmod 644 "$W/debian-base.sif"
  fi
}

test_apt_install_in_post_without_subuid() {
  base_sif || { fail "base build failed"; return; }
  write_def apt.def <<'EOF'
Bootstrap: localimage
From: debian-base.sif

%post
apt-get update
apt-get install -y --no-install-recommends tmux syncthing

%runscript
tmux -V
EOF
  local out
  out=$(rb build apt.sif apt.def 2>&1) || { fail "apt build failed: ${out: -3000}"; return; }
  assert_contains "$out" "root-mapped user namespace" "mode recorded in the build log"
  assert_contains "$(rb exec apt.sif tmux -V 2>&1)" "tmux 3" "tmux runs"
  assert_contains "$(rb exec apt.sif syncthing --version 2>&1)" "syncthing v" "syncthing runs"
  assert_contains "$(rb run apt.sif 2>&1)" "tmux 3" "runscript"
  assert_eq "0/0" "$(owner_in_sif "$W/apt.sif" /usr/bin/tmux)" "files installed in %post are owned by root"
  assert_eq "0/0" "$(owner_in_sif "$W/apt.sif" /usr/bin/syncthing)"
  assert_status 0 rb exec apt.sif test ! -e /etc/apt/apt.conf.d/00rbox-fakeroot  # build-only apt setting removed
}

test_apt_install_in_post_with_subuid() {
  base_sif || { fail "base build failed"; return; }
  grep -q "^$SUB:" /etc/subuid || { skip "$SUB has no /etc/subuid range"; return; }
  write_def aptsub.def <<'EOF'
Bootstrap: localimage
From: debian-base.sif

%post
apt-get update
apt-get install -y --no-install-recommends tmux syncthing
EOF
  local out
  out=$(rb_sub build aptsub.sif aptsub.def 2>&1) || { fail "apt build (subuid) failed: ${out: -3000}"; return; }
  assert_contains "$out" "/etc/subuid map" "mode recorded in the build log"
  assert_eq "0/0" "$(owner_in_sif "$W/aptsub.sif" /usr/bin/tmux)" "files installed in %post are owned by root"
  # With a full map group ownership survives (utempter is root:utmp in Debian).
  assert_eq "0/43" "$(owner_in_sif "$W/aptsub.sif" /usr/lib/x86_64-linux-gnu/utempter/utempter)"
  assert_contains "$(RBOX_TEST_USER=$SUB as_user_in "$W" "$RBOX" exec aptsub.sif tmux -V 2>&1)" "tmux 3"
  # --ignore-subuid forces the root-mapped path.
  out=$(rb_sub build --ignore-subuid --force --notest aptsub2.sif base.def 2>&1) || { fail "--ignore-subuid build failed: $out"; return; }
  assert_contains "$out" "root-mapped"
}

deb_def() {
  write_def deb.def <<EOF
Bootstrap: debootstrap
OSVersion: bookworm
MirrorURL: ${RBOX_DEBIAN_MIRROR:-http://deb.debian.org/debian}

%post
echo "debootstrapped" > /marker
EOF
}

test_debootstrap_without_subuid() {
  deb_def
  local out
  out=$(rb build deb.sif deb.def 2>&1) || { fail "debootstrap build failed: ${out: -3000}"; return; }
  assert_eq "debootstrapped" "$(rb exec deb.sif cat /marker 2>&1)"
  assert_contains "$(rb exec deb.sif cat /etc/debian_version 2>&1)" "12"
  assert_status 0 rb exec deb.sif test -x /usr/bin/apt-get  # Include defaults to apt
  assert_eq "0/0" "$(owner_in_sif "$W/deb.sif" /usr/bin/bash)"
  assert_eq "" "$(rb exec deb.sif sh -c 'cat /etc/hostname 2>/dev/null' 2>&1)" "host files debootstrap copies are removed"
}

test_debootstrap_with_subuid() {
  grep -q "^$SUB:" /etc/subuid || { skip "$SUB has no /etc/subuid range"; return; }
  deb_def
  local out
  out=$(rb_sub build debsub.sif deb.def 2>&1) || { fail "debootstrap build (subuid) failed: ${out: -3000}"; return; }
  assert_contains "$out" "/etc/subuid map"
  assert_eq "0/42" "$(owner_in_sif "$W/debsub.sif" /etc/shadow)" "group shadow kept with a full map"
}

run_tests "$@"
