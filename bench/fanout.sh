#!/usr/bin/env bash
# Fan-out: SSE deliveries/s and end-to-end latency (post written -> event read
# by a subscriber), feed-api (embedded mode, one event loop) side by side with
# nginx + nchan (one worker) in the same run, both driven by the same
# unchanged feed-bot (POST /api/messages, GET /api/feed).
#
#   bench/fanout.sh            full run (3 runs per point, about 12-15 min)
#   bench/fanout.sh --quick    1 run per point, short runs (about 3 min)
#
# Part 1, fixed rates: 1,000 x 100 msg/s, 5,000 x 40 msg/s, 10,000 x 20 msg/s
# (subscribers x publish rate), each for DURATION seconds; feed-api with its
# default SQLite synchronous=FULL, and at 1,000 x 100 also with NORMAL
# ("ours-normal") and with --threads 2 ("ours-t2"; every other figure uses
# one event loop, like nginx's one worker).
# Part 2, saturation at 2,000 subscribers: publish rates rise step by step; a
# step passes when every post is accepted, nothing is missing or duplicated,
# and both the e2e p99 and the post p99 (from the due time) are under 1 s.
# KAFKA=1 adds "ours-kafka" at every fixed point: feed-api in Kafka + PostgreSQL
# mode (a broker and a PostgreSQL started by the script; fresh topics and
# consumer group per run, 2 s of discarded posts first), so the fan-out of
# the reference's architecture is measured too, and to the saturation sweep.
# FIXED= skips part 1; SWEEP_SERVERS="ours-kafka" sweeps only that server.
# Every feed-bot run is bounded: SIGINT after its duration + 25 s. The saturation point of a pass is the highest
# rate before the first failing step; the figure is the median over passes.
#
# Raw records (one JSON line per feed-bot run, with server and bot CPU and the
# load average) go to bench/results/<timestamp>-fanout/runs.jsonl; the table
# is printed and saved as summary.md / summary.json there.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

QUICK=0
[[ "${1:-}" == "--quick" ]] && QUICK=1
RUNS="${RUNS:-3}"; DURATION="${DURATION:-10}"; STEP_DURATION="${STEP_DURATION:-5}"
PASSES="${PASSES:-3}"
FIXED="${FIXED-1000:100 5000:40 10000:20}"  # FIXED= (empty) skips part 1
SWEEP="${SWEEP:-10 20 50 100 200 300 500 700 1000 1500 2000 3000}"
SAT_SUBS="${SAT_SUBS:-2000}"
BOT_THREADS="${BOT_THREADS:-2}"
if (( QUICK )); then
  RUNS=1; DURATION=5; STEP_DURATION=3; PASSES=1
fi

need_built
ensure_nchan
bench_trap
OUT="$(bench_results_dir fanout)"
[[ "${KAFKA:-0}" == 1 ]] && start_services /tmp/feed-bench-fanout-svc
JSONL="$OUT/runs.jsonl"
machine_info >"$OUT/machine.txt"
say "results in $OUT"

# one_run SERVER SUBS RATE DURATION LABEL
one_run() {
  local server="$1" subs="$2" rate="$3" dur="$4" label="$5" port pids
  port="$(free_port)"
  if [[ "$server" == ours* ]]; then
    local sync=FULL threads=1
    [[ "$server" == ours-normal ]] && sync=NORMAL
    [[ "$server" == ours-t2 ]] && threads=2
    local backend=()
    if [[ "$server" == ours-kafka ]]; then
      local t="fanout$$-$RANDOM"
      backend=(--kafka-brokers "$KAFKA_BROKERS" --database-url "$DATABASE_URL" --kafka-events-topic "events-$t"
               --kafka-processed-topic "processed-$t" --kafka-group "group-$t")
    fi
    start_feed_api "/tmp/feed-bench-fanout" "$port" "$OUT/feed-api.log" \
      --max-connections 15000 --threads "$threads" --sqlite-synchronous "$sync" "${backend[@]}"
    pids="$FEED_PID"
    if [[ "$server" == ours-kafka ]]; then
      # New topics: the first posts would also time leader election and the
      # producer id. (Server CPU below is feed-api's alone, as in every row.)
      "$FEED_BOT" --api "http://127.0.0.1:$port" --rate 200 --duration 2 --progress 0 --log-level warn \
        >/dev/null 2>&1 || true
    fi
  else
    start_nchan "/tmp/feed-bench-nchan" "$port"
    pids="$NCHAN_MASTER,$NCHAN_WORKER"
  fi
  BOT_LIMIT=$(( ${dur%.*} + 25 )) run_bot "$JSONL" "$label" "$server" "$pids" -- \
    --api "http://127.0.0.1:$port" --subscribers "$subs" --verify --rate "$rate" \
    --duration "$dur" --concurrency 64 --threads "$BOT_THREADS" --verify-timeout 5 \
    --connect-timeout 30 --users 100
  if [[ "$server" == ours* ]]; then stop_pid "$FEED_PID"; else stop_pid "$NCHAN_MASTER"; fi
  python3 "$BENCH_DIR/report.py" fanout-line "$JSONL"
}

for r in $(seq "$RUNS"); do
  for point in $FIXED; do
    subs="${point%%:*}"; rate="${point##*:}"
    servers="ours nchan"
    # The 10 ms target at 1,000 x 100 also with SQLite synchronous=NORMAL.
    # And with two event loops (--threads 2: subscribers split over two hubs).
    [[ "$point" == 1000:100 ]] && servers="ours ours-normal ours-t2 nchan"
    [[ "${KAFKA:-0}" == 1 ]] && servers="$servers ours-kafka"
    for server in $servers; do
      one_run "$server" "$subs" "$rate" "$DURATION" "fixed:$subs:$rate:$r"
    done
  done
done

# The sweep's servers: SWEEP_SERVERS, by default ours and nchan, and
# ours-kafka with KAFKA=1.
default_sweep="ours nchan"
[[ "${KAFKA:-0}" == 1 ]] && default_sweep="ours ours-kafka nchan"
SWEEP_SERVERS="${SWEEP_SERVERS:-$default_sweep}"
for pass in $(seq "$PASSES"); do
  declare -A alive=()
  for server in $SWEEP_SERVERS; do alive[$server]=1; done
  for rate in $SWEEP; do
    any=0
    for server in $SWEEP_SERVERS; do
      (( alive[$server] )) || continue
      one_run "$server" "$SAT_SUBS" "$rate" "$STEP_DURATION" "sweep:$SAT_SUBS:$rate:$pass"
      if ! python3 "$BENCH_DIR/report.py" passed "$JSONL"; then alive[$server]=0; else any=1; fi
    done
    (( any )) || break
  done
  unset alive
done

python3 "$BENCH_DIR/report.py" fanout "$JSONL" | tee "$OUT/summary.md"
say "raw results: $OUT"
