# Shared by tests/integration/5x-*.sh (the runtime tests; sourced after lib.sh, not run alone):
# builds the test images once per run — a sandbox directory with busybox-static, the static
# rbox-probe helper and escape fixtures, the same tree packed as a SIF by rbox itself, and a
# variant whose environment file needs a real shell — and runs rbox as root or as the test user.
#
#   $RT/sandbox  $RT/image.sif  $RT/shellenv.sif  $RT/probe   (RT=$RBOX_IT_DIR/runtime)

RT=$RBOX_IT_DIR/runtime
APPTAINER_SIF=${RBOX_CONFORMANCE_DIR:-}/apptainer-images/busybox_amd64.sif

# Builds rbox-probe statically (from the build tree when RBOX_PROBE points at one).
_build_probe() {
  if [ -n "${RBOX_PROBE:-}" ] && [ -x "$RBOX_PROBE" ]; then
    cp "$RBOX_PROBE" "$RT/probe"
  else
    cc -static -O2 -Wall -o "$RT/probe" "$RBOX_SOURCE_DIR/tests/helper/rbox-probe.c" || return 1
  fi
  chmod 0755 "$RT/probe"
}

_make_tree() {  # DIR: busybox + probe + Apptainer metadata + fixtures
  local d=$1 a
  mkdir -p "$d"/{bin,etc,tmp,var/tmp,proc,sys,dev,home,root,mnt,opt,.singularity.d/env,data}
  cp /usr/bin/busybox "$d/bin/busybox"
  for a in $(/usr/bin/busybox --list); do
    [ "$a" = busybox ] || ln -sf busybox "$d/bin/$a"
  done
  cp "$RT/probe" "$d/bin/rbox-probe"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$d/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$d/etc/group"
  printf 'image-data\n' >"$d/data/file"
  chmod 1777 "$d/tmp" "$d/var/tmp"
  cp "$RBOX_SOURCE_DIR"/runtime/env/*.sh "$d/.singularity.d/env/"
  printf '#!/bin/sh\n# %%environment\nexport IMAGE_VAR=from-image\nexport FOO=image-foo\n' \
    >"$d/.singularity.d/env/90-environment.sh"
  printf '#!/bin/sh\necho "runscript args: $*"\n' >"$d/.singularity.d/runscript"
  printf '#!/bin/sh\necho test-section-ran\nexit 3\n' >"$d/.singularity.d/test"
  chmod 0755 "$d/.singularity.d/runscript" "$d/.singularity.d/test"
  # Escape fixtures: symlinks that would lead out of the root if followed on the host.
  ln -s ../../../../../../../../etc "$d/escape-dotdot"
  ln -s /proc/1/root "$d/escape-proc1"
  ln -s /tmp/../../../.. "$d/escape-abs"
  chmod -R a+rX "$d"
}

# Builds everything once per run (the three 5x files share it).
make_runtime_images() {
  [ -f "$RT/.done" ] && return 0
  mkdir -p "$RT"
  chmod 0755 "$RT"
  _build_probe || { echo "cannot build rbox-probe" >&2; return 1; }
  _make_tree "$RT/sandbox"
  "$RBOX" -q build "$RT/image.sif" "$RT/sandbox" >/dev/null || { echo "rbox build failed" >&2; return 1; }
  _make_tree "$RT/shellenv"
  # A %environment that only a real shell can evaluate: rbox must fall back to /bin/sh.
  printf '#!/bin/sh\nexport IMAGE_VAR=$(echo from-shell)\nexport FOO=image-foo\n' \
    >"$RT/shellenv/.singularity.d/env/90-environment.sh"
  "$RBOX" -q build "$RT/shellenv.sif" "$RT/shellenv" >/dev/null || return 1
  chmod 0644 "$RT"/*.sif
  touch "$RT/.done"
}

# rbox_as WHO ARGS...: runs rbox as root or as the test user, from the test user's home
# (a directory both can enter). Prints stdout+stderr.
rbox_as() {
  local who=$1
  shift
  if [ "$who" = root ]; then
    (cd "$RBOX_IT_DIR" && "$RBOX" "$@")
  else
    as_user_in "$(user_home)" "$RBOX" "$@"
  fi
}

user_home() { getent passwd "$RBOX_TEST_USER" | cut -d: -f6; }
user_uid() { id -u "$RBOX_TEST_USER"; }

# The variants every behaviour test runs over: WHO:IMAGE:PIDFLAG.
runtime_variants() {
  local who img pid
  for who in root user; do
    for img in sif sandbox; do
      for pid in "" --pid; do
        echo "$who:$img:${pid:-nopid}"
      done
    done
  done
}

image_path() { [ "$1" = sif ] && echo "$RT/image.sif" || echo "$RT/sandbox"; }
pid_flag() { [ "$1" = --pid ] && echo --pid || true; }
