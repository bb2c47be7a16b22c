#!/usr/bin/env bash
# Makes the Debian test root filesystem once: debootstrap --variant=minbase bookworm from the
# host's configured mirror, packed as a plain tarball and cached (scripts/setup-test-env.sh).
# Writes only OUT.tar, OUT.tar.mirror and a temporary directory beside them; never a host path.
#
# Usage (root): debian-rootfs.sh OUT.tar   — no-op when OUT.tar exists. Prints nothing on success
# but a timing line; RBOX_DEBIAN_MIRROR overrides the mirror.
set -euo pipefail
tar=${1:?usage: debian-rootfs.sh OUT.tar}
SUITE=bookworm
[ -s "$tar" ] && exit 0

mirror() {  # the host's mirror for the suite: deb822 .sources first, then one-line lists
  if [ -n "${RBOX_DEBIAN_MIRROR:-}" ]; then echo "$RBOX_DEBIAN_MIRROR"; return; fi
  local m
  m=$(awk -v s="$SUITE" '
      function flush() { if (deb && suite && uri != "" && !found) { print uri; found = 1 } deb = suite = 0; uri = "" }
      /^[ \t]*$/ { flush(); next }
      tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
      tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == s) suite = 1 }
      tolower($1) == "uris:" { uri = $2 }
      END { flush() }' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
  if [ -z "$m" ]; then
    m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      sed -e 's/#.*//' -e 's/\[[^]]*\]//' | awk -v s="$SUITE" '$1 == "deb" && $3 == s { print $2; exit }')
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

arch=$(dpkg --print-architecture)
url=$(mirror)
t0=$(date +%s.%N)
echo "setup-test-env: debootstrap --variant=minbase $SUITE from $url (cached afterwards in $tar)"
mkdir -p "$(dirname "$tar")"
work=$(mktemp -d "$(dirname "$tar")/debootstrap.XXXXXX")
# On any exit: unmount what debootstrap may have left mounted, then delete without crossing into
# other filesystems (a bind-mounted host /dev must never be emptied).
cleanup() {
  { grep -o " $work/[^ ]*" /proc/mounts || true; } | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
trap "exit 1" INT TERM HUP
if ! debootstrap --variant=minbase --arch="$arch" "$SUITE" "$work/root" "$url" >"$work/log" 2>&1; then
  tail -20 "$work/log" >&2
  cp "$work/log" "$tar.failed.log"
  echo "setup-test-env: error: debootstrap from $url failed (log: $tar.failed.log)" >&2
  exit 1
fi
# What Debian's official images drop too: package caches, apt lists, device nodes.
(cd "$work/root" && rm -rf --one-file-system var/cache/apt/archives/*.deb var/cache/apt/*.bin \
  var/lib/apt/lists/* dev/* var/log/bootstrap.log)
tar --numeric-owner --xattrs --xattrs-include='*' --sort=name -C "$work/root" -cf "$work/rootfs.tar" .
chmod 0644 "$work/rootfs.tar"
echo "$url" >"$tar.mirror"
mv "$work/rootfs.tar" "$tar"
echo "setup-test-env: debootstrap + tar: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }'), $(du -m "$tar" | cut -f1) MB"
