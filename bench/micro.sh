#!/usr/bin/env bash
# Builds and runs the Google Benchmark micro-benchmarks (bench/micro) against
# the static libraries of an existing build (FEED_BUILD_DIR, default build/),
# 3 repetitions, medians reported. Raw JSON: bench/results/<timestamp>-micro/.
#   bench/micro.sh [--quick] [extra benchmark flags, e.g. --benchmark_filter=Hub]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
REPS=3
if [[ "${1:-}" == "--quick" ]]; then REPS=1; shift; fi
[[ -f "$BUILD/src/libfeed_broadcast.a" ]] || die "build $BUILD first"
cmake -S "$BENCH_DIR/micro" -B "$BENCH_DIR/micro/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DFEED_BUILD_DIR="$BUILD" >/dev/null
cmake --build "$BENCH_DIR/micro/build" --target feed_micro >/dev/null
OUT="$(bench_results_dir micro)"
machine_info >"$OUT/machine.txt"
"$BENCH_DIR/micro/build/feed_micro" --benchmark_repetitions="$REPS" --benchmark_report_aggregates_only=true \
  --benchmark_out="$OUT/micro.json" --benchmark_out_format=json "$@" | tee "$OUT/micro.txt"
say "raw results: $OUT (load average $(loadavg))"
