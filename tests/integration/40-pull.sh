#!/usr/bin/env bash
# rbox pull against the real test registries (plain HTTP, TLS + htpasswd, Bearer tokens) and the
# on-disk sources, as the unprivileged test user: trees compared with umoci's, hostile layers,
# eight pulls sharing one cache, a corrupted cache entry, and a proxy that cuts, stalls or
# corrupts blob downloads. Every pull uses its own cache under $RBOX_IT_DIR; the shared
# registries are only read.
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1090
. "${RBOX_TESTENV:-/var/tmp/rbox-testenv/env.sh}" || { echo "no test environment: run scripts/setup-test-env.sh up" >&2; exit 1; }

OCI_TOOLS=$(cd "$(dirname "$0")/oci" && pwd)
CA=$RBOX_REG_TLS_CA
PY=/usr/bin/python3

# A fresh directory owned by the test user.
workdir() { as_user mktemp -d "$RBOX_IT_DIR/pull-XXXXXX"; }
# rbox pull as the test user with the blob cache CACHE: rpull CACHE ARGS...
rpull() {
  local cache=$1
  shift
  as_user RBOX_CACHEDIR="$cache" "$RBOX" pull "$@"
}
log_lines() { wc -l <"$1"; }
# Access-log requests after line N of LOG matching TEXT.
count_after() { tail -n +"$(($2 + 1))" "$1" | grep -c -- "$3"; }
check_tree() { "$PY" "$RBOX_CHECK_TREE" "$@" >/dev/null || { "$PY" "$RBOX_CHECK_TREE" "$@" | head -5 >&2; fail "check_tree $*"; }; }
compare() { "$PY" "$OCI_TOOLS/compare_trees.py" "$@" | tail -6 | grep -q ': 0 difference' || { "$PY" "$OCI_TOOLS/compare_trees.py" "$@" | tail -8 >&2; fail "trees differ: $*"; }; }

# Starts the fault proxy in front of the HTTP registry; sets PROXY_PID, PROXY_PORT, PROXY_LOG.
start_proxy() {
  local w=$1
  shift
  PROXY_LOG=$w/proxy.log
  rm -f "$w/proxy.port" "$PROXY_LOG"
  "$PY" "$OCI_TOOLS/fault_proxy.py" --upstream "$RBOX_REG_HTTP" --port-file "$w/proxy.port" --log "$PROXY_LOG" "$@" &
  PROXY_PID=$!
  local i
  for i in $(seq 50); do [ -s "$w/proxy.port" ] && break; sleep 0.1; done
  PROXY_PORT=$(cat "$w/proxy.port")
}
stop_proxy() { kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null; return 0; }

test_pull_plain_http_registry() {
  local w
  w=$(workdir)
  assert_status 0 rpull "$w/cache" --dir "$w/busybox" "docker://$RBOX_REG_HTTP/busybox:latest"
  assert_status 0 as_user test -x "$w/busybox/bin/busybox"
  assert_status 0 rpull "$w/cache" --dir "$w/layers" "docker://$RBOX_REG_HTTP/layers:latest"
  check_tree "$w/layers" "$RBOX_LAYERS_EXPECT" --no-owner
  # Owners the user cannot give are recorded as umoci does (user.rootlesscontainers).
  assert_eq "user.rootlesscontainers=0sCOgHEOgH" \
    "$(getfattr -e base64 -n user.rootlesscontainers "$w/layers/owned/u1000" 2>/dev/null | grep =)"
  assert_status 0 rpull "$w/cache" --dir "$w/docker-schema2" "docker://$RBOX_REG_HTTP/busybox-docker:latest"
  compare "$w/busybox" "$w/docker-schema2"
  # By digest, and a digest the registry does not have.
  assert_status 0 rpull "$w/cache" --dir "$w/bydigest" "docker://$RBOX_REG_HTTP/busybox@$RBOX_DIGEST_BUSYBOX"
  local out
  out=$(rpull "$w/cache" --dir "$w/missing" "docker://$RBOX_REG_HTTP/busybox@sha256:$(printf '0%.0s' {1..64})" 2>&1)
  assert_contains "$out" "not found"
  assert_no_file "$w/missing"
}

test_pull_tls_basic_auth() {
  local w out
  w=$(workdir)
  out=$(rpull "$w/cache" --dir "$w/a" "docker://$RBOX_REG_TLS/busybox:latest" 2>&1)
  assert_contains "$out" "--ca-file" "an unknown CA must be reported with the fix"
  out=$(rpull "$w/cache" --ca-file "$CA" --dir "$w/a" "docker://$RBOX_REG_TLS/busybox:latest" 2>&1)
  assert_contains "$out" "rbox registry login" "missing credentials must say how to log in"
  assert_no_file "$w/a"
  assert_status 0 rpull "$w/cache" --ca-file "$CA" --authfile "$RBOX_REG_AUTHFILE" --dir "$w/a" \
    "docker://$RBOX_REG_TLS/busybox:latest"
  assert_status 0 as_user test -x "$w/a/bin/busybox"
  # Environment credentials and SSL_CERT_FILE instead of the options.
  assert_status 0 as_user RBOX_CACHEDIR="$w/cache2" SSL_CERT_FILE="$CA" RBOX_DOCKER_USERNAME="$RBOX_REG_TLS_USER" \
    RBOX_DOCKER_PASSWORD="$RBOX_REG_TLS_PASS" "$RBOX" pull --dir "$w/b" "docker://$RBOX_REG_TLS/layers:latest"
  check_tree "$w/b" "$RBOX_LAYERS_EXPECT" --no-owner
  out=$(as_user RBOX_CACHEDIR="$w/cache3" RBOX_DOCKER_USERNAME="$RBOX_REG_TLS_USER" RBOX_DOCKER_PASSWORD=wrong \
    "$RBOX" pull --ca-file "$CA" --dir "$w/c" "docker://$RBOX_REG_TLS/busybox:latest" 2>&1)
  assert_contains "$out" "authentication failed"
  assert_no_file "$w/c"
}

test_pull_token_auth() {
  local w out n
  w=$(workdir)
  # Anonymous pull of the public repository; anonymous access elsewhere is refused.
  assert_status 0 rpull "$w/cache" --ca-file "$CA" --dir "$w/public" "docker://$RBOX_REG_TOKEN/$RBOX_REG_TOKEN_PUBLIC_REPO:latest"
  out=$(rpull "$w/cache" --ca-file "$CA" --dir "$w/private" "docker://$RBOX_REG_TOKEN/layers:latest" 2>&1)
  assert_contains "$out" "rbox registry login"
  assert_no_file "$w/private"
  # A pull-only user; one token request for the whole multi-layer pull (tokens are cached).
  n=$(log_lines "$RBOX_TOKEN_LOG")
  assert_status 0 as_user RBOX_CACHEDIR="$w/cache" RBOX_DOCKER_USERNAME="$RBOX_REG_TOKEN_READER" \
    RBOX_DOCKER_PASSWORD="$RBOX_REG_TOKEN_READER_PASS" "$RBOX" pull --ca-file "$CA" --dir "$w/layers" \
    "docker://$RBOX_REG_TOKEN/layers:latest"
  check_tree "$w/layers" "$RBOX_LAYERS_EXPECT" --no-owner
  assert_eq 1 "$(count_after "$RBOX_TOKEN_LOG" "$n" "account=$RBOX_REG_TOKEN_READER scopes=\[\"repository:layers:pull\"\]")" \
    "token requests for the pull"
  # The auth file from the environment works for the token registry too.
  assert_status 0 rpull "$w/cache" --ca-file "$CA" --authfile "$RBOX_REG_AUTHFILE" --dir "$w/multi" \
    "docker://$RBOX_REG_TOKEN/multiarch:latest"
}

test_registry_login_logout_and_secrets() {
  local w out home
  w=$(workdir)
  local auth=$w/auth.json
  out=$(echo "wrong" | as_user REGISTRY_AUTH_FILE="$auth" "$RBOX" registry login -u "$RBOX_REG_TLS_USER" \
    --password-stdin --ca-file "$CA" "docker://$RBOX_REG_TLS" 2>&1)
  assert_contains "$out" "rejected"
  assert_no_file "$auth"
  echo "$RBOX_REG_TLS_PASS" | assert_status 0 as_user REGISTRY_AUTH_FILE="$auth" "$RBOX" registry login \
    -u "$RBOX_REG_TLS_USER" --password-stdin --ca-file "$CA" "docker://$RBOX_REG_TLS"
  assert_eq 600 "$(stat -c %a "$auth")" "auth file mode"
  echo "$RBOX_REG_TOKEN_PASS" | assert_status 0 as_user REGISTRY_AUTH_FILE="$auth" "$RBOX" registry login \
    -u "$RBOX_REG_TOKEN_USER" --password-stdin --ca-file "$CA" "$RBOX_REG_TOKEN"
  # Pulls find the credentials there; --debug shows neither passwords nor tokens.
  out=$(as_user RBOX_CACHEDIR="$w/cache" REGISTRY_AUTH_FILE="$auth" "$RBOX" --debug pull --ca-file "$CA" \
    --dir "$w/t" "docker://$RBOX_REG_TOKEN/busybox:latest" 2>&1)
  assert_status 0 as_user test -x "$w/t/bin/busybox"
  assert_not_contains "$out" "$RBOX_REG_TOKEN_PASS" "password in --debug output"
  assert_not_contains "$out" "Bearer ey" "token in --debug output"
  assert_not_contains "$out" "Authorization" "auth header in --debug output"
  out=$(as_user RBOX_CACHEDIR="$w/cache" REGISTRY_AUTH_FILE="$auth" "$RBOX" --debug pull --ca-file "$CA" \
    --dir "$w/b" "docker://$RBOX_REG_TLS/busybox:latest" 2>&1)
  assert_status 0 as_user test -x "$w/b/bin/busybox"
  assert_not_contains "$out" "$RBOX_REG_TLS_PASS" "password in --debug output"
  assert_not_contains "$out" "$(printf '%s:%s' "$RBOX_REG_TLS_USER" "$RBOX_REG_TLS_PASS" | base64)" "basic auth in output"
  assert_status 0 as_user REGISTRY_AUTH_FILE="$auth" "$RBOX" registry logout "docker://$RBOX_REG_TLS"
  out=$(as_user RBOX_CACHEDIR="$w/cache" REGISTRY_AUTH_FILE="$auth" "$RBOX" pull --ca-file "$CA" --dir "$w/c" \
    "docker://$RBOX_REG_TLS/layers:latest" 2>&1)
  assert_contains "$out" "authentication failed"
  assert_contains "$(cat "$auth")" "$RBOX_REG_TOKEN" "the other registry's entry is kept"
  # The default location is ~/.docker/config.json (removed again afterwards).
  home=$(getent passwd "$RBOX_TEST_USER" | cut -d: -f6)
  if [ ! -e "$home/.docker/config.json" ]; then
    echo "$RBOX_REG_TLS_PASS" | assert_status 0 as_user "$RBOX" registry login -u "$RBOX_REG_TLS_USER" \
      --password-stdin --ca-file "$CA" "$RBOX_REG_TLS"
    assert_eq 600 "$(stat -c %a "$home/.docker/config.json")"
    assert_status 0 rpull "$w/cache" --ca-file "$CA" --dir "$w/d" "docker://$RBOX_REG_TLS/busybox:latest"
    assert_status 0 as_user "$RBOX" registry logout "$RBOX_REG_TLS"
    rm -f "$home/.docker/config.json"
    rmdir "$home/.docker" 2>/dev/null || true
  fi
}

test_pull_disk_sources() {
  local w
  w=$(workdir)
  assert_status 0 rpull "$w/cache" --dir "$w/reg" "docker://$RBOX_REG_HTTP/busybox:latest"
  assert_status 0 rpull "$w/cache" --dir "$w/oci" "oci:$RBOX_OCI_LAYOUT_BUSYBOX"
  assert_status 0 rpull "$w/cache" --dir "$w/oci-tag" "oci:$RBOX_OCI_LAYOUT_ALL:busybox"
  assert_status 0 rpull "$w/cache" --dir "$w/oci-archive" "oci-archive:$RBOX_OCI_ARCHIVE_BUSYBOX"
  assert_status 0 rpull "$w/cache" --dir "$w/docker-archive" "docker-archive:$RBOX_DOCKER_ARCHIVE_BUSYBOX"
  local d
  for d in oci oci-tag oci-archive docker-archive; do compare "$w/reg" "$w/$d"; done
  local out
  out=$(rpull "$w/cache" --dir "$w/x" "oci:$RBOX_OCI_LAYOUT_ALL" 2>&1)
  assert_contains "$out" "several images" "an untagged multi-image layout asks for a tag"
  out=$(rpull "$w/cache" --dir "$w/x" "oci:$RBOX_OCI_LAYOUT_ALL:nosuchtag" 2>&1)
  assert_contains "$out" "busybox" "the error lists the tags"
  # The layers image from disk matches the expectation too.
  assert_status 0 rpull "$w/cache" --dir "$w/layers" "oci:$RBOX_OCI_LAYOUT_LAYERS"
  check_tree "$w/layers" "$RBOX_LAYERS_EXPECT" --no-owner
}

test_platform_selection() {
  local w out img host
  w=$(workdir)
  host=$(uname -m | sed 's/x86_64/amd64/; s/aarch64/arm64/')
  for img in multiarch multiarch-docker; do
    out=$(rpull "$w/cache" -v --dir "$w/$img-host" "docker://$RBOX_REG_HTTP/$img:latest" 2>&1)
    assert_contains "$out" "for linux/$host" "$img: default platform"
    out=$(rpull "$w/cache" -v --arch arm64 --dir "$w/$img-arm64" "docker://$RBOX_REG_HTTP/$img:latest" 2>&1)
    assert_contains "$out" "for linux/arm64" "$img: --arch arm64"
    out=$(rpull "$w/cache" -v --platform linux/arm/v7 --dir "$w/$img-arm" "docker://$RBOX_REG_HTTP/$img:latest" 2>&1)
    assert_contains "$out" "for linux/arm/v7" "$img: --platform linux/arm/v7"
    out=$(rpull "$w/cache" --arch s390x --dir "$w/$img-s390x" "docker://$RBOX_REG_HTTP/$img:latest" 2>&1)
    assert_contains "$out" "no image for linux/s390x"
    assert_contains "$out" "linux/arm/v7" "the error lists the available platforms"
    assert_no_file "$w/$img-s390x"
  done
  # A single-platform image and an explicit other platform.
  out=$(rpull "$w/cache" --arch riscv64 --dir "$w/single" "docker://$RBOX_REG_HTTP/busybox:latest" 2>&1)
  assert_contains "$out" "single-platform image"
  out=$(rpull "$w/cache" -v --arch arm64 --dir "$w/oci-multi" "oci:$RBOX_OCI_LAYOUT_MULTIARCH" 2>&1)
  assert_contains "$out" "for linux/arm64" "platform selection in an OCI layout"
}

test_umoci_comparison() {
  local w img
  w=$(workdir)
  for img in busybox layers-gzip devices debian; do
    assert_status 0 rpull "$w/cache" --dir "$w/rbox-$img" "oci:$RBOX_OCI_LAYOUT_ALL:$img"
    assert_status 0 as_user umoci unpack --rootless --image "$RBOX_OCI_LAYOUT_ALL:$img" "$w/umoci-$img"
    compare "$w/umoci-$img/rootfs" "$w/rbox-$img" "--devices-of=$RBOX_OCI_LAYOUT_ALL:$img"
  done
  # The same image through the registry gives the same tree.
  assert_status 0 rpull "$w/cache" --dir "$w/reg-debian" "docker://$RBOX_REG_HTTP/debian:bookworm"
  compare "$w/umoci-debian/rootfs" "$w/reg-debian" "--devices-of=$RBOX_OCI_LAYOUT_ALL:debian"
}

test_hostile_layers() {
  local w outside tag expect out rc
  w=$(workdir)
  outside=$(as_user mktemp -d "$RBOX_IT_DIR/outside-XXXXXX")
  as_user sh -c "echo 'host data' > '$outside/secret' && chmod 640 '$outside/secret'"
  local before
  before=$(cd "$outside" && ls -la --time-style=+%s . && sha256sum secret)
  "$PY" "$OCI_TOOLS/mkhostile.py" "$w/layout" "$outside" >"$w/cases"
  chmod -R a+rX "$w/layout"
  [ "$(wc -l <"$w/cases")" -ge 15 ] || fail "mkhostile.py wrote too few cases"
  while read -r tag expect; do
    out=$(rpull "$w/cache" --dir "$w/$tag" "oci:$w/layout:$tag" 2>&1)
    rc=$?
    case "$expect" in
      ok) [ $rc -eq 0 ] || fail "$tag: expected to apply inside the root, got rc=$rc: $out" ;;
      error:*)
        [ $rc -ne 0 ] || fail "$tag: expected an error"
        assert_contains "$out" "${expect#error:}" "$tag error message"
        assert_contains "$out" "$tag" "$tag: the error names the image"
        assert_no_file "$w/$tag"
        ;;
    esac
    assert_eq "$before" "$(cd "$outside" && ls -la --time-style=+%s . && sha256sum secret)" "$tag touched the host"
  done <"$w/cases"
  # Where the attacks landed instead: inside the root, as the container would see them.
  assert_file "$w/dotdot/${outside#/}/pwned-dotdot"
  assert_file "$w/symlink-parent-abs/${outside#/}/pwned-symabs"
  assert_file "$w/symlink-parent-rel/${outside#/}/pwned-symrel"
  assert_eq "overwritten" "$(cat "$w/final-symlink-file/victim")"
  [ -d "$w/final-symlink-dir/d" ] && [ ! -L "$w/final-symlink-dir/d" ] || fail "final-symlink-dir: d must be a real dir"
  [ -L "$w/hardlink-to-symlink/s" ] || fail "hardlink-to-symlink: s must stay a symlink"
  assert_no_file "$w/device-node/dev/mem"
  ls -A "$RBOX_IT_DIR" | grep -q '^\.rbox-pull-' && fail "a failed pull left its temporary directory"
  true
}

test_concurrent_pulls_share_cache() {
  local w n i pids=() digest
  w=$(workdir)
  n=$(log_lines "$RBOX_REG_HTTP_LOG")
  for i in 1 2 3 4 5 6 7 8; do
    rpull "$w/cache" -q --dir "$w/p$i" "docker://$RBOX_REG_HTTP/layers:latest" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || fail "a concurrent pull failed"; done
  for i in 1 2 3 4 5 6 7 8; do check_tree "$w/p$i" "$RBOX_LAYERS_EXPECT" --no-owner; done
  # Every blob (config and layers) was downloaded once, whatever the interleaving.
  for digest in $(ls "$w/cache/blobs/sha256"); do
    assert_eq 1 "$(count_after "$RBOX_REG_HTTP_LOG" "$n" "\"GET /v2/layers/blobs/sha256:$digest HTTP")" "downloads of $digest"
  done
  assert_eq "" "$(ls "$w/cache/tmp")" "no partial downloads left"
}

test_corrupted_cache_entry_is_refetched() {
  local w n blob out
  w=$(workdir)
  assert_status 0 rpull "$w/cache" --dir "$w/a" "docker://$RBOX_REG_HTTP/busybox:latest"
  blob=$(ls -S "$w/cache/blobs/sha256" | head -1)  # the layer
  # Same size, one byte flipped: only a digest check notices.
  "$PY" -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[len(b)//2]^=1; open(p,"wb").write(b)' \
    "$w/cache/blobs/sha256/$blob"
  n=$(log_lines "$RBOX_REG_HTTP_LOG")
  out=$(rpull "$w/cache" --dir "$w/b" "docker://$RBOX_REG_HTTP/busybox:latest" 2>&1)
  assert_contains "$out" "corrupt"
  assert_eq 1 "$(count_after "$RBOX_REG_HTTP_LOG" "$n" "\"GET /v2/busybox/blobs/sha256:$blob HTTP")" "re-downloads"
  compare "$w/a" "$w/b"
  assert_eq "$blob" "$(sha256sum "$w/cache/blobs/sha256/$blob" | cut -c1-64)" "the cache entry is good again"
  # Truncated too.
  truncate -s 100 "$w/cache/blobs/sha256/$blob"
  assert_status 0 rpull "$w/cache" --dir "$w/c" "docker://$RBOX_REG_HTTP/busybox:latest"
  compare "$w/a" "$w/c"
  # A bad partial download left behind is resumed, found wrong, and fetched again from scratch.
  rm "$w/cache/blobs/sha256/$blob"
  as_user sh -c "head -c 100000 /dev/urandom > '$w/cache/tmp/$blob.partial'"
  out=$(rpull "$w/cache" --dir "$w/d" "docker://$RBOX_REG_HTTP/busybox:latest" 2>&1)
  assert_contains "$out" "downloading it again"
  compare "$w/a" "$w/d"
  assert_eq "" "$(ls "$w/cache/tmp")" "no partial download left"
}

test_fault_connection_killed_mid_blob() {
  local w
  w=$(workdir)
  start_proxy "$w" --mode kill --after 2000000 --times 2
  assert_status 0 rpull "$w/cache" -v --dir "$w/deb" "docker://127.0.0.1:$PROXY_PORT/debian:bookworm"
  stop_proxy
  local layer
  layer=$(grep 'action=kill' "$PROXY_LOG" | head -1 | grep -o 'sha256:[0-9a-f]*')
  [ -n "$layer" ] || fail "the proxy cut nothing: $(cat "$PROXY_LOG")"
  # Two cuts, each followed by a request that resumes where the data stopped.
  grep -q "$layer range=bytes=2000000- status=206.*action=kill" "$PROXY_LOG" || fail "no resume: $(cat "$PROXY_LOG")"
  grep -q "$layer range=bytes=4000000- status=206" "$PROXY_LOG" || fail "no second resume: $(cat "$PROXY_LOG")"
  assert_eq 1 "$(grep -c "$layer range=- " "$PROXY_LOG")" "downloads of the layer from byte 0"
  assert_status 0 as_user test -x "$w/deb/usr/bin/dpkg"
  assert_status 0 as_user RBOX_CACHEDIR="$w/cache" "$RBOX" pull --dir "$w/again" "oci:$RBOX_OCI_LAYOUT_DEBIAN:bookworm"
  compare "$w/again" "$w/deb"
}

test_fault_connection_stalls_mid_blob() {
  local w
  w=$(workdir)
  start_proxy "$w" --mode stall --after 1500000 --times 1
  assert_status 0 as_user RBOX_CACHEDIR="$w/cache" RBOX_HTTP_STALL_SECONDS=2 "$RBOX" pull --dir "$w/deb" \
    "docker://127.0.0.1:$PROXY_PORT/debian:bookworm"
  stop_proxy
  grep -q "range=bytes=1500000- status=206" "$PROXY_LOG" || fail "no resumed request: $(cat "$PROXY_LOG")"
  assert_status 0 as_user test -x "$w/deb/usr/bin/dpkg"
}

test_fault_registry_busy() {
  local w
  w=$(workdir)
  # 503, 429, 503: each retried after the server's Retry-After, then the pull completes.
  start_proxy "$w" --mode busy --times 3
  assert_status 0 rpull "$w/cache" --dir "$w/bb" "docker://127.0.0.1:$PROXY_PORT/busybox:latest"
  stop_proxy
  assert_eq 3 "$(grep -c 'action=busy' "$PROXY_LOG")" "refused requests"
  assert_status 0 as_user test -x "$w/bb/bin/busybox"
}

test_fault_wrong_bytes() {
  local w out
  w=$(workdir)
  start_proxy "$w" --mode corrupt
  out=$(rpull "$w/cache" --dir "$w/bad" "docker://127.0.0.1:$PROXY_PORT/busybox:latest" 2>&1)
  local rc=$?
  stop_proxy
  [ $rc -ne 0 ] || fail "a blob with wrong bytes must fail the pull"
  assert_contains "$out" "hashes to"
  assert_no_file "$w/bad"
  local layer
  layer=$(grep -o 'blobs/sha256:[0-9a-f]*.*action=corrupt' "$PROXY_LOG" | head -1 | cut -d: -f2 | cut -c1-64)
  [ -n "$layer" ] || fail "the proxy corrupted nothing"
  assert_no_file "$w/cache/blobs/sha256/$layer"
  assert_eq "" "$(ls "$w/cache/tmp")" "no partial download kept"
}

test_plain_http_needs_insecure_off_loopback() {
  local w ip out
  w=$(workdir)
  ip=$(hostname -I 2>/dev/null | awk '{print $1}')
  [ -n "$ip" ] || { skip "no non-loopback address"; return 0; }
  start_proxy "$w" --mode none --bind 0.0.0.0
  out=$(rpull "$w/cache" --dir "$w/a" "docker://$ip:$PROXY_PORT/busybox:latest" 2>&1)
  assert_contains "$out" "--insecure" "plain HTTP off loopback needs --insecure"
  assert_no_file "$w/a"
  assert_status 0 rpull "$w/cache" --insecure --dir "$w/a" "docker://$ip:$PROXY_PORT/busybox:latest"
  assert_status 0 as_user RBOX_CACHEDIR="$w/cache" RBOX_INSECURE_REGISTRIES="other.example,$ip:$PROXY_PORT" \
    "$RBOX" pull --dir "$w/b" "docker://$ip:$PROXY_PORT/busybox:latest"
  stop_proxy
}

test_output_is_atomic_and_force() {
  local w out
  w=$(workdir)
  assert_status 0 rpull "$w/cache" --dir "$w/out" "docker://$RBOX_REG_HTTP/busybox:latest"
  out=$(rpull "$w/cache" --dir "$w/out" "docker://$RBOX_REG_HTTP/layers:latest" 2>&1)
  assert_contains "$out" "--force"
  assert_status 0 as_user test -x "$w/out/bin/busybox"
  assert_status 0 rpull "$w/cache" --force --dir "$w/out" "docker://$RBOX_REG_HTTP/layers:latest"
  check_tree "$w/out" "$RBOX_LAYERS_EXPECT" --no-owner
  assert_no_file "$w/out/bin/busybox"
  # A failing pull leaves neither the target nor a temporary directory.
  rpull "$w/cache" --dir "$w/fail" "docker://$RBOX_REG_HTTP/nosuchimage:latest" >/dev/null 2>&1
  assert_no_file "$w/fail"
  assert_eq "" "$(ls -A "$w" | grep '^\.rbox-pull' || true)" "temporary directories left"
}

test_interrupt_removes_temporary_output() {
  local w pid i rc
  w=$(workdir)
  # The download stalls for minutes; SIGINT must still end the pull at once and cleanly.
  start_proxy "$w" --mode stall --after 1000000 --times 1
  rpull "$w/cache" -q --dir "$w/intr" "docker://127.0.0.1:$PROXY_PORT/debian:bookworm" 2>"$w/intr.err" &
  local bg=$!
  for i in $(seq 100); do
    pid=$(pgrep -n -u "$RBOX_TEST_USER" -f "$RBOX pull -q --dir $w/intr") && grep -qs action=stall "$PROXY_LOG" && break
    sleep 0.1
  done
  [ -n "${pid:-}" ] || fail "the pull did not start"
  sleep 0.5
  local t0=$SECONDS
  kill -INT "$pid"
  wait "$bg"
  rc=$?
  stop_proxy
  assert_eq 130 "$rc" "exit status after SIGINT"
  assert_contains "$(cat "$w/intr.err")" "interrupted"
  [ $((SECONDS - t0)) -le 5 ] || fail "the pull took $((SECONDS - t0)) s to stop"
  assert_no_file "$w/intr"
  assert_eq "" "$(ls -A "$w" | grep '^\.rbox-pull' || true)" "temporary directories left"
  # The verified part of the interrupted download is kept and the next pull resumes from it.
  local part
  part=$(stat -c %s "$w"/cache/tmp/*.partial 2>/dev/null | head -1)
  [ "${part:-0}" -gt 0 ] || fail "no partial download kept for resuming"
  start_proxy "$w" --mode none
  assert_status 0 rpull "$w/cache" -q --dir "$w/intr" "docker://127.0.0.1:$PROXY_PORT/debian:bookworm"
  stop_proxy
  grep -q "range=bytes=$part- status=206" "$PROXY_LOG" || fail "the next pull did not resume at $part: $(cat "$PROXY_LOG")"
}

test_interrupt_during_retries() {
  local w port pid i rc t0
  w=$(workdir)
  # Nothing listens on this port: the pull retries with back-off (seconds per attempt); SIGTERM
  # must end it within a moment, not after the remaining attempts.
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  rpull "$w/cache" -q --dir "$w/dead" "docker://127.0.0.1:$port/busybox:latest" 2>"$w/dead.err" &
  local bg=$!
  for i in $(seq 50); do
    pid=$(pgrep -n -u "$RBOX_TEST_USER" -f "$RBOX pull -q --dir $w/dead") && break
    sleep 0.1
  done
  [ -n "${pid:-}" ] || fail "the pull did not start"
  sleep 1.5  # into the second back-off
  t0=$(date +%s%N)
  kill -TERM "$pid"
  wait "$bg"
  rc=$?
  local ms=$((($(date +%s%N) - t0) / 1000000))
  assert_eq 143 "$rc" "exit status after SIGTERM ($(cat "$w/dead.err"))"
  assert_contains "$(cat "$w/dead.err")" "interrupted by signal 15"
  [ "$ms" -le 1000 ] || fail "the pull took $ms ms to stop after SIGTERM"
  assert_no_file "$w/dead"
}

test_pull_to_sif() {
  local w out
  w=$(workdir)
  local before
  before=$(ls -d /dev/shm/rbox-pull-* /tmp/rbox-pull-* 2>/dev/null | wc -l)
  assert_status 0 rpull "$w/cache" "$w/bb.sif" "docker://$RBOX_REG_HTTP/busybox:latest"
  out=$("$RBOX_SIFTOOL" list "$w/bb.sif" 2>&1)
  assert_contains "$out" "FS (Squashfs/*System/"
  assert_contains "$out" "JSON.Generic"
  assert_contains "$out" "Def.FILE"
  out=$(as_user "$RBOX" inspect "$w/bb.sif" 2>&1)
  assert_contains "$out" "org.rbox.test.image: busybox" "image labels reach the SIF"
  # Apptainer's pull labels: those of a build from "Bootstrap: docker".
  assert_contains "$out" "org.label-schema.schema-version: 1.0"
  assert_contains "$out" "org.label-schema.usage.singularity.deffile.from: $RBOX_REG_HTTP/busybox:latest"
  assert_contains "$out" "org.opencontainers.image.base.digest: sha256:"
  assert_contains "$out" "org.label-schema.build-arch: amd64"
  out=$(rpull "$w/cache" "$w/bb.sif" "oci:$RBOX_OCI_LAYOUT_LAYERS" 2>&1)
  assert_contains "$out" "--force"
  # The layers image has a mode-0000 file: unreadable for an unprivileged packer.
  out=$(rpull "$w/cache" --force "$w/bb.sif" "oci:$RBOX_OCI_LAYOUT_LAYERS" 2>&1)
  assert_contains "$out" "--fix-perms"
  assert_contains "$(as_user "$RBOX" inspect "$w/bb.sif" 2>&1)" "org.rbox.test.image: busybox" "kept on failure"
  assert_status 0 rpull "$w/cache" --force --fix-perms "$w/bb.sif" "oci:$RBOX_OCI_LAYOUT_LAYERS"
  out=$(as_user "$RBOX" inspect "$w/bb.sif" 2>&1)
  assert_contains "$out" "org.rbox.test.image: layers"
  # Without an output name: NAME_TAG.sif in the current directory, as Apptainer names it.
  assert_status 0 as_user_in "$w" env RBOX_CACHEDIR="$w/cache" "$RBOX" pull -q "docker://$RBOX_REG_HTTP/busybox:latest"
  assert_file "$w/busybox_latest.sif"
  # A failed SIF pull writes nothing; no temporary root is left anywhere.
  rpull "$w/cache" "$w/none.sif" "docker://$RBOX_REG_HTTP/nosuchimage:latest" >/dev/null 2>&1
  assert_no_file "$w/none.sif"
  assert_eq "$before" "$(ls -d /dev/shm/rbox-pull-* /tmp/rbox-pull-* 2>/dev/null | wc -l)" "temporary roots left"
}

test_cache_list_and_clean() {
  local w out
  w=$(workdir)
  assert_status 0 rpull "$w/cache" -q --dir "$w/a" "docker://$RBOX_REG_HTTP/busybox:latest"
  out=$(as_user RBOX_CACHEDIR="$w/cache" "$RBOX" cache list 2>&1)
  assert_contains "$out" "busybox"
  assert_contains "$out" "Blobs: 2"
  out=$(as_user RBOX_CACHEDIR="$w/cache" "$RBOX" cache clean --days 1 2>&1)
  assert_contains "$out" "removed 0"
  touch -d '10 days ago' "$w/cache/blobs/sha256/"*
  out=$(as_user RBOX_CACHEDIR="$w/cache" "$RBOX" cache clean --days 7 2>&1)
  assert_contains "$out" "removed 2"
  assert_status 0 rpull "$w/cache" -q --dir "$w/b" "docker://$RBOX_REG_HTTP/busybox:latest"
  assert_status 0 as_user RBOX_CACHEDIR="$w/cache" "$RBOX" cache clean
  assert_eq "" "$(ls "$w/cache/blobs/sha256")" "cache clean empties the store"
}

run_tests "$@"
