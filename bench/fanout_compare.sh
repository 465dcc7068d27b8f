#!/usr/bin/env bash
# Fan-out of two feed-api builds side by side: the same feed-bot load (SUBS
# subscribers, RATE posts/s for DURATION s, delivery verified) against
# FEED_API_BEFORE and FEED_API (default build/feed-api; FEED_BOT likewise), alternating for
# ROUNDS rounds, embedded mode, one fresh data dir per run. Prints one line
# per run: deliveries/s, e2e p50/p99 and the server's CPU seconds.
#
#   FEED_API_BEFORE=/path/to/old/feed-api bench/fanout_compare.sh 2000 1000 5
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SUBS=${1:-1000}; RATE=${2:-100}; DURATION=${3:-10}; ROUNDS=${ROUNDS:-3}
: "${FEED_API_BEFORE:?set FEED_API_BEFORE to the older feed-api binary}"
AFTER=$FEED_API
BOT=$FEED_BOT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

one_run() {
  local label="$1" bin="$2" dir port pid t0 t1 out
  dir=$(mktemp -d /tmp/feed-fanout-compare.XXXXXX)
  port=$(free_port)
  "$bin" --port "$port" --data-dir "$dir" --log-level warn &
  pid=$!
  wait_http "http://127.0.0.1:$port/api/health" 20
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

for ((r = 1; r <= ROUNDS; r++)); do
  one_run before "$FEED_API_BEFORE"
  one_run after "$AFTER"
done
