#!/usr/bin/env bash
# Ingest: POST /api/messages throughput and latency (202 = durable), in
# embedded mode (SQLite synchronous=FULL + in-process queue) and in Kafka +
# PostgreSQL mode (a local broker and cluster from scripts/kafka.sh and
# scripts/postgres.sh, started here on free ports with data under /tmp and
# stopped at the end).
#
#   bench/ingest.sh                  both modes, 3 runs per point (about 8 min)
#   bench/ingest.sh --quick          1 short run per point
#   MODES=embedded bench/ingest.sh   one mode only
#
# Per mode: wrk (closed loop, 2 threads, 16 and 64 connections, bodies from
# bench/post.lua varying users and content) and feed-bot's open-loop schedule
# at fixed rates (latency from the due time, so queueing is counted). feed-api
# is restarted with a fresh --data-dir (and fresh topics) for every run; the
# broker is warmed up with one discarded 5 s wrk run first, and in Kafka mode
# every fresh feed-api gets 2 s of discarded posts (500/s) before measuring.
# Records: bench/results/<timestamp>-ingest/runs.jsonl; table: summary.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS="${RUNS:-3}"; DURATION="${DURATION:-10}"
MODES="${MODES:-embedded kafka}"
WRK_CONNS="${WRK_CONNS:-16 64}"
RATES="${RATES:-1000 5000 10000}"
BOT_CONCURRENCY="${BOT_CONCURRENCY:-64}"
if [[ "${1:-}" == "--quick" ]]; then RUNS=1; DURATION=4; fi

need_built
command -v wrk >/dev/null || { say "installing wrk"; apt-get install -y -q wrk >/dev/null 2>&1 || die "no wrk"; }
bench_trap
OUT="$(bench_results_dir ingest)"
JSONL="$OUT/runs.jsonl"
machine_info >"$OUT/machine.txt"
say "results in $OUT"

RUN_ID=0
# start_api MODE -> FEED_PID, PORT, PROCS
start_api() {
  local mode="$1"
  PORT="$(free_port)"
  RUN_ID=$(( RUN_ID + 1 ))
  if [[ "$mode" == embedded ]]; then
    start_feed_api /tmp/feed-bench-ingest "$PORT" "$OUT/feed-api.log" --threads 1
    PROCS="feed-api:$FEED_PID"
  else
    local t="bench$$-$RUN_ID"
    start_feed_api /tmp/feed-bench-ingest "$PORT" "$OUT/feed-api.log" --threads 1 \
      --kafka-brokers "$KAFKA_BROKERS" --database-url "$DATABASE_URL" \
      --kafka-events-topic "events-$t" --kafka-processed-topic "processed-$t" --kafka-group "group-$t"
    PROCS="feed-api:$FEED_PID,kafka:$KAFKA_PID,postgres:$(pg_pids)"
    # Measure the steady state: 2 s of discarded posts first (a fresh
    # process's first posts also wait for new topics' leaders and the
    # idempotent producer's id).
    "$FEED_BOT" --api "http://127.0.0.1:$PORT" --rate 500 --duration 2 --progress 0 --log-level warn \
      >/dev/null 2>&1 || true
  fi
}

for mode in $MODES; do
  if [[ "$mode" == kafka ]]; then
    start_services /tmp/feed-bench-ingest-svc
    # Warm the broker's JVM up (JIT, page cache) with one discarded run.
    start_api kafka
    wrk -t2 -c64 -d5s -s "$BENCH_DIR/post.lua" "http://127.0.0.1:$PORT" >/dev/null 2>&1 || true
    stop_pid "$FEED_PID"
  fi
  for r in $(seq "$RUNS"); do
    for c in $WRK_CONNS; do
      start_api "$mode"
      LOAD_LIMIT=$(( DURATION + 30 )) run_load "$JSONL" "wrk:$c:$r" "$mode" "$PROCS" -- \
        wrk -t2 -c"$c" -d"${DURATION}s" --timeout 10s -s "$BENCH_DIR/post.lua" "http://127.0.0.1:$PORT"
      stop_pid "$FEED_PID"
      python3 "$BENCH_DIR/report.py" ingest-line "$JSONL"
    done
    for rate in $RATES; do
      start_api "$mode"
      LOAD_LIMIT=$(( DURATION + 30 )) run_load "$JSONL" "bot:$rate:$r" "$mode" "$PROCS" -- \
        "$FEED_BOT" --api "http://127.0.0.1:$PORT" --rate "$rate" --duration "$DURATION" \
        --concurrency "$BOT_CONCURRENCY" --users 1000 --progress 0 --log-level warn
      stop_pid "$FEED_PID"
      python3 "$BENCH_DIR/report.py" ingest-line "$JSONL"
    done
  done
  if [[ "$mode" == kafka ]]; then bench_cleanup; fi
done

python3 "$BENCH_DIR/report.py" ingest "$JSONL" | tee "$OUT/summary.md"
say "raw results: $OUT"
