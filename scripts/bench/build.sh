#!/usr/bin/env bash
# Build benchmark: the same image — the Debian base from the local test registry plus
# `apt-get install -y tmux` — built by `rbox build` (SIF, pack included) and by rootless
# `podman build --no-cache` (same base, same package), alternating, in one run. Base blobs are
# cached for both (one untimed warm-up build each). Prints each run, rbox's per-stage times, the
# medians and the ratio rbox/podman (goal: ≤ 1.0).
# Usage (as root, after scripts/setup-test-env.sh up): scripts/bench/build.sh [RBOX] [RUNS]
# Both tools run as $RBOX_BENCH_USER (default rboxsub: podman rootless needs /etc/subuid).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
rbox_src=${1:-$here/build/rbox}
runs=${2:-3}
user=${RBOX_BENCH_USER:-rboxsub}
. "${RBOX_TESTENV:-/var/tmp/rbox-testenv/env.sh}"
base="$RBOX_REG_HTTP/$RBOX_IMG_DEBIAN"

[ "$(id -u)" -eq 0 ] || { echo "bench/build.sh runs as root (it runs both tools as $user)" >&2; exit 1; }
command -v podman >/dev/null || { echo "podman is not installed (scripts/setup-deps.sh --bench)" >&2; exit 1; }
[ -x "$rbox_src" ] || { echo "no rbox binary at $rbox_src (scripts/build.sh build)" >&2; exit 1; }

work=$(mktemp -d /tmp/rbox-bench-build-XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
cp "$rbox_src" "$work/rbox"
home=$(getent passwd "$user" | cut -d: -f6)
as() { runuser -u "$user" -- env -i HOME="$home" USER="$user" PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
  "$@"; }

mkdir -p "$work/ctx" "$work/out"
cat >"$work/bench.def" <<EOF
Bootstrap: docker
From: $base

%post
apt-get update && apt-get install -y tmux
EOF
printf 'FROM %s\nRUN apt-get update && apt-get install -y tmux\n' "$base" >"$work/ctx/Containerfile"
chmod -R a+rX "$work"
chown "$user" "$work/out"

# podman rootless on this kind of host: no systemd cgroup manager, hybrid cgroups refused by crun;
# chroot isolation needs no OCI runtime (and is what buildah uses rootless without one).
podman_build() {
  as podman build --isolation=chroot --no-cache --tls-verify=false -q -t rbox-bench-tmux "$work/ctx" >/dev/null
}
rbox_build() {
  as sh -c 'cd "$1" && exec "$2" build --force out/bench.sif bench.def' sh "$work" "$work/rbox" 2>"$work/rbox.log"
}
now() { date +%s.%N; }
elapsed() { python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.2f}")' "$1" "$2"; }

echo "warm-up (untimed): pulling the base into both caches"
as podman pull --tls-verify=false -q "$base" >/dev/null
podman_build
rbox_build || { cat "$work/rbox.log" >&2; exit 1; }

r_times=() p_times=()
for i in $(seq 1 "$runs"); do
  s=$(now); rbox_build || { cat "$work/rbox.log" >&2; exit 1; }; e=$(now)
  r_times+=("$(elapsed "$s" "$e")")
  echo "run $i: rbox   ${r_times[-1]} s  ($(grep -o '(bootstrap.*' "$work/rbox.log" | head -1); $(grep -o 'assemble [0-9.]* s' "$work/rbox.log"))"
  s=$(now); podman_build; e=$(now)
  p_times+=("$(elapsed "$s" "$e")")
  echo "run $i: podman ${p_times[-1]} s"
done
echo "rbox image: $(du -h "$work/out/bench.sif" | cut -f1) (SIF, zstd SquashFS)"
python3 - "${r_times[*]}" "${p_times[*]}" <<'EOF'
import statistics, sys
r = [float(x) for x in sys.argv[1].split()]
p = [float(x) for x in sys.argv[2].split()]
mr, mp = statistics.median(r), statistics.median(p)
print(f"median: rbox {mr:.2f} s, podman {mp:.2f} s")
print(f"ratio rbox/podman: {mr / mp:.2f}x (goal <= 1.00x)")
EOF
as podman rmi -f rbox-bench-tmux >/dev/null 2>&1 || true
