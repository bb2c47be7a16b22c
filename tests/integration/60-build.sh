#!/usr/bin/env bash
# rbox build from definition files, rootless as $RBOX_TEST_USER (no /etc/subuid range): every
# small bootstrap agent, %files/%setup/%post/%test, multi-stage, build args, apps, sandboxes,
# then the results run with rbox run/exec/test and read back with rbox inspect. The Debian/apt
# and debootstrap builds are in 61-build-debian.sh; interruption and clean-up in 62-build-failures.sh.
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1090
. "${RBOX_TESTENV:-/var/tmp/rbox-testenv/env.sh}" || { echo "no test environment: run scripts/setup-test-env.sh up" >&2; exit 1; }

W=$RBOX_IT_DIR/build60
mkdir -p "$W"
chmod 1777 "$W"
REG=$RBOX_REG_HTTP

# Runs rbox as the test user in $W.
rb() { as_user_in "$W" "$RBOX" "$@"; }
# One field of `rbox inspect --json IMAGE`: attributes.KEY (labels → a label with a second arg).
inspect_field() {
  rb inspect --json "$1" | python3 -c 'import json, sys
a = json.load(sys.stdin)["data"]["attributes"]
v = a.get(sys.argv[1], "")
if len(sys.argv) > 2: v = v.get(sys.argv[2], "") if isinstance(v, dict) else ""
print(v if isinstance(v, str) else json.dumps(v, sort_keys=True))' "${@:2}"
}
write_def() { cat >"$W/$1"; chmod 644 "$W/$1"; }

test_scratch_with_static_binary_files_post_and_test() {
  write_def scratch.def <<'EOF'
Bootstrap: scratch

%files
/bin/busybox /bin/busybox
/bin/busybox /bin/sh

%post
/bin/busybox --install -s /bin
echo 'export FROM_POST=yes' >> $APPTAINER_ENVIRONMENT
echo "PostLabel set-in-post" >> $APPTAINER_LABELS
echo "post uid=$(id -u)"

%labels
Maintainer rbox-tests

%runscript
echo "runscript args: $*"

%test
test "$FROM_POST" = yes
EOF
  local out
  out=$(rb build scratch.sif scratch.def 2>&1) || { fail "build failed: $out"; return; }
  assert_contains "$out" "post uid=0" "%post runs as (fake) root"
  assert_contains "$out" "root-mapped" "the build log names the fake-root mode"
  assert_contains "$out" "Build complete" "summary line"
  assert_file "$W/scratch.sif"
  assert_eq "ok" "$(rb exec scratch.sif /bin/busybox echo ok 2>&1)" "exec a static binary copied by %files"
  assert_eq "runscript args: a b" "$(rb run scratch.sif a b 2>&1)" "runscript"
  assert_eq "yes" "$(rb exec scratch.sif sh -c 'echo $FROM_POST' 2>&1)" "APPTAINER_ENVIRONMENT from %post"
  assert_status 0 rb test scratch.sif
  assert_eq "rbox-tests" "$(inspect_field scratch.sif labels Maintainer)" "%labels"
  assert_eq "set-in-post" "$(inspect_field scratch.sif labels PostLabel)" "APPTAINER_LABELS from %post"
  assert_eq "scratch" "$(inspect_field scratch.sif labels org.label-schema.usage.singularity.deffile.bootstrap)"
  assert_eq "1.0" "$(inspect_field scratch.sif labels org.label-schema.schema-version)"
  assert_contains "$(inspect_field scratch.sif deffile)" "%runscript" "the definition is stored"
  # Apptainer's layout inside the image.
  local tree
  tree=$(rb exec scratch.sif sh -c 'ls -a / /.singularity.d /.singularity.d/env; readlink /singularity; readlink /environment; cat /etc/hosts /etc/resolv.conf | wc -c' 2>&1)
  for f in .exec .run .shell .test singularity environment 01-base.sh 90-environment.sh 91-environment.sh \
    94-appsbase.sh 95-apps.sh 99-base.sh 99-runtimevars.sh labels.json Singularity runscript startscript test libs actions; do
    assert_contains "$tree" "$f" "/.singularity.d layout: $f"
  done
  assert_contains "$tree" ".singularity.d/runscript" "legacy /singularity link"
  assert_contains "$tree" $'\n0' "empty /etc/hosts and /etc/resolv.conf"
}

test_busybox_agent_uses_the_host_busybox() {
  write_def bb.def <<'EOF'
Bootstrap: busybox

%post
echo "busybox applets: $(ls /bin | wc -l)"
EOF
  local out
  out=$(rb build bb.sif bb.def 2>&1) || { fail "build failed: $out"; return; }
  assert_eq "root:!:0:0:root:/root:/bin/sh" "$(rb exec bb.sif head -1 /etc/passwd 2>&1)"
  assert_eq "hi" "$(rb exec bb.sif /bin/echo hi 2>&1)" "applets installed into /bin"
}

test_busybox_agent_downloads_mirror_url() {
  local srv=$RBOX_IT_DIR/build60-http port pid
  mkdir -p "$srv"
  cp /bin/busybox "$srv/busybox-static"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  python3 -m http.server "$port" --bind 127.0.0.1 --directory "$srv" >/dev/null 2>&1 &
  pid=$!
  local i
  for i in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
  write_def bburl.def <<EOF
Bootstrap: busybox
MirrorURL: http://127.0.0.1:$port/busybox-static
EOF
  local out
  out=$(rb build bburl.sif bburl.def 2>&1) || fail "build failed: $out"
  kill "$pid"
  wait "$pid" 2>/dev/null
  assert_contains "$out" "downloading busybox from http://127.0.0.1:$port/busybox-static"
  assert_eq "hi" "$(rb exec bburl.sif echo hi 2>&1)"
}

test_docker_agent_metadata_environment_and_help() {
  write_def docker.def <<EOF
Bootstrap: docker
From: $REG/$RBOX_IMG_BUSYBOX

%environment
export DEF_VAR=from-environment
export SHARED=from-environment

%post
echo 'export SHARED=from-post' >> \$APPTAINER_ENVIRONMENT

%runscript
echo "DEF_VAR=\$DEF_VAR SHARED=\$SHARED"

%startscript
echo started

%help
Usage: run me.

%labels
Owner tests
EOF
  local out
  out=$(rb build docker.sif docker.def 2>&1) || { fail "build failed: $out"; return; }
  # %post's 91-environment.sh is read after %environment's 90-environment.sh.
  assert_eq "DEF_VAR=from-environment SHARED=from-post" "$(rb run docker.sif 2>&1)" "environment precedence"
  assert_eq "host-wins" "$(as_user_in "$W" env APPTAINERENV_DEF_VAR=host-wins "$RBOX" exec docker.sif sh -c 'echo $DEF_VAR' 2>&1)" \
    "APPTAINERENV_ beats %environment"
  assert_contains "$(inspect_field docker.sif helpfile)" "Usage: run me." "%help"
  assert_eq "/.singularity.d/runscript.help" "$(inspect_field docker.sif labels org.label-schema.usage)"
  assert_contains "$(inspect_field docker.sif runscript)" 'echo "DEF_VAR=' "runscript from %runscript"
  assert_contains "$(inspect_field docker.sif startscript)" "echo started"
  assert_eq "tests" "$(inspect_field docker.sif labels Owner)"
  assert_contains "$(inspect_field docker.sif labels org.opencontainers.image.base.digest)" "sha256:" "base image digest label"
  assert_contains "$(rb exec docker.sif cat /.singularity.d/env/10-docker2singularity.sh 2>&1)" "export PATH=" \
    "OCI Env becomes 10-docker2singularity.sh"
}

test_uri_build_gets_the_oci_runscript() {
  local out
  out=$(rb build uri.sif "docker://$REG/$RBOX_IMG_BUSYBOX" 2>&1) || { fail "build failed: $out"; return; }
  local rs
  rs=$(inspect_field uri.sif runscript)
  assert_contains "$rs" "OCI_CMD=" "OCI runscript"
  assert_contains "$rs" 'eval "set ${SINGULARITY_OCI_RUN}"' "Apptainer's OCI runscript convention"
  assert_eq "args" "$(rb run uri.sif echo args 2>&1)" "arguments replace CMD"
}

test_oci_layout_and_archives() {
  local spec name
  for spec in "oci|$RBOX_OCI_LAYOUT_BUSYBOX:latest" "oci-archive|$RBOX_OCI_ARCHIVE_BUSYBOX" "docker-archive|$RBOX_DOCKER_ARCHIVE_BUSYBOX"; do
    name=${spec%%|*}
    write_def "$name.def" <<EOF
Bootstrap: $name
From: ${spec#*|}

%post
echo made-by-$name > /marker
EOF
    local out
    out=$(rb build "$name.sif" "$name.def" 2>&1) || { fail "$name build failed: $out"; continue; }
    assert_eq "made-by-$name" "$(rb exec "$name.sif" cat /marker 2>&1)" "$name agent"
  done
}

test_localimage_chain_of_two_builds() {
  write_def base.def <<EOF
Bootstrap: docker
From: $REG/$RBOX_IMG_BUSYBOX

%labels
Layer base

%environment
export FROM_BASE=1
EOF
  write_def child.def <<'EOF'
Bootstrap: localimage
From: base.sif

%post
echo child > /child-marker

%labels
Layer child
Extra yes
EOF
  local out
  out=$(rb build base.sif base.def 2>&1) || { fail "base build failed: $out"; return; }
  out=$(rb build child.sif child.def 2>&1) || { fail "child build failed: $out"; return; }
  assert_eq "child" "$(rb exec child.sif cat /child-marker 2>&1)"
  assert_eq "1" "$(rb exec child.sif sh -c 'echo $FROM_BASE' 2>&1)" "the base image's environment is kept"
  assert_eq "base" "$(inspect_field child.sif labels Layer)" "existing labels are not replaced without --force"
  assert_eq "yes" "$(inspect_field child.sif labels Extra)"
  assert_contains "$(rb exec child.sif cat /.singularity.d/bootstrap_history/Apptainer0 2>&1)" "From: $REG" \
    "the base definition moves to bootstrap_history"
  # A sandbox directory works as a localimage too.
  out=$(rb build --sandbox basedir base.sif 2>&1) || { fail "sandbox conversion failed: $out"; return; }
  sed 's|From: base.sif|From: basedir|' "$W/child.def" >"$W/child2.def"
  out=$(rb build child2.sif child2.def 2>&1) || { fail "build from a sandbox failed: $out"; return; }
  assert_eq "child" "$(rb exec child2.sif cat /child-marker 2>&1)"
  # And a bare SquashFS file.
  mksquashfs "$W/basedir" "$W/base.sqfs" -quiet -noappend -all-root >/dev/null || { fail "mksquashfs failed"; return; }
  chmod 644 "$W/base.sqfs"
  sed 's|From: base.sif|From: base.sqfs|' "$W/child.def" >"$W/child3.def"
  out=$(rb build child3.sif child3.def 2>&1) || { fail "build from a SquashFS file failed: $out"; return; }
  assert_eq "child" "$(rb exec child3.sif cat /child-marker 2>&1)"
}

test_localimage_with_registry_reference_fails_before_work() {
  write_def badlocal.def <<'EOF'
Bootstrap: localimage
From: fedora:39

%post
touch /should-not-run
EOF
  local out rc
  out=$(rb build badlocal.sif badlocal.def 2>&1)
  rc=$?
  [ $rc -ne 0 ] || fail "localimage with a registry reference succeeded"
  assert_contains "$out" "Bootstrap: docker" "the error suggests the docker agent"
  assert_not_contains "$out" "==>" "no stage started"
  assert_no_file "$W/badlocal.sif"
}

test_unsupported_agents_name_the_alternative() {
  local agent
  for agent in yum dnf zypper; do
    write_def "$agent.def" <<EOF
Bootstrap: $agent
OSVersion: 9
MirrorURL: http://example.invalid/%{OSVERSION}
EOF
    local out
    out=$(rb build "$agent.sif" "$agent.def" 2>&1) && fail "$agent build succeeded"
    assert_contains "$out" "not supported" "$agent"
    assert_contains "$out" "Bootstrap: docker" "$agent: names the alternative"
  done
}

test_multistage_copies_from_stage_one_with_build_args() {
  write_def multi.def <<EOF
Bootstrap: docker
From: $REG/$RBOX_IMG_BUSYBOX
Stage: builder

%post
mkdir -p /out
echo "built in stage one" > /out/artifact
ln -s artifact /out/link

Bootstrap: docker
From: $REG/$RBOX_IMG_BUSYBOX
Stage: final

%arguments
GREETING=hello

%files from builder
/out /opt/out

%labels
Greeting {{ GREETING }}

%runscript
echo "{{ GREETING }} world"
EOF
  local out
  out=$(rb build multi.sif multi.def 2>&1) || { fail "build failed: $out"; return; }
  assert_eq "built in stage one" "$(rb exec multi.sif cat /opt/out/artifact 2>&1)" "%files from the first stage"
  assert_eq "artifact" "$(rb exec multi.sif readlink /opt/out/link 2>&1)" "links inside a stage copy are kept"
  assert_eq "hello world" "$(rb run multi.sif 2>&1)" "%arguments default"
  out=$(rb build --force --build-arg GREETING=howdy multi.sif multi.def 2>&1) || { fail "rebuild failed: $out"; return; }
  assert_eq "howdy world" "$(rb run multi.sif 2>&1)" "--build-arg"
  assert_eq "howdy" "$(inspect_field multi.sif labels Greeting)"
  assert_status 0 rb exec multi.sif test ! -e /out  # only the last stage is assembled
  out=$(rb build x.sif multi.def --build-arg NOPE=1 2>&1) && fail "an unused build arg was accepted"
  assert_contains "$out" "NOPE"
}

test_apps_layout_and_run() {
  write_def apps.def <<EOF
Bootstrap: docker
From: $REG/$RBOX_IMG_BUSYBOX

%appinstall hello
echo "installed in \$(pwd)" > installed.txt

%apprun hello
echo "hello app \$SCIF_APPNAME"

%appenv hello
HELLO_ENV=set
export HELLO_ENV

%applabels hello
AppKind greeter

%apphelp hello
Says hello.
EOF
  local out
  out=$(rb build apps.sif apps.def 2>&1) || { fail "build failed: $out"; return; }
  assert_eq "installed in /scif/apps/hello" "$(rb exec apps.sif cat /scif/apps/hello/installed.txt 2>&1)" "%appinstall runs in the app dir"
  assert_eq "hello app hello" "$(rb run --app hello apps.sif 2>&1)" "%apprun"
  assert_status 0 rb exec apps.sif test -d /scif/data/hello/input
  assert_contains "$(rb exec apps.sif cat /.singularity.d/env/94-appsbase.sh 2>&1)" "SCIF_APPBIN_hello=/scif/apps/hello/bin"
  assert_contains "$(rb inspect --json apps.sif 2>&1)" "greeter" "app labels in the inspect metadata"
}

test_sandbox_update_force_and_existing_target() {
  write_def sb.def <<EOF
Bootstrap: docker
From: $REG/$RBOX_IMG_BUSYBOX

%post
echo one > /first
EOF
  # With --update the last stage's bootstrap is skipped, so this From is never fetched.
  write_def sb2.def <<EOF
Bootstrap: docker
From: $REG/does-not-exist:latest

%post
echo two > /second
EOF
  local out
  out=$(rb build --sandbox sb sb.def 2>&1) || { fail "sandbox build failed: $out"; return; }
  assert_file "$W/sb/first"
  assert_file "$W/sb/.singularity.d/Singularity"
  out=$(rb build --sandbox sb sb.def 2>&1) && fail "an existing sandbox was replaced without --force"
  assert_contains "$out" "--force"
  out=$(rb build --sandbox --update sb sb2.def 2>&1) || { fail "--update failed: $out"; return; }
  assert_file "$W/sb/first"
  assert_file "$W/sb/second"
  out=$(rb build --sandbox --force sb sb2.def 2>&1) && fail "--force with a bad From succeeded"
  assert_file "$W/sb/first"  # a failed --force build leaves the old sandbox alone
  out=$(rb build --force --section post sbsec.sif sb.def 2>&1) || { fail "--section build failed: $out"; return; }
  assert_eq "one" "$(rb exec sbsec.sif cat /first 2>&1)"
}

test_setup_section_sees_the_rootfs() {
  write_def setup.def <<EOF
Bootstrap: docker
From: $REG/$RBOX_IMG_BUSYBOX

%setup
echo "from setup" > "\$APPTAINER_ROOTFS/setup-marker"
test "\$SINGULARITY_ROOTFS" = "\$RBOX_ROOTFS"

%files
setup.def /etc/copied.def
EOF
  local out
  out=$(rb build setup.sif setup.def 2>&1) || { fail "build failed: $out"; return; }
  assert_eq "from setup" "$(rb exec setup.sif cat /setup-marker 2>&1)"
  assert_contains "$(rb exec setup.sif cat /etc/copied.def 2>&1)" "%setup" "%files from a relative host path"
}

run_tests "$@"
