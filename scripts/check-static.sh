#!/usr/bin/env bash
# Check that a release binary is really one static executable that runs anywhere: no ELF
# interpreter, no shared-library needs, runs as an unprivileged user, as a uid missing from
# /etc/passwd (the static-glibc NSS crash, STATIC.md), and in an empty root holding only itself.
# Usage: scripts/check-static.sh BIN     (root recommended; prints one line per check)
set -euo pipefail
cd "$(dirname "$0")/.."
die() { echo "check-static: FAIL: $*" >&2; exit 1; }
ok() { echo "check-static: ok: $*"; }

[ $# -eq 1 ] || die "usage: scripts/check-static.sh BIN"
bin=$1
{ [ -f "$bin" ] && [ -x "$bin" ]; } || die "$bin is not an executable file"

# --- 1. The ELF itself. --------------------------------------------------------------------
# `file` says "statically linked" for -static and "static-pie linked" for -static-pie.
desc=$(file -b "$bin")
case "$desc" in
  *"statically linked"* | *"static-pie linked"*) ;;
  *) die "file(1) does not call $bin static: $desc" ;;
esac
# ldd: "not a dynamic executable" (-static, exit 1) or "statically linked" (-static-pie, exit 0).
ldd_out=$(ldd "$bin" 2>&1 || true)
case "$ldd_out" in
  *"not a dynamic executable"* | *"statically linked"*) ;;
  *) die "ldd lists shared libraries for $bin: $(echo "$ldd_out" | tr '\n' ' ')" ;;
esac
# No program interpreter in either form. A static PIE (ELF type DYN) keeps a DYNAMIC segment
# for its self-relocation, but it must need no shared object (no NEEDED entry).
phdrs=$(readelf -lW "$bin")
grep -qE '^ +INTERP ' <<<"$phdrs" && die "$bin has a PT_INTERP (needs a dynamic loader)"
type=$(readelf -hW "$bin" | awk -F: '/^ +Type:/ { gsub(/^ +/, "", $2); print $2 }')
if grep -qE '^ +DYNAMIC ' <<<"$phdrs"; then
  [[ "$type" == DYN* ]] || die "$bin is a non-PIE executable with a dynamic section"
  needed=$(readelf -dW "$bin" | grep -E '\((NEEDED|SONAME)\)' || true)
  [ -z "$needed" ] || die "$bin needs shared objects: $(echo "$needed" | awk '{ print $NF }' | tr '\n' ' ')"
  kind="static PIE (DYNAMIC segment without NEEDED entries)"
else
  kind="static executable (no dynamic section)"
fi
ok "$(file -b "$bin" | cut -d, -f1-2); $kind; no INTERP; ldd: $(head -1 <<<"$ldd_out" | sed 's/^[[:space:]]*//')"

# --- 2. Running it. -------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || die "the run checks need root (to switch to an unprivileged uid); run as root"
work=$(mktemp -d "${TMPDIR:-/tmp}/rbox-check-static.XXXXXX")
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
install -m 755 "$bin" "$work/rbox"

# The definition to inspect: defs/minimal.def when it exists, else a small stand-in.
def=defs/minimal.def
if [ -f "$def" ]; then
  install -m 644 "$def" "$work/check.def"
else
  def="(stand-in for defs/minimal.def)"
  printf 'Bootstrap: docker\nFrom: busybox:1.36\n\n%%post\n    echo hello > /hello\n\n%%runscript\n    cat /hello\n' \
    >"$work/check.def"
  chmod 644 "$work/check.def"
fi
# What inspect must show: the base named by the From: header (or the Bootstrap: agent).
expect=$(awk -F: 'tolower($1) ~ /^ *from *$/ { sub(/^[^:]*: */, ""); sub(/ *#.*$/, ""); print; exit }' "$work/check.def")
[ -n "$expect" ] || expect=$(awk -F: 'tolower($1) ~ /^ *bootstrap *$/ { gsub(/[ \t]/, "", $2); print $2; exit }' "$work/check.def")

# run_as WHO CMD... : WHO is a user name or a numeric uid (setpriv; no /etc/passwd entry needed).
run_as() {
  local who=$1
  shift
  local env=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/ TERM=dumb)
  if [[ "$who" =~ ^[0-9]+$ ]]; then
    (cd "$work" && setpriv --reuid="$who" --regid="$who" --clear-groups --inh-caps=-all "${env[@]}" "$@")
  else
    (cd "$work" && runuser -u "$who" -- "${env[@]}" USER="$who" "$@")
  fi
}
# check_run LABEL EXPECTED_TEXT CMD... : exit 0 and output containing EXPECTED_TEXT.
check_run() {
  local label=$1 want=$2
  shift 2
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  [ "$rc" -eq 0 ] || die "$label: exit $rc: $(head -c 300 <<<"$out" | tr '\n' ' ')"
  grep -qiF -- "$want" <<<"$out" || die "$label: output lacks '$want': $(head -c 300 <<<"$out" | tr '\n' ' ')"
  ok "$label"
}

# A uid that is in no passwd database: with "passwd: files systemd" in nsswitch.conf, an
# unpinned static glibc dlopen()s libnss_systemd for it and crashes.
nouid=4242
while getent passwd "$nouid" >/dev/null; do nouid=$((nouid + 1)); done

if id rboxtest >/dev/null 2>&1; then user=rboxtest; else user=$nouid; fi
check_run "rbox version as $( [ "$user" = "$nouid" ] && echo "uid $user" || echo "user $user")" "rbox " \
  run_as "$user" ./rbox version
check_run "rbox inspect --deffile $def as $( [ "$user" = "$nouid" ] && echo "uid $user" || echo "user $user")" \
  "$expect" run_as "$user" ./rbox inspect --deffile check.def

# As the uid without a passwd entry, through a command that looks the user up: 'rbox exec'
# resolves the image, then reads the invoking user's passwd entry (container::gather_host_facts
# -> nss::current_user -> getpwuid). Whether this host can run the container does not matter
# here; dying by a signal does (an unpinned static glibc segfaults in libnss_systemd).
check_run "rbox version as uid $nouid (not in /etc/passwd)" "rbox " run_as "$nouid" ./rbox version
mkdir -p "$work/sandbox/bin"
chmod -R 755 "$work/sandbox"
if [ -x /bin/busybox ] && file -b /bin/busybox | grep -q 'statically linked'; then
  install -m 755 /bin/busybox "$work/sandbox/bin/busybox"
fi
rc=0
out=$(run_as "$nouid" ./rbox exec ./sandbox /bin/busybox true 2>&1) || rc=$?
if [ "$rc" -gt 128 ] && [ "$rc" -le 192 ]; then
  die "rbox exec as uid $nouid died by signal $((rc - 128)) (is NSS pinned? src/util/nss.cpp): $(head -c 200 <<<"$out")"
fi
ok "rbox exec as uid $nouid (passwd lookup): no crash (exit $rc${out:+: $(head -1 <<<"$out" | head -c 100)})"

# --- 3. An empty root: only the binary and the definition file. ----------------------------
root=$work/root
mkdir -m 755 "$root"
install -m 755 "$bin" "$root/rbox"
install -m 644 "$work/check.def" "$root/check.def"
# Unprivileged userns + chroot as the uid without a passwd entry; plain chroot if userns is off.
in_root() {
  if run_as "$nouid" unshare -r true 2>/dev/null; then
    run_as "$nouid" unshare -r chroot "$root" "$@"
  else
    env -i PATH=/ HOME=/ chroot "$root" "$@"
  fi
}
check_run "rbox version in an empty root" "rbox " in_root /rbox version
check_run "rbox inspect --deffile in an empty root" "$expect" in_root /rbox inspect --deffile /check.def
extra=$(find "$root" -mindepth 1 | sed "s|^$root||" | grep -vxE '/rbox|/check.def' || true)
[ -z "$extra" ] || die "the empty root gained files: $(echo "$extra" | tr '\n' ' ')"

echo "check-static: all checks passed for $bin"
