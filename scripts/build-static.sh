#!/usr/bin/env bash
# Build the release: one static rbox binary (STATIC.md). Output: DIR/rbox (stripped),
# DIR/bin/rbox (unstripped, for debugging) and DIR/licenses/ (ship it with the binary).
# Apart from setup-deps.sh and the deb-src entry build-static-deps.sh may add, it writes only in DIR.
# Usage: scripts/build-static.sh [DIR]   (default build-static; extra args go to cmake)
# Env: RBOX_STATIC_DEPS_PREFIX overrides where the rebuilt curl is cached (default DIR/static-deps).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-static}
shift || true
deps=${RBOX_STATIC_DEPS_PREFIX:-$dir/static-deps}
t0=$SECONDS

scripts/setup-deps.sh

t_deps=$SECONDS
scripts/build-static-deps.sh "$deps"
deps=$(cd "$deps" && pwd)
t_deps=$((SECONDS - t_deps))

t_build=$SECONDS
# The linked (unstripped) binary goes to DIR/bin so that DIR/rbox is only ever the stripped one.
cmake -S . -B "$dir" -G Ninja -DRBOX_STATIC=ON -DRBOX_TESTS=OFF -DCMAKE_BUILD_TYPE=Release \
  -DRBOX_STATIC_DEPS_PREFIX="$deps" -DCMAKE_RUNTIME_OUTPUT_DIRECTORY="$(pwd)/$dir/bin" "$@" >/dev/null
# glibc's "Using 'getpwuid' in statically linked applications..." link warnings are expected
# (NSS is pinned at startup, src/util/nss.cpp); keep everything else visible.
# Each warning comes after an "ld: x.o: in function `f':" line; drop exactly those pairs.
rc=0
ninja -C "$dir" rbox 2>&1 | awk '
  /: in function `/ { held = $0; next }
  /warning: Using .* in statically linked applications/ { held = ""; nwarn++; next }
  { if (held != "") print held; held = ""; print }
  END { if (held != "") print held; if (nwarn) print "(" nwarn " expected glibc static-link warnings hidden)" }' ||
  rc=$?
[ "$rc" -eq 0 ] || { echo "build-static: build failed (exit $rc)" >&2; exit 1; }
t_build=$((SECONDS - t_build))

strip --strip-all -o "$dir/rbox.tmp" "$dir/bin/rbox"
mv -f "$dir/rbox.tmp" "$dir/rbox"

# License files that must travel with the binary (THIRD_PARTY_NOTICES.md): rbox's own, the
# summary, and each statically linked package's Debian copyright file, verbatim.
rm -rf "$dir/licenses"
mkdir -p "$dir/licenses"
cp LICENSE THIRD_PARTY_NOTICES.md "$dir/licenses/"
for pkg in libcurl4-openssl-dev libc-ares-dev libnghttp2-dev libssl-dev libarchive-dev libacl1-dev \
  libyaml-cpp-dev libcli11-dev nlohmann-json3-dev libfuse3-dev libsquashfs-dev libsquashfuse-dev \
  liblzo2-dev liblz4-dev libzstd-dev liblzma-dev zlib1g-dev libdeflate-dev libseccomp-dev libcap-dev \
  libc6-dev libstdc++-12-dev; do
  src=$(dpkg-query -W -f='${source:Package}' "$pkg")
  cp -L "/usr/share/doc/$pkg/copyright" "$dir/licenses/$src.copyright"
done

bytes=$(stat -c %s "$dir/rbox")
echo "build-static: $dir/rbox: $(awk -v b="$bytes" 'BEGIN { printf "%.2f MiB (%d bytes)", b / 1048576, b }')" \
  "stripped; unstripped copy $dir/bin/rbox; license files in $dir/licenses/"
echo "build-static: $(file -b "$dir/rbox" | cut -d, -f1-4)"
echo "build-static: deps ${t_deps} s, configure+build ${t_build} s, total $((SECONDS - t0)) s"
