#!/usr/bin/env bash
# Build the one dependency Debian's .a files cannot provide: a minimal HTTP/HTTPS-only libcurl,
# from Debian's own source package at the installed libcurl4-openssl-dev version (STATIC.md).
# Installs libcurl.a, headers and libcurl.pc into PREFIX; cached by a stamp; never touches /usr.
#
# Usage: scripts/build-static-deps.sh [PREFIX]   (default: build-static/static-deps)
# Needs root only when the deb-src entries are missing (it adds them and runs apt-get update).
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=${1:-build-static/static-deps}
mkdir -p "$(dirname "$prefix")"
prefix=$(cd "$(dirname "$prefix")" && pwd)/$(basename "$prefix")
die() { echo "build-static-deps: $*" >&2; exit 1; }

version=$(dpkg-query -W -f='${source:Version}' libcurl4-openssl-dev 2>/dev/null) ||
  die "libcurl4-openssl-dev is not installed; run scripts/setup-deps.sh first"
[ -n "$version" ] || die "libcurl4-openssl-dev is not installed; run scripts/setup-deps.sh first"

# Everything that decides what ends up in libcurl.a. A change here invalidates the cache.
configure_args=(
  --disable-shared --enable-static --with-pic
  --with-openssl --with-zlib --with-zstd --with-nghttp2 --enable-ares
  --without-brotli --without-libpsl --without-libidn2 --without-libssh2 --without-libssh --without-wolfssh
  --without-librtmp --without-gssapi --without-libgsasl --without-ngtcp2 --without-nghttp3 --without-quiche
  --without-hyper
  --disable-ldap --disable-ldaps --disable-rtsp --disable-dict --disable-telnet --disable-tftp --disable-pop3
  --disable-imap --disable-smb --disable-smtp --disable-gopher --disable-mqtt --disable-ftp --disable-file
  --disable-manual --disable-docs --disable-ntlm --disable-ntlm-wb --disable-kerberos-auth
  --disable-negotiate-auth
  --with-ca-bundle=/etc/ssl/certs/ca-certificates.crt --with-ca-path=/etc/ssl/certs --without-ca-fallback
)
cflags="-O2 -ffunction-sections -fdata-sections"
stamp_line="curl $version $(printf '%s\n' "${configure_args[@]}" "$cflags" | sha256sum | cut -c1-16)"
stamp="$prefix/.rbox-static-deps"

if [ -f "$prefix/lib/libcurl.a" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_line" ]; then
  echo "build-static-deps: cached: $prefix (curl $version)"
  exit 0
fi

# One build at a time per prefix (CI and a developer may both call this).
exec 9>"$prefix.lock"
flock 9
if [ -f "$prefix/lib/libcurl.a" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_line" ]; then
  echo "build-static-deps: cached: $prefix (curl $version)"
  exit 0
fi

t0=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/rbox-static-deps.XXXXXX")
trap 'rm -rf "$work"' EXIT
# apt-get source downloads as the _apt user when it can reach the directory.
chmod 755 "$work"

# apt-get source needs deb-src entries. Copy the existing stanza, changing only its type, so
# no mirror is named here (STATIC.md).
have_deb_src() {
  grep -qsE '^Types:.*deb-src' /etc/apt/sources.list.d/*.sources ||
    grep -qsE '^[[:space:]]*deb-src[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list
}
apt_update() {
  [ "$(id -u)" -eq 0 ] || die "need root to run apt-get update for the deb-src entries"
  apt-get update -qq || die "apt-get update failed"
}
if ! have_deb_src; then
  [ "$(id -u)" -eq 0 ] || die "no deb-src entries in /etc/apt; run this once as root to add them"
  src=/etc/apt/sources.list.d/debian.sources
  [ -f "$src" ] || die "no deb-src entries and no $src to copy them from; add deb-src lines for bookworm"
  sed 's/^Types: deb$/Types: deb-src/' "$src" >/etc/apt/sources.list.d/debian-src.sources
  echo "build-static-deps: added /etc/apt/sources.list.d/debian-src.sources"
  apt_update
fi

cd "$work"
fetch() { apt-get source -qq --download-only "curl=$version" >fetch.log 2>&1; }
if ! fetch; then
  # The source index may simply be stale (deb-src added earlier without an update).
  if [ "$(id -u)" -eq 0 ]; then apt_update; fi
  fetch || {
    tail -5 fetch.log >&2
    die "apt-get source curl=$version failed (is that version still on the mirror? upgrading libcurl4-openssl-dev picks the current one)"
  }
fi
# Unpack separately: dpkg-source applies Debian's patches. Its gpgv "No public key" warning
# is harmless, apt has already checked the hashes of the downloaded files.
dpkg-source -x curl_*.dsc src >unpack.log 2>&1 || { tail -5 unpack.log >&2; die "dpkg-source -x failed"; }
t_fetch=$((SECONDS - t0))

cd src
./configure --prefix="$prefix" "${configure_args[@]}" CFLAGS="$cflags" >../configure.log 2>&1 || {
  tail -20 config.log >&2
  die "curl configure failed (full log: config.log in the curl source)"
}
grep -E '^ *(Protocols|Features):' ../configure.log | sed 's/^ */build-static-deps: curl /' || true
make -j"$(nproc)" -C lib >../make.log 2>&1 || { tail -20 ../make.log >&2; die "make -C lib failed"; }

# Install into a staging tree, then swap it in whole: a killed run never leaves a half prefix.
stage=$work/stage
{
  make -C lib install DESTDIR="$stage" &&
    make -C include install DESTDIR="$stage" &&
    make install-pkgconfigDATA DESTDIR="$stage"
} >../install.log 2>&1 || { tail -20 ../install.log >&2; die "make install failed"; }
[ -f "$stage$prefix/lib/libcurl.a" ] || die "libcurl.a missing after install"
rm -rf "$prefix.new"
cp -a "$stage$prefix" "$prefix.new"
echo "$stamp_line" >"$prefix.new/.rbox-static-deps"
rm -rf "$prefix"
mv "$prefix.new" "$prefix"

echo "build-static-deps: curl $version -> $prefix/lib/libcurl.a" \
  "($(du -k "$prefix/lib/libcurl.a" | cut -f1) KiB; fetch ${t_fetch} s, total $((SECONDS - t0)) s)"
