#!/usr/bin/env bash
# The one start command: builds feed-api (and feed-bot) and runs the system
# embedded, with data in ./data, on http://127.0.0.1:${PORT:-8090}; once it is
# up it prints the web page's address first, then the API's.
# The bot posts as the reference's does (3 users, every 10 s).
#
#   ./start.sh                 embedded: SQLite + in-process queue
#   ./start.sh --no-bot        without the bot
#   ./start.sh --cluster       a local replicated cluster instead: 3 Kafka
#                              brokers, PostgreSQL primary + synchronous
#                              standby (Patroni, etcd), three feed-api
#                              instances on PORT..PORT+2 and the bot posting
#                              to all three; state in --data-dir DIR
#                              (default data-cluster), see
#                              scripts/start-cluster.sh
#   any other arguments go to feed-api (see build/feed-api --help); the port
#   and data directory come from PORT and DATA_DIR, e.g.
#   ./start.sh --kafka-brokers 127.0.0.1:9092 --database-url postgresql://...
# Stop with Ctrl-C: both processes stop cleanly.
set -euo pipefail
cd "$(dirname "$0")"

bot=1
cluster=0
args=()
for a in "$@"; do
  case "$a" in
    --no-bot) bot=0 ;;
    --cluster) cluster=1 ;;
    *) args+=("$a") ;;
  esac
done

scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DFEED_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)"

if ((cluster)); then
  ((bot)) || args+=(--no-bot)
  exec scripts/start-cluster.sh "${args[@]}"
fi

port=${PORT:-8090}
build/feed-api --port "$port" --data-dir "${DATA_DIR:-data}" "${args[@]}" &
api=$!
pids=("$api")
stop() {
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop INT TERM EXIT

for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/api/health" >/dev/null 2>&1 && break
  kill -0 "$api" 2>/dev/null || { echo "start.sh: feed-api exited" >&2; exit 1; }
  sleep 0.1
done
echo "start.sh: the page: http://127.0.0.1:$port/" >&2
echo "start.sh: the API: http://127.0.0.1:$port/api/ (watch the feed: curl -N http://127.0.0.1:$port/api/feed)" >&2

if [[ $bot == 1 && -x build/feed-bot ]]; then
  build/feed-bot --api "http://127.0.0.1:$port" &
  pids+=("$!")
fi
wait "$api"
