#!/usr/bin/env bash
# Brings up rbox's real integration-test environment on a Debian 12 test machine, as root:
# unprivileged users, /dev/fuse 0666, the reference siftool, three local docker-registry
# instances with test images, and the file describing it all. Test machines only: it creates
# users and opens /dev/fuse to everyone; it never touches src/ or the system's registry service.
#
# Usage: scripts/setup-test-env.sh up|down|status
#   up      idempotent: reuses running services, cached siftool, debootstrap tarball and images;
#           restarts a service whose configuration changed. Prints timings.
#   down    stops the services (storage and caches stay; RBOX_TESTENV_PURGE=1 also deletes
#           /var/tmp/rbox-testenv).
#   status  one line per service; exit 0 when every service answers, 1 otherwise.
# Knobs: RBOX_DEBIAN_MIRROR (default: the host's bookworm mirror from /etc/apt sources),
#        RBOX_TESTENV_PORT_BASE (default 5100; the package's own service uses 5000/5001),
#        RBOX_TESTENV_DIR, RBOX_TEST_CACHE (defaults below; a second environment beside the first).
#
# Everything lives in /var/tmp/rbox-testenv (world-readable; test credentials are not secret)
# and /var/cache/rbox-test (siftool, debootstrap tarball: kept between local runs).
# /var/tmp/rbox-testenv/env.sh exports:
#   RBOX_TESTENV_DIR       /var/tmp/rbox-testenv
#   RBOX_TEST_USER         rboxtest: unprivileged, no /etc/subuid entry (the hardest case)
#   RBOX_TEST_SUBUID_USER  rboxsub: unprivileged with a 65536-id /etc/subuid and /etc/subgid range
#   RBOX_TEST_SUBUID_RANGE RBOX_TEST_SUBGID_RANGE  START:COUNT of rboxsub's subordinate ids
#   RBOX_SIFTOOL           the reference siftool binary (executable by everyone)
#   RBOX_REGISTRY_BIN      /usr/bin/docker-registry (to start extra instances, e.g. fault tests)
#   RBOX_REG_HTTP          127.0.0.1:PORT, plain HTTP, anonymous pull and push
#   RBOX_REG_HTTP_STORAGE  its storage directory (read it, start a copy on it; don't write)
#   RBOX_REG_TLS           127.0.0.1:PORT, HTTPS (self-signed CA) + htpasswd Basic auth
#   RBOX_REG_TLS_CA        the CA certificate (PEM) that signed both HTTPS servers' certificates
#   RBOX_REG_TLS_CERT_DIR  a directory holding only ca.crt (skopeo --cert-dir / --*-cert-dir)
#   RBOX_REG_TLS_USER RBOX_REG_TLS_PASS        its credentials (pull and push)
#   RBOX_REG_TOKEN         127.0.0.1:PORT, HTTPS (same CA) + Bearer token auth
#   RBOX_REG_TOKEN_USER RBOX_REG_TOKEN_PASS    token-server user with pull, push on every repo
#   RBOX_REG_TOKEN_READER RBOX_REG_TOKEN_READER_PASS  token-server user with pull only
#   RBOX_REG_TOKEN_PUBLIC_REPO   public/busybox: anonymous pull allowed; every other repository
#                          of the token registry needs credentials (anonymous gets 401)
#   RBOX_TOKEN_REALM       https://127.0.0.1:PORT/token (the token server, same CA)
#   RBOX_TOKEN_SERVICE     the service name the registry announces and the token server checks
#   RBOX_TOKEN_TTL         expires_in of issued tokens, seconds
#   RBOX_TOKEN_LOG         token server log: one line per request (account, scopes, granted)
#   RBOX_REG_HTTP_LOG RBOX_REG_TLS_LOG RBOX_REG_TOKEN_LOG  registry logs (one line per request)
#   RBOX_REG_AUTHFILE      docker config.json with "auths" for the TLS and token registries
#   RBOX_IMG_BUSYBOX=busybox:latest (busybox-static + applet symlinks; Env PATH, Cmd sh, Label)
#   RBOX_IMG_LAYERS=layers:latest: 4 layers (gzip, zstd, uncompressed, gzip) with file/dir/opaque
#                          whiteouts, hard links in a layer and to an earlier layer, symlinks,
#                          0000/0700/setuid/setgid/sticky modes, user.* xattrs, long and UTF-8
#                          names, an empty file, file<->directory replacements, a fifo; config
#                          with Env, Entrypoint, Cmd, WorkingDir, User, Labels
#   RBOX_IMG_LAYERS_GZIP=layers-gzip:latest (same tree, all gzip: for umoci 0.4, no zstd)
#   RBOX_IMG_DEVICES=devices:latest (device nodes + fifo)  RBOX_IMG_MULTIARCH=multiarch:latest
#   RBOX_IMG_DEBIAN=debian:bookworm  RBOX_IMG_BUSYBOX_DOCKER=busybox-docker:latest (schema 2)
#   RBOX_IMG_MULTIARCH_DOCKER=multiarch-docker:latest (Docker manifest list)
#                          all of them in all three registries (repository path = the name)
#   RBOX_DIGEST_<IMAGE>    manifest (or index/list) digest of each image, same in every registry
#   RBOX_OCI_LAYOUT_<IMAGE>  OCI layout dir per image (ref "latest"; debian: "bookworm")
#   RBOX_OCI_LAYOUT_ALL    one OCI layout with every image, ref = image name (busybox, layers…)
#   RBOX_OCI_ARCHIVE_BUSYBOX   oci-archive tarball of busybox (ref "latest")
#   RBOX_DOCKER_ARCHIVE_BUSYBOX  docker-archive (`docker save` format) of busybox:latest
#   RBOX_LAYERS_EXPECT     what the unpacked layers image must contain (check_tree.py format)
#   RBOX_CHECK_TREE        scripts/testenv/check_tree.py: ROOT EXPECT [--no-owner]
#   RBOX_DEBIAN_ROOTFS_TAR debootstrap --variant=minbase bookworm root filesystem (plain tar)
#   RBOX_DEBIAN_MIRROR     the mirror it came from
#   (<IMAGE> = BUSYBOX LAYERS LAYERS_GZIP DEVICES MULTIARCH DEBIAN; digests also for
#    BUSYBOX_DOCKER MULTIARCH_DOCKER)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
tools=$repo/scripts/testenv
ENVDIR=${RBOX_TESTENV_DIR:-/var/tmp/rbox-testenv}
CACHE=${RBOX_TEST_CACHE:-/var/cache/rbox-test}
PY=/usr/bin/python3
REGBIN=/usr/bin/docker-registry
SUITE=bookworm
PORT_BASE=${RBOX_TESTENV_PORT_BASE:-5100}
SERVICES=(reg-http reg-tls token reg-token)
t_start=$(date +%s.%N)

say() { echo "setup-test-env: $*"; }
die() { echo "setup-test-env: error: $*" >&2; exit 1; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }'; }
sha() { sha256sum "$@" | awk '{print $1}' | sha256sum | cut -c1-16; }

# ------------------------------------------------------------------ users, /dev/fuse, userns

ensure_user() {  # NAME: an ordinary login user with a real home directory
  local name=$1
  if ! getent passwd "$name" >/dev/null; then
    # SUB_*_COUNT=0: no automatic /etc/subuid range; rboxsub gets an explicit one below.
    useradd --create-home --shell /bin/bash -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$name"
  fi
  local home
  home=$(getent passwd "$name" | cut -d: -f6)
  [ -d "$home" ] || { mkdir -p "$home" && chown "$name:" "$home"; }
  chmod 0755 "$home"  # tests (root) write fixtures there; rbox binds it read-write
}

sub_range() {  # NAME FILE: prints START:COUNT of NAME's first range, or nothing
  awk -F: -v n="$1" '$1 == n { print $2 ":" $3; exit }' "$2"
}

ensure_subids() {  # FILE NAME: exactly one 65536 range for NAME, not overlapping others
  local file=$1 name=$2 uid
  uid=$(id -u "$name")
  touch "$file"
  if [ "$(awk -F: -v n="$name" -v u="$uid" '($1 == n || $1 == u)' "$file" | wc -l)" -eq 1 ] &&
    [ "$(sub_range "$name" "$file" | cut -d: -f2)" = 65536 ]; then
    return
  fi
  sed -i -e "/^$name:/d" -e "/^$uid:/d" "$file"
  local start
  start=$(awk -F: 'BEGIN { m = 100000 } { e = $2 + $3; if (e > m) m = e } END { print m }' "$file")
  echo "$name:$start:65536" >>"$file"
}

setup_users() {
  ensure_user rboxtest
  ensure_user rboxsub
  local uid
  uid=$(id -u rboxtest)
  # The product's hardest case: no subordinate ids at all (useradd elsewhere may have added some).
  sed -i -e "/^rboxtest:/d" -e "/^$uid:/d" /etc/subuid /etc/subgid 2>/dev/null || true
  ensure_subids /etc/subuid rboxsub
  ensure_subids /etc/subgid rboxsub
}

setup_fuse() {
  [ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true
  [ -e /dev/fuse ] || mknod -m 0666 /dev/fuse c 10 229 || die "/dev/fuse is missing and mknod failed"
  chmod 0666 /dev/fuse  # what most distributions ship (Debian's udev rule: 0666)
}

check_userns() {
  local out
  if ! out=$(cd / && runuser -u rboxtest -- unshare -Ur true 2>&1); then
    die "unprivileged user namespaces do not work for rboxtest (unshare -Ur: $out).
  kernel.unprivileged_userns_clone=$(sysctl -n kernel.unprivileged_userns_clone 2>/dev/null || echo n/a)" \
      "user.max_user_namespaces=$(sysctl -n user.max_user_namespaces 2>/dev/null || echo n/a)" \
      "kernel.apparmor_restrict_unprivileged_userns=$(sysctl -n kernel.apparmor_restrict_unprivileged_userns 2>/dev/null || echo n/a)
  Fix: sysctl -w kernel.unprivileged_userns_clone=1 user.max_user_namespaces=15000 (and 0 for the apparmor one)."
  fi
  if ! out=$(cd / && runuser -u rboxsub -- unshare --map-auto true 2>&1); then
    die "rboxsub cannot map its /etc/subuid range (unshare --map-auto: $out); is uidmap (newuidmap) installed?"
  fi
}

# ------------------------------------------------------------------ siftool (background build)

siftool_key() {
  {
    cat "$repo/../shared/tools/siftool/build.sh" "$repo/../shared/tools/siftool/main.go"
    dpkg-query -W -f='${Package} ${Version}\n' golang-go golang-github-sylabs-sif-dev 2>/dev/null || true
  } | sha256sum | cut -c1-16
}

siftool_pid=""
start_siftool() {
  local src=$repo/../shared/tools/siftool
  [ -x "$src/build.sh" ] || die "$src/build.sh not found (CI clones the repo beside ../shared)"
  mkdir -p "$CACHE/siftool"
  chmod 0755 "$CACHE" "$CACHE/siftool"
  if [ -x "$CACHE/siftool/siftool" ] && [ "$(cat "$CACHE/siftool/key" 2>/dev/null)" = "$(siftool_key)" ]; then
    return
  fi
  say "building siftool in the background"
  (
    "$src/build.sh" "$CACHE/siftool/siftool.new" >"$CACHE/siftool/build.log" 2>&1 &&
      chmod 0755 "$CACHE/siftool/siftool.new" && mv "$CACHE/siftool/siftool.new" "$CACHE/siftool/siftool" &&
      siftool_key >"$CACHE/siftool/key"
  ) &
  siftool_pid=$!
}

wait_siftool() {
  if [ -n "$siftool_pid" ]; then
    wait "$siftool_pid" || { tail -20 "$CACHE/siftool/build.log" >&2; die "siftool build failed (log: $CACHE/siftool/build.log)"; }
  fi
  "$CACHE/siftool/siftool" --help >/dev/null || die "siftool does not run"
}

# ------------------------------------------------------------------ Debian root filesystem

debian_tar() {  # sets DEBIAN_TAR and DEBIAN_MIRROR; debootstraps only when not cached
  DEBIAN_TAR=$CACHE/debian-$SUITE-minbase-$(dpkg --print-architecture).tar
  "$tools/debian-rootfs.sh" "$DEBIAN_TAR"
  DEBIAN_MIRROR=$(cat "$DEBIAN_TAR.mirror")
}

# ------------------------------------------------------------------ certificates, credentials

setup_certs() {
  local c=$ENVDIR/certs
  mkdir -p "$c" "$ENVDIR/certs.d" "$ENVDIR/token"
  if ! { [ -s "$c/server.crt" ] && openssl x509 -checkend 86400 -noout -in "$c/server.crt" >/dev/null 2>&1 &&
    openssl verify -CAfile "$c/ca.crt" "$c/server.crt" >/dev/null 2>&1; }; then
    say "generating the test CA and server certificate"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout "$c/ca.key" -out "$c/ca.crt" \
      -subj "/CN=rbox test CA" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout "$c/server.key" -out "$c/server.csr" -subj "/CN=localhost" 2>/dev/null
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >"$c/server.ext"
    openssl x509 -req -in "$c/server.csr" -CA "$c/ca.crt" -CAkey "$c/ca.key" -CAcreateserial -days 3650 \
      -extfile "$c/server.ext" -out "$c/server.crt" 2>/dev/null
    rm -f "$c/server.csr"
  fi
  cp "$c/ca.crt" "$ENVDIR/certs.d/ca.crt"
  if ! [ -s "$ENVDIR/token/sign.crt" ]; then
    # The registry trusts tokens whose x5c certificate chains to this (rootcertbundle).
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout "$ENVDIR/token/sign.key" \
      -out "$ENVDIR/token/sign.crt" -subj "/CN=rbox test token signer" 2>/dev/null
  fi
  chmod 0600 "$c/ca.key" "$c/server.key" "$ENVDIR/token/sign.key"
  chmod 0644 "$c/ca.crt" "$c/server.crt" "$ENVDIR/certs.d/ca.crt" "$ENVDIR/token/sign.crt"
  chmod 0755 "$c" "$ENVDIR/certs.d" "$ENVDIR/token"

  if ! [ -s "$ENVDIR/secrets.env" ]; then
    {
      echo "TLS_USER=rboxtls TLS_PASS=$(openssl rand -hex 12)"
      echo "TOKEN_USER=rboxtoken TOKEN_PASS=$(openssl rand -hex 12)"
      echo "READER_USER=rboxreader READER_PASS=$(openssl rand -hex 12)"
    } >"$ENVDIR/secrets.env"
  fi
  chmod 0644 "$ENVDIR/secrets.env"  # test credentials, loopback-only services
  # shellcheck disable=SC1091
  . "$ENVDIR/secrets.env"
  mkdir -p "$ENVDIR/reg-tls"
  if ! { [ -s "$ENVDIR/reg-tls/htpasswd" ] && htpasswd -vb "$ENVDIR/reg-tls/htpasswd" "$TLS_USER" "$TLS_PASS" >/dev/null 2>&1; }; then
    htpasswd -Bbc "$ENVDIR/reg-tls/htpasswd" "$TLS_USER" "$TLS_PASS" 2>/dev/null  # bcrypt: required by registry 2.x
  fi
}

# ------------------------------------------------------------------ services

port_free() {  # PORT: nobody listens there. SO_REUSEADDR as the servers use it: TIME_WAIT is fine.
  "$PY" -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

svc_pid() {  # NAME: pid of our running instance, or nothing
  local f=$ENVDIR/$1/pid pid
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  # Our process only: a recycled pid running something else must not count (or be killed).
  if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$ENVDIR/$1/"; then
    echo "$pid"
  fi
}

svc_stop() {
  local pid i
  pid=$(svc_pid "$1")
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$ENVDIR/$1/pid"
}

svc_url() {  # NAME PORT: the URL whose answer means "up"
  case $1 in
    reg-http) echo "http://127.0.0.1:$2/v2/" ;;
    token) echo "https://127.0.0.1:$2/healthz" ;;
    *) echo "https://127.0.0.1:$2/v2/" ;;
  esac
}

svc_code() {  # NAME PORT: HTTP status code of its health URL (000 when not answering)
  curl -s -o /dev/null -m 3 --cacert "$ENVDIR/certs/ca.crt" -w '%{http_code}' "$(svc_url "$1" "$2")" || true
}

svc_want() { case $1 in reg-http | token) echo 200 ;; *) echo 401 ;; esac; }

pick_port() {  # NAME: keeps the recorded port when possible, else the first free from the base
  local name=$1 p
  p=$(cat "$ENVDIR/$name/port" 2>/dev/null || true)
  if [ -n "$p" ] && port_free "$p"; then echo "$p"; return; fi
  for ((p = PORT_BASE; p < PORT_BASE + 200; p++)); do
    grep -qx "$p" "$ENVDIR"/*/port 2>/dev/null && continue  # reserved by a sibling service
    port_free "$p" && { echo "$p"; return; }
  done
  die "no free loopback port in $PORT_BASE..$((PORT_BASE + 199))"
}

registry_config() {  # NAME PORT: prints the docker-registry configuration
  local name=$1 port=$2
  cat <<EOF
version: 0.1
log:
  level: info
  formatter: text
  fields: {service: registry, instance: $name}
storage:
  filesystem: {rootdirectory: $ENVDIR/$name/data}
  delete: {enabled: false}
  maintenance: {uploadpurging: {enabled: false}}
http:
  addr: 127.0.0.1:$port
  secret: rbox-test-$name
  headers: {X-Content-Type-Options: [nosniff]}
EOF
  if [ "$name" != reg-http ]; then
    printf '  tls: {certificate: %s, key: %s}\n' "$ENVDIR/certs/server.crt" "$ENVDIR/certs/server.key"
  fi
  case $name in
    reg-tls) printf 'auth:\n  htpasswd: {realm: rbox-test, path: %s}\n' "$ENVDIR/reg-tls/htpasswd" ;;
    reg-token)
      printf 'auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n' \
        "https://127.0.0.1:$(cat "$ENVDIR/token/port")/token" rbox-test-registry rbox-test-token-issuer \
        "$ENVDIR/token/sign.crt" ;;
  esac
}

token_config() {  # PORT
  "$PY" - "$1" "$ENVDIR" "$TOKEN_USER" "$TOKEN_PASS" "$READER_USER" "$READER_PASS" <<'EOF'
import json, sys
port, d, tu, tp, ru, rp = sys.argv[1:]
print(json.dumps({
    "listen": "127.0.0.1", "port": int(port),
    "tls_cert": d + "/certs/server.crt", "tls_key": d + "/certs/server.key",
    "sign_key": d + "/token/sign.key", "sign_cert": d + "/token/sign.crt",
    "issuer": "rbox-test-token-issuer", "service": "rbox-test-registry", "ttl": 300,
    "log": d + "/token/log", "public_prefix": "public/",
    "users": {tu: {"password": tp, "actions": ["pull", "push"]},
              ru: {"password": rp, "actions": ["pull"]}}}, indent=1, sort_keys=True))
EOF
}

start_service() {  # NAME: (re)starts it unless our instance with this configuration is running
  local name=$1 dir=$ENVDIR/$1 port pid conf cmd
  mkdir -p "$dir"
  pid=$(svc_pid "$name")
  port=$(cat "$dir/port" 2>/dev/null || true)
  if [ -z "$pid" ]; then port=$(pick_port "$name"); fi
  case $name in
    token) conf=$dir/server.json; token_config "$port" >"$conf.new"; cmd=("$PY" "$tools/token-server.py" "$conf") ;;
    *) conf=$dir/config.yml; registry_config "$name" "$port" >"$conf.new"; cmd=("$REGBIN" serve "$conf") ;;
  esac
  chmod 0600 "$conf.new"
  local key
  key=$(if [ "$name" = token ]; then sha "$conf.new" "${cmd[1]}"; else sha "$conf.new" "${cmd[0]}"; fi)
  if [ -n "$pid" ] && [ "$(cat "$dir/key" 2>/dev/null)" = "$key" ] && [ "$(svc_code "$name" "$port")" = "$(svc_want "$name")" ]; then
    rm -f "$conf.new"
    return
  fi
  [ -z "$pid" ] || { say "restarting $name (configuration changed or not answering)"; svc_stop "$name"; }
  mv "$conf.new" "$conf"
  echo "$port" >"$dir/port"
  echo "$key" >"$dir/key"
  mkdir -p "$dir/data"
  touch "$dir/log"
  chmod 0644 "$dir/log"
  # Daemonize: new session (no terminal, no SIGHUP), stdin from /dev/null, and every inherited
  # descriptor above 2 closed (our lock, a CI runner's pipes), so nothing waits on the service.
  "$PY" -c 'import os, sys
if os.getpgrp() == os.getpid() and os.fork():
    os._exit(0)
os.setsid()
os.closerange(3, os.sysconf("SC_OPEN_MAX"))
with open(sys.argv[1], "w") as f:
    f.write("%d\n" % os.getpid())
os.execv(sys.argv[2], sys.argv[2:])' "$dir/pid" "${cmd[@]}" >>"$dir/log" 2>&1 </dev/null &
  local i code
  for i in $(seq 100); do
    code=$(svc_code "$name" "$port")
    [ "$code" = "$(svc_want "$name")" ] && break
    sleep 0.1
  done
  [ "$code" = "$(svc_want "$name")" ] || { tail -5 "$dir/log" >&2; die "$name did not answer on port $port (HTTP $code; log: $dir/log)"; }
  say "started $name on 127.0.0.1:$port (pid $(cat "$dir/pid"))"
}

# ------------------------------------------------------------------ images

build_images() {
  local img=$ENVDIR/images t0
  t0=$(date +%s.%N)
  mkdir -p "$img"
  "$PY" "$tools/mkimages.py" "$img" --busybox /bin/busybox --arch "$(dpkg --print-architecture)" \
    --debian-tar "$DEBIAN_TAR"
  # Archives for the oci-archive: and docker-archive: sources, rebuilt when busybox changed.
  if ! [ "$img/busybox-oci.tar" -nt "$img/busybox.key" ] || ! [ "$img/busybox-docker.tar" -nt "$img/busybox.key" ]; then
    rm -f "$img/busybox-oci.tar" "$img/busybox-docker.tar"
    skopeo copy -q "oci:$img/busybox:latest" "oci-archive:$img/busybox-oci.tar:latest"
    skopeo copy -q "oci:$img/busybox:latest" "docker-archive:$img/busybox-docker.tar:busybox:latest"
  fi
  chmod -R a+rX "$img"
  say "images ready ($(elapsed "$t0"))"
}

push_all() {  # NAME HOST SKOPEO-DEST-OPTIONS...: every test image into one registry
  local name=$1 host=$2 img=$ENVDIR/images
  shift 2
  local stamp=$ENVDIR/$name/data/rbox-pushed key
  key=$( (cat "$img/digests.env"; declare -f push_all) | sha256sum | cut -c1-16)
  [ "$(cat "$stamp" 2>/dev/null)" = "$key" ] && return 0
  local -a list=(busybox:latest layers:latest layers-gzip:latest devices:latest debian:bookworm)
  local ref
  for ref in "${list[@]}"; do
    skopeo copy -q --preserve-digests "$@" "oci:$img/${ref%%:*}:${ref#*:}" "docker://$host/$ref"
  done
  skopeo copy -q --all --preserve-digests "$@" "oci:$img/multiarch:latest" "docker://$host/multiarch:latest"
  skopeo copy -q --format v2s2 --digestfile "$ENVDIR/$name/busybox-docker.digest" "$@" \
    "oci:$img/busybox:latest" "docker://$host/busybox-docker:latest"
  skopeo copy -q --all --format v2s2 --digestfile "$ENVDIR/$name/multiarch-docker.digest" "$@" \
    "oci:$img/multiarch:latest" "docker://$host/multiarch-docker:latest"
  if [ "$name" = reg-token ]; then
    skopeo copy -q --preserve-digests "$@" "oci:$img/busybox:latest" "docker://$host/public/busybox:latest"
  fi
  echo "$key" >"$stamp"
}

push_images() {
  local t0 pids=() n
  t0=$(date +%s.%N)
  local http tls token
  http=127.0.0.1:$(cat "$ENVDIR/reg-http/port")
  tls=127.0.0.1:$(cat "$ENVDIR/reg-tls/port")
  token=127.0.0.1:$(cat "$ENVDIR/reg-token/port")
  push_all reg-http "$http" --dest-tls-verify=false >"$ENVDIR/reg-http/push.log" 2>&1 &
  pids+=($!)
  push_all reg-tls "$tls" --dest-cert-dir "$ENVDIR/certs.d" --dest-creds "$TLS_USER:$TLS_PASS" \
    >"$ENVDIR/reg-tls/push.log" 2>&1 &
  pids+=($!)
  push_all reg-token "$token" --dest-cert-dir "$ENVDIR/certs.d" --dest-creds "$TOKEN_USER:$TOKEN_PASS" \
    >"$ENVDIR/reg-token/push.log" 2>&1 &
  pids+=($!)
  local failed=0
  for n in 0 1 2; do
    wait "${pids[$n]}" || { failed=1; tail -5 "$ENVDIR/${SERVICES[$((n == 2 ? 3 : n))]}/push.log" >&2; }
  done
  [ "$failed" -eq 0 ] || die "pushing test images failed (logs: $ENVDIR/*/push.log)"
  say "images pushed to 3 registries ($(elapsed "$t0"))"
}

# ------------------------------------------------------------------ env.sh

write_env() {
  local img=$ENVDIR/images out=$ENVDIR/env.sh.new
  # shellcheck disable=SC1091
  . "$img/digests.env"
  q() { printf "export %s=%q\n" "$1" "$2"; }
  {
    echo "# rbox integration-test environment, written by scripts/setup-test-env.sh up ($(date -u +%FT%TZ))."
    echo "# The variables are documented at the top of that script."
    q RBOX_TESTENV_DIR "$ENVDIR"
    q RBOX_TEST_USER rboxtest
    q RBOX_TEST_SUBUID_USER rboxsub
    q RBOX_TEST_SUBUID_RANGE "$(sub_range rboxsub /etc/subuid)"
    q RBOX_TEST_SUBGID_RANGE "$(sub_range rboxsub /etc/subgid)"
    q RBOX_SIFTOOL "$CACHE/siftool/siftool"
    q RBOX_REGISTRY_BIN "$REGBIN"
    q RBOX_REG_HTTP "127.0.0.1:$(cat "$ENVDIR/reg-http/port")"
    q RBOX_REG_HTTP_STORAGE "$ENVDIR/reg-http/data"
    q RBOX_REG_TLS "127.0.0.1:$(cat "$ENVDIR/reg-tls/port")"
    q RBOX_REG_TLS_CA "$ENVDIR/certs/ca.crt"
    q RBOX_REG_TLS_CERT_DIR "$ENVDIR/certs.d"
    q RBOX_REG_TLS_USER "$TLS_USER"
    q RBOX_REG_TLS_PASS "$TLS_PASS"
    q RBOX_REG_TOKEN "127.0.0.1:$(cat "$ENVDIR/reg-token/port")"
    q RBOX_REG_TOKEN_USER "$TOKEN_USER"
    q RBOX_REG_TOKEN_PASS "$TOKEN_PASS"
    q RBOX_REG_TOKEN_READER "$READER_USER"
    q RBOX_REG_TOKEN_READER_PASS "$READER_PASS"
    q RBOX_REG_TOKEN_PUBLIC_REPO public/busybox
    q RBOX_TOKEN_REALM "https://127.0.0.1:$(cat "$ENVDIR/token/port")/token"
    q RBOX_TOKEN_SERVICE rbox-test-registry
    q RBOX_TOKEN_TTL 300
    q RBOX_TOKEN_LOG "$ENVDIR/token/log"
    q RBOX_REG_HTTP_LOG "$ENVDIR/reg-http/log"
    q RBOX_REG_TLS_LOG "$ENVDIR/reg-tls/log"
    q RBOX_REG_TOKEN_LOG "$ENVDIR/reg-token/log"
    q RBOX_REG_AUTHFILE "$ENVDIR/auth.json"
    q RBOX_IMG_BUSYBOX busybox:latest
    q RBOX_IMG_LAYERS layers:latest
    q RBOX_IMG_LAYERS_GZIP layers-gzip:latest
    q RBOX_IMG_DEVICES devices:latest
    q RBOX_IMG_MULTIARCH multiarch:latest
    q RBOX_IMG_DEBIAN debian:bookworm
    q RBOX_IMG_BUSYBOX_DOCKER busybox-docker:latest
    q RBOX_IMG_MULTIARCH_DOCKER multiarch-docker:latest
    q RBOX_DIGEST_BUSYBOX "$BUSYBOX_DIGEST"
    q RBOX_DIGEST_LAYERS "$LAYERS_DIGEST"
    q RBOX_DIGEST_LAYERS_GZIP "$LAYERS_GZIP_DIGEST"
    q RBOX_DIGEST_DEVICES "$DEVICES_DIGEST"
    q RBOX_DIGEST_MULTIARCH "$MULTIARCH_DIGEST"
    q RBOX_DIGEST_DEBIAN "$DEBIAN_DIGEST"
    q RBOX_DIGEST_BUSYBOX_DOCKER "$(cat "$ENVDIR/reg-http/busybox-docker.digest")"
    q RBOX_DIGEST_MULTIARCH_DOCKER "$(cat "$ENVDIR/reg-http/multiarch-docker.digest")"
    local n
    for n in busybox layers layers-gzip devices multiarch debian all; do
      q "RBOX_OCI_LAYOUT_$(echo "$n" | tr a-z- A-Z_)" "$img/$n"
    done
    q RBOX_OCI_ARCHIVE_BUSYBOX "$img/busybox-oci.tar"
    q RBOX_DOCKER_ARCHIVE_BUSYBOX "$img/busybox-docker.tar"
    q RBOX_LAYERS_EXPECT "$img/layers.expect"
    q RBOX_CHECK_TREE "$tools/check_tree.py"
    q RBOX_DEBIAN_ROOTFS_TAR "$DEBIAN_TAR"
    q RBOX_DEBIAN_MIRROR "$DEBIAN_MIRROR"
  } >"$out"
  "$PY" - "$ENVDIR/auth.json" "127.0.0.1:$(cat "$ENVDIR/reg-tls/port")" "$TLS_USER:$TLS_PASS" \
    "127.0.0.1:$(cat "$ENVDIR/reg-token/port")" "$TOKEN_USER:$TOKEN_PASS" <<'EOF'
import base64, json, sys
path, a, ac, b, bc = sys.argv[1:]
auth = lambda c: {"auth": base64.b64encode(c.encode()).decode()}
with open(path, "w") as f:
    json.dump({"auths": {a: auth(ac), b: auth(bc)}}, f, indent=1)
EOF
  chmod 0644 "$out" "$ENVDIR/auth.json"
  mv "$out" "$ENVDIR/env.sh"
}

# ------------------------------------------------------------------ commands

cmd_up() {
  [ "$(id -u)" -eq 0 ] || die "run as root (creates users, starts registries)"
  local t0 p
  for p in "$REGBIN" skopeo debootstrap openssl htpasswd curl zstd "$PY" /bin/busybox; do
    command -v "$p" >/dev/null || die "$p missing; run scripts/setup-deps.sh first"
  done
  mkdir -p "$ENVDIR" "$CACHE"
  chmod 0755 "$ENVDIR" "$CACHE"
  exec 9>"$ENVDIR/.lock"
  # Two concurrent `up`s (several developers' shells) run one after the other.
  flock -w 900 9 || die "another setup-test-env.sh is still running ($ENVDIR/.lock)"
  t0=$(date +%s.%N)
  setup_users
  setup_fuse
  check_userns
  say "users rboxtest, rboxsub; /dev/fuse 0666; user namespaces ok ($(elapsed "$t0"))"
  start_siftool
  t0=$(date +%s.%N)
  setup_certs
  local s
  for s in "${SERVICES[@]}"; do start_service "$s"; done
  say "services up ($(elapsed "$t0"))"
  debian_tar
  build_images
  push_images
  wait_siftool
  write_env
  say "up in $(elapsed "$t_start"); environment: $ENVDIR/env.sh"
}

cmd_down() {
  local s
  [ -d "$ENVDIR" ] || return 0
  exec 9>"$ENVDIR/.lock"
  flock -w 900 9 || die "another setup-test-env.sh is still running ($ENVDIR/.lock)"
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
    s=${SERVICES[$i]}
    [ -n "$(svc_pid "$s")" ] && say "stopping $s"
    svc_stop "$s"
  done
  if [ "${RBOX_TESTENV_PURGE:-0}" = 1 ]; then
    rm -rf --one-file-system "$ENVDIR"
    say "removed $ENVDIR"
  fi
}

cmd_status() {
  local s pid port code ok=0
  for s in "${SERVICES[@]}"; do
    pid=$(svc_pid "$s")
    port=$(cat "$ENVDIR/$s/port" 2>/dev/null || echo -)
    code=000
    [ -z "$pid" ] || code=$(svc_code "$s" "$port")
    if [ -n "$pid" ] && [ "$code" = "$(svc_want "$s")" ]; then
      printf '%-10s up    127.0.0.1:%s pid %s (HTTP %s)\n' "$s" "$port" "$pid" "$code"
    else
      printf '%-10s DOWN  port %s pid %s (HTTP %s)\n' "$s" "$port" "${pid:--}" "$code"
      ok=1
    fi
  done
  if [ -s "$ENVDIR/env.sh" ]; then echo "env: $ENVDIR/env.sh"; else echo "env: missing"; ok=1; fi
  return $ok
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
