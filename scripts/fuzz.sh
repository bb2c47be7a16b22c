#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.cpp) with clang into build-fuzz/ and runs each
# for N seconds (default 60), one job at a time. Usage: scripts/fuzz.sh [seconds [target-filter]]
# Seeds: tests/fuzz/corpus/NAME/ (small, hand-written), plus inputs taken at run time from the
# conformance corpus ($RBOX_CONFORMANCE_DIR, default ../shared/conformance) and defs/ — never
# copied into the repository. New inputs go to build-fuzz/fuzz-corpus/NAME/, crashes to
# build-fuzz/fuzz-artifacts/NAME/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
filter=${2:-}
build="build-fuzz"
conformance=${RBOX_CONFORMANCE_DIR:-$(cd .. && pwd)/shared/conformance}

CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DRBOX_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=()
for src in tests/fuzz/fuzz_*.cpp; do
  name=$(basename "$src" .cpp)
  [[ -n "$filter" && "$name" != *"$filter"* ]] && continue
  targets+=("$name")
done
[ ${#targets[@]} -gt 0 ] || { echo "fuzz.sh: no target matches '$filter'" >&2; exit 2; }
ninja -C "$build" "${targets[@]}"

# Seeds for one target, derived from the shared corpora into a scratch directory.
seed_dir() {
  local name=$1 dir="$build/fuzz-seeds/${1#fuzz_}"
  rm -rf "$dir"
  mkdir -p "$dir"
  case "$name" in
    fuzz_deffile)
      if [ -d "$conformance/apptainer-parser" ]; then
        # The same file names occur in several case folders: name the copies after their path.
        find "$conformance/apptainer-parser" -type f ! -name '*.json' ! -name result -print0 |
          while IFS= read -r -d '' f; do cp "$f" "$dir/$(echo "${f#"$conformance"/}" | tr / _)"; done
      else
        echo "fuzz.sh: no conformance corpus at $conformance (set RBOX_CONFORMANCE_DIR); using local seeds" >&2
      fi
      cp defs/*.def "$dir/" 2>/dev/null || true
      ;;
    fuzz_sif)
      if [ -d "$conformance/sif-images" ]; then cp "$conformance"/sif-images/*.sif "$dir/"; fi
      ;;
  esac
  echo "$dir"
}

# UBSan only reports by default; a finding must stop the run like an ASan one.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
status=0
for name in "${targets[@]}"; do
  short=${name#fuzz_}
  corpus="$build/fuzz-corpus/$short"
  artifacts="$build/fuzz-artifacts/$short"
  mkdir -p "$corpus" "$artifacts"
  dirs=("$corpus" "$(seed_dir "$name")")
  [ -d "tests/fuzz/corpus/$short" ] && dirs+=("tests/fuzz/corpus/$short")
  # One fuzzing process (libFuzzer's default; -jobs=N would fork N workers and redirect their
  # output to fuzz-N.log): the machine may be shared.
  opts=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048
        -artifact_prefix="$artifacts/" -print_final_stats=1)
  [ -f "tests/fuzz/$name.dict" ] && opts+=(-dict="tests/fuzz/$name.dict")
  echo "== $name for ${seconds}s (corpus $corpus)"
  if ! "$build/tests/fuzz/$name" "${opts[@]}" "${dirs[@]}"; then
    echo "== $name FOUND A CRASH: see $artifacts/" >&2
    status=1
  fi
done
exit $status
