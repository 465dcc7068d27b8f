#!/usr/bin/env bash
# What replication costs, measured side by side in one run on the local
# cluster (scripts/cluster.sh: 3 Kafka brokers, PostgreSQL primary +
# synchronous standby under Patroni) and a standalone PostgreSQL
# (scripts/postgres.sh) on the same machine:
#
#   1. ingest (POST /api/messages, 202 = acks=all from the in-sync replicas)
#      into topics with replication 1 and with replication 3 on the same
#      brokers: wrk -t1 -c64, bodies from bench/post.lua;
#   2. the commits/s that the single sequence-counter row allows
#      (feed_sequence, locked by every store transaction): pgbench running the
#      worker's lock-advance-commit with 8 clients, on the synchronous pair
#      and on the standalone server;
#   3. the worker's store rate (messages/s from Kafka into the database):
#      a backlog of posts is accepted first, then one instance drains it,
#      into the synchronous pair and into the standalone server.
#
# Runs alternate A, B, A, B... so that the machine's noise falls on both
# sides; the summary gives medians and the ratio B/A.
#
#   bench/scaling.sh            ROUNDS=3 rounds of each (about 10 min)
#   bench/scaling.sh --quick    1 round, shorter runs
#   SECTIONS="2 3" bench/scaling.sh   only some of the measurements
#
# Records: bench/results/<timestamp>-scaling/{runs.jsonl,summary.md}.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS="${ROUNDS:-3}"; DURATION="${DURATION:-10}"; BACKLOG="${BACKLOG:-50000}"; SECTIONS="${SECTIONS:-1 2 3}"
section() { [[ " $SECTIONS " == *" $1 "* ]]; }
if [[ "${1:-}" == "--quick" ]]; then ROUNDS=1; DURATION=4; BACKLOG=20000; fi
export CLUSTER_PORT_BASE="${CLUSTER_PORT_BASE:-29100}"

need_built
command -v wrk >/dev/null || { say "installing wrk"; apt-get install -y -q wrk >/dev/null 2>&1 || die "no wrk"; }
PGBENCH="$(ls -d /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | sort -V | tail -1)"
[[ -x "$PGBENCH" ]] || die "pgbench not found (Debian package postgresql)"
bench_trap
OUT="$(bench_results_dir scaling)"
JSONL="$OUT/runs.jsonl"
machine_info >"$OUT/machine.txt"
say "results in $OUT"

WORK=/tmp/feed-bench-scaling
rm -rf "$WORK"; mkdir -p "$WORK"; chmod 755 "$WORK"
BENCH_CLEANUPS+=("'$ROOT/scripts/cluster.sh' stop '$WORK/cluster'")
settings="$("$ROOT/scripts/cluster.sh" start "$WORK/cluster")" || die "the cluster did not start"
BROKERS="$(sed -n 's/^KAFKA_BROKERS=//p' <<<"$settings")"
CLUSTER_DB="$(sed -n 's/^DATABASE_URL=//p' <<<"$settings")"
BENCH_CLEANUPS+=("'$ROOT/scripts/postgres.sh' stop '$WORK/pg'")
SOLO_DB="$("$ROOT/scripts/postgres.sh" start "$WORK/pg" "$(( CLUSTER_PORT_BASE + 50 ))")" || die "postgres did not start"
say "cluster: $BROKERS, $CLUSTER_DB; standalone: $SOLO_DB"

# db_url BASE_URL NAME -> the URL of a fresh database NAME on that server
db_url() {
  psql "$1" -qAt -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$2\"" >/dev/null
  python3 - "$1" "$2" <<'PY'
import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
print(urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + sys.argv[2], u.query, u.fragment)))
PY
}

RUN_ID=0
# api DB_URL [flags...] -> FEED_PID, PORT, TAG (fresh topics and group)
api() {
  local db="$1"; shift
  RUN_ID=$(( RUN_ID + 1 )); TAG="s$$-$RUN_ID"; PORT="$(free_port)"
  start_feed_api "$WORK/api-$RUN_ID" "$PORT" "$OUT/feed-api-$RUN_ID.log" --kafka-brokers "$BROKERS" \
    --database-url "$(db_url "$db" "d_${TAG//-/_}")" --kafka-events-topic "events-$TAG" \
    --kafka-processed-topic "processed-$TAG" --kafka-group "group-$TAG" "$@"
  # The first posts of a fresh process also wait for the new topics' leaders.
  "$FEED_BOT" --api "http://127.0.0.1:$PORT" --rate 500 --duration 2 --progress 0 --log-level warn >/dev/null 2>&1 || true
}

stored() { curl -fsS "http://127.0.0.1:$PORT/metrics" | awk '/^feed_worker_stored_total/ {print $2}'; }

record() {  # record JSON
  echo "$1" >>"$JSONL"
}

section 1 && say "1. ingest into replication 1 against replication 3"
section 1 && for r in $(seq "$ROUNDS"); do
  for rf in 1 3; do
    api "$CLUSTER_DB" --kafka-replication "$rf"
    LOAD_LIMIT=$(( DURATION + 30 )) run_load "$JSONL" "ingest:rf$rf:$r" kafka "feed-api:$FEED_PID" -- \
      wrk -t1 -c64 -d"${DURATION}s" --timeout 10s -s "$BENCH_DIR/post.lua" "http://127.0.0.1:$PORT"
    stop_pid "$FEED_PID"
  done
done

section 2 && say "2. commits/s through the sequence-counter row"
section 2 && cat >"$WORK/seq.sql" <<'SQL'
BEGIN;
SELECT last_seq FROM feed_sequence WHERE id = 1 FOR UPDATE;
UPDATE feed_sequence SET last_seq = last_seq + 1 WHERE id = 1;
COMMIT;
SQL
section 2 && for side in sync solo; do
  base="$CLUSTER_DB"; [[ "$side" == solo ]] && base="$SOLO_DB"
  url="$(db_url "$base" "seq_$side")"
  psql "$url" -qAt -v ON_ERROR_STOP=1 \
    -c "CREATE TABLE feed_sequence (id INT PRIMARY KEY, last_seq BIGINT NOT NULL); INSERT INTO feed_sequence VALUES (1, 0)"
  eval "SEQ_URL_$side='$url'"
done
section 2 && for r in $(seq "$ROUNDS"); do
  for side in sync solo; do
    url="SEQ_URL_$side"
    # pgbench takes libpq key=value or a URL; the multi-host URL works as is.
    tps="$("$PGBENCH" -n -c 8 -j 2 -T "$DURATION" -f "$WORK/seq.sql" "${!url}" 2>/dev/null |
           sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)"
    record "{\"label\":\"seqrow:$side:$r\",\"tps\":${tps:-0}}"
    say "  seq row, $side: ${tps:-?} commits/s"
  done
done

section 3 && say "3. the worker's store rate, synchronous standby against none"
# A backlog is put into a topic first (by an instance storing into a
# throwaway database); then a fresh instance with a new consumer group drains
# it into the database under test, and the store rate is the slope of its
# feed_worker_stored_total.
drain_rate() {  # drain_rate LABEL TOTAL
  python3 - "$JSONL" "$1" "http://127.0.0.1:$PORT/metrics" "$2" <<'PY'
import json, sys, time, urllib.request
jsonl, label, url, total = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def stored():
    for line in urllib.request.urlopen(url, timeout=5).read().decode().splitlines():
        if line.startswith("feed_worker_stored_total"):
            return float(line.split()[-1])
    return 0.0
first = None
deadline = time.monotonic() + 600
while time.monotonic() < deadline:
    n, t = stored(), time.monotonic()
    if n > 0 and first is None:
        first = (t, n)
    if n >= total:
        break
    time.sleep(0.05)
rate = (n - first[1]) / (t - first[0]) if first and t > first[0] else 0.0
with open(jsonl, "a") as f:
    f.write(json.dumps({"label": label, "store_rate": rate, "stored": n, "total": total}) + "\n")
print(f"  {label}: {n:.0f} of {total} stored at {rate:.0f}/s", file=sys.stderr)
PY
}
section 3 && for r in $(seq "$ROUNDS"); do
  for side in sync solo; do
    api "$SOLO_DB" --kafka-replication 3
    filled_topic="events-$TAG"
    "$FEED_BOT" --api "http://127.0.0.1:$PORT" --rate 30000 --count "$BACKLOG" --concurrency 64 --users 1000 \
      --progress 0 --log-level warn >/dev/null 2>&1 || true
    total="$(stored)"; for _ in $(seq 600); do sleep 0.1; n="$(stored)"; [[ "$n" == "$total" ]] && break; total=$n; done
    stop_pid "$FEED_PID"
    base="$CLUSTER_DB"; [[ "$side" == solo ]] && base="$SOLO_DB"
    RUN_ID=$(( RUN_ID + 1 )); TAG="s$$-$RUN_ID"; PORT="$(free_port)"
    start_feed_api "$WORK/api-$RUN_ID" "$PORT" "$OUT/feed-api-$RUN_ID.log" --kafka-brokers "$BROKERS" \
      --database-url "$(db_url "$base" "d_${TAG//-/_}")" --kafka-events-topic "$filled_topic" \
      --kafka-processed-topic "processed-$TAG" --kafka-group "group-$TAG"
    drain_rate "store:$side:$r" "${total%.*}"
    stop_pid "$FEED_PID"
  done
done

python3 - "$JSONL" <<'PY' | tee "$OUT/summary.md"
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
def med(xs): return statistics.median(xs) if xs else float("nan")
def ratio(b, a): return b / a if a and a == a and b == b else float("nan")
def pick(prefix): return [r for r in runs if r["label"].startswith(prefix)]
print("| measurement | A | B | B/A |")
print("| --- | --- | --- | --- |")
rf1 = [r["wrk"]["rps"] for r in pick("ingest:rf1:") if "wrk" in r]
rf3 = [r["wrk"]["rps"] for r in pick("ingest:rf3:") if "wrk" in r]
p1 = [r["wrk"]["lat_ms"]["p99"] for r in pick("ingest:rf1:") if "wrk" in r]
p3 = [r["wrk"]["lat_ms"]["p99"] for r in pick("ingest:rf3:") if "wrk" in r]
print(f"| ingest posts/s, replication 1 (A) / 3 (B) | {med(rf1):.0f} | {med(rf3):.0f} | {ratio(med(rf3), med(rf1)):.2f} |")
print(f"| ingest p99 ms, replication 1 (A) / 3 (B) | {med(p1):.1f} | {med(p3):.1f} | {ratio(med(p3), med(p1)):.2f} |")
solo = [r["tps"] for r in pick("seqrow:solo:")]; sync = [r["tps"] for r in pick("seqrow:sync:")]
print(f"| sequence-row commits/s, standalone (A) / synchronous standby (B) | {med(solo):.0f} | {med(sync):.0f} | {ratio(med(sync), med(solo)):.2f} |")
solo = [r["store_rate"] for r in pick("store:solo:")]; sync = [r["store_rate"] for r in pick("store:sync:")]
print(f"| worker store rate, messages/s, standalone (A) / synchronous standby (B) | {med(solo):.0f} | {med(sync):.0f} | {ratio(med(sync), med(solo)):.2f} |")
print()
print(f"rounds: {len(rf1)}; raw records: {sys.argv[1]}")
PY
say "raw results: $OUT"
