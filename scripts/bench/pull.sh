#!/usr/bin/env bash
# Pull benchmark: the Debian image from the local plain-HTTP test registry, empty cache and empty
# storage every time, as an unprivileged user with subordinate ids (podman needs them):
#   directory:  rbox pull --dir          vs  skopeo copy + umoci unpack --rootless  and  podman pull
#   SIF:        rbox pull IMAGE.sif      vs  skopeo copy, then the layer piped into tar2sqfs (zstd 3)
# Rounds are interleaved; the median of each is printed with the ratio rbox / peer (goal ≤ 1.0
# against the fastest peer pipeline for each output, issue 4).
#
# Usage (root): scripts/bench/pull.sh [RBOX_BINARY]     ROUNDS=3 IMAGE=debian:bookworm
#   BENCH_USER=rboxsub (default: $RBOX_TEST_SUBUID_USER from the test environment)
# Needs scripts/setup-test-env.sh up, and scripts/setup-deps.sh --bench for podman.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "pull.sh: run as root (it runs the tools as an unprivileged user)" >&2; exit 1; }
# shellcheck disable=SC1090
. "${RBOX_TESTENV:-/var/tmp/rbox-testenv/env.sh}" || { echo "pull.sh: run scripts/setup-test-env.sh up first" >&2; exit 1; }

bin=${1:-$(ls -t build*/rbox 2>/dev/null | head -1)}
[ -x "${bin:-}" ] || { echo "pull.sh: no rbox binary; build one or pass its path" >&2; exit 1; }
ROUNDS=${ROUNDS:-3}
IMAGE=${IMAGE:-debian:bookworm}
USER_NAME=${BENCH_USER:-$RBOX_TEST_SUBUID_USER}
REF=$RBOX_REG_HTTP/$IMAGE
have() { command -v "$1" >/dev/null; }
for t in skopeo umoci tar2sqfs; do have "$t" || { echo "pull.sh: $t missing: scripts/setup-deps.sh" >&2; exit 1; }; done
have podman || echo "pull.sh: podman missing (scripts/setup-deps.sh --bench); skipping it"

work=$(mktemp -d /tmp/rbox-bench-pull-XXXXXX)
chmod 0755 "$work"
cleanup() {
  # podman's storage holds files owned by subordinate ids: remove it inside its user namespace.
  [ -d "$work/podman" ] && runuser -u "$USER_NAME" -- podman unshare rm -rf "$work/podman" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cp "$bin" "$work/rbox"
chmod 0755 "$work/rbox"
mkdir -m 0777 "$work/run"

as_user() { runuser -u "$USER_NAME" -- env -i HOME="$work/run" PATH=/usr/bin:/bin:/usr/sbin:/sbin XDG_RUNTIME_DIR="$work/run/xdg" "$@"; }
as_user mkdir -m 0700 -p "$work/run/xdg"

# Seconds (wall clock) of a shell snippet run as the user; its state is wiped before and after.
timed() {
  local d=$work/run/t
  as_user sh -c "rm -rf '$d'; mkdir -p '$d'"
  # Write back what earlier runs left dirty (120 MB trees): a tool that syncs must not pay for
  # another tool's writes.
  sync
  local t0 t1
  t0=$(date +%s.%N)
  as_user sh -c "cd '$d' && $1" >/dev/null 2>"$work/err" || { echo "pull.sh: failed: $1" >&2; cat "$work/err" >&2; exit 1; }
  t1=$(date +%s.%N)
  if [ -d "$d/podman" ]; then as_user podman unshare rm -rf "$d/podman"; fi
  as_user rm -rf "$d"
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}

R=$work/rbox
declare -A CMD=(
  [rbox-dir]="RBOX_CACHEDIR=\$PWD/cache $R -q pull --dir rootfs docker://$REF"
  [skopeo+umoci]="skopeo copy -q --src-tls-verify=false docker://$REF oci:img:x && umoci unpack --rootless --image img:x bundle"
  [podman]="podman --root \$PWD/podman --runroot \$PWD/podman-run pull -q --tls-verify=false docker://$REF"
  [rbox-sif]="RBOX_CACHEDIR=\$PWD/cache $R -q pull out.sif docker://$REF"
  # The layer goes straight from skopeo's copy into tar2sqfs (a single-layer image, like Debian's).
  [skopeo+tar2sqfs]="skopeo copy -q --src-tls-verify=false docker://$REF dir:img && layer=\$(ls -S img | head -1) && zcat img/\$layer | tar2sqfs -q -f -c zstd -X level=3 -j $(nproc) out.sqfs"
)
ORDER="rbox-dir skopeo+umoci rbox-sif skopeo+tar2sqfs"
have podman && ORDER="$ORDER podman"

declare -A TIMES
echo "pull.sh: $REF, $ROUNDS interleaved rounds as $USER_NAME ($(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg))"
for r in $(seq "$ROUNDS"); do
  for k in $ORDER; do
    t=$(timed "${CMD[$k]}")
    TIMES[$k]="${TIMES[$k]:-} $t"
    printf '  round %d  %-16s %7.3f s\n' "$r" "$k" "$t"
  done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
declare -A MED
for k in $ORDER; do MED[$k]=$(echo "${TIMES[$k]}" | median); done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo
echo "median seconds: $(for k in $ORDER; do printf '%s %s  ' "$k" "${MED[$k]}"; done)"
echo "directory output:"
echo "  rbox pull --dir / (skopeo copy + umoci unpack --rootless) = $(ratio "${MED[rbox-dir]}" "${MED[skopeo+umoci]}")"
fastest=${MED[skopeo+umoci]}
if have podman; then
  echo "  rbox pull --dir / podman pull                              = $(ratio "${MED[rbox-dir]}" "${MED[podman]}")"
  fastest=$(printf '%s\n%s\n' "$fastest" "${MED[podman]}" | sort -n | head -1)
fi
echo "  rbox pull --dir / fastest peer                             = $(ratio "${MED[rbox-dir]}" "$fastest")  (goal <= 1.0)"
echo "SIF output:"
echo "  rbox pull IMAGE.sif / (skopeo copy | tar2sqfs zstd-3)      = $(ratio "${MED[rbox-sif]}" "${MED[skopeo+tar2sqfs]}")  (goal <= 1.0)"
