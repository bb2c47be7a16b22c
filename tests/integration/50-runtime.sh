#!/usr/bin/env bash
# rbox exec/run/shell/test: Apptainer's behaviour as root and as an unprivileged user, on a SIF
# (in-process FUSE) and a sandbox directory, with and without a PID namespace — ids, home and
# working directory, default mounts, environment precedence, actions, exit codes and signals,
# binds, --contain, writable layers, --fakeroot, optional namespaces.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/runtime-lib.sh"
make_runtime_images || exit 1

# Runs ARGS in every variant as `rbox exec [--pid] IMAGE ARGS`; calls check_variant WHO IMG
# PID OUTPUT STATUS for each.
each_variant() {
  local v who img pid out rc
  for v in $(runtime_variants); do
    IFS=: read -r who img pid <<<"$v"
    [ "$pid" = nopid ] && pid=""
    out=$(rbox_as "$who" exec $pid "$(image_path "$img")" "$@" 2>&1)
    rc=$?
    check_variant "$who" "$img" "$pid" "$out" "$rc"
  done
}

test_exec_runs_as_invoking_user() {
  check_variant() {
    local want=0
    [ "$1" = user ] && want=$(user_uid)
    assert_contains "$4" "uid=$want gid=" "$1/$2/$3 id"
    assert_eq 0 "$5" "$1/$2/$3 status"
  }
  each_variant rbox-probe id
}

test_home_and_cwd_and_written_file_owned_by_user() {
  local home uid v img pid out
  home=$(user_home)
  uid=$(user_uid)
  for v in $(runtime_variants | grep '^user:'); do
    IFS=: read -r _ img pid <<<"$v"
    [ "$pid" = nopid ] && pid=""
    rm -f "$home/rbox-written-$img"
    out=$(rbox_as user exec $pid "$(image_path "$img")" sh -c \
      'rbox-probe cwd; echo "HOME=$HOME"; rbox-probe write "$HOME/rbox-written-'"$img"'" hi')
    assert_contains "$out" "$home" "cwd is the home directory ($img $pid)"
    assert_contains "$out" "HOME=$home" "HOME ($img $pid)"
    assert_file "$home/rbox-written-$img"
    assert_eq "$uid" "$(stat -c %u "$home/rbox-written-$img" 2>/dev/null)" "file owner on the host"
    rm -f "$home/rbox-written-$img"
  done
  # A working directory outside home is bound at the same path.
  mkdir -p "$RBOX_IT_DIR/work-cwd"
  chmod 0777 "$RBOX_IT_DIR/work-cwd"
  out=$(as_user_in "$RBOX_IT_DIR/work-cwd" "$RBOX" exec "$RT/image.sif" rbox-probe cwd)
  assert_eq "$RBOX_IT_DIR/work-cwd" "$out" "cwd outside home"
  out=$(as_user "$RBOX" exec --pwd /data "$RT/image.sif" rbox-probe cwd)
  assert_eq /data "$out" "--pwd"
  assert_status "$EXIT_RUNTIME_FAILURE" as_user "$RBOX" exec --pwd /nonexistent "$RT/image.sif" true
}

test_exit_codes_and_signals() {
  check_variant() { :; }
  local v who img pid i
  for v in $(runtime_variants); do
    IFS=: read -r who img pid <<<"$v"
    [ "$pid" = nopid ] && pid=""
    i=$(image_path "$img")
    assert_status 7 rbox_as "$who" exec $pid "$i" sh -c 'exit 7'
    assert_status 137 rbox_as "$who" exec $pid "$i" rbox-probe signal-self 9
    assert_status 143 rbox_as "$who" exec $pid "$i" rbox-probe signal-self 15
    assert_status "$EXIT_NOT_FOUND" rbox_as "$who" exec $pid "$i" no-such-command
    assert_status "$EXIT_CANNOT_EXECUTE" rbox_as "$who" exec $pid "$i" /data/file
  done
  local out
  out=$(rbox_as user exec "$RT/image.sif" no-such-command 2>&1)
  assert_contains "$out" "no-such-command: command not found in the container"
}

# kill -TERM of rbox reaches the command; rbox exits with the command's status.
test_signals_reach_the_command() {
  local who pid rbox_pid rc out
  for who in root user; do
    for pid in "" --pid; do
      out=$RBOX_IT_DIR/sig-$who${pid}.out
      rm -f "$out"
      if [ "$who" = root ]; then
        "$RBOX" exec $pid "$RT/image.sif" sh -c 'trap "echo got-TERM; kill \$!; exit 42" TERM; sleep 30 & wait' >"$out" 2>&1 &
      else
        as_user "$RBOX" exec $pid "$RT/image.sif" sh -c 'trap "echo got-TERM; kill \$!; exit 42" TERM; sleep 30 & wait' >"$out" 2>&1 &
      fi
      rbox_pid=$!
      sleep 1
      # as_user: the rbox process is a child of runuser; signal rbox itself.
      local target
      target=$(pgrep -f -n "^$RBOX exec $pid" || echo "$rbox_pid")
      kill -TERM "$target"
      wait "$rbox_pid"
      rc=$?
      assert_eq 42 "$rc" "status after TERM ($who $pid)"
      assert_contains "$(cat "$out")" got-TERM "command saw TERM ($who $pid)"
    done
  done
}

# The image server dying under the command (here: root aborts the FUSE connection through
# /sys/fs/fuse/connections) gives exit code 254, not the command's own failure status.
test_image_server_death_is_reported() {
  local out=$RBOX_IT_DIR/fuse-abort.out before conn rc
  mountpoint -q /sys/fs/fuse/connections || mount -t fusectl none /sys/fs/fuse/connections 2>/dev/null
  mountpoint -q /sys/fs/fuse/connections || { skip "no fusectl filesystem"; return 0; }
  before=$(ls /sys/fs/fuse/connections | sort)
  as_user "$RBOX" exec "$RT/image.sif" sh -c 'sleep 2; cat /data/file; ls /bin >/dev/null' >"$out" 2>&1 &
  local rbox_pid=$!
  sleep 1
  conn=$(comm -13 <(echo "$before") <(ls /sys/fs/fuse/connections | sort) | tail -1)
  [ -n "$conn" ] || fail "no new FUSE connection while the command runs"
  [ -n "$conn" ] && echo 1 >"/sys/fs/fuse/connections/$conn/abort"
  wait "$rbox_pid"
  rc=$?
  assert_eq "$EXIT_IMAGE_SERVER_DIED" "$rc" "exit code after the image server died"
  assert_contains "$(cat "$out")" "image server" "the error names the image server"
}

test_launcher_waits_for_left_behind_processes() {
  local start end
  start=$(date +%s%N)
  as_user "$RBOX" exec "$RT/image.sif" sh -c 'sleep 2 & echo started' >/dev/null
  end=$(date +%s%N)
  [ $(((end - start) / 1000000)) -ge 1900 ] || fail "rbox returned before the background sleep ended"
  start=$(date +%s%N)
  as_user "$RBOX" exec --pid "$RT/image.sif" sh -c 'sleep 5 & echo started' >/dev/null
  end=$(date +%s%N)
  [ $(((end - start) / 1000000)) -lt 4000 ] || fail "--pid: the namespace should end with the command"
}

test_default_mounts() {
  local who out
  for who in root user; do
    out=$(rbox_as "$who" exec "$RT/image.sif" sh -c \
      'ls /proc | grep -c "^[0-9]"; ls /sys/kernel >/dev/null && echo sys-ok; echo x > /dev/null && echo dev-ok
       cat /etc/hosts | md5sum; cat /etc/resolv.conf | md5sum; grep -c . /etc/passwd; rbox-probe stat /tmp')
    assert_contains "$out" sys-ok "$who /sys"
    assert_contains "$out" dev-ok "$who /dev/null"
    assert_contains "$out" "$(md5sum </etc/hosts)" "$who /etc/hosts is the host's"
    [ -e /etc/resolv.conf ] && assert_contains "$out" "$(md5sum </etc/resolv.conf)" "$who resolv.conf"
    assert_contains "$out" "mode=1777" "$who /tmp"
  done
  # The user's entry is added to the image's passwd and group.
  out=$(as_user "$RBOX" exec "$RT/image.sif" sh -c 'grep "^$(id -un):" /etc/passwd; id -gn; cat /etc/passwd | head -1')
  assert_contains "$out" "$RBOX_TEST_USER:x:$(user_uid):" "passwd entry"
  assert_contains "$out" ":$(user_home):" "passwd home"
  assert_contains "$out" "root:x:0:0" "image's own entries kept"
  # Host /tmp is shared (Apptainer's default), without --contain.
  echo host-tmp >"$RBOX_IT_DIR/shared-tmp-file"
  chmod 0644 "$RBOX_IT_DIR/shared-tmp-file"
  out=$(as_user "$RBOX" exec "$RT/image.sif" cat "$RBOX_IT_DIR/shared-tmp-file")
  assert_eq host-tmp "$out" "/tmp is the host's"
  # The session directory of rbox is not visible inside, and nothing is left on the host.
  out=$(as_user "$RBOX" exec "$RT/image.sif" sh -c "awk '{print \$5}' /proc/self/mountinfo | grep -c rbox-session")
  assert_eq 0 "$out" "session mounts hidden"
}

test_environment_precedence() {
  local img out
  for img in image.sif shellenv.sif sandbox; do
    out=$(as_user FOO=host-foo HOSTONLY=h APPTAINERENV_ADDED=added SINGULARITYENV_OLD=old RBOXENV_MINE=mine \
      "$RBOX" exec --env CLIVAR=cli "$RT/$img" rbox-probe env)
    assert_contains "$out" "FOO=image-foo" "$img: the image beats the host"
    assert_contains "$out" "HOSTONLY=h" "$img: host variables pass"
    assert_contains "$out" "ADDED=added" "$img: APPTAINERENV_"
    assert_contains "$out" "OLD=old" "$img: SINGULARITYENV_"
    assert_contains "$out" "MINE=mine" "$img: RBOXENV_"
    assert_contains "$out" "CLIVAR=cli" "$img: --env"
    assert_contains "$out" "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "$img: PATH"
    assert_contains "$out" "APPTAINER_CONTAINER=$RT/$img" "$img: APPTAINER_CONTAINER"
    assert_contains "$out" "SINGULARITY_NAME=$img" "$img: SINGULARITY_NAME"
    assert_contains "$out" "RBOX_COMMAND=exec" "$img: RBOX_COMMAND"
    assert_contains "$out" "LD_LIBRARY_PATH=/.singularity.d/libs" "$img: 99-base.sh"
    assert_contains "$out" "PS1=" "$img: PS1"
    assert_not_contains "$out" "APPTAINERENV_" "$img: prefixed names are consumed"
  done
  out=$(as_user "$RBOX" exec "$RT/shellenv.sif" rbox-probe env IMAGE_VAR)
  assert_eq from-shell "$out" "environment evaluated by the image's /bin/sh"
  out=$(as_user APPTAINERENV_FOO=overridden "$RBOX" exec "$RT/image.sif" rbox-probe env FOO)
  assert_eq overridden "$out" "APPTAINERENV_ beats the image"
  out=$(as_user "$RBOX" exec --env 'FOO=$HOME/x' "$RT/image.sif" rbox-probe env FOO)
  assert_eq "$(user_home)/x" "$out" "--env values are evaluated"
  out=$(as_user "$RBOX" exec --no-eval --env 'FOO=$HOME/x' "$RT/image.sif" rbox-probe env FOO)
  assert_eq '$HOME/x' "$out" "--no-eval"
  out=$(as_user HOSTONLY=h "$RBOX" exec --cleanenv "$RT/image.sif" rbox-probe env)
  assert_not_contains "$out" "HOSTONLY=" "--cleanenv drops host variables"
  assert_contains "$out" "LANG=C" "--cleanenv sets LANG=C"
  assert_contains "$out" "TERM=" "--cleanenv keeps TERM"
  printf 'FROMFILE=file\nexport QUOTED="a b"\n' >"$RBOX_IT_DIR/vars.env"
  chmod 0644 "$RBOX_IT_DIR/vars.env"
  out=$(as_user "$RBOX" exec --env-file "$RBOX_IT_DIR/vars.env" "$RT/image.sif" rbox-probe env)
  assert_contains "$out" "FROMFILE=file" "--env-file"
  assert_contains "$out" "QUOTED=a b" "--env-file quoting"
}

test_actions_run_test_shell() {
  local out
  out=$(as_user "$RBOX" run "$RT/image.sif" a "b c")
  assert_eq "runscript args: a b c" "$out" "run passes arguments"
  out=$(as_user "$RBOX" test "$RT/sandbox" 2>&1)
  assert_contains "$out" test-section-ran "test runs /.singularity.d/test"
  assert_status 3 as_user "$RBOX" test "$RT/image.sif"
  out=$(echo 'echo "in-shell $SHELL"' | as_user "$RBOX" shell "$RT/image.sif" 2>&1)
  assert_contains "$out" "in-shell /bin/sh" "shell falls back to /bin/sh"
  out=$(echo 'echo via-s' | as_user "$RBOX" shell -s /bin/ash "$RT/image.sif" 2>&1)
  assert_contains "$out" via-s "shell --shell"
}

test_apptainer_built_sif() {
  [ -f "$APPTAINER_SIF" ] || { skip "no $APPTAINER_SIF"; return 0; }
  local who out
  for who in root user; do
    out=$(rbox_as "$who" exec "$APPTAINER_SIF" busybox echo ok)
    assert_eq ok "$out" "$who: exec busybox echo ok"
    out=$(echo 'echo run-ok' | rbox_as "$who" run "$APPTAINER_SIF" 2>&1)
    assert_contains "$out" run-ok "$who: run (OCI runscript, sh)"
    out=$(rbox_as "$who" run "$APPTAINER_SIF" echo with-args)
    assert_eq with-args "$out" "$who: run with arguments"
    out=$(rbox_as "$who" exec "$APPTAINER_SIF" sh -c 'echo $PS1; echo $LD_LIBRARY_PATH')
    assert_contains "$out" "Singularity>" "$who: the image's 99-base.sh"
  done
}

test_binds() {
  local src=$RBOX_IT_DIR/bindsrc out
  mkdir -p "$src/sub"
  echo bound >"$src/file"
  chown -R "$RBOX_TEST_USER" "$src"
  out=$(as_user "$RBOX" exec -B "$src:/mnt/b" "$RT/image.sif" sh -c 'cat /mnt/b/file; echo new > /mnt/b/new && echo wrote')
  assert_contains "$out" bound "-B src:dst"
  assert_contains "$out" wrote "rw bind"
  assert_file "$src/new"
  out=$(as_user "$RBOX" exec -B "$src:/mnt/ro:ro" "$RT/image.sif" rbox-probe write /mnt/ro/x)
  assert_contains "$out" "error: EROFS" "ro bind refuses writes"
  out=$(as_user "$RBOX" exec -B "$src/file:/etc/bound-file,$src:/new/dir" "$RT/image.sif" \
    sh -c 'cat /etc/bound-file; ls /new/dir')
  assert_contains "$out" bound "comma list, file bind, new mount point"
  assert_contains "$out" sub "directory bind at a path the image lacks"
  out=$(as_user RBOX_BIND="$src:/from/rbox" APPTAINER_BIND="$src:/from/apptainer" \
    "$RBOX" exec "$RT/image.sif" sh -c 'ls /from/rbox /from/apptainer | grep -c file; echo $APPTAINER_BIND')
  assert_contains "$out" 2 "RBOX_BIND and APPTAINER_BIND"
  out=$(as_user "$RBOX" exec --mount "type=bind,src=$src,dst=/m,ro" "$RT/image.sif" rbox-probe write /m/x)
  assert_contains "$out" EROFS "--mount ro"
  assert_status 1 as_user "$RBOX" exec -B /no/such/path "$RT/image.sif" true
  # Binds nest: a mount point inside an earlier bind's content.
  echo other >"$src/other"
  out=$(as_user "$RBOX" exec -B "$src:/mnt/outer" -B "$src/other:/mnt/outer/file" "$RT/sandbox" cat /mnt/outer/file)
  assert_eq other "$out" "nested bind"
}

test_contain_and_containall() {
  local out home
  home=$(user_home)
  echo marker >"$home/rbox-contain-marker"
  out=$(as_user "$RBOX" exec --contain "$RT/image.sif" sh -c 'ls -A $HOME | wc -l; ls /tmp | wc -l; ls /dev | grep -c fuse; pwd')
  assert_eq "0
0
0
$home" "$out" "--contain: empty home and /tmp, minimal /dev"
  out=$(as_user HOSTONLY=x "$RBOX" exec --containall "$RT/image.sif" sh -c 'echo $$; echo ${HOSTONLY:-clean}')
  assert_eq "2
clean" "$out" "--containall: PID namespace and clean environment"
  rm -f "$home/rbox-contain-marker"
}

test_writable_layers() {
  local out ov=$RBOX_IT_DIR/overlay copy=$RBOX_IT_DIR/sandbox-copy
  out=$(as_user "$RBOX" exec "$RT/image.sif" rbox-probe write /opt/x)
  assert_contains "$out" "error: EROFS" "the image is read-only"
  out=$(as_user "$RBOX" exec --writable-tmpfs "$RT/image.sif" sh -c 'echo t > /opt/x && cat /opt/x')
  assert_eq t "$out" "--writable-tmpfs"
  out=$(as_user "$RBOX" exec --writable-tmpfs "$RT/image.sif" cat /opt/x 2>&1)
  assert_contains "$out" "No such file" "--writable-tmpfs does not persist"
  assert_contains "$("$RBOX" exec --help)" "Apptainer's is 64" "--help states the tmpfs size"
  out=$(as_user "$RBOX" exec --writable-tmpfs --tmpfs-size 1 "$RT/image.sif" \
    sh -c 'dd if=/dev/zero of=/opt/big bs=1M count=4 2>&1')
  assert_contains "$out" "No space left" "--tmpfs-size limits the layer"
  mkdir -p "$ov"
  chown "$RBOX_TEST_USER" "$ov"
  as_user "$RBOX" exec -o "$ov" "$RT/image.sif" sh -c 'echo persisted > /opt/y' || fail "overlay write"
  assert_eq persisted "$(cat "$ov/upper/opt/y" 2>/dev/null)" "--overlay DIR keeps changes in DIR/upper"
  out=$(as_user "$RBOX" exec -o "$ov:ro" "$RT/image.sif" sh -c 'cat /opt/y; rbox-probe write /opt/z')
  assert_contains "$out" persisted "--overlay DIR:ro shows the layer"
  assert_contains "$out" EROFS "--overlay DIR:ro is read-only"
  rm -rf "$copy"
  cp -a "$RT/sandbox" "$copy"
  chown -R "$RBOX_TEST_USER" "$copy"
  as_user "$RBOX" exec -w "$copy" sh -c 'echo w > /opt/w' || fail "--writable write"
  assert_eq w "$(cat "$copy/opt/w" 2>/dev/null)" "--writable writes into the sandbox"
  assert_status 1 as_user "$RBOX" exec -w "$RT/image.sif" true
}

test_fakeroot() {
  local out
  out=$(as_user "$RBOX" exec -f "$RT/image.sif" sh -c 'rbox-probe id; touch /tmp/fr-$$ && rbox-probe chown /tmp/fr-$$ 5 5; rm -f /tmp/fr-$$; echo $HOME')
  assert_contains "$out" "uid=0 gid=0" "--fakeroot is uid 0"
  assert_contains "$out" ok "chown succeeds (emulated)"
  assert_contains "$out" /root "--fakeroot home is /root"
  . "$RBOX_TESTENV" 2>/dev/null || true
  if [ -n "${RBOX_TEST_SUBUID_USER:-}" ] && id "$RBOX_TEST_SUBUID_USER" >/dev/null 2>&1; then
    out=$(cd /tmp && runuser -u "$RBOX_TEST_SUBUID_USER" -- env -i PATH=/usr/bin:/bin HOME=/tmp \
      "$RBOX" exec -f "$RT/image.sif" sh -c 'cat /proc/self/uid_map; rbox-probe setuid 1000')
    assert_contains "$out" "uid=1000" "subordinate ids through newuidmap"
  fi
}

test_optional_namespaces() {
  local out
  out=$(as_user "$RBOX" exec --hostname box-name "$RT/image.sif" sh -c 'hostname; cat /etc/hostname')
  assert_eq "box-name
box-name" "$out" "--hostname"
  out=$(as_user "$RBOX" exec --net "$RT/image.sif" sh -c 'grep -c : /proc/net/dev; ip link show lo | grep -c ",UP"')
  assert_eq "1
1" "$out" "--net: loopback only, and up"
  out=$(as_user "$RBOX" exec --pid "$RT/image.sif" sh -c 'echo pid=$$; ps')
  assert_contains "$out" "pid=2" "--pid: the command is PID 2"
  assert_contains "$out" "rbox-init" "--pid: under rbox's init"
  out=$(as_user "$RBOX" exec --pid --no-init "$RT/image.sif" sh -c 'echo $$')
  assert_eq 1 "$out" "--no-init"
  assert_status 0 as_user "$RBOX" exec --ipc --uts "$RT/image.sif" true
}

test_image_without_shell() {
  local d=$RBOX_IT_DIR/noshell
  rm -rf "$d"
  mkdir -p "$d/bin" "$d/.singularity.d/env" "$d/tmp" "$d/proc" "$d/dev" "$d/sys"
  cp "$RT/probe" "$d/bin/rbox-probe"
  printf 'export NOSHELL=native\n' >"$d/.singularity.d/env/90-environment.sh"
  printf 'export SKIPPED=$(date)\n' >"$d/.singularity.d/env/95-complex.sh"
  chmod -R a+rX "$d"
  local out
  out=$(as_user "$RBOX" exec "$d" /bin/rbox-probe env NOSHELL 2>&1)
  assert_contains "$out" native "simple env files applied natively"
  assert_contains "$out" "no /bin/sh" "warning about the file it cannot evaluate"
}

test_unsquash_and_check() {
  local out
  out=$(as_user "$RBOX" exec --unsquash "$RT/image.sif" cat /data/file)
  assert_eq image-data "$out" "--unsquash"
  out=$(as_user "$RBOX" check 2>&1)
  assert_contains "$out" "ok  " "rbox check reports steps"
  assert_contains "$out" "FUSE in the namespace" "rbox check tries FUSE"
  assert_status 0 as_user "$RBOX" check
}

# docker:// and oci: references run from a SIF converted once into the cache.
test_remote_references() {
  local out cache=$RBOX_IT_DIR/remote-cache
  # shellcheck disable=SC1090
  . "$RBOX_TESTENV"
  mkdir -p "$cache" && chmod 0777 "$cache"
  out=$(as_user RBOX_CACHEDIR="$cache" "$RBOX" exec "docker://$RBOX_REG_HTTP/busybox:latest" busybox echo from-registry 2>&1)
  assert_contains "$out" from-registry "exec docker://"
  assert_eq 1 "$(ls "$cache"/sif/*.sif | wc -l)" "one cached SIF"
  out=$(as_user RBOX_CACHEDIR="$cache" "$RBOX" -v exec "docker://$RBOX_REG_HTTP/busybox:latest" busybox echo again 2>&1)
  assert_contains "$out" "using cached" "second run uses the cached SIF"
  out=$(as_user RBOX_CACHEDIR="$cache" "$RBOX" exec "oci:$RBOX_OCI_LAYOUT_BUSYBOX" busybox echo from-layout 2>&1)
  assert_contains "$out" from-layout "exec oci:"
  out=$(as_user "$RBOX" exec instance://nope true 2>&1)
  assert_contains "$out" "instance" "instance:// is recognised"
  assert_status 1 as_user "$RBOX" exec /no/such/image.sif true
  assert_status 1 as_user "$RBOX" exec library://alpine true
}

# Kernels without overlayfs in a user namespace (< 5.11) get a tmpfs skeleton; RBOX_NO_OVERLAY=1
# forces that path here.
test_tmpfs_skeleton_without_overlayfs() {
  local img out home
  home=$(user_home)
  for img in image.sif sandbox; do
    rm -f "$home/skel-$img"
    out=$(as_user RBOX_NO_OVERLAY=1 "$RBOX" exec -B "$RBOX_IT_DIR:/new/mount/point" "$RT/$img" sh -c \
      'rbox-probe id; cat /data/file; grep -c "^'"$RBOX_TEST_USER"':" /etc/passwd; ls -d /new/mount/point;
       rbox-probe write $HOME/skel-'"$img"'; rbox-probe write /opt/x')
    assert_contains "$out" "uid=$(user_uid)" "$img: id"
    assert_contains "$out" image-data "$img: image content"
    assert_contains "$out" "/new/mount/point" "$img: mount point created"
    assert_contains "$out" "error: EROFS" "$img: the image stays read-only"
    assert_file "$home/skel-$img"
    rm -f "$home/skel-$img"
  done
  assert_status "$EXIT_RUNTIME_FAILURE" as_user RBOX_NO_OVERLAY=1 "$RBOX" exec --writable-tmpfs "$RT/image.sif" true
}

run_tests "$@"
