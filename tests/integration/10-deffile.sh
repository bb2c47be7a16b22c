#!/usr/bin/env bash
# `rbox inspect --deffile` driven as the unprivileged user: the shipped defs/*.def (text and
# JSON), multi-stage output, build arguments, one-line file:line errors, --help, and the Apptainer
# parser corpus through the CLI. Reads only; writes nothing outside $RBOX_IT_DIR.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
WORK=$RBOX_IT_DIR/deffile
mkdir -p "$WORK/defs"
cp "$RBOX_SOURCE_DIR"/defs/*.def "$WORK/defs/"
chmod -R a+rX "$WORK"

# Writes stdin to $WORK/NAME, readable by the test user.
put() {
  cat >"$WORK/$1"
  chmod a+r "$WORK/$1"
}

# Runs rbox as the test user in $WORK; stdout → $WORK/out, stderr → $WORK/err; returns its status.
rbox_user() {
  as_user_in "$WORK" "$RBOX" "$@" >"$WORK/out" 2>"$WORK/err"
}

json_get() {  # FILE PYTHON-EXPRESSION-ON-j
  "$PY" -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

test_inspect_text_of_every_shipped_def() {
  local def
  for def in "$WORK"/defs/*.def; do
    rbox_user inspect --deffile "defs/$(basename "$def")" || fail "$(basename "$def"): $(cat "$WORK/err")"
    assert_contains "$(cat "$WORK/out")" "1 stage" "$(basename "$def")"
    assert_contains "$(cat "$WORK/out")" "    Bootstrap: " "$(basename "$def")"
    assert_eq "" "$(cat "$WORK/err")" "stderr of $(basename "$def")"
  done
  rbox_user inspect --deffile defs/devbox.def
  local out
  out=$(cat "$WORK/out")
  assert_contains "$out" "Bootstrap: debootstrap"
  assert_contains "$out" "OSVersion: bookworm"
  assert_contains "$out" "%post"
  assert_contains "$out" "python3-pudb"
  assert_contains "$out" "%runscript"
  assert_contains "$out" "tmux new-session -A"
  assert_contains "$out" "%startscript"
  assert_contains "$out" "org.opencontainers.image.title = rbox devbox"
}

test_inspect_json_of_every_shipped_def() {
  local def name
  for def in "$WORK"/defs/*.def; do
    name=$(basename "$def")
    rbox_user inspect --deffile "defs/$name" --json || fail "$name: $(cat "$WORK/err")"
    # Valid JSON in Apptainer's shape, raw = the file's bytes.
    assert_eq "True" "$(json_get "$WORK/out" 'sorted(j) == ["appOrder", "buildData", "customData", "fullraw", "header", "imageData", "raw"]')" "$name keys"
    assert_eq "True" "$(json_get "$WORK/out" "__import__('base64').b64decode(j['raw']) == open('$def', 'rb').read()")" "$name raw"
  done
  rbox_user inspect --deffile defs/devbox.def --json
  assert_eq "debootstrap bookworm" "$(json_get "$WORK/out" 'j["header"]["bootstrap"] + " " + j["header"]["osversion"]')"
  assert_eq "False" "$(json_get "$WORK/out" '"mirrorurl" in j["header"]')"
  assert_contains "$(json_get "$WORK/out" 'j["imageData"]["imageScripts"]["startScript"]["script"]')" "syncthing serve"
  rbox_user inspect --deffile defs/minimal.def --json
  assert_eq "busybox" "$(json_get "$WORK/out" 'j["header"]["bootstrap"]')"
}

test_multi_stage_output() {
  put two.def <<'EOF'
Bootstrap: docker
From: golang:1.22
Stage: build
%post
    go build -o /app ./...

Bootstrap: docker
From: alpine:3.19
Stage: final
%files from build
    /app /usr/local/bin/app
EOF
  rbox_user inspect --deffile two.def --json --all-stages || fail "$(cat "$WORK/err")"
  assert_eq "2 build final" "$(json_get "$WORK/out" 'str(len(j)) + " " + j[0]["header"]["stage"] + " " + j[1]["header"]["stage"]')"
  assert_eq "from build" "$(json_get "$WORK/out" 'j[1]["buildData"]["files"][0]["args"]')"
  # Without --all-stages: the last stage (the one assembled), said on stderr with --verbose.
  rbox_user --verbose inspect --deffile two.def --json || fail "$(cat "$WORK/err")"
  assert_eq "final" "$(json_get "$WORK/out" 'j["header"]["stage"]')"
  assert_contains "$(cat "$WORK/err")" "has 2 stages; printing the last one"
  rbox_user inspect --deffile two.def
  assert_contains "$(cat "$WORK/out")" "stage 2 of 2 'final' (line 7), assembled"
  assert_contains "$(cat "$WORK/out")" "copied from stage 'build'"
}

test_bad_keyword_is_one_line_with_file_and_line() {
  printf 'Bootstrap: docker\n# comment\nForm: alpine\n%%post\n    true\n' | put env.def
  rbox_user inspect --deffile env.def
  assert_eq 1 $? "exit status"
  assert_eq "rbox: error: env.def:3: unknown header keyword 'Form' (did you mean 'From'?)" "$(cat "$WORK/err")"
  assert_eq "" "$(cat "$WORK/out")" "nothing on stdout"
  assert_eq 1 "$(wc -l <"$WORK/err")" "one line"

  printf 'Bootstrap: docker\n%%post\n    true\n%%enviroment\n    A=1\n' | put sec.def
  rbox_user inspect --deffile sec.def --json
  assert_eq 1 $? "exit status"
  assert_eq "rbox: error: sec.def:4: unknown section '%enviroment' (did you mean '%environment'?)" "$(cat "$WORK/err")"
  assert_eq "" "$(cat "$WORK/out")" "no half-written JSON"
}

test_missing_and_empty_files() {
  rbox_user inspect --deffile nosuch.def
  assert_eq 1 $? "exit status"
  assert_contains "$(cat "$WORK/err")" "rbox: error: nosuch.def: cannot read the definition file"
  printf '# nothing here\n' | put empty.def
  rbox_user inspect --deffile empty.def
  assert_eq 1 $? "exit status"
  assert_eq "rbox: error: empty.def:1: empty definition: no header keywords and no sections; start with 'Bootstrap: …'" "$(cat "$WORK/err")"
}

test_build_args() {
  put args.def <<'EOF'
Bootstrap: docker
From: {{ IMAGE }}:{{ TAG }}

%arguments
    TAG=3.19

%post
    echo {{ GREETING }} # {{ NOT_USED_IN_COMMENT }}
EOF
  rbox_user inspect --deffile args.def
  assert_eq 1 $? "undefined variable"
  assert_eq "rbox: error: args.def:2: build argument 'IMAGE' is not defined; pass --build-arg IMAGE=VALUE or give it a default in %arguments" "$(cat "$WORK/err")"

  rbox_user inspect --deffile args.def --json --build-arg IMAGE=alpine --build-arg GREETING=hi
  assert_eq 0 $? "all defined: $(cat "$WORK/err")"
  assert_eq "alpine:3.19" "$(json_get "$WORK/out" 'j["header"]["from"]')"
  assert_eq "    echo hi # {{ NOT_USED_IN_COMMENT }}" "$(json_get "$WORK/out" 'j["buildData"]["buildScripts"]["post"]["script"].rstrip()')"

  rbox_user inspect --deffile args.def --build-arg IMAGE=alpine --build-arg GREETING=hi --build-arg EXTRA=1
  assert_eq 1 $? "unused arg"
  assert_eq "rbox: error: args.def: unused build args: EXTRA; use them as {{ NAME }} in the file, or pass --warn-unused-build-args" "$(cat "$WORK/err")"

  rbox_user inspect --deffile args.def --build-arg IMAGE=alpine --build-arg GREETING=hi --build-arg EXTRA=1 --warn-unused-build-args
  assert_eq 0 $? "unused arg with --warn-unused-build-args"
  assert_contains "$(cat "$WORK/err")" "rbox: warning: args.def: unused build args: EXTRA"

  printf 'IMAGE=debian\nGREETING = from file\nnot a pair\n' | put args.txt
  rbox_user inspect --deffile args.def --json --build-arg-file args.txt --build-arg IMAGE=ubuntu
  assert_eq 0 $? "build-arg-file: $(cat "$WORK/err")"
  assert_eq "ubuntu:3.19" "$(json_get "$WORK/out" 'j["header"]["from"]')" "command line wins over the file"
  assert_contains "$(json_get "$WORK/out" 'j["buildData"]["buildScripts"]["post"]["script"]')" "echo from file"
  assert_contains "$(cat "$WORK/err")" "args.txt:3: skipping 'not a pair'"

  rbox_user inspect --deffile args.def --build-arg NOEQUALS
  assert_eq 1 $? "malformed --build-arg"
  assert_eq "rbox: error: --build-arg 'NOEQUALS': expected NAME=VALUE" "$(cat "$WORK/err")"
}

test_build_arg_options_need_deffile() {
  rbox_user inspect some.sif --build-arg A=1
  assert_eq "$EXIT_USAGE" $? "exit status"
  assert_contains "$(cat "$WORK/err")" "only apply with --deffile"
}

test_help() {
  local out
  out=$(as_user "$RBOX" inspect --help 2>&1) || fail "$(cat "$WORK/err")"
  local opt
  for opt in --deffile --json --all-stages --build-arg --build-arg-file --warn-unused-build-args Examples:; do
    assert_contains "$out" "$opt"
  done
  assert_contains "$out" "rbox inspect --deffile env.def --json"
}

test_apptainer_corpus_through_the_cli() {
  local corpus=$RBOX_CONFORMANCE_DIR/apptainer-parser
  if [ ! -d "$corpus" ]; then
    [ "${CI:-}" = true ] && { fail "no conformance corpus at $corpus (CI=true)"; return; }
    skip "no conformance corpus at $corpus; set RBOX_CONFORMANCE_DIR"
    return
  fi
  # --json prints ParseDefinitionFile's object (testdata_good), --json --all-stages parser.All's
  # array (testdata_multi); both must equal Apptainer's expected JSON.
  local dir def n=0
  for dir in "$corpus"/testdata_good/* "$corpus"/testdata_multi/*; do
    [ "$(basename "$dir")" = multistage ] && continue  # per-stage standalone parses: unit-tested
    def=$(find "$dir" -maxdepth 1 -type f ! -name '*.*' ! -name result | head -1)
    local flags=(--json)
    [[ "$dir" == */testdata_multi/* ]] && flags+=(--all-stages)
    as_user "$RBOX" inspect --deffile "$def" "${flags[@]}" >"$WORK/out" 2>"$WORK/err" ||
      { fail "$def: $(cat "$WORK/err")"; continue; }
    "$PY" - "$WORK/out" "$def.json" <<'EOF' || fail "$def: JSON differs from Apptainer's"
import json, sys
def norm(j):
    for d in (j if isinstance(j, list) else [j]):
        d["buildData"]["buildScripts"].pop("arguments", None)
    return j
sys.exit(0 if norm(json.load(open(sys.argv[1]))) == norm(json.load(open(sys.argv[2]))) else 1)
EOF
    n=$((n + 1))
  done
  assert_eq 26 "$n" "corpus cases compared"
  local bad
  for bad in "$corpus"/testdata_bad/*; do
    as_user "$RBOX" inspect --deffile "$bad" >/dev/null 2>"$WORK/err"
    assert_eq 1 $? "$bad must be rejected"
    assert_contains "$(cat "$WORK/err")" "rbox: error: $bad:"
  done
}

run_tests "$@"
