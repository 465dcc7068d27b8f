#!/usr/bin/env bash
# Capacity check of feed-bot against the stand-in server (bot_discard_server).
# Runs each scenario RUNS times and prints one line per run plus the median.
# Usage: capacity.sh <build-dir> [runs]   (everything binds 127.0.0.1; each run
# is bounded by --duration and by timeout; only processes started here are stopped)
set -euo pipefail
BUILD=${1:?build directory}
RUNS=${2:-3}
BOT=$BUILD/feed-bot
SERVER=$BUILD/src/bot/bot_discard_server
OUT=$(mktemp -d)
SERVER_PID=
trap '[[ -n $SERVER_PID ]] && kill $SERVER_PID 2>/dev/null; rm -rf "$OUT"' EXIT

start_server() {
  "$SERVER" --port 0 --max-seconds 300 "$@" >"$OUT/server.out" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 50); do grep -q '^port' "$OUT/server.out" 2>/dev/null && break; sleep 0.1; done
  PORT=$(awk '/^port/{print $2}' "$OUT/server.out")
}
stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }

# scenario <name> <server flags> -- <bot flags>
scenario() {
  local name=$1; shift
  local sflags=()
  while [[ $1 != -- ]]; do sflags+=("$1"); shift; done; shift
  : >"$OUT/$name.lines"
  for run in $(seq "$RUNS"); do
    start_server "${sflags[@]}"
    /usr/bin/time -f '%U %S %e' -o "$OUT/time" timeout 120 "$BOT" --api "http://127.0.0.1:$PORT" --progress 0 \
      --log-level warn "$@" >"$OUT/bot.json" 2>"$OUT/bot.err" || true
    stop_server
    python3 - "$OUT/bot.json" "$OUT/time" "$name" "$run" >>"$OUT/$name.lines" <<'PY'
import json, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
u, s, e = map(float, open(sys.argv[2]).read().split()[-3:])
p, l, dl, e2e = d["posts"], d["post_latency_ms"], d["delivery"], d["e2e_latency_ms"]
print(json.dumps({"run": int(sys.argv[4]), "rate": round(d["achieved_rate"]), "ok": p["accepted_2xx"],
  "err": p["transport_errors"] + p["failed_5xx"] + p["rejected_4xx"], "drop": p["dropped_by_client"],
  "p50": l["p50"], "p99": l["p99"], "p999": l["p99_9"], "subs": d["subscribers"]["connected"],
  "deliv": dl["deliveries"], "missing": dl["missing"], "dup": dl["duplicated"], "e2e_p50": e2e["p50"],
  "e2e_p99": e2e["p99"], "cpu": round((u + s) / e, 2), "exit": d["exit_code"]}))
PY
  done
  echo "== $name: $*"
  cat "$OUT/$name.lines"
  python3 - "$OUT/$name.lines" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = {k: statistics.median(r[k] for r in rows) for k in rows[0] if k != "run"}
print("median", json.dumps(med))
PY
}

scenario posts_1thread -- --rate 20000 --duration 10 --concurrency 32 --threads 1
scenario posts_2threads -- --rate 20000 --duration 10 --concurrency 32 --threads 2
scenario sse_verify_10k -- --subscribers 10000 --verify --rate 20 --duration 10 --threads 2
scenario sse_10k_plus_posts_20k --no-fanout --heartbeat 1 -- --subscribers 10000 --rate 20000 --duration 10 \
  --concurrency 32 --threads 2
