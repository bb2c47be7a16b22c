#!/usr/bin/env bash
# Install every Debian package rbox needs to build, test and benchmark (idempotent).
# As root: installs with apt-get. Not root: prints the command it would run and exits 1
# when something is missing.
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake pkg-config dpkg-dev ninja-build clang-format file
  libarchive-dev libacl1-dev libcurl4-openssl-dev libyaml-cpp-dev nlohmann-json3-dev
  libcli11-dev libgtest-dev libgmock-dev libsquashfuse-dev libfuse3-dev libsquashfs-dev
  libseccomp-dev libcap-dev libssl-dev zlib1g-dev libzstd-dev liblz4-dev liblzma-dev
  liblzo2-dev libnghttp2-dev libc-ares-dev libdeflate-dev
  clang libclang-rt-14-dev
)
TEST_PKGS=(
  docker-registry skopeo umoci squashfs-tools squashfs-tools-ng squashfuse fuse3
  busybox-static debootstrap uidmap tmux syncthing openssl apache2-utils python3
  zstd xz-utils curl ca-certificates attr acl jq golang-go golang-github-sylabs-sif-dev
)
BENCH_PKGS=(podman runc bubblewrap hyperfine)

want=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}")
case "${1:-}" in
  --bench) want+=("${BENCH_PKGS[@]}") ;;
  --all) want+=("${BENCH_PKGS[@]}") ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-deps: all ${#want[@]} packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-deps: missing packages; run as root:" >&2
  echo "  apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup-deps: installed ${#missing[@]} packages"
