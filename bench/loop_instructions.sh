#!/usr/bin/env bash
# Instructions per POST by thread, under callgrind: deterministic where CPU
# time on this shared machine is not, so it resolves changes of a few
# percent in the HTTP path that bench/cpu_per_post.sh cannot.
#
#   bench/loop_instructions.sh                      # the build's feed-api
#   bench/loop_instructions.sh <other>/feed-api     # any build, to compare
#   N1=200 N2=2200 bench/loop_instructions.sh
#   LOAD=1 bench/loop_instructions.sh               # under wrk -t1 -c64 for 15 s
#   bench/loop_instructions.sh --quick [binary]     # 550 and 50 POSTs
#   MODE=kafka LOAD=1 bench/loop_instructions.sh    # Kafka + PostgreSQL mode
#
# With MODE=kafka a broker and PostgreSQL are started on free ports (lib.sh
# start_services) and each run gets fresh topics; every librdkafka thread
# (rdk:main, rdk:broker1, ...: one set per client) is listed on its own.
#
# feed-api (embedded, one event loop) runs under valgrind --tool=callgrind
# --separate-threads=yes twice: once for N1 sequential keep-alive POSTs,
# once for N2. (total(N2) - total(N1)) / (N2 - N1) per thread removes
# start-up, warm-up and shutdown. One POST at a time, so each commit holds
# one post: the figures are the cost of a post when nothing is batched, an
# upper bound for the loaded server's. With LOAD=1 there is one run, under
# wrk -t1 -c64 -d15s (bench/post.lua), and each thread's total is divided by
# the posts stored (start-up included, a few hundred instructions per post
# at the rates valgrind allows): the cost when the loop is batched. Threads are labelled by their names
# (loop-0, worker-store, ...; builds before the names show "feed-api").
# Records: bench/results/<ts>-loop_instructions/{summary.md,callgrind.*}.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N1="${N1:-200}"; N2="${N2:-2200}"
if [[ "${1:-}" == --quick ]]; then N1=50; N2=550; shift; fi
BIN="${1:-$FEED_API}"
[[ -x "$BIN" ]] || die "$BIN is not executable"
command -v valgrind >/dev/null || { say "installing valgrind"; apt-get install -y -q valgrind >/dev/null 2>&1 || die "no valgrind"; }
bench_trap
OUT="$(bench_results_dir loop_instructions)"
say "results in $OUT"
MODE="${MODE:-embedded}"
case "$MODE" in
  embedded) ;;
  kafka) start_services /tmp/feed-bench-instr-svc ;;
  *) die "MODE is embedded or kafka, not '$MODE'" ;;
esac

# run N: callgrind files of one run with N posts in $OUT/callgrind.N.*
run() {
  local n="$1" port dir="/tmp/feed-bench-instr"
  port="$(free_port)"
  rm -rf "$dir"; mkdir -p "$dir"
  local extra=()
  if [[ "$MODE" == kafka ]]; then
    local t="instr$$-$n"
    extra=(--kafka-brokers "$KAFKA_BROKERS" --database-url "$DATABASE_URL"
           --kafka-events-topic "events-$t" --kafka-processed-topic "processed-$t" --kafka-group "group-$t")
  fi
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$OUT/callgrind.$n.%p" \
    "$BIN" --host 127.0.0.1 --port "$port" --data-dir "$dir" --log-level warn --threads 1 "${extra[@]}" \
    >"$OUT/valgrind.$n.log" 2>&1 &
  local pid=$!
  track_pid "$pid"
  wait_http "http://127.0.0.1:$port/api/ready" 120 || die "feed-api under valgrind did not become ready"
  if [[ "${LOAD:-0}" == 1 ]]; then
    command -v wrk >/dev/null || die "LOAD=1 needs wrk"
    wrk -t1 -c64 -d15s -s "$BENCH_DIR/post.lua" "http://127.0.0.1:$port" >"$OUT/wrk.log" 2>&1 || true
    curl -s "http://127.0.0.1:$port/metrics" | awk '/^feed_worker_stored_total/ {printf "%d", $2}' >"$OUT/posts.$n"
  else
  python3 - "$port" "$n" <<'PY'
import http.client, json, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for i in range(n):
    body = json.dumps({"user_id": f"user_{i % 1000}", "content": f"the feed is fast café message {i}"})
    c.request("POST", "/api/messages", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    if r.status != 202:
        sys.exit(f"post {i}: {r.status}")
PY
  fi
  # Thread names in creation order (ascending tids), as callgrind numbers
  # its per-thread files. Under valgrind $pid is the server itself.
  for t in $(ls /proc/"$pid"/task | sort -n); do cat /proc/"$pid"/task/"$t"/comm; done >"$OUT/threads.$n"
  kill -INT "$pid"; wait "$pid" 2>/dev/null || true; untrack_pid "$pid"
}

if [[ "${LOAD:-0}" == 1 ]]; then
  run load
else
  run "$N1"
  run "$N2"
fi

MODE="$MODE" python3 - "$OUT" "$N1" "$N2" "$BIN" "${LOAD:-0}" <<'PY' | tee "$OUT/summary.md"
import glob, os, re, sys
out, n1, n2, binary, load = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5] == "1"
# Callgrind numbers its files by valgrind's thread slot, which a thread
# created after another exited reuses (Kafka mode's start-up clients exit),
# so the names listed from /proc at the end need not line up with the
# files. A file that runs one of our thread bodies is named by it; the rest
# (librdkafka's, Asio's) by the listing when every thread is still there,
# else "other N".
bodies = [("feed::http::server::serve_one", "loop-0"), ("feed::kafka_subscriber::run", "kafka-sub"),
          ("feed::worker::poll_stage", "worker-poll"), ("feed::worker::store_stage", "worker-store"),
          ("feed::worker::send_stage", "worker-send"), ("feed::broadcaster::gap_loop", "feed-gaps"),
          ("feed::kafka_publisher::poll_loop", "kafka-reports"), ("thread_pool::thread_function", "asio-pool")]
def threads(n):
    names = open(f"{out}/threads.{n}").read().split()
    files = glob.glob(f"{out}/callgrind.{n}.*-*")
    exact = len(files) == len(names)
    res = {}
    for f in files:
        num = int(f.rsplit("-", 1)[1])
        text = open(f, errors="replace").read()
        m = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
        ran = [label for marker, label in bodies if marker in text]
        if ran:
            label = "+".join(ran)
        elif not exact:
            label = f"other {num}"
        elif num - 1 < len(names):
            label = names[num - 1]
        else:
            label = f"thread {num}"
        res[num] = (label, int(m.group(1)) if m else 0)
    return res
print(f"# Instructions per POST by thread ({binary}, {os.environ.get('MODE', 'embedded')} mode)\n")
if load:
    posts = int(open(f"{out}/posts.load").read() or 0)
    b = threads("load")
    a = {num: (label, 0) for num, (label, _) in b.items()}
    span = max(posts, 1)
    print(f"wrk -t1 -c64 -d15s: {posts} posts stored; each thread's total / posts\n")
else:
    a, b = threads(n1), threads(n2)
    span = n2 - n1
    print(f"(run with {n2} POSTs - run with {n1}) / {n2 - n1}\n")
print("| thread | instructions per POST |")
print("|---|---|")
for num in sorted(b):
    label, total = b[num]
    per = (total - a.get(num, (label, 0))[1]) / span
    if per >= 100:
        print(f"| {label} | {per:,.0f} |")
if any(label.startswith("other ") for label, _ in b.values()):
    print("| (other N: librdkafka's, Asio's or start-up threads, in a slot a thread that exited left) | |")
print(f"| all threads | {sum(t - a.get(num, ('', 0))[1] for num, (_, t) in b.items()) / span:,.0f} |")
PY
