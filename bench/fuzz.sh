#!/usr/bin/env bash
# Long fuzzing runs: every libFuzzer target (fuzz/) for millions of
# executions, bounded by count and by time, with the counts recorded.
#
#   bench/fuzz.sh [TARGET...]
#
# Environment: FUZZ_RUNS (executions per target, default 5000000),
# FUZZ_SECONDS (time per target, default 600).
# Records: bench/results/<timestamp>-fuzz/ holds each target's log, grown
# corpus and any crash input; summary.md there has one line per target to
# paste into docs/RELIABILITY.md. Exits non-zero when a target failed.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

runs=${FUZZ_RUNS:-5000000}
seconds=${FUZZ_SECONDS:-600}
OUT="$(bench_results_dir fuzz)"
say "results in $OUT; up to $runs executions or ${seconds}s per target"

rc=0
"$ROOT/fuzz/run.sh" --runs "$runs" --seconds "$seconds" --out "$OUT" "$@" | tee "$OUT/lines.txt" || rc=$?

{
  echo "Fuzzing on $(date +%Y-%m-%d), $(clang++ --version | head -n1), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' + local changes'), $(nproc) cores:"
  echo
  grep -v '^fuzz:' "$OUT/lines.txt" | sed 's/^/- /'
} >"$OUT/summary.md"
cat "$OUT/summary.md"
say "raw results: $OUT"
exit "$rc"
