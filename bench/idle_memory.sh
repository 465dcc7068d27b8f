#!/usr/bin/env bash
# Memory per idle SSE connection: user-space RSS of the server holding N idle
# subscribers minus its RSS before them, divided by N, for feed-api (embedded
# mode, one event loop) and nginx + nchan (one worker; the worker's RSS).
#
#   bench/idle_memory.sh           3 runs, steps of 2,500 up to 10,000 connections
#   bench/idle_memory.sh --quick   1 run
#
# The subscribers are held by feed-bot processes (2,500 streams each, one
# message posted at start so every stream has seen one event, then nothing
# for 60 s). RSS is read from /proc/<pid>/status (VmRSS) once the server
# holds all the streams (counted from /proc/<pid>/fd) and has been quiet for
# 2 s. Kernel socket buffers are not part of RSS. Results:
# bench/results/<timestamp>-idle_memory/{samples.jsonl,summary.md}.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS="${RUNS:-3}"; STEP="${STEP:-2500}"; STEPS="${STEPS:-4}"
[[ "${1:-}" == "--quick" ]] && RUNS=1

need_built
ensure_nchan
bench_trap
OUT="$(bench_results_dir idle_memory)"
JSONL="$OUT/samples.jsonl"
machine_info >"$OUT/machine.txt"
say "results in $OUT"

fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }

measure() {  # measure SERVER RUN
  local server="$1" run="$2" port pid base_fds n bots=() i b
  port="$(free_port)"
  if [[ "$server" == ours ]]; then
    start_feed_api /tmp/feed-bench-idle "$port" "$OUT/feed-api.log" --max-connections 15000 --threads 1
    pid="$FEED_PID"
  else
    start_nchan /tmp/feed-bench-idle-nchan "$port"
    pid="$NCHAN_WORKER"
  fi
  # One post so both servers have touched their publish path before "idle".
  curl -s -o /dev/null -X POST -H 'Content-Type: application/json' \
    -d '{"user_id":"warmup","content":"warm up"}' "http://127.0.0.1:$port/api/messages"
  sleep 2
  base_fds="$(fds "$pid")"
  echo "{\"server\":\"$server\",\"run\":$run,\"connections\":0,\"rss_kib\":$(rss_kib "$pid"),\"fds\":$base_fds,\"loadavg\":$(loadavg)}" >>"$JSONL"
  for i in $(seq "$STEPS"); do
    timeout -s INT -k 10 120 "$FEED_BOT" --api "http://127.0.0.1:$port" --subscribers "$STEP" \
      --rate 0.02 --count 2 --duration 60 --concurrency 1 --progress 0 --log-level warn \
      >/dev/null 2>&1 &
    b=$!; bots+=("$b"); track_pid "$b"
    n=$(( i * STEP ))
    for _ in $(seq 300); do
      (( $(fds "$pid") >= base_fds + n )) && break
      sleep 0.1
    done
    sleep 2
    echo "{\"server\":\"$server\",\"run\":$run,\"connections\":$n,\"held\":$(( $(fds "$pid") - base_fds )),\"rss_kib\":$(rss_kib "$pid"),\"loadavg\":$(loadavg)}" >>"$JSONL"
    say "$server run $run: $n subscribers, RSS $(rss_kib "$pid") KiB"
  done
  for b in "${bots[@]}"; do kill -INT "$b" 2>/dev/null || true; done
  for b in "${bots[@]}"; do stop_pid "$b"; done
  if [[ "$server" == ours ]]; then stop_pid "$FEED_PID"; else stop_pid "$NCHAN_MASTER"; fi
}

for r in $(seq "$RUNS"); do
  measure ours "$r"
  measure nchan "$r"
done

python3 - "$JSONL" <<'PY' | tee "$OUT/summary.md"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(xs): return statistics.median(xs) if xs else None
print("## RSS with idle SSE connections (median over runs)\n")
print("| connections | ours RSS KiB | nchan worker RSS KiB | ours B/conn | nchan B/conn | ours/nchan |")
print("|---|---|---|---|---|---|")
conns = sorted({r["connections"] for r in rows})
base = {}
for s in ("ours", "nchan"):
    for run in {r["run"] for r in rows if r["server"] == s}:
        base[(s, run)] = [r["rss_kib"] for r in rows if r["server"] == s and r["run"] == run and r["connections"] == 0][0]
summary = {}
for c in conns:
    cells = {}
    for s in ("ours", "nchan"):
        rs = [r for r in rows if r["server"] == s and r["connections"] == c]
        rss = med([r["rss_kib"] for r in rs])
        per = med([(r["rss_kib"] - base[(s, r["run"])]) * 1024 / c for r in rs]) if c else None
        cells[s] = (rss, per)
    summary[c] = cells
    ratio = (f"{cells['ours'][1] / cells['nchan'][1]:.2f}" if c and cells['nchan'][1] else "-")
    f = lambda x: "-" if x is None else f"{x:,.0f}"
    print(f"| {c:,} | {f(cells['ours'][0])} | {f(cells['nchan'][0])} | {f(cells['ours'][1])} | {f(cells['nchan'][1])} | {ratio} |")
print(f"\nload average during the runs: {min(r['loadavg'] for r in rows):.2f}-{max(r['loadavg'] for r in rows):.2f}")
PY
say "raw results: $OUT"
