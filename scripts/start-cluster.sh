#!/usr/bin/env bash
# What `./start.sh --cluster` runs once the binaries are built: the local
# replicated cluster (scripts/cluster.sh: 3 Kafka brokers, 3 etcd members,
# PostgreSQL primary + synchronous standby under Patroni), three feed-api
# instances sharing it on PORT, PORT+1 and PORT+2, and feed-bot posting to
# all three.
#
#   scripts/start-cluster.sh [--data-dir DIR] [--no-bot] [FEED-API FLAGS...]
#
#   --data-dir DIR   where the cluster keeps its state (default: DATA_DIR or
#                    data-cluster); a second run on the same DIR keeps every
#                    message
#   --no-bot         without feed-bot
#   other flags go to every feed-api instance
#
# PORT (default 8090) is the first instance's port; CLUSTER_PORT_BASE moves
# the cluster's own ports (see scripts/cluster.sh). Ctrl-C stops everything
# this started, in reverse order, and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly BUILD=${BUILD_DIR:-build}
readonly INSTANCES=3
readonly HEALTH_WAIT_SECONDS=60

say() { echo "start.sh: $*" >&2; }

dir=${DATA_DIR:-data-cluster}
bot=1
api_args=()
while (($#)); do
  case "$1" in
    --data-dir) (($# >= 2)) || { say "--data-dir needs a directory"; exit 2; }; dir=$2; shift 2 ;;
    --data-dir=*) dir=${1#--data-dir=}; shift ;;
    --no-bot) bot=0; shift ;;
    --cluster) shift ;;
    *) api_args+=("$1"); shift ;;
  esac
done
[[ -n "$dir" ]] || { say "--data-dir must not be empty"; exit 2; }
port=${PORT:-8090}
[[ "$port" =~ ^[0-9]+$ ]] && ((port >= 1 && port + INSTANCES - 1 <= 65535)) ||
  { say "PORT must leave room for $INSTANCES consecutive ports, got '$port'"; exit 2; }
mkdir -p "$dir"

pids=()
cluster_started=0
stop_all() {
  trap - INT TERM EXIT
  set +e
  local i
  # Reverse start order: the bot, then the instances, then the cluster.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null; done
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do wait "${pids[i]}" 2>/dev/null; done
  if ((cluster_started)); then
    say "stopping the cluster"
    scripts/cluster.sh stop "$dir/cluster" >/dev/null
  fi
}
on_signal() {
  stop_all
  exit 0
}
trap on_signal INT TERM
trap stop_all EXIT

say "starting the cluster in $dir/cluster (first start formats it; this takes a minute)"
cluster_started=1
settings=$(scripts/cluster.sh start "$dir/cluster")
brokers=$(sed -n 's/^KAFKA_BROKERS=//p' <<<"$settings")
database_url=$(sed -n 's/^DATABASE_URL=//p' <<<"$settings")
[[ -n "$brokers" && -n "$database_url" ]] || { say "scripts/cluster.sh printed no KAFKA_BROKERS/DATABASE_URL"; exit 1; }

urls=()
for ((i = 0; i < INSTANCES; i++)); do
  p=$((port + i))
  mkdir -p "$dir/api-$((i + 1))"
  "$BUILD/feed-api" --port "$p" --data-dir "$dir/api-$((i + 1))" \
    --kafka-brokers "$brokers" --database-url "$database_url" "${api_args[@]}" &
  pids+=("$!")
  urls+=("http://127.0.0.1:$p")
done

deadline=$((SECONDS + HEALTH_WAIT_SECONDS))
for ((i = 0; i < INSTANCES; i++)); do
  until curl -fsS "${urls[i]}/api/ready" >/dev/null 2>&1; do
    kill -0 "${pids[i]}" 2>/dev/null || { say "feed-api on ${urls[i]} exited"; exit 1; }
    ((SECONDS < deadline)) || { say "feed-api on ${urls[i]} not ready after ${HEALTH_WAIT_SECONDS}s"; exit 1; }
    sleep 0.2
  done
done

echo "start.sh: the feed, live in a browser: ${urls[0]}/" >&2
for u in "${urls[@]}"; do
  echo "start.sh: feed-api $u  (page $u/, feed $u/api/feed, metrics $u/metrics)" >&2
done
echo "start.sh: Kafka $brokers; database $database_url" >&2
echo "start.sh: every instance streams every message; Ctrl-C stops everything" >&2

if ((bot)) && [[ -x "$BUILD/feed-bot" ]]; then
  api_list=$(IFS=,; echo "${urls[*]}")
  "$BUILD/feed-bot" --api "$api_list" &
  pids+=("$!")
fi

# Until Ctrl-C, or until an instance ends on its own: then stop the rest, so
# that a half-running cluster is never left behind. Ctrl-C reaches the
# instances too, and one may be seen gone before this shell runs its trap:
# an instance that stopped cleanly (status 0, which it gives only after a
# SIGINT or SIGTERM) means a stop was asked for.
while :; do
  for ((i = 0; i < INSTANCES; i++)); do
    if ! kill -0 "${pids[i]}" 2>/dev/null; then
      status=0
      wait "${pids[i]}" || status=$?
      if ((status == 0)); then
        say "feed-api on ${urls[i]} stopped; stopping everything"
        stop_all
        exit 0
      fi
      say "feed-api on ${urls[i]} exited with status $status; stopping everything"
      exit 1
    fi
  done
  sleep 1
done
