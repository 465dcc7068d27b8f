#!/usr/bin/env bash
# Physical limits, measured in the same run as our own figures:
#   1. Kafka's ProducerPerformance (acks=all, idempotence, the size of our
#      envelope, a 3-partition topic like ours) against feed-api's durable
#      ingest in Kafka + PostgreSQL mode (wrk, 256 connections: 202s/s);
#   2. PostgreSQL COPY of N rows shaped like our messages into a table with
#      the same schema and indexes, against the rows/s our worker stores:
#      N messages posted as fast as feed-bot can, timed until
#      GET /api/messages?limit=1 shows the last seq — in Kafka + PostgreSQL
#      mode and in in-process queue + PostgreSQL mode (both bounded by how
#      fast posts arrive), and the worker alone: a second feed-api with a
#      fresh consumer group and an empty database drains the N messages the
#      first one left in Kafka.
#
#   bench/limits.sh           N=100000, 3 runs each (about 6 min)
#   bench/limits.sh --quick   N=20000, 1 run
#   FEED_API_BEFORE=/path/to/older/feed-api bench/limits.sh
#                             also drains each round with that binary
#                             (alternating which goes first): a before/after
#                             comparison of the worker in the same run
#
# Kafka and PostgreSQL are started with scripts/kafka.sh / scripts/postgres.sh
# on free ports, data under /tmp, and stopped at the end.
# Records: bench/results/<timestamp>-limits/{runs.jsonl,summary.md}.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS="${RUNS:-3}"; N="${N:-100000}"; DURATION="${DURATION:-10}"; CONTENT_SIZE="${CONTENT_SIZE:-100}"
if [[ "${1:-}" == "--quick" ]]; then RUNS=1; N=20000; DURATION=5; fi

need_built
bench_trap
OUT="$(bench_results_dir limits)"
JSONL="$OUT/runs.jsonl"
machine_info >"$OUT/machine.txt"
say "results in $OUT"
start_services /tmp/feed-bench-limits-svc
KAFKA="$ROOT/scripts/kafka.sh"

# The size of our Kafka record value: the message.created envelope of a
# message with CONTENT_SIZE bytes of content (user_NNN ids, as feed-bot sends).
ENVELOPE_SIZE="$(python3 - "$CONTENT_SIZE" <<'PY'
import json, sys, uuid
n = int(sys.argv[1])
env = {"id": str(uuid.uuid4()), "event_type": "message.created", "timestamp": "2026-01-01T12:00:00.123456Z",
       "version": "1.0", "data": {"id": str(uuid.uuid4()), "user_id": "user_123", "content": "x" * n,
                                   "created_at": "2026-01-01T12:00:00.123456Z"}}
print(len(json.dumps(env, separators=(",", ":"))))
PY
)"
say "envelope size for $CONTENT_SIZE-byte content: $ENVELOPE_SIZE bytes"
echo "{\"label\":\"envelope\",\"bytes\":$ENVELOPE_SIZE,\"content_size\":$CONTENT_SIZE}" >>"$JSONL"

RUN_ID=0
start_api() {  # start_api kafka|queue -> FEED_PID PORT PROCS
  PORT="$(free_port)"; RUN_ID=$(( RUN_ID + 1 ))
  local t="limits$$-$RUN_ID"
  if [[ "$1" == kafka ]]; then
    start_feed_api /tmp/feed-bench-limits "$PORT" "$OUT/feed-api.log" --threads 1 \
      --kafka-brokers "$KAFKA_BROKERS" --database-url "$DATABASE_URL" --queue-capacity 200000 \
      --kafka-events-topic "events-$t" --kafka-processed-topic "processed-$t" --kafka-group "group-$t"
    PROCS="feed-api:$FEED_PID,kafka:$KAFKA_PID,postgres:$(pg_pids)"
    # Measure the steady state: 2 s of discarded posts first (a fresh
    # process's first posts also wait for new topics' leaders and the
    # idempotent producer's id).
    "$FEED_BOT" --api "http://127.0.0.1:$PORT" --rate 500 --duration 2 --progress 0 --log-level warn \
      >/dev/null 2>&1 || true
  else
    start_feed_api /tmp/feed-bench-limits "$PORT" "$OUT/feed-api.log" --threads 1 \
      --database-url "$DATABASE_URL" --queue-capacity 200000
    PROCS="feed-api:$FEED_PID,postgres:$(pg_pids)"
  fi
}

# The newest seq. Polled in a loop while the worker runs, so it must be cheap:
# a Python interpreter per poll took a tenth of these two cores away from the
# processes being measured.
top_seq() {
  local s
  s="$(curl -s --max-time 5 "http://127.0.0.1:$PORT/api/messages?limit=1" | grep -o '"seq":[0-9]*' | head -1)"
  echo "${s#*:}" | grep -E '^[0-9]+$' || echo 0
}

# persist MODE RUN: post N messages as fast as possible; time until stored.
persist() {
  local mode="$1" r="$2" s0 base t0 t_posted t_stored seq la t_a t_b
  start_api "$mode"
  base="$(top_seq)"
  la="$(loadavg)"; t_a="$(procs_ticks "$PROCS")"
  t0="$(now_s)"
  timeout -s INT -k 30 300 "$FEED_BOT" --api "http://127.0.0.1:$PORT" --count "$N" --rate 10000000 \
    --duration 300 --concurrency 128 --queue "$N" --users 1000 --content-size "$CONTENT_SIZE" \
    --progress 0 --log-level warn >"$OUT/persist-$mode-$r.json" 2>/dev/null || true
  t_posted="$(now_s)"
  local accepted; accepted="$(json_get "$OUT/persist-$mode-$r.json" 'j["posts"]["accepted_2xx"]')"
  local end=$(( $(date +%s) + 300 ))
  seq="$(top_seq)"
  while (( seq < base + accepted )) && (( $(date +%s) < end )); do
    sleep 0.05; seq="$(top_seq)"
  done
  t_stored="$(now_s)"; t_b="$(procs_ticks "$PROCS")"
  python3 - "$JSONL" "$mode" "$r" "$N" "$accepted" "$base" "$seq" "$t0" "$t_posted" "$t_stored" "$la" "$t_a" "$t_b" "$CLK_TCK" <<'PY'
import json, sys
jsonl, mode, r, n, acc, base, seq, t0, tp, ts, la, ta, tb, hz = sys.argv[1:15]
parse = lambda s: {kv.split("=")[0]: int(kv.split("=")[1]) for kv in s.split(",") if kv}
a, b = parse(ta), parse(tb)
wall = float(ts) - float(t0)
rec = {"label": f"persist:{mode}:{r}", "mode": mode, "n": int(n), "accepted": int(acc or 0),
       "stored": int(seq) - int(base), "post_s": float(tp) - float(t0), "store_s": wall,
       "posted_per_s": int(acc or 0) / (float(tp) - float(t0)),
       "stored_per_s": (int(seq) - int(base)) / wall, "loadavg_before": float(la),
       "cpu_pct": {k: 100.0 * (b.get(k, 0) - a[k]) / int(hz) / wall for k in a}}
open(jsonl, "a").write(json.dumps(rec) + "\n")
print(f"  persist {mode} run {r}: {rec['accepted']} accepted in {rec['post_s']:.2f} s, {rec['stored']} stored in "
      f"{wall:.2f} s = {rec['stored_per_s']:,.0f} rows/s; cpu " +
      " ".join(f"{k}={v:.0f}%" for k, v in rec["cpu_pct"].items()), file=sys.stderr)
PY
  stop_pid "$FEED_PID"
}

# drain RUN: the worker alone. The persist kafka run left N envelopes in its
# events topic; a second feed-api with a fresh consumer group (which starts
# at the earliest offset) and a fresh, empty database stores them all. Timed
# from its first stored row to the last (and from process start).
drain() {  # drain RUN [before]
  local r="$1" variant="${2:-}" t="limits$$-$RUN_ID" db="drain_$$_$1${2:+_$2}" url t0 t_first="" t_last seq la ta tb
  local label="drain" FEED_API="$FEED_API"  # start_feed_api runs $FEED_API
  if [[ "$variant" == before ]]; then label="drain-before"; FEED_API="$FEED_API_BEFORE"; fi
  psql -qX "$DATABASE_URL" -c "CREATE DATABASE $db" >/dev/null
  url="${DATABASE_URL/\/defaultdb/\/$db}"
  PORT="$(free_port)"
  la="$(loadavg)"; ta="$(procs_ticks "kafka:$KAFKA_PID,postgres:$(pg_pids)")"
  t0="$(now_s)"
  start_feed_api /tmp/feed-bench-limits-drain "$PORT" "$OUT/feed-api-drain.log" --threads 1 \
    --kafka-brokers "$KAFKA_BROKERS" --database-url "$url" \
    --kafka-events-topic "events-$t" --kafka-processed-topic "drained-$t${2:+-$2}" --kafka-group "drain-$t${2:+-$2}"
  local end=$(( $(date +%s) + 300 ))
  seq="$(top_seq)"
  while (( seq < N )) && (( $(date +%s) < end )); do
    if [[ -z "$t_first" ]] && (( seq > 0 )); then t_first="$(now_s)"; fi
    sleep 0.05; seq="$(top_seq)"
  done
  t_last="$(now_s)"; tb="$(procs_ticks "feed-api:$FEED_PID,kafka:$KAFKA_PID,postgres:$(pg_pids)")"
  ta="feed-api=0,$ta"  # feed-api starts inside the window
  python3 - "$JSONL" "$r" "$N" "$seq" "$t0" "${t_first:-$t_last}" "$t_last" "$la" "$ta" "$tb" "$CLK_TCK" "$label" <<'PY'
import json, sys
jsonl, r, n, seq, t0, tf, tl, la, ta, tb, hz, label = sys.argv[1:13]
parse = lambda s: {kv.split("=")[0]: int(kv.split("=")[1]) for kv in s.split(",") if kv}
a, b = parse(ta), parse(tb)
wall = float(tl) - float(t0)
span = float(tl) - float(tf)
rec = {"label": f"{label}:kafka:{r}", "n": int(n), "stored": int(seq), "from_start_s": wall, "first_to_last_s": span,
       "stored_per_s": int(seq) / wall, "stored_per_s_after_first": (int(seq) - 1) / span if span > 0 else None,
       "loadavg_before": float(la), "cpu_pct": {k: 100.0 * (b.get(k, 0) - a.get(k, 0)) / int(hz) / wall for k in b}}
open(jsonl, "a").write(json.dumps(rec) + "\n")
print(f"  {label} run {r}: {seq} rows stored {wall:.2f} s after start ({rec['stored_per_s']:,.0f}/s), "
      f"{span:.2f} s first->last ({(rec['stored_per_s_after_first'] or 0):,.0f}/s)", file=sys.stderr)
PY
  stop_pid "$FEED_PID"
}

# COPY of N rows shaped like ours into a table with the same schema.
make_csv() {
  python3 - "$1" "$N" "$CONTENT_SIZE" <<'PY'
import random, sys, uuid
path, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
words = ["the", "feed", "is", "fast", "café", "deploy", "green", "build", "lunch", "queue"]
with open(path, "w") as f:
    for i in range(1, n + 1):
        c = " ".join(random.choice(words) for _ in range(size // 4))[:size].replace('"', "")
        f.write(f'{uuid.uuid4()},user_{random.randint(1, 1000)},"{c}",2026-01-01 12:00:00.{i % 1000000:06d}+00,{i}\n')
PY
}
copy_run() {  # copy_run RUN
  local r="$1" t0 t1 la ta tb
  psql -q -X "$DATABASE_URL" -v ON_ERROR_STOP=1 >/dev/null <<SQL
DROP TABLE IF EXISTS copy_bench;
CREATE TABLE copy_bench (LIKE messages INCLUDING ALL);
SQL
  la="$(loadavg)"; ta="$(procs_ticks "postgres:$(pg_pids)")"
  t0="$(now_s)"
  psql -q -X "$DATABASE_URL" -v ON_ERROR_STOP=1 \
    -c "\\copy copy_bench (id, user_id, content, created_at, seq) FROM '$OUT/rows.csv' WITH (FORMAT csv)" >/dev/null
  t1="$(now_s)"; tb="$(procs_ticks "postgres:$(pg_pids)")"
  local rows; rows="$(psql -qtAX "$DATABASE_URL" -c 'SELECT count(*) FROM copy_bench')"
  python3 - "$JSONL" "$r" "$rows" "$t0" "$t1" "$la" "$ta" "$tb" "$CLK_TCK" <<'PY'
import json, sys
jsonl, r, rows, t0, t1, la, ta, tb, hz = sys.argv[1:10]
wall = float(t1) - float(t0)
cpu = 100.0 * (int(tb.split("=")[1]) - int(ta.split("=")[1])) / int(hz) / wall
rec = {"label": f"copy:{r}", "rows": int(rows), "s": wall, "rows_per_s": int(rows) / wall,
       "loadavg_before": float(la), "cpu_pct": {"postgres": cpu}}
open(jsonl, "a").write(json.dumps(rec) + "\n")
print(f"  COPY run {r}: {rows} rows in {wall:.2f} s = {int(rows) / wall:,.0f} rows/s; postgres cpu {cpu:.0f}%", file=sys.stderr)
PY
}

perf_producer() {  # perf_producer RUN
  local r="$1" topic="perf-$$-$1" la ta tb t0 t1
  "$KAFKA" topics --bootstrap-server "$KAFKA_BROKERS" --create --topic "$topic" --partitions 3 \
    --replication-factor 1 >/dev/null 2>&1 || true
  la="$(loadavg)"; ta="$(procs_ticks "kafka:$KAFKA_PID")"; t0="$(now_s)"
  "$KAFKA" perf-producer --topic "$topic" --num-records "$N" --record-size "$ENVELOPE_SIZE" \
    --throughput -1 --producer-props "bootstrap.servers=$KAFKA_BROKERS" acks=all enable.idempotence=true \
    >"$OUT/perf-producer-$r.txt" 2>&1 || true
  t1="$(now_s)"; tb="$(procs_ticks "kafka:$KAFKA_PID")"
  python3 - "$JSONL" "$r" "$OUT/perf-producer-$r.txt" "$la" "$ta" "$tb" "$CLK_TCK" "$t0" "$t1" <<'PY'
import json, re, sys
jsonl, r, path, la, ta, tb, hz, t0, t1 = sys.argv[1:10]
text = open(path).read()
m = None
for line in text.splitlines():
    mm = re.search(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
                   r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th", line)
    if mm: m = mm
wall = float(t1) - float(t0)
cpu = 100.0 * (int(tb.split("=")[1]) - int(ta.split("=")[1])) / int(hz) / wall
rec = {"label": f"perf-producer:{r}", "loadavg_before": float(la), "broker_cpu_pct_over_tool_wall": cpu}
if m:
    rec.update({"records": int(m[1]), "records_per_s": float(m[2]), "mb_per_s": float(m[3]),
                "avg_ms": float(m[4]), "p50_ms": float(m[6]), "p99_ms": float(m[8])})
open(jsonl, "a").write(json.dumps(rec) + "\n")
print(f"  perf-producer run {r}: {rec.get('records_per_s', 'FAILED')} records/s, p99 {rec.get('p99_ms')} ms", file=sys.stderr)
PY
}

# The messages table exists once feed-api has run its migrations.
start_api queue; stop_pid "$FEED_PID"
make_csv "$OUT/rows.csv"

for r in $(seq "$RUNS"); do
  perf_producer "$r"
  start_api kafka
  LOAD_LIMIT=$(( DURATION + 30 )) run_load "$JSONL" "wrk-kafka:256:$r" kafka "$PROCS" -- \
    wrk -t2 -c256 -d"${DURATION}s" --timeout 10s -s "$BENCH_DIR/post.lua" "http://127.0.0.1:$PORT"
  stop_pid "$FEED_PID"
  python3 "$BENCH_DIR/report.py" ingest-line "$JSONL"
  copy_run "$r"
  persist kafka "$r"
  if [[ -n "${FEED_API_BEFORE:-}" ]] && (( r % 2 == 1 )); then drain "$r" before; fi
  drain "$r"
  if [[ -n "${FEED_API_BEFORE:-}" ]] && (( r % 2 == 0 )); then drain "$r" before; fi
  persist queue "$r"
done

python3 "$BENCH_DIR/report.py" limits "$JSONL" | tee "$OUT/summary.md"
say "raw results: $OUT"
