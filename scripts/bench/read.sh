#!/usr/bin/env bash
# Read benchmark for image::Mount: 1 and 8 concurrent readers over every file of a Debian
# minbase root filesystem, through rbox's in-process FUSE server (tests/tools/mount_probe, as an
# unprivileged user) vs the kernel's squashfs (root, loop) vs the squashfuse_ll binary vs the
# plain directory; cold, warm and hot page cache; interleaved rounds; medians and ratios.
# Then start-up: user namespace + mount + exec /usr/bin/true, interleaved.
#
# Usage (root): scripts/bench/read.sh            ROUNDS=5 CODECS="zstd gzip" STARTUP_N=60
#   VARIANTS="rbox kernel squashfuse dir" (extra: rbox-nospin rbox-w1 rbox-w2 rbox-w4 rbox-eager)
#   RBOX_MOUNT_PROBE=path (default: build-static/bin/mount_probe, else build/tests/mount_probe),
#   RBOX_TEST_USER=rboxtest
# States: cold = drop_caches + fresh mount; warm = image file in page cache + fresh mount (a new
# container); hot = second pass over the same mount. For the directory, warm is hot.
# Goal (issue 3): rbox ≥ 1.0× kernel squashfs with 1 reader and ≥ 2× with 8, in every state.
set -euo pipefail
cd "$(dirname "$0")/../.."
src=$(pwd)
[ "$(id -u)" -eq 0 ] || { echo "read.sh: run as root (kernel mounts, drop_caches)" >&2; exit 1; }

ROUNDS=${ROUNDS:-5}
CODECS=${CODECS:-"zstd gzip"}
VARIANTS=${VARIANTS:-"rbox kernel squashfuse dir"}
STARTUP_N=${STARTUP_N:-60}
BENCH=${RBOX_BENCH_DIR:-/var/cache/rbox-bench}
ROOTFS=$BENCH/bookworm-minbase
USER_NAME=${RBOX_TEST_USER:-rboxtest}

# The release build's probe first: a sanitizer build's would measure ASan, not the server.
probe=${RBOX_MOUNT_PROBE:-}
if [ -z "$probe" ]; then
  if [ -x "$src/build-static/bin/mount_probe" ]; then
    probe=$src/build-static/bin/mount_probe
  else
    probe=$(ls -t "$src"/build/tests/mount_probe "$src"/build-*/tests/mount_probe 2>/dev/null | grep -v -e asan -e sanit | head -1)
  fi
fi
[ -x "${probe:-}" ] || { echo "read.sh: no mount_probe; build it: ninja -C build mount_probe" >&2; exit 1; }
id "$USER_NAME" >/dev/null 2>&1 || { echo "read.sh: no user $USER_NAME: run scripts/setup-test-env.sh up (or useradd -m $USER_NAME)" >&2; exit 1; }
[ "$(stat -c %a /dev/fuse)" = 666 ] || { echo "read.sh: /dev/fuse must be mode 0666 for the unprivileged runs" >&2; exit 1; }
command -v squashfuse_ll >/dev/null || VARIANTS=${VARIANTS//squashfuse/}

work=$(mktemp -d /tmp/rbox-bench-read-XXXXXX)
chmod 0755 "$work"
cleanup() { umount -l "$work/m" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
mkdir -m 0777 "$work/m"
cp "$probe" "$work/mount_probe"
cc -O2 -pthread -o "$work/treeread" scripts/bench/treeread.c
cc -O2 -o "$work/spawntime" scripts/bench/spawntime.c
chmod 0755 "$work"/*

if [ ! -x "$ROOTFS/usr/bin/true" ]; then
  echo "read.sh: creating $ROOTFS (debootstrap --variant=minbase bookworm)"
  mkdir -p "$BENCH"
  debootstrap --variant=minbase bookworm "$ROOTFS" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$BENCH/debootstrap.log"
fi
# Images are rebuilt whenever the tree changed (other benchmarks share the root filesystem).
stamp=$(find "$ROOTFS" -xdev -printf '%p %s %T@\n' | sort | md5sum | cut -c1-32)
declare -A IMG
for c in $CODECS; do
  case $c in
    zstd) IMG[$c]=$BENCH/read-zstd3-64k.sqfs; opts=(-comp zstd -Xcompression-level 3 -b 64K) ;;
    gzip) IMG[$c]=$BENCH/read-gzip.sqfs; opts=(-comp gzip) ;;
    lz4hc) IMG[$c]=$BENCH/read-lz4hc.sqfs; opts=(-comp lz4 -Xhc) ;;
    *) echo "read.sh: unknown codec $c" >&2; exit 1 ;;
  esac
  if [ ! -s "${IMG[$c]}" ] || [ "$(cat "${IMG[$c]}.stamp" 2>/dev/null)" != "$stamp" ]; then
    echo "read.sh: packing ${IMG[$c]} (mksquashfs ${opts[*]})"
    mksquashfs "$ROOTFS" "${IMG[$c]}.tmp" -noappend -quiet -no-progress "${opts[@]}" >/dev/null
    mv "${IMG[$c]}.tmp" "${IMG[$c]}"
    echo "$stamp" >"${IMG[$c]}.stamp"
  fi
  chmod 0644 "${IMG[$c]}"
done
chmod 0755 "$BENCH"

# treeread exits 1 when an entry could not be read; the error count is reported, not fatal.
twice() { echo "$work/treeread . $1; $work/treeread . $1; true"; }

# One session: prepare the cache state, mount, read twice (first pass = STATE, second = hot).
session() {  # variant codec readers state
  local v=$1 codec=$2 n=$3 state=$4 img=${IMG[$2]:-} out
  sync
  if [ "$state" = cold ]; then echo 3 >/proc/sys/vm/drop_caches; else cat "$img" >/dev/null 2>&1 || true; fi
  case $v in
    rbox | rbox-*)
      local env=()
      case $v in
        rbox-nospin) env=(RBOX_FUSE_SPIN_US=0) ;;
        rbox-w1) env=(RBOX_FUSE_WORKERS=1) ;;
        rbox-w2) env=(RBOX_FUSE_WORKERS=2) ;;
        rbox-w4) env=(RBOX_FUSE_WORKERS=4) ;;
        rbox-eager) env=(RBOX_FUSE_HELPER_DELAY_MS=0) ;;
      esac
      out=$(runuser -u "$USER_NAME" -- env "${env[@]}" "$work/mount_probe" "$img" -- sh -c "$(twice "$n")") ;;
    kernel) out=$("$work/mount_probe" "$img" -- sh -c "$(twice "$n")") ;;
    squashfuse)
      out=$(runuser -u "$USER_NAME" -- unshare -Urm sh -c \
        "squashfuse_ll '$img' '$work/m' && cd '$work/m' && { $(twice "$n"); }; cd /; umount '$work/m'") ;;
    dir) out=$(cd "$ROOTFS" && sh -c "$(twice "$n")") ;;
  esac
  echo "$out" | awk -v v="$v" -v c="$codec" -v n="$n" -v s="$state" '
    { split($1, t, "="); split($2, f, "="); split($7, e, "=");
      print v "\t" (v == "dir" ? "-" : c) "\t" n "\t" (NR == 1 ? s : "hot") "\t" t[2] "\t" f[2] "\t" e[2] }'
}

sessions=()
for c in $CODECS; do
  for v in $VARIANTS; do
    [ "$v" = dir ] && continue
    for n in 1 8; do for s in cold warm; do sessions+=("$v $c $n $s"); done; done
  done
done
if [[ " $VARIANTS " == *" dir "* ]]; then for n in 1 8; do sessions+=("dir - $n cold"); done; fi

echo "read.sh: $ROUNDS rounds × ${#sessions[@]} sessions; load: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs"
results=$work/results.tsv
for r in $(seq 1 "$ROUNDS"); do
  count=${#sessions[@]}
  for k in $(seq 0 $((count - 1))); do
    idx=$(((k + r * 7) % count))  # a different order every round
    # shellcheck disable=SC2086
    session ${sessions[$idx]} >>"$results"
  done
  echo "  round $r/$ROUNDS done (load $(cut -d' ' -f1 /proc/loadavg))"
done

python3 - "$results" <<'EOF'
import statistics, sys
rows = [l.rstrip('\n').split('\t') for l in open(sys.argv[1]) if l.strip()]
data, files = {}, {}
for v, c, n, s, ms, f, e in rows:
    data.setdefault((v, c, n, s), []).append(float(ms))
    files.setdefault((v, c), set()).add((f, e))
codecs = sorted({c for (_, c, _, _) in data if c != '-'})
variants = []
for (v, _, _, _) in data:
    if v not in variants:
        variants.append(v)
order = ['rbox'] + sorted(v for v in variants if v.startswith('rbox-')) + [v for v in ('kernel', 'squashfuse', 'dir') if v in variants]
def cell(k):
    xs = data.get(k)
    if not xs:
        return None
    return statistics.median(xs), min(xs), max(xs), len(xs)
goal_ok = True
for c in codecs:
    print('\n== %s image: treeread ms, median (min-max) n, xK = kernel median / variant median' % c)
    print('%-12s %3s  %-28s %-28s %-28s' % ('variant', 'rd', 'cold', 'warm', 'hot'))
    for n in ('1', '8'):
        for v in order:
            cc = '-' if v == 'dir' else c
            parts = []
            for s in ('cold', 'warm', 'hot'):
                key_s = 'hot' if (v == 'dir' and s == 'warm') else s
                m = cell((v, cc, n, key_s))
                k = cell(('kernel', c, n, s))
                if m is None:
                    parts.append('-')
                    continue
                ratio = k[0] / m[0] if k else float('nan')
                parts.append('%6.0f (%.0f-%.0f) n%d %.2fx' % (m[0], m[1], m[2], m[3], ratio))
                if v == 'rbox' and k and ratio < (1.0 if n == '1' else 2.0):
                    goal_ok = False
            print('%-12s %3s  %-28s %-28s %-28s' % (v, n, parts[0], parts[1], parts[2]))
print('\nfiles/errors per variant:', {'%s/%s' % k: sorted(v) for k, v in files.items()})
print('goal (rbox >= 1.0x kernel with 1 reader, >= 2.0x with 8, every state):', 'MET' if goal_ok else 'NOT MET')
EOF

# Start-up: as the unprivileged user, warm page cache.
echo
echo "== start-up: namespace + mount + exec /usr/bin/true + unmount, ms (median min max failures), $STARTUP_N runs"
args=()
for c in $CODECS; do
  args+=("rbox-$c" "$work/mount_probe" --chroot "${IMG[$c]}" /usr/bin/true ":::")
done
first=${CODECS%% *}
if command -v squashfuse_ll >/dev/null; then
  args+=("squashfuse_ll-$first" unshare -Urm sh -c "squashfuse_ll '${IMG[$first]}' '$work/m' && chroot '$work/m' /usr/bin/true; umount '$work/m'" ":::")
fi
args+=("unshare+chroot-dir" unshare -Urm chroot "$ROOTFS" /usr/bin/true)
runuser -u "$USER_NAME" -- "$work/spawntime" "$STARTUP_N" 5 "${args[@]}" |
  awk -F'\t' '{ printf "%-22s %7s  (%s-%s)  failures=%s\n", $1, $2, $3, $4, $5 }'
echo "(mount_probe is dynamically linked: FUSE.md measured +1.1 ms against a static launcher)"
