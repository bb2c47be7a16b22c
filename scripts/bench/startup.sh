#!/usr/bin/env bash
# Start-up benchmark (issue 5 "Speed"): median wall time of `rbox exec IMAGE.sif true` with a
# warm page cache — the in-process FUSE mount included — against bwrap over the same tree
# extracted to a directory, `unshare -Ur true`, and `podman run --rm` of the same tree, all as
# the same unprivileged user in one run; prints the medians, the ratios and rbox's peak RSS.
#
# Usage: scripts/bench/startup.sh [RBOX_BINARY]       (default: build-static/rbox, then build/rbox)
# Environment:
#   BENCH_USER   user to run as when started as root (default: rboxsub, which has /etc/subuid
#                ranges so rootless podman works; else rboxtest). Not root: runs as yourself.
#   BENCH_ROOTFS tarball of the root filesystem (default: $RBOX_DEBIAN_ROOTFS_TAR from the test
#                environment, a Debian bookworm minbase; else a busybox-static tree)
#   BENCH_RUNS   measured runs per command (default 100), BENCH_WARMUP (default 10);
#                BENCH_PODMAN_RUNS for podman (default 20)
#   BENCH_DIR    scratch directory (default /var/tmp/rbox-bench; kept between runs)
# Needs hyperfine, bwrap and podman (scripts/setup-deps.sh --bench); a missing peer is skipped.
# Goals: rbox ≤ 5 ms, ≤ 2× bwrap, ≤ 0.04× podman, peak RSS ≤ 10 MiB. The machine must be quiet
# for the numbers to mean anything; the script prints the load average next to them.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

rbox=${1:-}
if [ -z "$rbox" ]; then
  for c in build-static/rbox build/rbox; do
    [ -x "$c" ] && { rbox=$c; break; }
  done
fi
[ -n "$rbox" ] && [ -x "$rbox" ] || { echo "startup.sh: no rbox binary (give one as \$1)" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "startup.sh: hyperfine missing (scripts/setup-deps.sh --bench)" >&2; exit 1; }

[ -f /var/tmp/rbox-testenv/env.sh ] && . /var/tmp/rbox-testenv/env.sh
runs=${BENCH_RUNS:-100}
warmup=${BENCH_WARMUP:-10}
dir=${BENCH_DIR:-/var/tmp/rbox-bench}
user=$(id -un)
if [ "$(id -u)" -eq 0 ]; then
  user=${BENCH_USER:-}
  if [ -z "$user" ]; then
    for u in rboxsub rboxtest; do id "$u" >/dev/null 2>&1 && { user=$u; break; }; done
  fi
  [ -n "$user" ] || { echo "startup.sh: as root, set BENCH_USER to an unprivileged user" >&2; exit 1; }
fi
as_bench() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$user" -- env -i HOME="$(getent passwd "$user" | cut -d: -f6)" USER="$user" \
      PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin XDG_RUNTIME_DIR= "$@"
  else
    "$@"
  fi
}

mkdir -p "$dir"
chmod 0755 "$dir"
cp "$rbox" "$dir/rbox"
chmod 0755 "$dir/rbox"
tarball=${BENCH_ROOTFS:-${RBOX_DEBIAN_ROOTFS_TAR:-}}
stamp="$dir/rootfs.stamp"
want="${tarball:-busybox}"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  rm -rf "$dir/rootfs" "$dir/image.sif"
  mkdir -p "$dir/rootfs"
  if [ -n "$tarball" ] && [ -f "$tarball" ]; then
    tar -C "$dir/rootfs" -xf "$tarball" --exclude='./dev/*' 2>/dev/null || tar -C "$dir/rootfs" -xf "$tarball"
  else
    mkdir -p "$dir/rootfs"/{bin,usr/bin,proc,sys,dev,tmp,etc}
    cp /usr/bin/busybox "$dir/rootfs/bin/busybox"
    ln -s ../../bin/busybox "$dir/rootfs/usr/bin/true"
    ln -s busybox "$dir/rootfs/bin/true"
  fi
  chmod -R a+rX "$dir/rootfs"
  echo "$want" >"$stamp"
fi
if [ ! -f "$dir/image.sif" ] || [ "$dir/rbox" -nt "$dir/image.sif" ]; then
  "$dir/rbox" -q build -F "$dir/image.sif" "$dir/rootfs"
  chmod 0644 "$dir/image.sif"
fi
# The same tree with lz4hc: what the codec costs at start-up (decompressing ld.so and libc).
if [ ! -f "$dir/image-lz4hc.sif" ] || [ "$dir/rbox" -nt "$dir/image-lz4hc.sif" ]; then
  "$dir/rbox" -q build -F --compress lz4hc "$dir/image-lz4hc.sif" "$dir/rootfs"
  chmod 0644 "$dir/image-lz4hc.sif"
fi
true_bin=/usr/bin/true
[ -e "$dir/rootfs$true_bin" ] || true_bin=/bin/true

cmds=(); names=()
add() { names+=("$1"); cmds+=("$2"); }
add "rbox exec SIF" "$dir/rbox exec $dir/image.sif $true_bin"
add "rbox exec SIF lz4hc" "$dir/rbox exec $dir/image-lz4hc.sif $true_bin"
add "rbox exec sandbox" "$dir/rbox exec $dir/rootfs $true_bin"
command -v bwrap >/dev/null && add "bwrap dir" "bwrap --unshare-all --ro-bind $dir/rootfs / $true_bin"
add "unshare -Ur" "unshare -Ur true"
if command -v podman >/dev/null; then
  # Podman in a storage root of its own with the overlay driver: the user's default storage may
  # be vfs (a full copy of the root filesystem per container: seconds per run, not podman's
  # real start-up cost), and the user's images stay untouched.
  proot=$dir/podman
  mkdir -p "$proot"
  [ "$(id -u)" -eq 0 ] && chown "$user" "$proot"
  podman="podman --root $proot/root --runroot $proot/run --storage-driver overlay"
  if as_bench $podman image exists rbox-bench 2>/dev/null ||
    tar -C "$dir/rootfs" -c . | as_bench $podman import -q - rbox-bench >/dev/null 2>&1; then
    # crun refuses hybrid cgroup v1/v2 hierarchies (this VM), even with --cgroups=disabled;
    # runc with cgroupfs works there, so fall back to it.
    podman_run="$podman run --rm --network=none --cgroups=disabled"
    if ! as_bench $podman_run rbox-bench $true_bin >/dev/null 2>&1 && command -v runc >/dev/null; then
      podman_run="$podman --runtime runc --cgroup-manager=cgroupfs run --rm --network=none"
    fi
    add "podman run" "$podman_run rbox-bench $true_bin"
  else
    echo "startup.sh: podman cannot import the image as $user; skipping podman" >&2
  fi
fi

# Every command must work before it is timed: rbox's failing is an error, a peer's is skipped
# with its message (e.g. crun refusing a hybrid cgroup hierarchy).
ok_names=(); ok_cmds=()
for i in "${!cmds[@]}"; do
  if err=$(as_bench sh -c "cd /tmp && ${cmds[$i]}" 2>&1 >/dev/null); then
    ok_names+=("${names[$i]}"); ok_cmds+=("${cmds[$i]}")
  elif [[ "${names[$i]}" == rbox* ]]; then
    echo "startup.sh: '${names[$i]}' fails: ${cmds[$i]}: $err" >&2
    exit 1
  else
    echo "startup.sh: skipping '${names[$i]}', it fails here: $(echo "$err" | tail -1)" >&2
  fi
done
names=("${ok_names[@]}"); cmds=("${ok_cmds[@]}")

# podman takes ~50x longer per run: it gets fewer runs (BENCH_PODMAN_RUNS, default 20), in a
# hyperfine run of its own right after the others.
json=$dir/results.json
json_podman=$dir/results-podman.json
rm -f "$json" "$json_podman"
touch "$json" "$json_podman"
[ "$(id -u)" -eq 0 ] && chown "$user" "$json" "$json_podman"
hf=(hyperfine -N --warmup "$warmup" --runs "$runs" --export-json "$json")
hf_podman=(hyperfine -N --warmup 2 --runs "${BENCH_PODMAN_RUNS:-20}" --export-json "$json_podman")
for i in "${!cmds[@]}"; do
  if [ "${names[$i]}" = "podman run" ]; then
    hf_podman+=(-n "${names[$i]}" "${cmds[$i]}")
  else
    hf+=(-n "${names[$i]}" "${cmds[$i]}")
  fi
done
(cd /tmp && as_bench "${hf[@]}" >/dev/null)
if [ "${#hf_podman[@]}" -gt 7 ]; then
  (cd /tmp && as_bench "${hf_podman[@]}" >/dev/null)
else
  echo '{"results": []}' >"$json_podman"
fi

rss_kib=$(as_bench sh -c "cd /tmp && /usr/bin/time -f %M $dir/rbox exec $dir/image.sif $true_bin" 2>&1 | tail -1)

python3 - "$json" "$rss_kib" "$(cut -d' ' -f1-3 /proc/loadavg)" "$user" "$want" "$json_podman" <<'PY'
import json, statistics, sys
data = json.load(open(sys.argv[1]))["results"] + json.load(open(sys.argv[6]))["results"]
rss_kib, load, user, rootfs = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
med = {r["command"]: statistics.median(r["times"]) * 1000 for r in data}
mn = {r["command"]: min(r["times"]) * 1000 for r in data}
print(f"start-up, warm page cache, as {user}, rootfs {rootfs}, load average {load}")
print(f"{'command':20} {'median ms':>10} {'min ms':>8}")
for name in med:
    print(f"{name:20} {med[name]:10.2f} {mn[name]:8.2f}")
r = med["rbox exec SIF"]
def ratio(peer, goal):
    if peer not in med:
        return
    x = r / med[peer]
    mark = "" if goal is None else ("  ok" if x <= goal else f"  over goal {goal}")
    print(f"rbox SIF / {peer:14} {x:8.3f}x{mark}")
ratio("bwrap dir", 2.0)
ratio("unshare -Ur", None)
ratio("podman run", 0.04)
ratio("rbox exec sandbox", None)
if "rbox exec SIF lz4hc" in med:
    print(f"rbox SIF lz4hc median {med['rbox exec SIF lz4hc']:.2f} ms (images packed with --compress lz4hc)")
print(f"rbox SIF median {r:.2f} ms (goal <= 5 ms: {'ok' if r <= 5 else 'over'})")
try:
    mib = int(rss_kib) / 1024
    print(f"rbox peak RSS {mib:.1f} MiB (goal <= 10 MiB: {'ok' if mib <= 10 else 'over'})")
except ValueError:
    print(f"rbox peak RSS: could not measure ({rss_kib})")
PY
