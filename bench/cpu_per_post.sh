#!/usr/bin/env bash
# Server CPU per accepted post: how many microseconds of feed-api CPU time
# (utime+stime from /proc/<pid>/stat, all threads) one 202 costs, with wrk
# closed-loop (-t1 -c256, bodies from bench/post.lua), old binary beside new.
#
#   FEED_API_BEFORE=/tmp/before/feed-api bench/cpu_per_post.sh
#   MODES=embedded RUNS=5 DURATION=10 bench/cpu_per_post.sh
#   PROFILE=1 ...   also one extra (unmeasured) run per binary and mode under
#                   `perf record -g`; top entries in profile-<mode>-<bin>.txt
#   ALLOC=1 ...     feed-api under an LD_PRELOAD malloc counter
#                   (bench/micro/malloc_count.c): heap calls per post. It adds
#                   a few % of CPU, so use it for counts, not for µs/post.
#   SYSCALLS=1 ...  perf stat of raw_syscalls:sys_enter and context switches
#                   of feed-api during every measured run (small overhead):
#                   syscalls and wake-ups per post.
# Every run also records CPU µs per post by thread name (loop-0,
# worker-store, kafka-sub, ...; builds before the threads were named show
# one "feed-api" line) and the kernel's part of it (stime), and the summary
# tabulates their medians.
#
# Runs alternate which binary goes first (before/after, after/before, ...),
# each with a fresh --data-dir (and fresh topics in Kafka mode). Accepted
# posts are the server's own count of 2xx responses (/metrics) over the run,
# which equals wrk's non-error requests. Without FEED_API_BEFORE the build's
# binary is compared with itself (a calibration of the noise).
# In Kafka mode a broker and PostgreSQL are started on free ports
# (lib.sh start_services: scripts/kafka.sh, scripts/postgres.sh), stopped at the
# end; the broker gets one discarded warm-up run, and each fresh feed-api 2 s
# of discarded posts.
# Records: bench/results/<ts>-cpu/runs.jsonl (one JSON line per run) and
# summary.md (medians per mode and binary, ratio after/before).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS="${RUNS:-3}"; DURATION="${DURATION:-15}"; CONNS="${CONNS:-256}"; WRK_THREADS="${WRK_THREADS:-1}"
MODES="${MODES:-embedded kafka}"
PROFILE="${PROFILE:-0}"; ALLOC="${ALLOC:-0}"; SYSCALLS="${SYSCALLS:-0}"
AFTER_BIN="$FEED_API"
BEFORE_BIN="${FEED_API_BEFORE:-$FEED_API}"

need_built
[[ -x "$BEFORE_BIN" ]] || die "FEED_API_BEFORE=$BEFORE_BIN is not executable"
command -v wrk >/dev/null || { say "installing wrk"; apt-get install -y -q wrk >/dev/null 2>&1 || die "no wrk"; }
if [[ "$PROFILE" == 1 || "$SYSCALLS" == 1 ]]; then command -v perf >/dev/null || die "PROFILE/SYSCALLS need perf"; fi
bench_trap
OUT="$(bench_results_dir cpu)"
JSONL="$OUT/runs.jsonl"
machine_info >"$OUT/machine.txt"
{ echo "before: $BEFORE_BIN"; echo "after: $AFTER_BIN"; } >>"$OUT/machine.txt"
say "results in $OUT"

PRELOAD=""
if [[ "$ALLOC" == 1 ]]; then
  PRELOAD="$OUT/malloc_count.so"
  cc -O2 -shared -fPIC -o "$PRELOAD" "$BENCH_DIR/micro/malloc_count.c" -lpthread || die "cannot build malloc_count.so"
fi

# The server's count of 2xx responses (0 when it does not answer).
ok_count() {
  curl -s --max-time 5 "http://127.0.0.1:$PORT/metrics" |
    awk '/^feed_http_responses_total\{class="2xx"\}/ {printf "%d", $2; found=1} END {if (!found) print 0}'
}

# Context switches (voluntary, involuntary) summed over the threads of PID.
ctx_switches() {
  cat /proc/"$1"/task/*/status 2>/dev/null |
    awk '/^voluntary_ctxt_switches/ {v+=$2} /^nonvoluntary_ctxt_switches/ {n+=$2} END {printf "%d %d", v, n}'
}

# CPU ticks of PID's threads, one "name utime+stime stime" line per thread
# name (the server names its threads: loop-0, worker-store, ...).
thread_ticks() {
  for t in /proc/"$1"/task/*; do
    local name stat
    name="$(cat "$t/comm" 2>/dev/null)" || continue
    stat="$(cat "$t/stat" 2>/dev/null)" || continue
    stat="${stat##*) }"  # past the comm field, which may hold spaces
    awk -v n="$name" '{print n, $12 + $13, $13}' <<<"$stat"
  done | awk '{sum[$1] += $2; sys[$1] += $3} END {for (n in sum) print n, sum[n], sys[n]}'
}

RUN_ID=0
# start_api MODE BIN -> FEED_PID, PORT
start_api() {
  local mode="$1" bin="$2" FEED_API="$2"  # start_feed_api runs $FEED_API
  PORT="$(free_port)"
  RUN_ID=$(( RUN_ID + 1 ))
  local extra=()
  if [[ "$mode" == kafka ]]; then
    local t="cpu$$-$RUN_ID"
    extra=(--kafka-brokers "$KAFKA_BROKERS" --database-url "$DATABASE_URL"
           --kafka-events-topic "events-$t" --kafka-processed-topic "processed-$t" --kafka-group "group-$t")
  fi
  if [[ -n "$PRELOAD" ]]; then
    export MALLOC_COUNT_FILE="$OUT/malloc.$RUN_ID"
    LD_PRELOAD="$PRELOAD" start_feed_api /tmp/feed-bench-cpu "$PORT" "$OUT/feed-api.log" --threads 1 "${extra[@]}"
    unset MALLOC_COUNT_FILE
  else
    start_feed_api /tmp/feed-bench-cpu "$PORT" "$OUT/feed-api.log" --threads 1 "${extra[@]}"
  fi
  if [[ "$mode" == kafka ]]; then
    "$FEED_BOT" --api "http://127.0.0.1:$PORT" --rate 500 --duration 2 --progress 0 --log-level warn \
      >/dev/null 2>&1 || true
  fi
}

# measure MODE WHICH(before|after) RUN [profile]
measure() {
  local mode="$1" which="$2" r="$3" profile="${4:-}" bin tmp
  bin="$AFTER_BIN"; [[ "$which" == before ]] && bin="$BEFORE_BIN"
  start_api "$mode" "$bin"
  tmp="$(mktemp -d)"
  local perf_pid="" stat_pid=""
  if [[ -n "$profile" ]]; then
    perf record -q -g -o "$OUT/perf-$mode-$which.data" -p "$FEED_PID" -- sleep "$DURATION" >/dev/null 2>&1 &
    perf_pid=$!; track_pid "$perf_pid"
  elif [[ "$SYSCALLS" == 1 ]]; then
    perf stat -x, -o "$tmp/perfstat" -e raw_syscalls:sys_enter,context-switches,cpu-migrations \
      -p "$FEED_PID" -- sleep "$DURATION" >/dev/null 2>&1 &
    stat_pid=$!; track_pid "$stat_pid"
  fi
  local ok0 ok1 t0 t1 cs0 cs1 m0="0 0 0" m1="0 0 0" s0 s1 la
  la="$(loadavg)"
  [[ -n "$PRELOAD" ]] && m0="$(cat "$OUT/malloc.$RUN_ID" 2>/dev/null || echo "0 0 0")"
  thread_ticks "$FEED_PID" >"$tmp/threads0"
  ok0="$(ok_count)"; cs0="$(ctx_switches "$FEED_PID")"; t0="$(cpu_ticks "$FEED_PID")"; s0="$(now_s)"
  timeout -s INT -k 10 $(( DURATION + 30 )) wrk -t"$WRK_THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 10s \
    -s "$BENCH_DIR/post.lua" "http://127.0.0.1:$PORT" >"$tmp/wrk" 2>&1 || true
  s1="$(now_s)"; t1="$(cpu_ticks "$FEED_PID")"; cs1="$(ctx_switches "$FEED_PID")"; ok1="$(ok_count)"
  thread_ticks "$FEED_PID" >"$tmp/threads1"
  if [[ -n "$PRELOAD" ]]; then sleep 0.25; m1="$(cat "$OUT/malloc.$RUN_ID" 2>/dev/null || echo "0 0 0")"; fi
  if [[ -n "$perf_pid" ]]; then wait "$perf_pid" 2>/dev/null || true; untrack_pid "$perf_pid"; fi
  if [[ -n "$stat_pid" ]]; then wait "$stat_pid" 2>/dev/null || true; untrack_pid "$stat_pid"; fi
  stop_pid "$FEED_PID"
  python3 - "$JSONL" "$mode" "$which" "$r" "$bin" "$tmp" "$ok0" "$ok1" "$t0" "$t1" "$CLK_TCK" "$s0" "$s1" \
    "$cs0" "$cs1" "$m0" "$m1" "$la" "${profile:-}" <<'PY'
import json, sys
(jsonl, mode, which, r, binary, tmp, ok0, ok1, t0, t1, hz, s0, s1, cs0, cs1, m0, m1, la, profile) = sys.argv[1:20]
wrk = {}
for line in open(f"{tmp}/wrk", errors="replace"):
    if line.startswith("WRK_JSON "):
        wrk = json.loads(line[9:])
# The /metrics scrape that read ok0 is itself a 2xx counted in ok1.
accepted = max(0, int(ok1) - int(ok0) - 1)
cpu_s = (int(t1) - int(t0)) / int(hz)
wall = float(s1) - float(s0)
dur = wrk.get("duration_s") or wall
v0, n0 = map(int, cs0.split()); v1, n1 = map(int, cs1.split())
a0 = list(map(int, m0.split())); a1 = list(map(int, m1.split()))
rec = {"label": f"{mode}:{which}:{r}" + (":profile" if profile else ""), "mode": mode, "which": which,
       "run": int(r), "binary": binary, "profiled": bool(profile), "loadavg_before": float(la),
       "accepted": accepted, "wall_s": wall, "posts_per_s": accepted / dur if dur else 0,
       "server_cpu_s": cpu_s, "server_cpu_pct": 100 * cpu_s / wall if wall else None,
       "us_per_post": 1e6 * cpu_s / accepted if accepted else None,
       "ctx_switches_per_post": ((v1 - v0) + (n1 - n0)) / accepted if accepted else None,
       "voluntary_cs_per_post": (v1 - v0) / accepted if accepted else None,
       "p50_ms": wrk.get("lat_ms", {}).get("p50"), "p99_ms": wrk.get("lat_ms", {}).get("p99"),
       "wrk": wrk}
if a1[0]:
    rec["allocs_per_post"] = (a1[0] - a0[0]) / accepted if accepted else None
    rec["frees_per_post"] = (a1[1] - a0[1]) / accepted if accepted else None
    rec["alloc_bytes_per_post"] = (a1[2] - a0[2]) / accepted if accepted else None
# CPU µs per post by thread name, and the kernel's part of it.
def ticks(path):
    out = {}
    for line in open(path):
        name, n, s = line.rsplit(None, 2)
        out[name] = (int(n), int(s))
    return out
before_t, after_t = ticks(f"{tmp}/threads0"), ticks(f"{tmp}/threads1")
if accepted:
    def per_post(n, i):
        return 1e6 * (after_t[n][i] - before_t.get(n, (0, 0))[i]) / int(hz) / accepted
    rec["us_per_post_by_thread"] = {n: per_post(n, 0) for n in sorted(after_t)}
    rec["sys_us_per_post_by_thread"] = {n: per_post(n, 1) for n in sorted(after_t)}
try:
    for line in open(f"{tmp}/perfstat"):
        parts = line.strip().split(",")
        if len(parts) > 2 and parts[0].isdigit():
            rec[parts[2].replace(":", "_").replace("-", "_") + "_per_post"] = int(parts[0]) / accepted if accepted else None
except FileNotFoundError:
    pass
open(jsonl, "a").write(json.dumps(rec) + "\n")
extra = "".join(f" {k}={rec[k]:.2f}" for k in rec if k.endswith("_per_post") and k != "us_per_post" and rec[k] is not None)
print(f"  {rec['label']}: {accepted} accepted, {rec['posts_per_s']:,.0f}/s, "
      f"{(rec['us_per_post'] or 0):.1f} us/post at {(rec['server_cpu_pct'] or 0):.0f}% cpu, "
      f"p50 {rec['p50_ms']} ms p99 {rec['p99_ms']} ms,{extra}", file=sys.stderr)
PY
  rm -rf "$tmp"
  if [[ -n "$profile" ]]; then
    perf report -i "$OUT/perf-$mode-$which.data" --no-children --percent-limit 1 --stdio -g none \
      --sort dso,symbol 2>/dev/null | grep -v '^#' | grep -v '^$' | sed -E 's/ +- +- *$//; s/ {2,}/  /g' | head -40 >"$OUT/profile-$mode-$which.txt" || true
    perf report -i "$OUT/perf-$mode-$which.data" --no-children --percent-limit 1 --stdio -g none \
      --sort dso 2>/dev/null | grep -v '^#' | grep -v '^$' | sed -E 's/ {2,}/  /g' | head -15 >"$OUT/profile-dso-$mode-$which.txt" || true
    say "profile: $OUT/profile-$mode-$which.txt"
  fi
}

for mode in $MODES; do
  if [[ "$mode" == kafka ]]; then
    start_services /tmp/feed-bench-cpu-svc
    start_api kafka "$AFTER_BIN"   # warm the broker's JVM up; discarded
    wrk -t1 -c64 -d5s -s "$BENCH_DIR/post.lua" "http://127.0.0.1:$PORT" >/dev/null 2>&1 || true
    stop_pid "$FEED_PID"
  fi
  for r in $(seq "$RUNS"); do
    if (( r % 2 == 1 )); then order=(before after); else order=(after before); fi
    for which in "${order[@]}"; do measure "$mode" "$which" "$r"; done
  done
  if [[ "$PROFILE" == 1 ]]; then
    for which in before after; do measure "$mode" "$which" 0 profile; done
  fi
  if [[ "$mode" == kafka ]]; then bench_cleanup; fi
done

python3 - "$JSONL" <<'PY' | tee "$OUT/summary.md"
import json, statistics as st, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
keys = [("posts_per_s", "posts/s", "{:,.0f}"), ("us_per_post", "CPU µs/post", "{:.1f}"),
        ("server_cpu_pct", "CPU %", "{:.0f}"), ("p50_ms", "p50 ms", "{:.2f}"), ("p99_ms", "p99 ms", "{:.2f}"),
        ("ctx_switches_per_post", "ctx sw/post", "{:.2f}"), ("raw_syscalls_sys_enter_per_post", "syscalls/post", "{:.2f}"),
        ("allocs_per_post", "allocs/post", "{:.1f}")]
def med(rs, k):
    v = [r[k] for r in rs if r.get(k) is not None]
    return st.median(v) if v else None
print("# CPU per accepted post (medians; wrk -t1 -c256, feed-api --threads 1)\n")
for mode in dict.fromkeys(r["mode"] for r in recs):
    rows = {w: [r for r in recs if r["mode"] == mode and r["which"] == w and not r["profiled"]] for w in ("before", "after")}
    present = [k for k in keys if any(r.get(k[0]) is not None for rs in rows.values() for r in rs)]
    print(f"## {mode} ({len(rows['before'])} runs each)\n")
    print("| binary | " + " | ".join(k[1] for k in present) + " |")
    print("|---|" + "---|" * len(present))
    for w in ("before", "after"):
        print(f"| {w} | " + " | ".join((k[2].format(m) if (m := med(rows[w], k[0])) is not None else "-") for k in present) + " |")
    ratio = []
    for k in present:
        b, a = med(rows["before"], k[0]), med(rows["after"], k[0])
        ratio.append(f"{a / b:.2f}" if a is not None and b else "-")
    print("| after/before | " + " | ".join(ratio) + " |")
    # Per thread name: where the CPU went (threads below 0.3 µs/post in
    # both binaries are left out).
    names = sorted({n for rs in rows.values() for r in rs for n in r.get("us_per_post_by_thread", {})})
    def tmed(rs, n, key="us_per_post_by_thread"):
        v = [r[key].get(n, 0.0) for r in rs if key in r]
        return st.median(v) if v else None
    shown = [n for n in names if max((tmed(rows[w], n) or 0) for w in rows) >= 0.3]
    if shown:
        print("\n| thread | before µs/post (kernel) | after µs/post (kernel) |")
        print("|---|---|---|")
        def cell(w, n):
            m, k = tmed(rows[w], n), tmed(rows[w], n, "sys_us_per_post_by_thread")
            return "-" if m is None else f"{m:.1f}" + (f" ({k:.1f})" if k is not None else "")
        for n in sorted(shown, key=lambda n: -max((tmed(rows[w], n) or 0) for w in rows)):
            print(f"| {n} | {cell('before', n)} | {cell('after', n)} |")
    print("\nper run (µs/post before → after, in run order): " + ", ".join(
        f"{r['which'][0]}{r['run']}={r['us_per_post']:.1f}" for r in recs
        if r["mode"] == mode and not r["profiled"] and r.get("us_per_post")) + "\n")
PY
say "raw results: $OUT"
