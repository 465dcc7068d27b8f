# Shared helpers for the bench/ scripts. Source it; do not run it.
#
# Every server started here binds 127.0.0.1, is recorded in BENCH_PIDS and is
# stopped by pid from the EXIT trap (bench_cleanup). Raw results go under
# bench/results/<timestamp>/ (gitignored).

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
BUILD="${FEED_BUILD_DIR:-$ROOT/build}"
FEED_API="${FEED_API:-$BUILD/feed-api}"   # a binary to measure other than the build's
FEED_BOT="${FEED_BOT:-$BUILD/feed-bot}"
BENCH_PIDS=()
BENCH_CLEANUPS=()

say() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { say "error: $*"; exit 1; }

bench_results_dir() {  # bench_results_dir NAME -> creates and prints the run dir
  local d="$BENCH_DIR/results/$(date +%Y%m%d-%H%M%S)-$1"
  mkdir -p "$d"
  echo "$d"
}

bench_cleanup() {
  local pid c
  for c in "${BENCH_CLEANUPS[@]}"; do eval "$c" >/dev/null 2>&1 || true; done
  for pid in "${BENCH_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${BENCH_PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  BENCH_PIDS=()
  BENCH_CLEANUPS=()
}
bench_trap() { trap 'bench_cleanup' EXIT; trap 'exit 130' INT TERM; }

track_pid() { BENCH_PIDS+=("$1"); }
untrack_pid() {  # untrack_pid PID: forget a pid stopped by hand
  local keep=() p
  for p in "${BENCH_PIDS[@]}"; do [[ "$p" == "$1" ]] || keep+=("$p"); done
  BENCH_PIDS=("${keep[@]}")
}
stop_pid() {  # stop_pid PID: TERM, bounded wait, KILL
  local pid="$1"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  untrack_pid "$pid"
}

free_port() {
  python3 - <<'PY'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

loadavg() { cut -d' ' -f1 /proc/loadavg; }

# CPU ticks (utime+stime) of a pid; 0 when gone. clock ticks: getconf CLK_TCK.
cpu_ticks() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || { echo 0; return; }
  stat="${stat##*) }"   # drop "pid (comm) "
  awk '{print $12 + $13}' <<<"$stat"
}
CLK_TCK="$(getconf CLK_TCK)"
# cpu_pct T0 T1 SECONDS -> percent of one core
cpu_pct() { awk -v a="$1" -v b="$2" -v s="$3" -v hz="$CLK_TCK" 'BEGIN{ if (s<=0) {print 0} else printf "%.0f", (b-a)/hz/s*100 }'; }

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
now_s() { date +%s.%N; }

wait_http() {  # wait_http URL TIMEOUT_S -> 0 when it answers 2xx
  local url="$1" t="${2:-20}" end
  end=$(( $(date +%s) + t ))
  while (( $(date +%s) < end )); do
    curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
    sleep 0.02
  done
  return 1
}

need_built() {
  [[ -x "$FEED_API" && -x "$FEED_BOT" ]] ||
    die "build first: cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2"
}

# start_feed_api DATA_DIR PORT LOGFILE [extra flags...] -> sets FEED_PID
start_feed_api() {
  local dir="$1" port="$2" log="$3"; shift 3
  rm -rf "$dir"; mkdir -p "$dir"
  "$FEED_API" --host 127.0.0.1 --port "$port" --data-dir "$dir" --log-level warn "$@" >"$log" 2>&1 &
  FEED_PID=$!
  track_pid "$FEED_PID"
  wait_http "http://127.0.0.1:$port/api/ready" 60 || { tail -20 "$log" >&2; die "feed-api did not become ready"; }
}

# nginx + nchan as an SSE pub/sub with ONE worker: POST /api/messages publishes
# to channel "feed", GET /api/feed subscribes with EventSource.
# start_nchan DIR PORT -> sets NCHAN_MASTER, NCHAN_WORKER
ensure_nchan() {
  if [[ ! -f /usr/lib/nginx/modules/ngx_nchan_module.so ]] || ! command -v nginx >/dev/null; then
    say "installing nginx + libnginx-mod-nchan"
    (apt-get install -y -q nginx libnginx-mod-nchan >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q nginx libnginx-mod-nchan >/dev/null 2>&1; }) ||
      die "could not install nginx and libnginx-mod-nchan"
  fi
}
start_nchan() {
  local dir="$1" port="$2"
  ensure_nchan
  rm -rf "$dir"; mkdir -p "$dir"
  local user_line=""
  [[ "$(id -u)" == 0 ]] && user_line="user root;"
  cat >"$dir/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_nchan_module.so;
$user_line
worker_processes 1;
worker_rlimit_nofile 20000;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
daemon off;
events { worker_connections 19000; multi_accept on; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  nchan_shared_memory_size 256m;
  server {
    listen 127.0.0.1:$port backlog=4096;
    location = /api/messages {
      nchan_publisher http;
      nchan_channel_id feed;
      nchan_message_buffer_length 1000;
      nchan_message_timeout 5m;
    }
    location = /api/feed {
      nchan_subscriber eventsource;
      nchan_channel_id feed;
      nchan_subscriber_first_message newest;
    }
  }
}
CONF
  nginx -c "$dir/nginx.conf" -p "$dir" >"$dir/stdout.log" 2>&1 &
  NCHAN_MASTER=$!
  track_pid "$NCHAN_MASTER"
  local i
  for i in $(seq 100); do
    NCHAN_WORKER="$(pgrep -P "$NCHAN_MASTER" | head -1 || true)"
    [[ -n "$NCHAN_WORKER" ]] && break
    sleep 0.05
  done
  [[ -n "$NCHAN_WORKER" ]] || { cat "$dir/error.log" "$dir/stdout.log" >&2; die "nginx did not start"; }
  # The publisher answers GET with channel info (404 before the first post):
  # wait for the port instead.
  for i in $(seq 100); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/api/messages" && return 0
    sleep 0.05
  done
  die "nginx did not listen on $port"
}

# json_get FILE EXPR: python expression over `j`, the last JSON line of FILE.
json_get() {
  python3 - "$1" "$2" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip().startswith("{")]
j = json.loads(lines[-1]) if lines else {}
try:
    v = eval(sys.argv[2], {"j": j})
except Exception:
    v = ""
print(v)
PY
}

machine_info() {
  echo "nproc: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "kernel: $(uname -r)"
  echo "memory: $(free -h | awk '/^Mem:/ {print $2}')"
  echo "loadavg: $(cat /proc/loadavg)"
  echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"
}

ensure_venv() {  # matplotlib for plot.py
  if [[ ! -x "$BENCH_DIR/.venv/bin/python" ]] || ! "$BENCH_DIR/.venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
    say "creating bench/.venv with matplotlib"
    python3 -m venv "$BENCH_DIR/.venv" && "$BENCH_DIR/.venv/bin/pip" install -q matplotlib
  fi
}

# run_bot JSONL LABEL SERVER PIDS -- feed-bot args...
# Runs feed-bot once (bounded by `timeout`), measures the CPU seconds of the
# server pids (comma-separated, summed) and of the bot over the bot's wall
# time, and appends one JSON record to JSONL: label, server, bot exit code,
# load average, CPU, and the bot's own JSON summary under "bot". BOT_LIMIT
# (seconds, default 120) bounds the run: then the bot gets SIGINT, stops
# scheduling, cancels what is queued and still reports.
run_bot() {
  local jsonl="$1" label="$2" server="$3" pids="$4"; shift 4
  [[ "$1" == "--" ]] && shift
  local tmp; tmp="$(mktemp -d)"
  local p t0=0 t1=0 la0 la1 s0 s1 rc=0 limit="${BOT_LIMIT:-120}"
  for p in ${pids//,/ }; do t0=$(( t0 + $(cpu_ticks "$p") )); done
  la0="$(loadavg)"; s0="$(now_s)"
  /usr/bin/time -f '%U %S %e' -o "$tmp/time" timeout -s INT -k 30 "$limit" "$FEED_BOT" --progress 0 --log-level warn "$@" \
    >"$tmp/out" 2>"$tmp/err" || rc=$?
  s1="$(now_s)"; la1="$(loadavg)"
  for p in ${pids//,/ }; do t1=$(( t1 + $(cpu_ticks "$p") )); done
  python3 - "$jsonl" "$label" "$server" "$rc" "$la0" "$la1" "$s0" "$s1" "$t0" "$t1" "$CLK_TCK" "$tmp" "$*" <<'PY'
import json, sys
(jsonl, label, server, rc, la0, la1, s0, s1, t0, t1, hz, tmp, args) = sys.argv[1:14]
wall = float(s1) - float(s0)
bot = {}
for line in open(f"{tmp}/out"):
    line = line.strip()
    if line.startswith("{"):
        try: bot = json.loads(line)
        except ValueError: pass
bot_cpu = None
try:
    u, s, e = open(f"{tmp}/time").read().split()[-3:]
    bot_cpu = float(u) + float(s)
except Exception:
    pass
rec = {
    "label": label, "server": server, "rc": int(rc), "args": args,
    "loadavg_before": float(la0), "loadavg_after": float(la1), "wall_s": wall,
    "server_cpu_s": (int(t1) - int(t0)) / int(hz),
    "server_cpu_pct": 100.0 * (int(t1) - int(t0)) / int(hz) / wall if wall > 0 else None,
    "bot_cpu_s": bot_cpu,
    "bot_cpu_pct": 100.0 * bot_cpu / wall if bot_cpu is not None and wall > 0 else None,
    "bot": bot,
    "stderr_tail": open(f"{tmp}/err", errors="replace").read()[-2000:],
}
with open(jsonl, "a") as f:
    f.write(json.dumps(rec) + "\n")
PY
  rm -rf "$tmp"
  return 0
}

# CPU ticks of a pid plus those of its children that exited and were waited
# for (cutime+cstime): a PostgreSQL backend that lives only for one COPY.
cpu_ticks_with_children() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || { echo 0; return; }
  stat="${stat##*) }"
  awk '{print $12 + $13 + $14 + $15}' <<<"$stat"
}

# procs_ticks "name:pid[+pid...],..." -> "name=ticks,..." (CPU ticks per name;
# a pid written "pid!" also counts its exited children)
procs_ticks() {
  local out="" item name pids p t
  IFS=',' read -ra items <<<"$1"
  for item in "${items[@]}"; do
    name="${item%%:*}"; pids="${item#*:}"; t=0
    for p in ${pids//+/ }; do
      if [[ "$p" == *'!' ]]; then t=$(( t + $(cpu_ticks_with_children "${p%!}") ))
      else t=$(( t + $(cpu_ticks "$p") )); fi
    done
    out+="$name=$t,"
  done
  echo "${out%,}"
}

# run_load JSONL LABEL MODE PROCS -- command...
# Runs a load generator (wrk with bench/post.lua, or feed-bot) bounded by
# LOAD_LIMIT seconds (default 60; SIGINT then), and appends one record:
# label, mode, exit code, load average, wall time, CPU % of every named
# server process (PROCS as for procs_ticks) and of the load generator, and
# the generator's result (the WRK_JSON line as "wrk", feed-bot's JSON as "bot").
run_load() {
  local jsonl="$1" label="$2" mode="$3" procs="$4"; shift 4
  [[ "$1" == "--" ]] && shift
  local tmp; tmp="$(mktemp -d)"
  local t0 t1 la0 s0 s1 rc=0
  t0="$(procs_ticks "$procs")"; la0="$(loadavg)"; s0="$(now_s)"
  /usr/bin/time -f '%U %S %e' -o "$tmp/time" timeout -s INT -k 30 "${LOAD_LIMIT:-60}" "$@" \
    >"$tmp/out" 2>"$tmp/err" || rc=$?
  s1="$(now_s)"; t1="$(procs_ticks "$procs")"
  python3 - "$jsonl" "$label" "$mode" "$rc" "$la0" "$s0" "$s1" "$t0" "$t1" "$CLK_TCK" "$tmp" "$*" <<'PY'
import json, sys
(jsonl, label, mode, rc, la0, s0, s1, t0, t1, hz, tmp, args) = sys.argv[1:13]
wall = float(s1) - float(s0)
parse = lambda s: {kv.split("=")[0]: int(kv.split("=")[1]) for kv in s.split(",") if kv}
a, b = parse(t0), parse(t1)
cpu = {k: 100.0 * (b.get(k, 0) - a[k]) / int(hz) / wall for k in a}
rec = {"label": label, "mode": mode, "rc": int(rc), "args": args, "loadavg_before": float(la0),
       "wall_s": wall, "cpu_pct": cpu}
try:
    u, s, e = open(f"{tmp}/time").read().split()[-3:]
    rec["loadgen_cpu_pct"] = 100.0 * (float(u) + float(s)) / wall
except Exception:
    rec["loadgen_cpu_pct"] = None
for line in open(f"{tmp}/out", errors="replace"):
    line = line.strip()
    if line.startswith("WRK_JSON "):
        rec["wrk"] = json.loads(line[9:])
    elif line.startswith("{"):
        try: rec["bot"] = json.loads(line)
        except ValueError: pass
rec["stderr_tail"] = open(f"{tmp}/err", errors="replace").read()[-1000:]
with open(jsonl, "a") as f:
    f.write(json.dumps(rec) + "\n")
PY
  rm -rf "$tmp"
}

# Kafka and PostgreSQL from the project's scripts, data under /tmp, stopped
# by the EXIT trap. start_services DIR -> sets KAFKA_BROKERS, DATABASE_URL,
# KAFKA_PID, PG_PID.
start_services() {
  local dir="$1" kport pport
  mkdir -p "$dir"
  kport="$(free_port)"; pport="$(free_port)"
  # The controller listens on PORT+1: pick again if that is taken.
  while ! python3 -c "import socket,sys;s=socket.socket();s.bind(('127.0.0.1',int(sys.argv[1])))" $((kport + 1)) 2>/dev/null; do
    kport="$(free_port)"
  done
  rm -rf "$dir/kafka" "$dir/pg"
  BENCH_CLEANUPS+=("'$ROOT/scripts/kafka.sh' stop '$dir/kafka'")
  KAFKA_BROKERS="$("$ROOT/scripts/kafka.sh" start "$dir/kafka" "$kport")" || die "kafka did not start"
  BENCH_CLEANUPS+=("'$ROOT/scripts/postgres.sh' stop '$dir/pg'")
  DATABASE_URL="$("$ROOT/scripts/postgres.sh" start "$dir/pg" "$pport")" || die "postgres did not start"
  KAFKA_PID="$(cat "$dir/kafka/kafka.pid")"
  PG_PID="$(head -1 "$dir/pg/postmaster.pid")"
  PG_DIR="$dir/pg"
  say "kafka $KAFKA_BROKERS (pid $KAFKA_PID), postgres $DATABASE_URL (pid $PG_PID)"
}
# Every process of the PostgreSQL cluster, joined with '+'.
# The postmaster also counts its exited children (short-lived backends).
pg_pids() { { echo "$PG_PID!"; pgrep -P "$PG_PID" || true; } | paste -sd+; }
