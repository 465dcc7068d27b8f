#!/usr/bin/env bash
# A single local Apache Kafka broker (KRaft, broker + controller in one JVM)
# for tests, benchmarks and local runs. Kafka's own jars come from Maven
# Central at the release pinned in scripts/kafka-pom.xml and are cached under
# .cache/kafka/libs.
#
#   scripts/kafka.sh fetch                 download the jars (no-op when cached)
#   scripts/kafka.sh start DIR PORT        format DIR when new, start the broker on
#                                          127.0.0.1:PORT (controller on PORT+1),
#                                          wait until it serves metadata, print
#                                          "127.0.0.1:PORT" as the only stdout line
#   scripts/kafka.sh stop DIR              SIGTERM, bounded wait, then SIGKILL
#   scripts/kafka.sh status DIR            exit 0 and print the address when running,
#                                          exit 3 when not
#   scripts/kafka.sh cluster-id [COUNT]    print COUNT (default 1) fresh cluster ids,
#                                          one a line
#   scripts/kafka.sh topics ARGS...        org.apache.kafka.tools.TopicCommand
#   scripts/kafka.sh perf-producer ARGS... org.apache.kafka.tools.ProducerPerformance
#   scripts/kafka.sh perf-consumer ARGS... org.apache.kafka.tools.ConsumerPerformance
#
# DIR holds everything of one broker: server.properties, data/, logs/, the pid
# file and the port. Environment knobs:
#   KAFKA_HEAP            JVM heap (default 512m)
#   KAFKA_START_TIMEOUT   seconds to wait for the broker (default 60)
#   KAFKA_STOP_TIMEOUT    seconds to wait after SIGTERM (default 30)
#   KAFKA_PARTITIONS      num.partitions, for topics created without a count (default 1)
#   FEED_KAFKA_CACHE      jar cache (default <repo>/.cache/kafka)
#
# Messages go to stderr; stdout carries only the results named above, so
# `brokers=$(scripts/kafka.sh start /tmp/k 59092)` works.
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/kafka-common.sh"
readonly POM="$ROOT/scripts/kafka-pom.xml"
readonly CACHE="${FEED_KAFKA_CACHE:-$ROOT/.cache/kafka}"
readonly LIBS="$CACHE/libs"
readonly HEAP="${KAFKA_HEAP:-512m}"
readonly START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
readonly STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"

say() { echo "kafka.sh: $*" >&2; }
die() { say "$*"; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

need_java() {
  command -v java >/dev/null 2>&1 ||
    die "java not found; install a Java 17+ runtime (Debian package: openjdk-17-jre-headless)"
  local v
  v="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
  [[ -n "$v" && "$v" -ge 17 ]] ||
    die "Kafka 4 needs Java 17 or newer, found '${v:-unknown}' (Debian package: openjdk-17-jre-headless)"
}

# The pom's hash marks a complete download, so editing the pinned version
# fetches again and an interrupted download never looks complete.
pom_stamp() { sha256sum "$POM" | cut -d' ' -f1; }

fetch() {
  if [[ -f "$LIBS/.complete" && "$(cat "$LIBS/.complete")" == "$(pom_stamp)" ]]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 ||
    die "mvn not found; install Maven (Debian package: maven) to download the Kafka jars"
  need_java
  mkdir -p "$CACHE"
  # Parallel test runs may all call fetch; one downloads, the others wait.
  exec 9>"$CACHE/.fetch.lock"
  if command -v flock >/dev/null 2>&1; then
    flock -w 900 9 || die "timed out waiting for another download of the Kafka jars"
  fi
  if [[ -f "$LIBS/.complete" && "$(cat "$LIBS/.complete")" == "$(pom_stamp)" ]]; then
    exec 9>&-
    return 0
  fi
  local tmp="$CACHE/libs.tmp.$$"
  rm -rf "$tmp"
  say "downloading Kafka jars into $LIBS"
  if ! timeout 900 mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp" >&2; then
    rm -rf "$tmp"
    die "mvn could not download the Kafka jars (network? see the output above)"
  fi
  pom_stamp >"$tmp/.complete"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  exec 9>&-
}

# Kafka cluster ids are 16 random bytes in URL-safe base64 without padding
# (22 characters). One in 64 of those starts with '-', which Kafka's storage
# tool takes for an option; such ids are drawn again, as Kafka's own
# random-uuid does. od reads all the bytes at once, so that printing
# thousands of ids (the test does) costs one process.
readonly B64URL='ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
cluster_ids() {
  local count="${1:-1}" b id i v
  [[ "$count" =~ ^[0-9]+$ ]] && (( count >= 1 )) || die "COUNT must be a positive number, got '$count'"
  while (( count > 0 )) && read -ra b; do
    (( ${#b[@]} == 16 )) || die "short read from /dev/urandom"
    id=
    for (( i = 0; i < 15; i += 3 )); do
      v=$(( b[i] << 16 | b[i + 1] << 8 | b[i + 2] ))
      id+="${B64URL:v >> 18 & 63:1}${B64URL:v >> 12 & 63:1}${B64URL:v >> 6 & 63:1}${B64URL:v & 63:1}"
    done
    id+="${B64URL:b[15] >> 2:1}${B64URL:(b[15] & 3) << 4:1}"
    [[ "$id" == -* ]] && continue
    echo "$id"
    count=$(( count - 1 ))
  done < <(od -An -v -tu1 -w16 /dev/urandom)
  (( count == 0 )) || die "could not read /dev/urandom"
}

check_port() {
  [[ "$1" =~ ^[0-9]+$ ]] && (( $1 >= 1024 && $1 <= 65534 )) ||
    die "PORT must be a number in 1024..65534 (PORT+1 is the controller port), got '$1'"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The pid file is trusted only while it names a live broker of this DIR, so a
# stale file never makes us signal an unrelated process that reused the pid.
broker_pid() {
  local dir="$1" pid
  [[ -f "$dir/kafka.pid" ]] || return 1
  pid="$(cat "$dir/kafka.pid")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $dir/server.properties" || return 1
  echo "$pid"
}

write_config() {
  local dir="$1" port="$2" cport=$(( $2 + 1 ))
  cat >"$dir/server.properties" <<EOF
# Written by scripts/kafka.sh: one KRaft node acting as broker and controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$dir/data
num.partitions=${KAFKA_PARTITIONS:-1}
# A single node can only hold one replica of anything.
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests create consumer groups constantly; do not wait for more members.
group.initial.rebalance.delay.ms=0
# Topics are created explicitly (the services do it at start-up).
auto.create.topics.enable=false
num.network.threads=2
num.io.threads=4
log.retention.hours=24
EOF
  write_broker_log4j2 "$dir/log4j2.properties" "$dir/logs" feed-kafka scripts/kafka.sh
}

# Command-line tools log warnings only, to stderr.
tool_log_config() { tools_log4j2 "$CACHE/tools-log4j2.properties" feed-kafka-tools; }

run_tool() {
  fetch
  need_java
  local main="$1"; shift
  exec java -Xmx512m -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$(tool_log_config)" \
    -cp "$LIBS/*" "$main" "$@"
}

start() {
  [[ $# -eq 2 ]] || usage
  local dir port="$2"
  check_port "$port"
  fetch
  need_java
  mkdir -p "$1"
  dir="$(cd "$1" && pwd)"

  local pid
  if pid="$(broker_pid "$dir")"; then
    local running
    running="$(cat "$dir/port" 2>/dev/null || echo)"
    [[ "$running" == "$port" ]] ||
      die "a broker of $dir is already running on port ${running:-?} (pid $pid); stop it first"
    say "already running (pid $pid)"
    echo "127.0.0.1:$port"
    return 0
  fi
  for p in "$port" $(( port + 1 )); do
    ! port_open "$p" || die "port $p on 127.0.0.1 is already in use"
  done

  mkdir -p "$dir/logs"
  write_config "$dir" "$port"
  if [[ ! -f "$dir/data/meta.properties" ]]; then
    local cluster_id
    cluster_id="$(cluster_ids 1)"
    say "formatting $dir/data (cluster $cluster_id)"
    java -Xmx256m -Dlog4j2.configurationFile="$(tool_log_config)" -cp "$LIBS/*" \
      kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" \
      >"$dir/logs/format.out" 2>&1 ||
      { cat "$dir/logs/format.out" >&2; die "formatting the storage of $dir failed"; }
  fi

  : >"$dir/logs/server.log"
  echo "$port" >"$dir/port"
  # setsid: the broker outlives this shell and ignores its terminal's signals;
  # it is stopped by pid through `stop`.
  setsid java -Xmx"$HEAP" -Xms128m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$dir/log4j2.properties" \
    -Dkafka.logs.dir="$dir/logs" \
    -cp "$LIBS/*" kafka.Kafka "$dir/server.properties" \
    >"$dir/logs/kafka.out" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$dir/kafka.pid"

  local deadline=$(( SECONDS + START_TIMEOUT ))
  until grep -q "Kafka Server started" "$dir/logs/server.log" 2>/dev/null && port_open "$port"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$dir/logs/kafka.out" "$dir/logs/server.log" >&2 || true
      rm -f "$dir/kafka.pid"
      die "the broker exited during start-up (logs in $dir/logs)"
    fi
    if (( SECONDS >= deadline )); then
      tail -n 30 "$dir/logs/server.log" >&2 || true
      stop "$dir" >/dev/null 2>&1 || true
      die "the broker did not start within ${START_TIMEOUT}s (logs in $dir/logs)"
    fi
    sleep 0.5
  done
  # Listening is not serving: make one real metadata round trip.
  local left=$(( deadline - SECONDS ))
  (( left >= 10 )) || left=10
  if ! timeout "$left" java -Xmx256m -Dlog4j2.configurationFile="$(tool_log_config)" -cp "$LIBS/*" \
      org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$port" --list >/dev/null; then
    stop "$dir" >/dev/null 2>&1 || true
    die "the broker started but does not answer metadata requests (logs in $dir/logs)"
  fi
  say "broker running (pid $pid, logs in $dir/logs)"
  echo "127.0.0.1:$port"
}

stop() {
  [[ $# -eq 1 ]] || usage
  [[ -d "$1" ]] || die "no such directory: $1"
  local dir pid
  dir="$(cd "$1" && pwd)"
  if ! pid="$(broker_pid "$dir")"; then
    rm -f "$dir/kafka.pid"
    say "not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$(( SECONDS + STOP_TIMEOUT ))
  while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    say "no exit ${STOP_TIMEOUT}s after SIGTERM; sending SIGKILL to $pid"
    kill -KILL "$pid" 2>/dev/null || true
    local i
    for (( i = 0; i < 50; i++ )); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$dir/kafka.pid"
  say "stopped"
}

status() {
  [[ $# -eq 1 ]] || usage
  local dir pid
  dir="$(cd "$1" 2>/dev/null && pwd)" || { say "not running (no $1)"; exit 3; }
  if pid="$(broker_pid "$dir")"; then
    say "running (pid $pid)"
    echo "127.0.0.1:$(cat "$dir/port")"
  else
    say "not running"
    exit 3
  fi
}

[[ $# -ge 1 ]] || usage
cmd="$1"; shift
case "$cmd" in
  fetch) [[ $# -eq 0 ]] || usage; fetch ;;
  start) start "$@" ;;
  stop) stop "$@" ;;
  status) status "$@" ;;
  cluster-id) [[ $# -le 1 ]] || usage; cluster_ids "$@" ;;
  topics) run_tool org.apache.kafka.tools.TopicCommand "$@" ;;
  perf-producer) run_tool org.apache.kafka.tools.ProducerPerformance "$@" ;;
  perf-consumer) run_tool org.apache.kafka.tools.ConsumerPerformance "$@" ;;
  -h|--help|help) usage ;;
  *) say "unknown command '$cmd'"; usage ;;
esac
