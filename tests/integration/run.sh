#!/usr/bin/env bash
# Runs every integration test file (tests/integration/[0-9]*.sh) against a built rbox.
# Usage: tests/integration/run.sh RBOX_BINARY [file-filter [test-filter]]
# Needs root (to act as the unprivileged test user) and scripts/setup-test-env.sh done.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:?usage: run.sh RBOX_BINARY [file-filter [test-filter]]}
file_filter=${2:-}
test_filter=${3:-}

export RBOX_TEST_USER=${RBOX_TEST_USER:-rboxtest}
export RBOX_TESTENV=${RBOX_TESTENV:-/var/tmp/rbox-testenv/env.sh}
export RBOX_CONFORMANCE_DIR=${RBOX_CONFORMANCE_DIR:-$(cd "$here/../../.." && pwd)/shared/conformance}
export RBOX_SOURCE_DIR=$(cd "$here/../.." && pwd)
RBOX_IT_DIR=$(mktemp -d /tmp/rbox-it-XXXXXX)
chmod 1777 "$RBOX_IT_DIR"
export RBOX_IT_DIR
trap 'rm -rf "$RBOX_IT_DIR" 2>/dev/null || true' EXIT
mkdir -p "$RBOX_IT_DIR/bin"
cp "$bin" "$RBOX_IT_DIR/bin/rbox"
chmod 0755 "$RBOX_IT_DIR/bin" "$RBOX_IT_DIR/bin/rbox"
export RBOX="$RBOX_IT_DIR/bin/rbox"

failed=()
for f in "$here"/[0-9]*.sh; do
  name=$(basename "$f")
  [ -n "$file_filter" ] && [[ "$name" != *"$file_filter"* ]] && continue
  echo "== $name"
  start=$SECONDS
  if ! bash "$f" "$test_filter"; then failed+=("$name"); fi
  echo "== $name: $((SECONDS - start)) s"
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "integration: FAILED: ${failed[*]}"
  exit 1
fi
echo "integration: all files passed"
