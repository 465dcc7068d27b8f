#!/usr/bin/env bash
# Start-up time to healthy and idle RSS of feed-api: embedded mode (fresh
# --data-dir each run, so the time includes creating the SQLite store and
# running its migrations) and Kafka + PostgreSQL mode (services already up;
# fresh topics, consumer group and data dir each run). nginx + nchan start-up
# is measured the same way for reference.
#
#   bench/startup.sh           10 runs per mode
#   bench/startup.sh --quick   3 runs, embedded mode and nchan only
#
# "healthy" = first 200 from GET /api/health, "ready" = first 200 from
# GET /api/ready (store and queue answer), both polled every 2 ms from the
# moment of exec. Idle RSS is VmRSS 1 s after ready. In Kafka mode it also
# measures the post latency of the first 3 s of traffic (1,000/s) after
# ready against the next 3 s on the same process.
# Records: bench/results/<timestamp>-startup/{runs.jsonl,summary.md}.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS="${RUNS:-10}"; MODES="${MODES:-embedded kafka nchan}"
if [[ "${1:-}" == "--quick" ]]; then RUNS=3; MODES="embedded nchan"; fi

need_built
bench_trap
OUT="$(bench_results_dir startup)"
JSONL="$OUT/runs.jsonl"
machine_info >"$OUT/machine.txt"
say "results in $OUT"

# time_start MODE RUN PORT -- command...: exec the command, poll, record.
time_start() {
  local mode="$1" run="$2" port="$3"; shift 4
  python3 - "$JSONL" "$mode" "$run" "$port" "$(loadavg)" "$@" <<'PY'
import json, os, subprocess, sys, time, urllib.request
jsonl, mode, run, port, la = sys.argv[1:6]
cmd = sys.argv[6:]
def ok(path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as r:
            return 200 <= r.status < 300
    except Exception:
        return False
def poll(path, t0, limit=60):
    while time.monotonic() - t0 < limit:
        if ok(path): return time.monotonic() - t0
        time.sleep(0.002)
    return None
t0 = time.monotonic()
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(os.devnull, "w"))
try:
    if mode == "nchan":
        # nginx answers everything once it listens; the publisher location
        # needs no backend.
        def up():
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/messages", timeout=1)
            except urllib.error.HTTPError:
                return True
            except Exception:
                return False
            return True
        healthy = None
        while time.monotonic() - t0 < 60:
            if up(): healthy = time.monotonic() - t0; break
            time.sleep(0.002)
        ready = healthy
    else:
        healthy = poll("/api/health", t0)
        ready = poll("/api/ready", t0)
    time.sleep(1)
    pid = p.pid
    if mode == "nchan":
        kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
        pids = [p.pid] + [int(k) for k in kids]
    else:
        pids = [p.pid]
    def rss(x):
        for line in open(f"/proc/{x}/status"):
            if line.startswith("VmRSS:"): return int(line.split()[1])
        return 0
    rss_kib = {str(x): rss(x) for x in pids}
    rec = {"mode": mode, "run": int(run), "healthy_ms": healthy and healthy * 1000, "ready_ms": ready and ready * 1000,
           "rss_kib": sum(rss_kib.values()), "rss_kib_by_pid": rss_kib, "loadavg_before": float(la)}
    open(jsonl, "a").write(json.dumps(rec) + "\n")
    print(f"  {mode} run {run}: healthy {rec['healthy_ms'] or 0:.1f} ms, ready {rec['ready_ms'] or 0:.1f} ms, "
          f"RSS {rec['rss_kib']:,} KiB", file=sys.stderr)
finally:
    p.terminate()
    try: p.wait(timeout=15)
    except subprocess.TimeoutExpired: p.kill(); p.wait()
PY
}

for mode in $MODES; do
  if [[ "$mode" == kafka ]]; then start_services /tmp/feed-bench-startup-svc; fi
  if [[ "$mode" == nchan ]]; then ensure_nchan; start_nchan /tmp/feed-bench-startup-nchan "$(free_port)"; stop_pid "$NCHAN_MASTER"; fi
  for r in $(seq "$RUNS"); do
    port="$(free_port)"; d=/tmp/feed-bench-startup; rm -rf "$d"; mkdir -p "$d"
    case "$mode" in
      embedded)
        time_start "$mode" "$r" "$port" -- "$FEED_API" --host 127.0.0.1 --port "$port" --data-dir "$d" --log-level warn ;;
      kafka)
        t="startup$$-$r"
        time_start "$mode" "$r" "$port" -- "$FEED_API" --host 127.0.0.1 --port "$port" --data-dir "$d" --log-level warn \
          --kafka-brokers "$KAFKA_BROKERS" --database-url "$DATABASE_URL" \
          --kafka-events-topic "events-$t" --kafka-processed-topic "processed-$t" --kafka-group "group-$t" ;;
      nchan)
        sed -i "s/listen 127.0.0.1:[0-9]*/listen 127.0.0.1:$port/" /tmp/feed-bench-startup-nchan/nginx.conf
        time_start "$mode" "$r" "$port" -- nginx -c /tmp/feed-bench-startup-nchan/nginx.conf -p /tmp/feed-bench-startup-nchan ;;
    esac
  done
  if [[ "$mode" == kafka ]]; then
    # First traffic: posts at 1,000/s for 3 s right after /api/ready, then
    # 3 s more on the same process (post latency p50/p99/max).
    for r in $(seq 3); do
      port="$(free_port)"; t="first$$-$r"
      start_feed_api /tmp/feed-bench-startup "$port" "$OUT/feed-api.log" \
        --kafka-brokers "$KAFKA_BROKERS" --database-url "$DATABASE_URL" \
        --kafka-events-topic "events-$t" --kafka-processed-topic "processed-$t" --kafka-group "group-$t"
      wait_http "http://127.0.0.1:$port/api/ready" 60 || true
      for phase in first next; do
        "$FEED_BOT" --api "http://127.0.0.1:$port" --rate 1000 --duration 3 --concurrency 64 \
          --progress 0 --log-level warn >"$OUT/traffic-$phase-$r.json" 2>/dev/null || true
        python3 - "$JSONL" "$r" "$phase" "$OUT/traffic-$phase-$r.json" <<'PY'
import json, sys
jsonl, r, phase, path = sys.argv[1:5]
lines = [l for l in open(path) if l.startswith("{")]
j = json.loads(lines[-1]) if lines else {}
pl = j.get("post_latency_ms", {})
rec = {"mode": "kafka-traffic", "run": int(r), "phase": phase, "p50": pl.get("p50"), "p99": pl.get("p99"),
       "max": pl.get("max"), "accepted": j.get("posts", {}).get("accepted_2xx")}
open(jsonl, "a").write(json.dumps(rec) + "\n")
print(f"  kafka {phase} 3 s of posts, run {r}: p50 {rec['p50']} ms, p99 {rec['p99']} ms, max {rec['max']} ms", file=sys.stderr)
PY
      done
      stop_pid "$FEED_PID"
    done
    bench_cleanup
  fi
done

python3 - "$JSONL" <<'PY' | tee "$OUT/summary.md"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("## Start-up (medians; min-max in brackets)\n")
print("| mode | runs | to healthy ms | to ready ms | idle RSS KiB | load avg |")
print("|---|---|---|---|---|---|")
for mode in ("embedded", "kafka", "nchan"):
    rs = [r for r in rows if r["mode"] == mode and "healthy_ms" in r]
    if not rs: continue
    def col(k, nd=1):
        xs = [r[k] for r in rs if r[k] is not None]
        return f"{statistics.median(xs):,.{nd}f} [{min(xs):,.{nd}f}-{max(xs):,.{nd}f}]" if xs else "-"
    name = {"embedded": "feed-api embedded", "kafka": "feed-api Kafka + PostgreSQL", "nchan": "nginx + nchan (master + worker RSS)"}[mode]
    print(f"| {name} | {len(rs)} | {col('healthy_ms')} | {col('ready_ms')} | {col('rss_kib', 0)} | "
          f"{statistics.median(r['loadavg_before'] for r in rs):.2f} |")
tr = [r for r in rows if r["mode"] == "kafka-traffic"]
if tr:
    print("\n## Kafka + PostgreSQL mode: post latency of the first traffic after /api/ready (1,000 posts/s)\n")
    print("| phase | runs | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|")
    for phase, name in (("first", "first 3 s after ready"), ("next", "next 3 s, same process")):
        xs = [r for r in tr if r["phase"] == phase and r["p99"] is not None]
        if xs:
            m = lambda k: statistics.median(r[k] for r in xs)
            print(f"| {name} | {len(xs)} | {m('p50'):.1f} | {m('p99'):.1f} | {m('max'):.1f} |")
PY
say "raw results: $OUT"
