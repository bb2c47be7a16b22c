#!/usr/bin/env bash
# Set up and run every rbox test on a fresh Debian 12 machine (README command 2; .ci/run).
# Phases: dependencies → test environment (users, /dev/fuse, registries, images) → unit tests
# under ASan/UBSan → static release build and its checks → integration tests → format check.
# RBOX_TEST_PHASES="unit integration" limits the phases (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
phases=${RBOX_TEST_PHASES:-"deps env unit static integration format"}
has() { [[ " $phases " == *" $1 "* ]]; }
t0=$SECONDS
phase() { echo; echo "=== $1 ($((SECONDS - t0)) s elapsed)"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/test.sh runs as root: it creates an unprivileged test user and starts registries." >&2
  echo "The tests themselves run rbox as that unprivileged user." >&2
  exit 1
fi

if has deps; then
  phase "dependencies"
  scripts/setup-deps.sh
fi

if has env; then
  phase "test environment"
  scripts/setup-test-env.sh up
fi

if has unit; then
  phase "unit tests (ASan + UBSan)"
  # -O0 -g1: the sanitizer build only runs the unit tests; it compiles about twice as fast.
  scripts/build.sh build-asan -DRBOX_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O0 -g1" \
    -DCMAKE_C_FLAGS_DEBUG="-O0 -g1"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest -L unit --output-on-failure -j2)
fi

if has static; then
  phase "static release build"
  scripts/build-static.sh build-static -DRBOX_TEST_TOOLS=ON
  bin=build-static/rbox
  scripts/check-static.sh "$bin"
  ninja -C build-static mount_probe >/dev/null  # un-sanitized tool for tests/integration/30-mount.sh
fi

if has integration; then
  phase "integration tests"
  bin=${RBOX_BIN:-build-static/rbox}
  [ -x "$bin" ] || { scripts/build.sh build; bin=build/rbox; }
  if [ -z "${RBOX_MOUNT_PROBE:-}" ] && [ -x build-static/bin/mount_probe ]; then
    export RBOX_MOUNT_PROBE=$root/build-static/bin/mount_probe
  fi
  tests/integration/run.sh "$bin"
fi

if has format; then
  phase "clang-format"
  bad=$(git ls-files '*.cpp' '*.hpp' '*.c' '*.h' | xargs clang-format --dry-run 2>&1 | grep -c warning || true)
  if [ "$bad" -ne 0 ]; then
    git ls-files '*.cpp' '*.hpp' '*.c' '*.h' | xargs clang-format --dry-run 2>&1 | grep warning | head -20
    echo "clang-format: $bad lines need formatting (run clang-format -i on them)" >&2
    exit 1
  fi
fi

phase "all tests passed"
