#!/usr/bin/env bash
# Pack benchmark: rbox vs mksquashfs vs gensquashfs (squashfs-tools-ng) on the same Debian root
# filesystem, same compressor, level and block size, all cores, interleaved in one run. Prints the
# median time and output size of each and rbox's ratios to the faster peer (goal: time ≤ 1.0×,
# size within 2 %).
#
# Usage: scripts/bench/pack.sh [RBOX_BINARY]   (as root; default build/rbox)
# Environment: ROOTFS (tree to pack), COMP (zstd), LEVEL (3), BLOCK (65536), ROUNDS (9),
#              JOBS (all online CPUs), OUT (scratch dir, default $TMPDIR or /tmp).
# rbox writes a complete SIF and fsyncs it (fs::AtomicFile), so each peer's time includes
# `sync FILE` of its output: the same durability, measured the same way.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
rbox=${1:-$here/build/rbox}
comp=${COMP:-zstd}
level=${LEVEL:-3}
block=${BLOCK:-65536}
rounds=${ROUNDS:-9}
jobs=${JOBS:-$(nproc)}
cache=/var/cache/rbox-bench
rootfs=${ROOTFS:-$cache/bookworm-minbase}

[ -x "$rbox" ] || { echo "pack.sh: no rbox binary at $rbox (build it or pass its path)" >&2; exit 2; }
for t in mksquashfs gensquashfs /usr/bin/time bc; do
  command -v $t >/dev/null || { echo "pack.sh: $t not found (apt-get install squashfs-tools squashfs-tools-ng)" >&2; exit 2; }
done

# The tree: cached debootstrap; else the test setup's Debian tarball; else debootstrap now.
prepare_rootfs() {
  [ -d "$rootfs" ] && return
  [ "$(id -u)" = 0 ] || { echo "pack.sh: $rootfs missing; run as root to create it" >&2; exit 2; }
  mkdir -p "$cache"
  local tarball
  tarball=$(ls /var/cache/rbox-test/debian-bookworm-minbase-*.tar 2>/dev/null | head -1 || true)
  rm -rf "$rootfs.tmp"
  mkdir -p "$rootfs.tmp"
  if [ -n "$tarball" ]; then
    echo "pack.sh: unpacking $tarball into $rootfs"
    tar -xpf "$tarball" -C "$rootfs.tmp" --numeric-owner
  else
    echo "pack.sh: debootstrap --variant=minbase bookworm $rootfs (once)"
    debootstrap --variant=minbase bookworm "$rootfs.tmp" http://deb.debian.org/debian >/dev/null
  fi
  # Like a container image: no package lists or apt caches (~120 MB left).
  rm -rf "$rootfs.tmp"/var/lib/apt/lists/* "$rootfs.tmp"/var/cache/apt/*.bin "$rootfs.tmp"/var/cache/apt/archives/*.deb
  mv "$rootfs.tmp" "$rootfs"
}
prepare_rootfs

out=$(mktemp -d "${OUT:-${TMPDIR:-/tmp}}/rbox-bench-pack.XXXXXX")
trap 'rm -rf "$out"' EXIT

case $comp in
  zstd) mks_comp=(-comp zstd -Xcompression-level "$level"); gen_comp=(-c zstd -X "level=$level"); rbox_comp=(--compress zstd --compress-level "$level") ;;
  gzip) mks_comp=(-comp gzip -Xcompression-level "$level"); gen_comp=(-c gzip -X "level=$level"); rbox_comp=(--compress gzip --compress-level "$level") ;;
  xz) mks_comp=(-comp xz); gen_comp=(-c xz); rbox_comp=(--compress xz) ;;
  lz4) mks_comp=(-comp lz4); gen_comp=(-c lz4); rbox_comp=(--compress lz4) ;;
  lz4hc) mks_comp=(-comp lz4 -Xhc); gen_comp=(-c lz4 -X hc); rbox_comp=(--compress lz4hc) ;;
  *) echo "pack.sh: COMP must be zstd, gzip, xz, lz4 or lz4hc" >&2; exit 2 ;;
esac

run_rbox() { "$rbox" --quiet build --force "${rbox_comp[@]}" --block-size "$block" "$out/rbox.sif" "$rootfs/"; }
run_mks() {
  mksquashfs "$rootfs" "$out/mks.sqfs" -noappend -quiet -no-progress "${mks_comp[@]}" -b "$block" \
    -processors "$jobs" >/dev/null
  sync "$out/mks.sqfs"
}
run_gen() {
  gensquashfs --pack-dir "$rootfs" -f -q --keep-xattr "${gen_comp[@]}" -b "$block" -j "$jobs" "$out/gen.sqfs" \
    >/dev/null
  sync "$out/gen.sqfs"
}

declare -A times cpus
echo "pack.sh: $(du -sh --apparent-size "$rootfs" | cut -f1) tree $rootfs, $(find "$rootfs" | wc -l) entries;" \
  "$comp level $level, $block-byte blocks, $jobs jobs, $rounds rounds"
# Warm the page cache for every tool alike (not tar to /dev/null: GNU tar skips reading then).
find "$rootfs" -type f -print0 | xargs -0 cat >/dev/null 2>&1 || true
export -f run_rbox run_mks run_gen
export rbox rootfs out block jobs
for ((r = 1; r <= rounds; r++)); do
  for tool in rbox mks gen; do
    # Wall time, and CPU time (user + system, children included): on a busy machine the CPU time
    # is the steadier measure of the work each tool does.
    # (/usr/bin/time's %e has 10 ms steps, 3% of a run here: the wall time comes from date.)
    t0=$(date +%s%N)
    /usr/bin/time -f '%U %S' -o "$out/time" bash -c "$(declare -p mks_comp gen_comp rbox_comp); run_$tool"
    wall=$(echo "($(date +%s%N) - $t0) / 1000000000" | bc -l)
    read -r user sys <"$out/time"
    times[$tool]+="$wall "
    cpus[$tool]+="$(echo "$user + $sys" | bc -l) "
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# rbox's SquashFS is its PrimSys partition; compare that, not the SIF wrapper.
part_size=$("$rbox" sif list "$out/rbox.sif" | awk -F'|' '/\*System/ {split($4, p, "-"); print p[2] - p[1]}')
declare -A size=([rbox]=$part_size [mks]=$(stat -c %s "$out/mks.sqfs") [gen]=$(stat -c %s "$out/gen.sqfs"))
declare -A med
declare -A cpu
for tool in rbox mks gen; do
  med[$tool]=$(echo "${times[$tool]}" | median)
  cpu[$tool]=$(echo "${cpus[$tool]}" | median)
done
best=mks
if (($(echo "${med[gen]} < ${med[mks]}" | bc -l))); then best=gen; fi
name() { case $1 in rbox) echo rbox ;; mks) echo mksquashfs ;; gen) echo gensquashfs ;; esac; }
printf '%-12s %10s %10s %14s %12s %12s\n' tool "median s" "cpu s" "bytes" "time/rbox" "size/rbox"
for tool in rbox mks gen; do
  printf '%-12s %10.3f %10.3f %14d %12.3f %12.4f\n' "$(name $tool)" "${med[$tool]}" "${cpu[$tool]}" \
    "${size[$tool]}" "$(echo "${med[$tool]} / ${med[rbox]}" | bc -l)" "$(echo "${size[$tool]} / ${size[rbox]}" | bc -l)"
done
tr=$(echo "${med[rbox]} / ${med[$best]}" | bc -l)
sr_m=$(echo "${size[rbox]} / ${size[mks]}" | bc -l)
sr_g=$(echo "${size[rbox]} / ${size[gen]}" | bc -l)
printf 'rbox time / faster peer (%s): %.3fx (goal <= 1.0)   rbox cpu / its cpu: %.3fx\n' "$(name $best)" "$tr" \
  "$(echo "${cpu[rbox]} / ${cpu[$best]}" | bc -l)"
printf 'rbox size / mksquashfs: %.4f   rbox size / gensquashfs: %.4f (goal within 2%%)\n' "$sr_m" "$sr_g"
