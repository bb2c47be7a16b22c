#!/usr/bin/env bash
# The terminal in `rbox shell`, driven through tmux (send-keys, capture-pane) as root and as the
# test user: the prompt, Ctrl-C interrupting the foreground command but not the shell, job
# control (Ctrl-Z, jobs, kill %1), a full-screen editor (vi), the window size, and the shell's
# exit status coming back out of rbox.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/runtime-lib.sh"
make_runtime_images || exit 1
command -v tmux >/dev/null || {
  echo "tmux is not installed" >&2
  exit 1
}

SOCK=rbox-it-tty-$$

# tmux_as WHO ARGS...: tmux on our own socket, as root or as the test user.
tmux_as() {
  local who=$1
  shift
  if [ "$who" = root ]; then
    tmux -L "$SOCK-root" "$@"
  else
    as_user tmux -L "$SOCK-user" "$@"
  fi
}

# wait_for WHO TEXT [SECONDS]: until the pane shows TEXT; prints the pane.
wait_for() {
  local who=$1 text=$2 limit=${3:-10} i pane
  for ((i = 0; i < limit * 10; i++)); do
    pane=$(tmux_as "$who" capture-pane -p -t t 2>/dev/null)
    case "$pane" in *"$text"*)
      printf '%s' "$pane"
      return 0
      ;;
    esac
    sleep 0.1
  done
  printf '%s' "$pane"
  return 1
}

shell_session() {  # WHO IMAGE
  local who=$1 image=$2 status=$RBOX_IT_DIR/tty-status-$1 edited=$RBOX_IT_DIR/tty-edited-$1 pane
  rm -f "$status" "$edited"
  tmux_as "$who" kill-server 2>/dev/null
  tmux_as "$who" new-session -d -s t -x 100 -y 30 \
    "cd /tmp && $RBOX shell $image; echo \$? > $status"
  wait_for "$who" "Apptainer>" >/dev/null || fail "$who: no prompt: $(tmux_as "$who" capture-pane -p -t t)"

  tmux_as "$who" send-keys -t t 'echo hello-$((6*7))' Enter
  wait_for "$who" hello-42 >/dev/null || fail "$who: command output"

  tmux_as "$who" send-keys -t t 'sleep 100' Enter
  sleep 0.5
  tmux_as "$who" send-keys -t t C-c
  tmux_as "$who" send-keys -t t 'echo after-interrupt-$?' Enter
  wait_for "$who" after-interrupt-130 >/dev/null || fail "$who: Ctrl-C did not interrupt only the command"

  tmux_as "$who" send-keys -t t 'sleep 101' Enter
  sleep 0.5
  tmux_as "$who" send-keys -t t C-z
  tmux_as "$who" send-keys -t t 'jobs; kill -9 %1; echo jobs-done' Enter
  pane=$(wait_for "$who" jobs-done) || fail "$who: job control"
  assert_contains "$pane" "sleep 101" "$who: jobs lists the stopped job"

  tmux_as "$who" send-keys -t t 'stty size' Enter
  wait_for "$who" "30 100" >/dev/null || fail "$who: window size"

  tmux_as "$who" send-keys -t t "vi $edited" Enter
  sleep 1
  tmux_as "$who" send-keys -t t i 'typed in vi'
  sleep 0.3
  tmux_as "$who" send-keys -t t Escape  # alone: ESC followed at once by ':' reads as Alt-:
  sleep 0.3
  tmux_as "$who" send-keys -t t ':wq' Enter
  sleep 0.5
  tmux_as "$who" send-keys -t t 'exit 5' Enter
  local i
  for ((i = 0; i < 50; i++)); do
    [ -s "$status" ] && break
    sleep 0.1
  done
  assert_eq 5 "$(cat "$status" 2>/dev/null)" "$who: the shell's exit status"
  assert_eq "typed in vi" "$(cat "$edited" 2>/dev/null)" "$who: vi edited a file"
  tmux_as "$who" kill-server 2>/dev/null
  rm -f "$status" "$edited"
}

test_shell_in_tmux_as_user_sif() { shell_session user "$RT/image.sif"; }
test_shell_in_tmux_as_user_sandbox() { shell_session user "$RT/sandbox"; }
test_shell_in_tmux_as_root_sif() { shell_session root "$RT/image.sif"; }
test_shell_in_tmux_as_user_pid_namespace() {
  local who=user status=$RBOX_IT_DIR/tty-pid-status
  rm -f "$status"
  tmux_as "$who" kill-server 2>/dev/null
  tmux_as "$who" new-session -d -s t -x 100 -y 30 "cd /tmp && $RBOX shell --pid $RT/image.sif; echo \$? > $status"
  wait_for "$who" "Apptainer>" >/dev/null || fail "no prompt"
  tmux_as "$who" send-keys -t t 'sleep 100' Enter
  sleep 0.5
  tmux_as "$who" send-keys -t t C-c
  tmux_as "$who" send-keys -t t 'echo pid-$$-after-$?' Enter
  wait_for "$who" pid-2-after-130 >/dev/null || fail "Ctrl-C in a PID namespace"
  tmux_as "$who" send-keys -t t 'exit 3' Enter
  sleep 1
  assert_eq 3 "$(cat "$status" 2>/dev/null)" "exit status through the init"
  tmux_as "$who" kill-server 2>/dev/null || true
  rm -f "$status"
}

run_tests "$@"
