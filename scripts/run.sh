#!/usr/bin/env bash
# README command 1: on a fresh Debian 12 machine, set up, build rbox, build defs/devbox.def into
# devbox.sif as the invoking user, and show that the image works (tmux, syncthing).
# Run it as your own user (it asks for the missing packages with the exact apt-get line), or as
# root, which is fine too: rbox builds rootless, root is simply one more user.
#   scripts/run.sh            # rebuilds devbox.sif when defs/devbox.def is newer (or it is missing)
#   RBOX_REBUILD=1 scripts/run.sh
#   RBOX_BUILD_DIR=build-x scripts/run.sh   # build rbox in another directory (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
t0=$SECONDS
step() { echo; echo "=== $1 ($((SECONDS - t0)) s)"; }

step "dependencies"
if ! scripts/setup-deps.sh; then
  echo "run.sh: install the packages above (as root), then run scripts/run.sh again" >&2
  exit 1
fi

step "building rbox"
build_dir=${RBOX_BUILD_DIR:-build}
# Only the rbox binary is needed here (scripts/build.sh also builds the unit tests).
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$build_dir" rbox
rbox=$root/$build_dir/rbox

if [ "$(id -u)" -eq 0 ]; then
  echo "note: running as root; the build below runs as root (no user namespace needed)."
  echo "      As an ordinary user the same command builds rootless with a fake root."
fi

step "building devbox.sif from defs/devbox.def"
if [ -f devbox.sif ] && [ devbox.sif -nt defs/devbox.def ] && [ -z "${RBOX_REBUILD:-}" ]; then
  echo "devbox.sif is newer than defs/devbox.def: kept (RBOX_REBUILD=1 rebuilds it)"
else
  "$rbox" build --force devbox.sif defs/devbox.def
fi
ls -l devbox.sif

step "rbox run devbox.sif"
# The runscript attaches to (or starts) a tmux session, which needs a terminal: give it one with
# script(1) and type a command and `exit` into the session, so it ends by itself.
if command -v script >/dev/null; then
  printf 'tmux display-message -p "tmux session #{session_name} works"; exit\n' |
    timeout 60 script -qec "$rbox run devbox.sif rbox-demo" /dev/null | tr -d '\r' |
    grep -a -m1 -o 'tmux session rbox-demo works' || {
    echo "run.sh: rbox run devbox.sif did not show the tmux session" >&2
    exit 1
  }
else
  echo "script(1) is not installed: skipped (it needs a terminal)"
fi

step "rbox exec devbox.sif tmux -V"
"$rbox" exec devbox.sif tmux -V

step "rbox exec devbox.sif syncthing --version"
"$rbox" exec devbox.sif syncthing --version

step "done: devbox.sif works"
