#!/usr/bin/env bash
# Fan-out of two feed-api builds side by side: the same feed-bot load (SUBS
# subscribers, RATE posts/s for DURATION s, delivery verified) against
# FEED_API_BEFORE and FEED_API (default build/feed-api; FEED_BOT likewise), alternating for
# ROUNDS rounds, embedded mode, one fresh data dir per run. Prints one line
# per run: deliveries/s, e2e p50/p99 and the server's CPU seconds.
# KAFKA=1: Kafka + PostgreSQL mode instead (a broker and PostgreSQL started
# on free ports, fresh topics and group per run, 2 s of discarded posts
# first), where an event crosses Kafka twice before it is streamed.
#
#   FEED_API_BEFORE=/path/to/old/feed-api bench/fanout_compare.sh 2000 1000 5
#   KAFKA=1 FEED_API_BEFORE=/path/to/old/feed-api bench/fanout_compare.sh 10 200 10
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SUBS=${1:-1000}; RATE=${2:-100}; DURATION=${3:-10}; ROUNDS=${ROUNDS:-3}
: "${FEED_API_BEFORE:?set FEED_API_BEFORE to the older feed-api binary}"
AFTER=$FEED_API
BOT=$FEED_BOT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

RUN_ID=0
one_run() {
  local label="$1" bin="$2" dir port pid t0 t1 out extra=()
  dir=$(mktemp -d /tmp/feed-fanout-compare.XXXXXX)
  port=$(free_port)
  RUN_ID=$((RUN_ID + 1))
  if [[ "${KAFKA:-0}" == 1 ]]; then
    local t="cmp$$-$RUN_ID"
    extra=(--kafka-brokers "$KAFKA_BROKERS" --database-url "$DATABASE_URL"
           --kafka-events-topic "events-$t" --kafka-processed-topic "processed-$t" --kafka-group "group-$t")
  fi
  "$bin" --port "$port" --data-dir "$dir" --log-level warn "${extra[@]}" &
  pid=$!
  if [[ "${KAFKA:-0}" == 1 ]]; then  # ready: the group joined; then the topics warmed
    wait_http "http://127.0.0.1:$port/api/ready" 60
    "$BOT" --api "http://127.0.0.1:$port" --rate 200 --duration 2 >/dev/null 2>&1 || true
  else
    wait_http "http://127.0.0.1:$port/api/health" 20
  fi
  t0=$(cpu_ticks "$pid")
  out=$(timeout $((DURATION + 40)) "$BOT" --api "http://127.0.0.1:$port" --users 50 --rate "$RATE" \
        --duration "$DURATION" --subscribers "$SUBS" --verify --threads 2 2>/dev/null | tail -1) || true
  t1=$(cpu_ticks "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
  python3 - "$label" "$SUBS" "$RATE" "$((t1 - t0))" "$out" <<'PY'
import json, sys
label, subs, rate, ticks, out = sys.argv[1:]
j = json.loads(out)
d, e = j["delivery"], j["e2e_latency_ms"]
print(f"{label:6} subs={subs} rate={rate} deliveries/s={d['deliveries'] / j['duration_s']:.0f} "
      f"missing={d['missing']} dup={d['duplicated']} e2e_p50_ms={e['p50']:.2f} e2e_p99_ms={e['p99']:.2f} "
      f"server_cpu_s={int(ticks) / 100:.2f}")
PY
}

if [[ "${KAFKA:-0}" == 1 ]]; then
  bench_trap
  start_services /tmp/feed-fanout-compare-svc
fi
for ((r = 1; r <= ROUNDS; r++)); do
  one_run before "$FEED_API_BEFORE"
  one_run after "$AFTER"
done
