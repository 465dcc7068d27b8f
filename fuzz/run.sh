#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan; see fuzz/CMakeLists.txt)
# and runs each one from its seed corpus in fuzz/corpus/<target>/, bounded by
# a number of executions and by time, whichever comes first. A crash, a
# broken invariant, a leak or a sanitizer report fails the run, and the input
# that caused it is kept.
#
#   fuzz/run.sh [--runs N] [--seconds S] [--out DIR] [TARGET...]
#
#   --runs N      executions per target (default 20000)
#   --seconds S   time per target (default 10)
#   --out DIR     keep each target's log, grown corpus and crash inputs in
#                 DIR/<target>/ (default: a temporary directory, removed
#                 unless something failed)
#   TARGET        http_request post_request query envelope producer_state sse_frame content_type
#                 (default all)
#
# Prints one line per target on stdout:
#   <target>: <N> executions in <S> s (<R>/s), coverage <C>, corpus <K>: ok
# and ends with "fuzz: N passed, M failed". The seed corpora are only read.
# Environment: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_CXX (default clang++).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

runs=20000
seconds=10
out=
targets=()
while (($#)); do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz/run.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
((${#targets[@]})) || targets=(http_request post_request query envelope producer_state sse_frame content_type)

build=${FUZZ_BUILD_DIR:-build-fuzz}
cxx=${FUZZ_CXX:-clang++}
command -v "$cxx" >/dev/null || { echo "fuzz/run.sh: $cxx not found (scripts/install-deps.sh installs clang)" >&2; exit 1; }
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# Release with -O2 and without NDEBUG: the project's asserts stay on. Only
# the fuzzers are built, not the whole tree.
cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS_RELEASE=-O2 -DFEED_FUZZ=ON -DFEED_BUILD_TESTS=OFF "${launcher[@]}" >/dev/null
cmake --build "$build" --target feed_fuzzers -j"$(nproc)" >&2
build_dir=$(cd "$build" && pwd)  # FUZZ_BUILD_DIR may be absolute or relative to the checkout

keep=1
if [[ -z "$out" ]]; then
  out=$(mktemp -d /tmp/feed-fuzz.XXXXXX)
  keep=0
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)

# Sanitizer reports end the run with a non-zero status (libFuzzer sets
# these for itself too; they matter for code outside its handlers).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

passed=0
failed=0
for t in "${targets[@]}"; do
  bin="$build_dir/fuzz/fuzz_$t"
  seeds="$root/fuzz/corpus/$t"
  [[ -x "$bin" && -d "$seeds" ]] || { echo "fuzz/run.sh: no target '$t'" >&2; exit 2; }
  dir="$out/$t"
  mkdir -p "$dir/corpus"
  start=$(date +%s%N)
  rc=0
  # The first directory receives new inputs; the seeds are only read.
  "$bin" -runs="$runs" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$dir/" "$dir/corpus" "$seeds" >"$dir/log" 2>&1 || rc=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 + 1 ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -n1)
  last=$(grep -E '^#[0-9]+' "$dir/log" | tail -n1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  [[ -n "$execs" ]] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
  line=$(printf '%s: %s executions in %d s (%d/s), coverage %s, corpus %s' \
    "$t" "${execs:-?}" $(( (ms + 500) / 1000 )) $(( ${execs:-0} * 1000 / ms )) "${cov:-?}" "${corp:-?}")
  if ((rc == 0)); then
    echo "$line: ok"
    passed=$((passed + 1))
  else
    crash=$(ls "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-* 2>/dev/null | head -n1 || true)
    echo "$line: FAILED (exit $rc) ${crash:-}"
    grep -E 'ERROR|invariant broken|runtime error|SUMMARY' "$dir/log" | head -n 5 >&2 || true
    echo "  log: $dir/log; reproduce: $bin ${crash:-<input>}" >&2
    failed=$((failed + 1))
    keep=1
  fi
done

((keep)) || rm -rf "$out"
echo "fuzz: $passed passed, $failed failed"
((failed == 0))
