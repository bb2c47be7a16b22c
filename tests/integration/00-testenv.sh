#!/usr/bin/env bash
# Asserts that the test environment from scripts/setup-test-env.sh is really there and behaves
# as the other tests assume (users, /dev/fuse, user namespaces, siftool, three registries, token
# server, images, local image sources). Read-only: it never changes the shared environment.
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1090
. "${RBOX_TESTENV:-/var/tmp/rbox-testenv/env.sh}" || { echo "no test environment: run scripts/setup-test-env.sh up" >&2; exit 1; }

CA=$RBOX_REG_TLS_CA
IMAGES="BUSYBOX LAYERS LAYERS_GZIP DEVICES MULTIARCH DEBIAN BUSYBOX_DOCKER MULTIARCH_DOCKER"

http_code() { curl -s -o /dev/null -w '%{http_code}' -m 10 "$@"; }
header() {  # NAME curl-args...: value of response header NAME (case-insensitive)
  local name=$1
  shift
  curl -s -D - -o /dev/null -m 10 "$@" | tr -d '\r' | awk -v n="$name" '
    tolower(substr($0, 1, length(n) + 1)) == tolower(n) ":" { sub(/^[^:]*: */, ""); print }'
}
jwt_access() {  # TOKEN: the JWT's "access" claim as compact JSON
  /usr/bin/python3 -c 'import base64, json, sys
p = sys.argv[1].split(".")[1]
print(json.dumps(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["access"], separators=(",", ":")))' "$1"
}
token_for() {  # SCOPE [curl-args]: token server JSON answer
  local scope=$1
  shift
  curl -s -m 10 --cacert "$CA" "$@" "$RBOX_TOKEN_REALM?service=$RBOX_TOKEN_SERVICE&scope=$scope"
}
json_field() { /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin).get(sys.argv[1], ""))' "$1"; }
manifest_accept="Accept: application/vnd.oci.image.manifest.v1+json"

test_env_file_complete_and_readable() {
  assert_status 0 as_user test -r "$RBOX_TESTENV"
  local v
  for v in RBOX_TEST_USER RBOX_TEST_SUBUID_USER RBOX_TEST_SUBUID_RANGE RBOX_SIFTOOL RBOX_REG_HTTP \
    RBOX_REG_TLS RBOX_REG_TLS_CA RBOX_REG_TLS_CERT_DIR RBOX_REG_TLS_USER RBOX_REG_TLS_PASS \
    RBOX_REG_TOKEN RBOX_REG_TOKEN_USER RBOX_REG_TOKEN_PASS RBOX_REG_TOKEN_READER RBOX_TOKEN_REALM \
    RBOX_TOKEN_SERVICE RBOX_REG_AUTHFILE RBOX_OCI_ARCHIVE_BUSYBOX RBOX_DOCKER_ARCHIVE_BUSYBOX \
    RBOX_LAYERS_EXPECT RBOX_CHECK_TREE RBOX_DEBIAN_ROOTFS_TAR; do
    [ -n "${!v:-}" ] || fail "$v is empty in $RBOX_TESTENV"
  done
  for v in $IMAGES; do
    local d="RBOX_DIGEST_$v"
    [[ "${!d:-}" =~ ^sha256:[0-9a-f]{64}$ ]] || fail "$d is not a digest: ${!d:-}"
  done
  # Files the unprivileged users need must be readable by them.
  for v in "$CA" "$RBOX_REG_AUTHFILE" "$RBOX_OCI_ARCHIVE_BUSYBOX" "$RBOX_DOCKER_ARCHIVE_BUSYBOX" \
    "$RBOX_OCI_LAYOUT_BUSYBOX/index.json" "$RBOX_DEBIAN_ROOTFS_TAR" "$RBOX_LAYERS_EXPECT"; do
    assert_status 0 as_user test -r "$v"
  done
}

test_users_and_subordinate_ids() {
  local home
  home=$(getent passwd rboxtest | cut -d: -f6)
  [ -d "$home" ] || fail "rboxtest has no home directory"
  assert_eq rboxtest "$(stat -c %U "$home")" "owner of rboxtest's home"
  [ "$(id -u rboxtest)" -ne 0 ] || fail "rboxtest must not be root"
  local uid
  uid=$(id -u rboxtest)
  assert_eq "" "$(grep -E "^(rboxtest|$uid):" /etc/subuid /etc/subgid)" "rboxtest must have no subordinate ids"
  assert_eq "1 1" "$(grep -c '^rboxsub:' /etc/subuid) $(grep -c '^rboxsub:' /etc/subgid)" "rboxsub ranges"
  assert_eq 65536 "${RBOX_TEST_SUBUID_RANGE#*:}" "rboxsub subuid count"
  assert_eq "rboxsub:$RBOX_TEST_SUBUID_RANGE" "$(grep '^rboxsub:' /etc/subuid)"
  home=$(getent passwd rboxsub | cut -d: -f6)
  [ -d "$home" ] || fail "rboxsub has no home directory"
}

test_dev_fuse_is_0666_and_openable() {
  assert_eq 666 "$(stat -c %a /dev/fuse)" "/dev/fuse mode"
  local maj min
  read -r maj min < <(stat -c '%t %T' /dev/fuse)
  assert_eq "character special file 10 229" "$(stat -c %F /dev/fuse) $((16#$maj)) $((16#$min))"
  assert_status 0 as_user sh -c 'exec 3<>/dev/fuse'
}

test_user_namespaces_work() {
  assert_eq 0 "$(as_user unshare -Ur id -u 2>&1)" "rboxtest: unshare -Ur"
  # rboxsub: newuidmap/newgidmap map its whole /etc/subuid and /etc/subgid ranges (fakeroot's
  # subuid mode needs this); unshare --map-auto maps inside 0..65535 onto them.
  local map
  map=$(cd / && runuser -u rboxsub -- unshare --map-auto cat /proc/self/uid_map /proc/self/gid_map 2>&1)
  assert_eq "0 ${RBOX_TEST_SUBUID_RANGE%%:*} 65536 0 ${RBOX_TEST_SUBGID_RANGE%%:*} 65536" "$(printf "%s\n" "$map" | xargs)" "rboxsub id maps"
}

test_siftool_runs() {
  local sif out
  sif=$(ls "$RBOX_CONFORMANCE_DIR"/sif-images/one-group.sif 2>/dev/null)
  [ -n "$sif" ] || { fail "no conformance SIF in $RBOX_CONFORMANCE_DIR/sif-images"; return; }
  out=$(as_user "$RBOX_SIFTOOL" list "$sif" 2>&1) || fail "siftool list failed: $out"
  assert_contains "$out" "ID" "siftool list header"
  assert_status 1 as_user "$RBOX_SIFTOOL" list /etc/passwd
}

test_http_registry_answers_anonymously() {
  assert_eq 200 "$(http_code "http://$RBOX_REG_HTTP/v2/")"
  assert_eq registry/2.0 "$(header Docker-Distribution-Api-Version "http://$RBOX_REG_HTTP/v2/")"
  assert_eq 200 "$(http_code -H "$manifest_accept" "http://$RBOX_REG_HTTP/v2/busybox/manifests/latest")"
}

test_tls_registry_wants_basic_auth() {
  assert_eq 401 "$(http_code --cacert "$CA" "https://$RBOX_REG_TLS/v2/")"
  assert_contains "$(header WWW-Authenticate --cacert "$CA" "https://$RBOX_REG_TLS/v2/")" 'Basic realm="rbox-test"'
  assert_eq 200 "$(http_code --cacert "$CA" -u "$RBOX_REG_TLS_USER:$RBOX_REG_TLS_PASS" "https://$RBOX_REG_TLS/v2/")"
  assert_eq 401 "$(http_code --cacert "$CA" -u "$RBOX_REG_TLS_USER:wrong" "https://$RBOX_REG_TLS/v2/")"
  # The certificate is really checked: without the CA the handshake fails; localhost is in the SANs.
  assert_eq 000 "$(http_code "https://$RBOX_REG_TLS/v2/")" "TLS without the test CA"
  assert_eq 401 "$(http_code --cacert "$CA" "https://localhost:${RBOX_REG_TLS##*:}/v2/" --resolve "localhost:${RBOX_REG_TLS##*:}:127.0.0.1")"
}

test_token_registry_wants_bearer() {
  assert_eq 401 "$(http_code --cacert "$CA" "https://$RBOX_REG_TOKEN/v2/")"
  assert_eq "Bearer realm=\"$RBOX_TOKEN_REALM\",service=\"$RBOX_TOKEN_SERVICE\"" \
    "$(header WWW-Authenticate --cacert "$CA" "https://$RBOX_REG_TOKEN/v2/")"
  assert_contains "$(header WWW-Authenticate --cacert "$CA" -H "$manifest_accept" "https://$RBOX_REG_TOKEN/v2/busybox/manifests/latest")" \
    'scope="repository:busybox:pull"'
  # Basic credentials are not accepted by the registry itself.
  assert_eq 401 "$(http_code --cacert "$CA" -u "$RBOX_REG_TOKEN_USER:$RBOX_REG_TOKEN_PASS" "https://$RBOX_REG_TOKEN/v2/")"
}

test_token_server_issues_scoped_tokens_for_good_credentials() {
  local ans tok
  ans=$(token_for "repository:busybox:pull" -u "$RBOX_REG_TOKEN_USER:$RBOX_REG_TOKEN_PASS")
  tok=$(echo "$ans" | json_field token)
  [ -n "$tok" ] || { fail "no token in: $ans"; return; }
  assert_eq 300 "$(echo "$ans" | json_field expires_in)" "expires_in"
  assert_eq '[{"type":"repository","name":"busybox","actions":["pull"]}]' "$(jwt_access "$tok")"
  assert_eq 200 "$(http_code --cacert "$CA" -H "Authorization: Bearer $tok" -H "$manifest_accept" \
    "https://$RBOX_REG_TOKEN/v2/busybox/manifests/latest")" "manifest with the token"
  # Scoped: the busybox token does not open another repository.
  assert_eq 401 "$(http_code --cacert "$CA" -H "Authorization: Bearer $tok" -H "$manifest_accept" \
    "https://$RBOX_REG_TOKEN/v2/layers/manifests/latest")" "token used for another repository"
  # The OAuth2 POST form works too.
  ans=$(curl -s -m 10 --cacert "$CA" --data-urlencode grant_type=password \
    --data-urlencode "username=$RBOX_REG_TOKEN_USER" --data-urlencode "password=$RBOX_REG_TOKEN_PASS" \
    --data-urlencode "service=$RBOX_TOKEN_SERVICE" --data-urlencode "scope=repository:layers:pull" "$RBOX_TOKEN_REALM")
  assert_eq '[{"type":"repository","name":"layers","actions":["pull"]}]' "$(jwt_access "$(echo "$ans" | json_field access_token)")"
}

test_token_server_refuses_bad_credentials() {
  assert_eq 401 "$(http_code --cacert "$CA" -u "$RBOX_REG_TOKEN_USER:wrong" "$RBOX_TOKEN_REALM?service=$RBOX_TOKEN_SERVICE&scope=repository:busybox:pull")"
  assert_eq 401 "$(http_code --cacert "$CA" -u "nobody:$RBOX_REG_TOKEN_PASS" "$RBOX_TOKEN_REALM?service=$RBOX_TOKEN_SERVICE&scope=repository:busybox:pull")"
  assert_eq 400 "$(http_code --cacert "$CA" "$RBOX_TOKEN_REALM?service=other&scope=repository:busybox:pull")" "wrong service"
  # Secrets never reach the log.
  assert_not_contains "$(cat "$RBOX_TOKEN_LOG")" "$RBOX_REG_TOKEN_PASS" "password in the token log"
}

test_token_anonymous_public_allowed_private_denied() {
  local tok
  tok=$(token_for "repository:$RBOX_REG_TOKEN_PUBLIC_REPO:pull" | json_field token)
  assert_eq "[{\"type\":\"repository\",\"name\":\"$RBOX_REG_TOKEN_PUBLIC_REPO\",\"actions\":[\"pull\"]}]" "$(jwt_access "$tok")"
  assert_eq 200 "$(http_code --cacert "$CA" -H "Authorization: Bearer $tok" -H "$manifest_accept" \
    "https://$RBOX_REG_TOKEN/v2/$RBOX_REG_TOKEN_PUBLIC_REPO/manifests/latest")" "anonymous pull of the public repo"
  tok=$(token_for "repository:busybox:pull" | json_field token)
  assert_eq "[]" "$(jwt_access "$tok")" "anonymous access to a private repo"
  assert_eq 401 "$(http_code --cacert "$CA" -H "Authorization: Bearer $tok" -H "$manifest_accept" \
    "https://$RBOX_REG_TOKEN/v2/busybox/manifests/latest")" "anonymous pull of a private repo"
  # The reader may pull but not push.
  tok=$(token_for "repository:busybox:pull,push" -u "$RBOX_REG_TOKEN_READER:$RBOX_REG_TOKEN_READER_PASS" | json_field token)
  assert_eq '[{"type":"repository","name":"busybox","actions":["pull"]}]' "$(jwt_access "$tok")"
}

# skopeo inspect --raw of every image in every registry: the manifest digest is the expected one.
test_skopeo_inspect_every_image_everywhere() {
  local reg img ref raw want
  for reg in HTTP TLS TOKEN; do
    local host="RBOX_REG_$reg" opts=()
    case $reg in
      HTTP) opts=(--tls-verify=false) ;;
      TLS) opts=(--cert-dir "$RBOX_REG_TLS_CERT_DIR" --creds "$RBOX_REG_TLS_USER:$RBOX_REG_TLS_PASS") ;;
      TOKEN) opts=(--cert-dir "$RBOX_REG_TLS_CERT_DIR" --creds "$RBOX_REG_TOKEN_USER:$RBOX_REG_TOKEN_PASS") ;;
    esac
    for img in $IMAGES; do
      ref="RBOX_IMG_$img"
      want="RBOX_DIGEST_$img"
      raw=$(skopeo inspect --raw "${opts[@]}" "docker://${!host}/${!ref}" 2>&1) || { fail "$reg ${!ref}: $raw"; continue; }
      assert_eq "${!want}" "sha256:$(printf '%s' "$raw" | sha256sum | cut -d' ' -f1)" "$reg ${!ref}"
    done
  done
  # Without credentials: TLS and private token repos refuse, the public token repo answers.
  assert_status 1 skopeo inspect --raw --cert-dir "$RBOX_REG_TLS_CERT_DIR" --no-creds "docker://$RBOX_REG_TLS/busybox:latest"
  assert_status 1 skopeo inspect --raw --cert-dir "$RBOX_REG_TLS_CERT_DIR" --no-creds "docker://$RBOX_REG_TOKEN/busybox:latest"
  assert_status 0 skopeo inspect --raw --cert-dir "$RBOX_REG_TLS_CERT_DIR" --no-creds "docker://$RBOX_REG_TOKEN/$RBOX_REG_TOKEN_PUBLIC_REPO:latest"
  # The docker config.json authfile works for both authenticated registries.
  assert_status 0 skopeo inspect --raw --cert-dir "$RBOX_REG_TLS_CERT_DIR" --authfile "$RBOX_REG_AUTHFILE" "docker://$RBOX_REG_TLS/busybox:latest"
  assert_status 0 skopeo inspect --raw --cert-dir "$RBOX_REG_TLS_CERT_DIR" --authfile "$RBOX_REG_AUTHFILE" "docker://$RBOX_REG_TOKEN/busybox:latest"
}

test_image_configs_and_media_types() {
  local j
  j=$(skopeo inspect --config --tls-verify=false "docker://$RBOX_REG_HTTP/$RBOX_IMG_BUSYBOX")
  assert_eq '["sh"]' "$(echo "$j" | jq -c .config.Cmd)" "busybox Cmd"
  assert_contains "$(echo "$j" | jq -c .config.Env)" "PATH=" "busybox Env"
  j=$(skopeo inspect --config --tls-verify=false "docker://$RBOX_REG_HTTP/$RBOX_IMG_DEBIAN")
  assert_eq '["bash"]' "$(echo "$j" | jq -c .config.Cmd)" "debian Cmd"
  j=$(skopeo inspect --config --tls-verify=false "docker://$RBOX_REG_HTTP/$RBOX_IMG_LAYERS")
  assert_eq '/a 1000:1000 ["/entry"]' "$(echo "$j" | jq -r '"\(.config.WorkingDir) \(.config.User) \(.config.Entrypoint|tojson)"')"
  # layers keeps gzip, zstd and uncompressed layers as pushed (skopeo --preserve-digests).
  assert_eq "tar+gzip tar+zstd tar tar+gzip" "$(skopeo inspect --raw --tls-verify=false "docker://$RBOX_REG_HTTP/$RBOX_IMG_LAYERS" |
    jq -r '[.layers[].mediaType | sub(".*layer.v1."; "")] | join(" ")')"
  assert_eq "application/vnd.docker.distribution.manifest.v2+json" \
    "$(skopeo inspect --raw --tls-verify=false "docker://$RBOX_REG_HTTP/$RBOX_IMG_BUSYBOX_DOCKER" | jq -r .mediaType)"
  assert_contains "$(tar tf "$RBOX_DEBIAN_ROOTFS_TAR")" "./usr/bin/bash" "debootstrap tarball"
}

test_multiarch_index_selects_platforms() {
  local raw
  raw=$(skopeo inspect --raw --tls-verify=false "docker://$RBOX_REG_HTTP/$RBOX_IMG_MULTIARCH")
  assert_eq "arm64/v8 arm/v7 amd64/" "$(echo "$raw" | jq -r '[.manifests[].platform | "\(.architecture)/\(.variant // "")"] | join(" ")')"
  assert_eq arm64 "$(skopeo --override-arch arm64 inspect --tls-verify=false "docker://$RBOX_REG_HTTP/$RBOX_IMG_MULTIARCH" | jq -r .Architecture)"
  assert_eq "arm v7" "$(skopeo --override-arch arm --override-variant v7 inspect --config --tls-verify=false "docker://$RBOX_REG_HTTP/$RBOX_IMG_MULTIARCH" | jq -r '"\(.architecture) \(.variant)"')"
  raw=$(skopeo inspect --raw --tls-verify=false "docker://$RBOX_REG_HTTP/$RBOX_IMG_MULTIARCH_DOCKER")
  assert_eq application/vnd.docker.distribution.manifest.list.v2+json "$(echo "$raw" | jq -r .mediaType)"
}

test_local_image_sources() {
  assert_eq "$RBOX_DIGEST_BUSYBOX" "sha256:$(skopeo inspect --raw "oci:$RBOX_OCI_LAYOUT_BUSYBOX:latest" | sha256sum | cut -d' ' -f1)"
  assert_eq "$RBOX_DIGEST_LAYERS" "sha256:$(skopeo inspect --raw "oci:$RBOX_OCI_LAYOUT_ALL:layers" | sha256sum | cut -d' ' -f1)"
  assert_eq '["sh"]' "$(skopeo inspect --config "oci-archive:$RBOX_OCI_ARCHIVE_BUSYBOX" | jq -c .config.Cmd)"
  assert_eq '["sh"]' "$(skopeo inspect --config "docker-archive:$RBOX_DOCKER_ARCHIVE_BUSYBOX" | jq -c .config.Cmd)"
  # The unprivileged user can read them too.
  assert_status 0 as_user skopeo inspect --raw "oci:$RBOX_OCI_LAYOUT_DEBIAN:bookworm"
}

# The layers image's expectation file agrees with umoci (as root, and rootless as rboxtest).
test_layers_expectations_hold_for_umoci() {
  local d=$RBOX_IT_DIR/umoci-root out
  out=$(umoci unpack --image "$RBOX_OCI_LAYOUT_LAYERS_GZIP:latest" "$d" 2>&1) || { fail "umoci unpack: $out"; return; }
  out=$(/usr/bin/python3 "$RBOX_CHECK_TREE" "$d/rootfs" "$RBOX_LAYERS_EXPECT" 2>&1) || fail "root unpack: $out"
  rm -rf "$d"
  d=$RBOX_IT_DIR/umoci-user
  out=$(as_user umoci unpack --rootless --image "$RBOX_OCI_LAYOUT_LAYERS_GZIP:latest" "$d" 2>&1) || { fail "umoci rootless: $out"; return; }
  out=$(as_user /usr/bin/python3 "$RBOX_CHECK_TREE" "$d/rootfs" "$RBOX_LAYERS_EXPECT" --no-owner 2>&1) || fail "rootless unpack: $out"
  # The checker is not a rubber stamp: a changed file fails it.
  as_user sh -c "echo changed > '$d/rootfs/a/keep'"
  assert_status 1 as_user /usr/bin/python3 "$RBOX_CHECK_TREE" "$d/rootfs" "$RBOX_LAYERS_EXPECT" --no-owner
  as_user chmod -R u+rwX "$d"
  rm -rf "$d"
}

run_tests "$@"
