#!/usr/bin/env bash
# A local replicated cluster for failure tests: three Apache Kafka KRaft nodes
# (each broker + controller, from the jars pinned for scripts/kafka.sh), a
# three-member etcd and two PostgreSQL nodes under Patroni (etcd3 as its DCS),
# a primary and a synchronous standby. Everything listens on 127.0.0.1 only.
#
#   scripts/cluster.sh start DIR            start whatever of DIR's cluster is not
#                                           running (creating it when DIR is new),
#                                           wait until all of it serves, print
#                                             KAFKA_BROKERS=127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3
#                                             DATABASE_URL=postgresql://root@...
#                                           as the only two stdout lines; "serves"
#                                           is: all 3 brokers registered and answering,
#                                           etcd healthy, a primary that commits and
#                                           a standby listed as sync. A start that
#                                           fails stops what it started and shows the
#                                           failing member's log; a DIR whose first
#                                           start failed is made afresh by the next one
#   scripts/cluster.sh stop DIR             stop everything of DIR by pid: Patroni
#                                           (replica first, then the primary) and
#                                           any postgres it left, Kafka meanwhile,
#                                           etcd last
#   scripts/cluster.sh start-node DIR NAME  start one stopped or killed member
#                                           (kafka-N, etcd-N, patroni-N) on its
#                                           original ports and wait until it serves
#   scripts/cluster.sh stop-node DIR NAME   stop one member (SIGTERM, bounded wait,
#                                           SIGKILL); stopping patroni-N stops its
#                                           postgres too
#   scripts/cluster.sh pids DIR             one "NAME PID" line per process, PID "-"
#                                           when not running: kafka-1..3, etcd-1..3,
#                                           patroni-1..2, pg-1..2 (the postmasters),
#                                           then "pg-primary pg-N" (or "-"), the node
#                                           that is the primary now (Patroni's leader,
#                                           out of recovery, taking writes), and
#                                           "kafka-controller kafka-N" (or "-"), the
#                                           active KRaft controller as the live nodes
#                                           last recorded it (instant, no JVM)
#   scripts/cluster.sh controller DIR       "kafka-controller kafka-N", asked of the
#                                           KRaft quorum itself (MetadataQuorumCommand;
#                                           starts a JVM, so it takes a second or more)
#   scripts/cluster.sh status DIR           a line per member on stdout; exit 0 when
#                                           all run, 3 when any does not
#
# DATABASE_URL names both PostgreSQL nodes with target_session_attrs=read-write,
# so libpq connects to whichever is the primary now. Commits wait until the
# standby has applied them (synchronous_mode, synchronous_commit=remote_apply),
# so an acknowledged write is on both nodes and visible on the standby. When
# the primary's postmaster dies, Patroni fails over to the standby at once
# (primary_start_timeout 0) instead of restarting it in place, and the old
# primary comes back as a replica (pg_rewind, or a fresh clone if that fails).
# Killing a primary's Patroni (rather than its postgres) leaves that postgres
# running as a primary with nothing to demote it; once the leader key expires
# (ttl 10 s) the standby is promoted too. Commits on the orphan then hang (its
# sync standby is gone), so none of them is acknowledged, but libpq's
# read-write choice may land on either node until `start-node patroni-N`
# brings that Patroni back, which demotes its postgres to a replica.
# Kafka: replication factor 3 by default, min.insync.replicas 2, no unclean
# leader election. Auth is trust from 127.0.0.1: a local test cluster only.
#
# Ports, from the base B (CLUSTER_PORT_BASE, default 29000; the base is kept in
# DIR/port-base, so later commands on DIR use the ports it was created with):
#   B+0  .. B+2    Kafka brokers kafka-1..3 (PLAINTEXT)
#   B+3  .. B+5    Kafka controllers kafka-1..3
#   B+10 .. B+12   etcd-1..3 clients
#   B+13 .. B+15   etcd-1..3 peers
#   B+20, B+21     PostgreSQL pg-1, pg-2
#   B+22, B+23     Patroni REST API patroni-1, patroni-2
# All of them stay below 32768, out of the kernel's ephemeral range, so no
# client socket can take a port while its member is down in a failure test.
#
# DIR layout: DIR/kafka-N (server.properties, data/, logs/), DIR/etcd-N (data/,
# etcd.log), DIR/pg-N (patroni.yml, patroni.log, data/, log/postgresql.log),
# and a pid file beside each. PostgreSQL refuses to run as root, so when
# invoked as root Patroni (and with it postgres) runs as the `postgres` OS
# user, which must be able to traverse DIR's parents.
#
# Environment knobs:
#   CLUSTER_PORT_BASE       the base port B above (default 29000)
#   CLUSTER_START_TIMEOUT   seconds start may take in all (default 240)
#   CLUSTER_STOP_TIMEOUT    seconds to wait for one process after SIGTERM (default 30)
#   KAFKA_HEAP              JVM heap per broker (default 384m)
#   FEED_KAFKA_CACHE        jar cache, shared with scripts/kafka.sh
#
# Needs java 17+ and maven (for `scripts/kafka.sh fetch`), and the Debian
# packages etcd-server, etcd-client, patroni, python3-etcd, postgresql and curl
# (scripts/install-deps.sh installs them). Messages go to stderr.
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly KAFKA_SH="$ROOT/scripts/kafka.sh"
source "$ROOT/scripts/kafka-common.sh"
readonly LIBS="${FEED_KAFKA_CACHE:-$ROOT/.cache/kafka}/libs"
readonly HEAP="${KAFKA_HEAP:-384m}"
readonly START_TIMEOUT="${CLUSTER_START_TIMEOUT:-240}"
readonly STOP_TIMEOUT="${CLUSTER_STOP_TIMEOUT:-30}"
readonly DEFAULT_BASE=29000
readonly SPAN=24 # ports B .. B+SPAN-1 are laid out above
# Patroni's cluster name: the key prefix in etcd (/service/feed/...).
readonly SCOPE=feed
readonly KAFKA_NODES=(1 2 3)
readonly ETCD_NODES=(1 2 3)
readonly PG_NODES=(1 2)

say() { echo "cluster.sh: $*" >&2; }
die() { say "$*"; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

# --- tools ----------------------------------------------------------------

need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 not found; install it (Debian package: $2, or run scripts/install-deps.sh)"
}

# The newest installed PostgreSQL server's binaries; Debian keeps them off PATH.
find_pg_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -V -r); do
    [[ -x $d/postgres && -x $d/pg_ctl && -x $d/psql ]] && { echo "$d"; return 0; }
  done
  local p
  p=$(command -v postgres 2>/dev/null) && command -v pg_ctl >/dev/null && command -v psql >/dev/null &&
    { dirname "$p"; return 0; }
  return 1
}

PG_BIN=$(find_pg_bindir) || PG_BIN=

check_tools() {
  need java openjdk-17-jre-headless
  need etcd etcd-server
  need etcdctl etcd-client
  need patroni patroni
  need curl curl
  need setsid util-linux
  [[ -n $PG_BIN ]] || die "PostgreSQL server binaries not found (Debian package: postgresql)"
  # Patroni's etcd3 client is its own (HTTP to etcd's gRPC gateway) but it
  # imports python-etcd for the shared exception and client classes.
  local py
  py=$(sed -n '1s/^#!//p' "$(command -v patroni)")
  ${py:-python3} -c 'import etcd, patroni.dcs.etcd3' 2>/dev/null ||
    die "Patroni cannot load its etcd3 DCS module (Debian package: python3-etcd)"
}

# Runs a command as the PostgreSQL owner: `postgres` when we are root, else
# ourselves. setpriv execs (no fork), so a backgrounded `as_owner CMD` has the
# pid of CMD itself, which the pid files rely on.
RUN_AS=()
if [[ $(id -u) -eq 0 ]]; then
  RUN_AS=(setpriv --reuid=postgres --regid=postgres --init-groups)
fi
as_owner() { "${RUN_AS[@]}" "$@"; }

check_owner_can_reach() {
  ((${#RUN_AS[@]})) || return 0
  getent passwd postgres >/dev/null ||
    die "running as root needs the 'postgres' OS user (the Debian package postgresql creates it)"
  need setpriv util-linux
  (cd / && as_owner test -x "$1") ||
    die "the postgres OS user cannot traverse $1; make it and its parents traversable (chmod o+x) or use a DIR under /tmp"
}

# --- layout ---------------------------------------------------------------

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Sets DIR and the port arrays for the cluster in $1. `create` allows a new DIR.
declare -a KAFKA_PORT CTRL_PORT ETCD_CPORT ETCD_PPORT PG_PORT REST_PORT
layout() {
  local dir_arg="$1" mode="${2:-}" base
  if [[ $mode == create ]]; then
    mkdir -p "$dir_arg"
  fi
  [[ -d $dir_arg ]] || die "no such directory: $dir_arg"
  DIR="$(cd "$dir_arg" && pwd)"
  if [[ -f $DIR/port-base ]]; then
    base=$(cat "$DIR/port-base")
    [[ -z ${CLUSTER_PORT_BASE:-} || ${CLUSTER_PORT_BASE} == "$base" ]] ||
      die "$DIR was created with CLUSTER_PORT_BASE=$base, not ${CLUSTER_PORT_BASE} (etcd keeps its peer addresses); unset it or use another DIR"
  elif [[ $mode == create ]]; then
    base="${CLUSTER_PORT_BASE:-$DEFAULT_BASE}"
  else
    die "$DIR holds no cluster (no port-base file); create one with: scripts/cluster.sh start $DIR"
  fi
  [[ $base =~ ^[0-9]+$ ]] && ((base >= 1024 && base + SPAN <= 32768)) ||
    die "CLUSTER_PORT_BASE must be a number in 1024..$((32768 - SPAN)) (ports BASE..BASE+$((SPAN - 1)) are used), got '$base'"
  BASE=$base
  local n
  for n in "${KAFKA_NODES[@]}"; do
    KAFKA_PORT[n]=$((base + n - 1))
    CTRL_PORT[n]=$((base + 3 + n - 1))
  done
  for n in "${ETCD_NODES[@]}"; do
    ETCD_CPORT[n]=$((base + 10 + n - 1))
    ETCD_PPORT[n]=$((base + 13 + n - 1))
  done
  for n in "${PG_NODES[@]}"; do
    PG_PORT[n]=$((base + 20 + n - 1))
    REST_PORT[n]=$((base + 22 + n - 1))
  done
}

join_by() { local IFS="$1"; shift; echo "$*"; }
brokers() {
  local n out=()
  for n in "${KAFKA_NODES[@]}"; do out+=("127.0.0.1:${KAFKA_PORT[n]}"); done
  join_by , "${out[@]}"
}
etcd_endpoints() {
  local n out=()
  for n in "${ETCD_NODES[@]}"; do out+=("http://127.0.0.1:${ETCD_CPORT[n]}"); done
  join_by , "${out[@]}"
}
database_url() {
  echo "postgresql://root@127.0.0.1:${PG_PORT[1]},127.0.0.1:${PG_PORT[2]}/defaultdb?sslmode=disable&target_session_attrs=read-write"
}

valid_member() { [[ $1 =~ ^(kafka-[123]|etcd-[123]|patroni-[12])$ ]]; }
all_members() { echo kafka-1 kafka-2 kafka-3 etcd-1 etcd-2 etcd-3 patroni-1 patroni-2; }

# Pid file of a member and a piece of its command line that only that member
# of this DIR has: a pid is trusted only while both match, so a stale file
# never makes us signal an unrelated process that reused the pid.
pid_file() {
  case $1 in
    kafka-*) echo "$DIR/$1/kafka.pid" ;;
    etcd-*) echo "$DIR/$1/etcd.pid" ;;
    patroni-*) echo "$DIR/pg-${1#patroni-}/patroni.pid" ;;
  esac
}
cmdline_mark() {
  case $1 in
    kafka-*) echo "kafka.Kafka $DIR/$1/server.properties " ;;
    etcd-*) echo "--data-dir $DIR/$1/data " ;;
    patroni-*) echo "$DIR/pg-${1#patroni-}/patroni.yml " ;;
    pg-*) echo "-D $DIR/$1/data " ;;
  esac
}
alive_with() {
  local pid="$1" mark="$2"
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$mark"
}
member_pid() {
  local f pid
  f=$(pid_file "$1")
  [[ -f $f ]] || return 1
  pid=$(cat "$f")
  alive_with "$pid" "$(cmdline_mark "$1")" || return 1
  echo "$pid"
}
# The postmaster of pg-N, from the first line of its postmaster.pid.
pg_pid() {
  local pid
  pid=$(head -n1 "$DIR/pg-$1/data/postmaster.pid" 2>/dev/null) || return 1
  alive_with "$pid" "$(cmdline_mark "pg-$1")" || return 1
  echo "$pid"
}

member_logs() {
  case $1 in
    kafka-*) echo "$DIR/$1/logs/kafka.out $DIR/$1/logs/server.log" ;;
    etcd-*) echo "$DIR/$1/etcd.log" ;;
    patroni-*) echo "$DIR/pg-${1#patroni-}/patroni.log $DIR/pg-${1#patroni-}/log/postgresql.log" ;;
  esac
}
show_logs() {
  local f
  for f in $(member_logs "$1"); do
    [[ -s $f ]] || continue
    echo "==> $f (last lines) <==" >&2
    tail -n 25 "$f" >&2 || true
  done
}

member_ports() {
  local n="${1##*-}"
  case $1 in
    kafka-*) echo "${KAFKA_PORT[n]} ${CTRL_PORT[n]}" ;;
    etcd-*) echo "${ETCD_CPORT[n]} ${ETCD_PPORT[n]}" ;;
    patroni-*) echo "${PG_PORT[n]} ${REST_PORT[n]}" ;;
  esac
}
check_ports_free() {
  local p skip=
  # A Patroni that was killed leaves its postgres running on the PG port;
  # the new Patroni takes that postgres over.
  [[ $1 == patroni-* ]] && pg_pid "${1#patroni-}" >/dev/null && skip=${PG_PORT[${1#patroni-}]}
  for p in $(member_ports "$1"); do
    [[ $p == "$skip" ]] && continue
    ! port_open "$p" ||
      die "port $p on 127.0.0.1 (for $1) is already in use; pick another CLUSTER_PORT_BASE for a new DIR, or stop what holds it"
  done
}

# --- Kafka ----------------------------------------------------------------

tool_log_config() { tools_log4j2 "$DIR/tools-log4j2.properties" cluster-tools; }
# Sets TOOL to the java command line of a Kafka command-line tool: an array
# rather than a function, so that `timeout` can bound it. C1 only: these JVMs
# live for seconds.
kafka_tool() {
  TOOL=(java -Xmx256m -XX:TieredStopAtLevel=1 -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$(tool_log_config)" -cp "$LIBS/*")
}

write_kafka_config() {
  local n="$1" d="$DIR/kafka-$1" voters=() m
  for m in "${KAFKA_NODES[@]}"; do voters+=("$m@127.0.0.1:${CTRL_PORT[m]}"); done
  mkdir -p "$d/logs"
  cat >"$d/server.properties" <<EOF
# Written by scripts/cluster.sh: node $n of a 3-node KRaft cluster, each node
# a broker and a controller.
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$(join_by , "${voters[@]}")
listeners=PLAINTEXT://127.0.0.1:${KAFKA_PORT[n]},CONTROLLER://127.0.0.1:${CTRL_PORT[n]}
advertised.listeners=PLAINTEXT://127.0.0.1:${KAFKA_PORT[n]}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$d/data
num.partitions=1
# Every partition on all three nodes; an acks=all write is on at least two
# before it is acknowledged, and no out-of-sync replica is ever made leader,
# so losing any one node loses no acknowledged record.
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
offsets.topic.replication.factor=3
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
# Notice a dead or frozen node in seconds, not Kafka's defaults (9 s to fence
# a broker that stopped heartbeating, 30 s to drop a silent follower from
# the ISR): until then, acks=all writes to its partitions wait, and posts get
# 503s. Loopback has no network jitter to guard against.
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
replica.lag.time.max.ms=5000
# Tests create consumer groups constantly; do not wait for more members.
group.initial.rebalance.delay.ms=0
# Topics are created explicitly (the services do it at start-up).
auto.create.topics.enable=false
# Small threads pools: three brokers share a small machine.
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
background.threads=2
log.retention.hours=24
EOF
  write_broker_log4j2 "$d/log4j2.properties" "$d/logs" "cluster-kafka-$n" scripts/cluster.sh
}

# All nodes are formatted with one cluster id, kept in DIR so a node whose
# data was lost can be formatted into the same cluster again.
format_kafka() {
  local n="$1" d="$DIR/kafka-$1"
  [[ -f $d/data/meta.properties ]] && return 0
  kafka_tool
  "${TOOL[@]}" kafka.tools.StorageTool format -t "$(cat "$DIR/kafka-cluster-id")" -c "$d/server.properties" \
    >"$d/logs/format.out" 2>&1
}

spawn_kafka() {
  local n="$1" d="$DIR/kafka-$1"
  # A fresh server.log, so that waiting for "Kafka Server started" sees only
  # this run; the previous run's log is kept beside it.
  [[ -f $d/logs/server.log ]] && mv -f "$d/logs/server.log" "$d/logs/server-previous.log"
  : >"$d/logs/server.log"
  # setsid: the broker outlives this shell and ignores its terminal's signals;
  # it is stopped by pid.
  setsid java -Xmx"$HEAP" -Xms128m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$d/log4j2.properties" \
    -Dkafka.logs.dir="$d/logs" \
    -cp "$LIBS/*" kafka.Kafka "$d/server.properties" \
    >"$d/logs/kafka.out" 2>&1 </dev/null &
  echo $! >"$d/kafka.pid"
}

kafka_node_up() {
  local n="$1"
  grep -q "Kafka Server started" "$DIR/kafka-$n/logs/server.log" 2>/dev/null && port_open "${KAFKA_PORT[n]}"
}

# All three brokers registered, each answering: BrokerApiVersionsCommand
# lists every broker in the metadata and asks each of them for its versions.
kafka_cluster_serves() {
  local out
  kafka_tool
  out=$(timeout 60 "${TOOL[@]}" org.apache.kafka.tools.BrokerApiVersionsCommand \
    --bootstrap-server "$(brokers)" 2>/dev/null) || return 1
  ! grep -q -- '-> ERROR' <<<"$out" || return 1
  [[ $(grep -oE '\(id: [0-9]+' <<<"$out" | sort -u | wc -l) -eq ${#KAFKA_NODES[@]} ]]
}

# The active controller as the live nodes last recorded it in their
# quorum-state files (rewritten at every election): no JVM, so that `pids`
# stays instant. The newest epoch wins, and a leader that is not alive counts
# as none; `controller` asks the quorum itself.
recorded_controller() {
  local n f state epoch leader best_epoch=-1 best=
  for n in "${KAFKA_NODES[@]}"; do
    member_pid "kafka-$n" >/dev/null || continue
    f="$DIR/kafka-$n/data/__cluster_metadata-0/quorum-state"
    state=$(cat "$f" 2>/dev/null) || continue
    leader=$(sed -n 's/.*"leaderId":\(-\{0,1\}[0-9]*\).*/\1/p' <<<"$state")
    epoch=$(sed -n 's/.*"leaderEpoch":\([0-9]*\).*/\1/p' <<<"$state")
    [[ -n $leader && -n $epoch ]] && ((leader >= 0 && epoch > best_epoch)) || continue
    best_epoch=$epoch
    best=$leader
  done
  [[ -n $best ]] && member_pid "kafka-$best" >/dev/null && echo "$best"
}

# --- etcd -----------------------------------------------------------------

spawn_etcd() {
  local n="$1" d="$DIR/etcd-$1" peers=() m
  for m in "${ETCD_NODES[@]}"; do peers+=("etcd-$m=http://127.0.0.1:${ETCD_PPORT[m]}"); done
  mkdir -p "$d"
  # The initial-* flags only matter when data/ is new; a member with data
  # rejoins with the cluster membership it has stored.
  setsid etcd --name "etcd-$n" --data-dir "$d/data" --logger zap --log-outputs stderr \
    --listen-client-urls "http://127.0.0.1:${ETCD_CPORT[n]}" \
    --advertise-client-urls "http://127.0.0.1:${ETCD_CPORT[n]}" \
    --listen-peer-urls "http://127.0.0.1:${ETCD_PPORT[n]}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PPORT[n]}" \
    --initial-cluster "$(join_by , "${peers[@]}")" \
    --initial-cluster-token "$(cat "$DIR/etcd-token")" \
    --initial-cluster-state new \
    >>"$d/etcd.log" 2>&1 </dev/null &
  echo $! >"$d/etcd.pid"
}

etcd_healthy() {
  etcdctl --endpoints="${1:-$(etcd_endpoints)}" --dial-timeout=2s --command-timeout=3s \
    endpoint health >/dev/null 2>&1
}

# The member number of the etcd leader (`endpoint status` says "true" in its
# fifth column).
etcd_leader() {
  local url
  url=$(etcdctl --endpoints="$(etcd_endpoints)" --dial-timeout=1s --command-timeout=2s endpoint status 2>/dev/null |
    awk -F', ' '$5 == "true" { print $1; exit }')
  [[ $url =~ :([0-9]+)$ ]] || return 1
  echo $((BASH_REMATCH[1] - BASE - 10 + 1))
}

# --- Patroni / PostgreSQL -------------------------------------------------

write_patroni_config() {
  local n="$1" d="$DIR/pg-$1" hosts=() m
  for m in "${ETCD_NODES[@]}"; do hosts+=("127.0.0.1:${ETCD_CPORT[m]}"); done
  mkdir -p "$d/log"
  # Written to a temporary file and renamed, so a running Patroni never reads
  # half a file.
  cat >"$d/patroni.yml.tmp" <<EOF
# Written by scripts/cluster.sh: PostgreSQL node pg-$n under Patroni.
scope: $SCOPE
name: pg-$n
restapi:
  listen: 127.0.0.1:${REST_PORT[n]}
  connect_address: 127.0.0.1:${REST_PORT[n]}
etcd3:
  hosts: $(join_by , "${hosts[@]}")
  protocol: http
# There is no hardware watchdog here; Patroni must not wait for one.
watchdog:
  mode: off
bootstrap:
  # Only read when the cluster is first initialised; later the settings live
  # in etcd (change them with patronictl edit-config).
  dcs:
    # Fast failure detection: the leader key expires 10 s after the primary's
    # Patroni stops renewing it, and each node looks every 2 s. Patroni wants
    # loop_wait + 2 * retry_timeout <= ttl.
    ttl: 10
    loop_wait: 2
    retry_timeout: 4
    # 0: a primary whose postgres crashed hands over to the sync standby at
    # once instead of being restarted in place (Patroni 3.0 reads this name;
    # master_start_timeout is its old alias).
    primary_start_timeout: 0
    # Only the standby named in /sync may be promoted, and the primary names
    # it in synchronous_standby_names, so no acknowledged commit is lost on
    # failover. Not strict: with the standby gone the primary goes on alone
    # (the test cluster must take writes after a failover).
    synchronous_mode: true
    synchronous_mode_strict: false
    synchronous_node_count: 1
    maximum_lag_on_failover: 1048576
    postgresql:
      # The old primary rejoins by rewinding to the new timeline, or by a
      # fresh clone when the rewind fails.
      use_pg_rewind: true
      remove_data_directory_on_rewind_failure: true
      remove_data_directory_on_diverged_timelines: true
      use_slots: true
      parameters:
        wal_level: replica
        wal_log_hints: "on"
        hot_standby: "on"
        max_wal_senders: 10
        max_replication_slots: 10
        max_connections: 200
  initdb:
    - encoding: UTF8
    - no-locale
postgresql:
  listen: 127.0.0.1:${PG_PORT[n]}
  connect_address: 127.0.0.1:${PG_PORT[n]}
  data_dir: $d/data
  bin_dir: $PG_BIN
  pgpass: $d/pgpass
  authentication:
    superuser:
      username: postgres
      password: postgres
    replication:
      username: replicator
      password: replicator
  # Only loopback TCP and the node's own socket directory.
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication all 127.0.0.1/32 trust
  basebackup:
    - checkpoint: fast
  parameters:
    unix_socket_directories: '$d'
    # A commit returns once the standby has replayed it, so what the primary
    # acknowledged is also visible there at once.
    synchronous_commit: remote_apply
    fsync: "on"
    # Crash recovery (failure tests kill the server) syncs the data
    # directory with one call instead of an fsync per file.
    recovery_init_sync_method: syncfs
    logging_collector: "on"
    log_directory: '$d/log'
    log_filename: postgresql.log
    log_rotation_age: 0
    log_file_mode: '0644'
    log_line_prefix: '%m [%p] '
EOF
  mv -f "$d/patroni.yml.tmp" "$d/patroni.yml"
  if ((${#RUN_AS[@]})); then
    chown postgres:postgres "$d" "$d/log" "$d/patroni.yml"
    [[ -f $d/pgpass ]] && chown postgres:postgres "$d/pgpass"
  fi
  chmod 600 "$d/patroni.yml"
  chmod 755 "$d"
}

spawn_patroni() {
  local n="$1" d="$DIR/pg-$1"
  # Patroni runs from its node directory with a clean environment: PATRONI_*
  # variables of the caller would override the file.
  (cd "$d" && exec setsid env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$d" LANG=C.UTF-8 PYTHONUNBUFFERED=1 \
    "${RUN_AS[@]}" patroni "$d/patroni.yml" >>"$d/patroni.log" 2>&1 </dev/null) &
  echo $! >"$d/patroni.pid"
}

rest_code() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:${REST_PORT[$1]}/$2" 2>/dev/null || true
}
# The node that is the primary now: Patroni's REST /primary answers 200 (it
# holds the leader key and runs postgres as primary) and postgres there is out
# of recovery. Both, because Patroni calls itself primary as soon as it asks
# postgres to promote, a moment before postgres accepts writes. Only when no
# Patroni names a primary, a node whose Patroni is gone (killed) and whose
# postgres is out of recovery counts.
primary_node() {
  local n orphans=()
  for n in "${PG_NODES[@]}"; do
    [[ $(rest_code "$n" primary) == 200 ]] && writable "$n" && { echo "$n"; return 0; }
  done
  for n in "${PG_NODES[@]}"; do
    ! member_pid "patroni-$n" >/dev/null && pg_pid "$n" >/dev/null && writable "$n" && orphans+=("$n")
  done
  ((${#orphans[@]} == 1)) && echo "${orphans[0]}"
}
writable() {
  [[ $(PGCONNECT_TIMEOUT=2 psql_node "$1" -c "SELECT pg_is_in_recovery()" 2>/dev/null) == f ]]
}

psql_node() {
  local n="$1"; shift
  timeout 30 "${PG_BIN:-/usr/bin}/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${PG_PORT[n]}" -U postgres -d postgres -tA "$@"
}

# --- stopping -------------------------------------------------------------

# SIGTERM to every pid given, one shared bounded wait, then SIGKILL.
stop_pids() {
  local what="$1" pid; shift
  (($#)) || return 0
  kill -TERM "$@" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT)) live
  while :; do
    live=()
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && live+=("$pid"); done
    ((${#live[@]})) || return 0
    ((SECONDS < deadline)) || break
    sleep 0.2
  done
  say "$what: no exit ${STOP_TIMEOUT}s after SIGTERM; sending SIGKILL to ${live[*]}"
  kill -KILL "${live[@]}" 2>/dev/null || true
  local i
  for ((i = 0; i < 50; i++)); do
    live=()
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && live+=("$pid"); done
    ((${#live[@]})) || return 0
    sleep 0.1
  done
  say "$what: ${live[*]} still alive after SIGKILL"
}

# A postgres left behind by a Patroni that was killed: fast shutdown, then
# immediate, then SIGKILL, each bounded.
stop_postgres() {
  local n="$1" pid
  pid=$(pg_pid "$n") || return 0
  say "stopping the postgres of pg-$n (pid $pid) that its Patroni left running"
  (cd / && as_owner "$PG_BIN/pg_ctl" stop -D "$DIR/pg-$n/data" -m fast -w -t 15 >/dev/null 2>&1) ||
    (cd / && as_owner "$PG_BIN/pg_ctl" stop -D "$DIR/pg-$n/data" -m immediate -w -t 10 >/dev/null 2>&1) || true
  if pid=$(pg_pid "$n"); then
    kill -KILL "$pid" 2>/dev/null || true
  fi
}

stop_member() {
  local name="$1" pid
  if pid=$(member_pid "$name"); then
    stop_pids "$name" "$pid"
  fi
  rm -f "$(pid_file "$name")"
  if [[ $name == patroni-* ]]; then
    stop_postgres "${name#patroni-}"
  fi
}

# Patroni replicas first: stopping the primary's Patroni first would hand
# the leader key to the standby and fail over for nothing. Kafka needs
# nothing of the others and stops meanwhile. etcd last, as Patroni needs it
# until it is gone.
group_pids() {
  local want="$1" group="$2" name pid
  for name in "$group-1" "$group-2" "$group-3"; do
    [[ $want == *" $name "* ]] || continue
    pid=$(member_pid "$name") && echo "$pid"
  done
  return 0
}
stop_members() {
  local want=" $* " n primary order=() kafka_pids etcd_pids kafka_stopper=
  mapfile -t kafka_pids < <(group_pids "$want" kafka)
  mapfile -t etcd_pids < <(group_pids "$want" etcd)
  if ((${#kafka_pids[@]})); then
    stop_pids kafka "${kafka_pids[@]}" &
    kafka_stopper=$!
  fi
  primary=$(primary_node 2>/dev/null) || primary=
  for n in "${PG_NODES[@]}"; do [[ $n != "$primary" ]] && order+=("$n"); done
  [[ -n $primary ]] && order+=("$primary")
  for n in "${order[@]}"; do
    [[ $want == *" patroni-$n "* ]] && stop_member "patroni-$n"
  done
  [[ -z $kafka_stopper ]] || wait "$kafka_stopper" || true
  # The etcd leader last: a leader stopped beside its followers tries to
  # hand over leadership to one of them that is going too, and waits ~7 s.
  local leader leader_pid='' followers=() pid
  if leader=$(etcd_leader) && leader_pid=$(member_pid "etcd-$leader") && [[ " ${etcd_pids[*]} " == *" $leader_pid "* ]]; then
    for pid in "${etcd_pids[@]}"; do [[ $pid != "$leader_pid" ]] && followers+=("$pid"); done
    stop_pids etcd "${followers[@]}"
    stop_pids etcd "$leader_pid"
  else
    stop_pids etcd "${etcd_pids[@]}"
  fi
  for n in "${KAFKA_NODES[@]}"; do [[ $want == *" kafka-$n "* ]] && rm -f "$(pid_file "kafka-$n")"; done
  for n in "${ETCD_NODES[@]}"; do [[ $want == *" etcd-$n "* ]] && rm -f "$(pid_file "etcd-$n")"; done
  return 0
}

# --- commands -------------------------------------------------------------

STARTED=()
START_DONE=
# On any failure of start (die, set -e, a signal) stop what this run started,
# so nothing is left behind.
on_start_exit() {
  local rc=$?
  [[ -n $START_DONE ]] && return
  trap - EXIT INT TERM
  ((${#STARTED[@]})) || exit "$rc"
  say "start failed; stopping what it started: ${STARTED[*]}"
  set +e
  stop_members "${STARTED[@]}"
  exit $((rc == 0 ? 1 : rc))
}

# fail_start MEMBER REASON: the reason, the member's log tail, then exit.
fail_start() {
  say "$2"
  [[ -n $1 ]] && show_logs "$1"
  exit 1
}

# Waits for one member to serve; fails the start when it dies or the
# deadline passes.
wait_member() {
  local name="$1" deadline="$2" n="${1##*-}" pid
  while :; do
    pid=$(member_pid "$name") || fail_start "$name" "$name exited during start-up (logs under $DIR)"
    case $name in
      kafka-*) kafka_node_up "$n" && return 0 ;;
      etcd-*) etcd_healthy "http://127.0.0.1:${ETCD_CPORT[n]}" && return 0 ;;
      patroni-*)
        local c
        c=$(rest_code "$n" health)
        [[ $c == 200 ]] && return 0
        ;;
    esac
    ((SECONDS < deadline)) || fail_start "$name" "$name did not serve within ${START_TIMEOUT}s (logs under $DIR)"
    sleep 0.5
  done
}

start_member() {
  local name="$1" n="${1##*-}"
  check_ports_free "$name"
  case $name in
    kafka-*)
      write_kafka_config "$n"
      format_kafka "$n" || fail_start "" "formatting $DIR/kafka-$n failed: $(tail -n 5 "$DIR/kafka-$n/logs/format.out")"
      spawn_kafka "$n"
      ;;
    etcd-*) spawn_etcd "$n" ;;
    patroni-*)
      write_patroni_config "$n"
      spawn_patroni "$n"
      ;;
  esac
  STARTED+=("$name")
  say "$name started (pid $(cat "$(pid_file "$name")"))"
}

cmd_start() {
  [[ $# -eq 1 ]] || usage
  check_tools
  layout "$1" create
  check_owner_can_reach "$DIR"
  local t0=$SECONDS deadline=$((SECONDS + START_TIMEOUT)) name n pending=()
  "$KAFKA_SH" fetch >&2
  # A first start that failed part-way can leave a half-made cluster (e.g.
  # initdb done but Patroni's roles not created yet) that would never come
  # up; DIR/created marks a cluster that once came up whole.
  if [[ -f $DIR/port-base && ! -f $DIR/created ]]; then
    for name in $(all_members); do
      ! member_pid "$name" >/dev/null ||
        die "the first start of $DIR did not complete, yet $name runs; stop it first (scripts/cluster.sh stop $DIR)"
    done
    say "the first start of $DIR did not complete; creating its cluster afresh"
    rm -rf "$DIR"/kafka-[123] "$DIR"/etcd-[123] "$DIR"/pg-[12] "$DIR/kafka-cluster-id" "$DIR/etcd-token"
  fi
  echo "$BASE" >"$DIR/port-base"
  [[ -f $DIR/kafka-cluster-id ]] || "$KAFKA_SH" cluster-id >"$DIR/kafka-cluster-id"
  [[ -f $DIR/etcd-token ]] || echo "feed-$("$KAFKA_SH" cluster-id)" >"$DIR/etcd-token"
  # A traversable DIR: Patroni runs as another user below it.
  chmod 755 "$DIR"

  for name in $(all_members); do
    member_pid "$name" >/dev/null || pending+=("$name")
  done
  for name in "${pending[@]}"; do check_ports_free "$name"; done
  ((${#pending[@]})) || say "everything already runs"

  trap on_start_exit EXIT
  trap 'exit 130' INT TERM
  # etcd first: Patroni needs it. The Kafka formats (a JVM each) run side by
  # side, as do the brokers' start-ups.
  local want=" ${pending[*]} "
  for n in "${ETCD_NODES[@]}"; do [[ $want == *" etcd-$n "* ]] && start_member "etcd-$n"; done
  local fpids=()
  for n in "${KAFKA_NODES[@]}"; do
    if [[ $want == *" kafka-$n "* && ! -f $DIR/kafka-$n/data/meta.properties ]]; then
      write_kafka_config "$n"
      format_kafka "$n" &
      fpids+=($!)
    fi
  done
  for n in "${fpids[@]}"; do
    wait "$n" || fail_start "" "formatting the Kafka storage failed: $(cat "$DIR"/kafka-*/logs/format.out 2>/dev/null | tail -n 10)"
  done
  for n in "${KAFKA_NODES[@]}"; do [[ $want == *" kafka-$n "* ]] && start_member "kafka-$n"; done

  for n in "${ETCD_NODES[@]}"; do wait_member "etcd-$n" "$deadline"; done
  until etcd_healthy; do
    ((SECONDS < deadline)) || fail_start etcd-1 "etcd is not healthy after ${START_TIMEOUT}s"
    sleep 0.5
  done
  say "etcd healthy after $((SECONDS - t0))s"
  for n in "${PG_NODES[@]}"; do [[ $want == *" patroni-$n "* ]] && start_member "patroni-$n"; done

  for n in "${KAFKA_NODES[@]}"; do wait_member "kafka-$n" "$deadline"; done
  until kafka_cluster_serves; do
    ((SECONDS < deadline)) || fail_start kafka-1 "the Kafka brokers did not all register within ${START_TIMEOUT}s"
    for n in "${KAFKA_NODES[@]}"; do member_pid "kafka-$n" >/dev/null || fail_start "kafka-$n" "kafka-$n exited"; done
    sleep 1
  done
  say "Kafka: 3 brokers serving after $((SECONDS - t0))s"

  wait_postgres "$deadline" "$t0"
  touch "$DIR/created"
  START_DONE=1
  trap - EXIT INT TERM
  say "cluster running in $DIR after $((SECONDS - t0))s"
  echo "KAFKA_BROKERS=$(brokers)"
  echo "DATABASE_URL=$(database_url)"
}

# A primary, a standby streaming as sync, the root role and defaultdb, and a
# committed write (which, with remote_apply, the standby has applied).
wait_postgres() {
  local deadline="$1" t0="$2" n p="" other sync
  for n in "${PG_NODES[@]}"; do wait_member "patroni-$n" "$deadline"; done
  while :; do
    for n in "${PG_NODES[@]}"; do
      member_pid "patroni-$n" >/dev/null || fail_start "patroni-$n" "patroni-$n exited during start-up"
    done
    if p=$(primary_node); then
      other=$((3 - p))
      sync=$(psql_node "$p" -c "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync' AND application_name = 'pg-$other'" 2>/dev/null) || sync=0
      [[ $sync == 1 && $(rest_code "$other" replica) == 200 ]] && break
    fi
    if ((SECONDS >= deadline)); then
      show_logs patroni-1
      fail_start patroni-2 "PostgreSQL has no primary with a sync standby after ${START_TIMEOUT}s"
    fi
    sleep 0.5
  done
  say "PostgreSQL: primary pg-$p, sync standby pg-$other after $((SECONDS - t0))s"
  [[ -n $(psql_node "$p" -c "SELECT 1 FROM pg_roles WHERE rolname = 'root'") ]] ||
    psql_node "$p" -c "CREATE ROLE root SUPERUSER LOGIN" >/dev/null
  [[ -n $(psql_node "$p" -c "SELECT 1 FROM pg_database WHERE datname = 'defaultdb'") ]] ||
    psql_node "$p" -c "CREATE DATABASE defaultdb OWNER root" >/dev/null
  psql_node "$p" -c "SELECT txid_current()" >/dev/null ||
    fail_start "patroni-$p" "the primary pg-$p does not commit a write"
}

cmd_start_node() {
  [[ $# -eq 2 ]] || usage
  valid_member "$2" || die "unknown member '$2'; one of: $(all_members)"
  check_tools
  layout "$1"
  local name="$2" pid deadline=$((SECONDS + START_TIMEOUT)) t0=$SECONDS
  if pid=$(member_pid "$name"); then
    say "$name already runs (pid $pid)"
    return 0
  fi
  [[ $name != kafka-* ]] || "$KAFKA_SH" fetch >&2
  [[ $name != patroni-* ]] || check_owner_can_reach "$DIR"
  # A patroni-N whose postgres survived it: Patroni takes that postgres over.
  trap on_start_exit EXIT
  trap 'exit 130' INT TERM
  start_member "$name"
  wait_member "$name" "$deadline"
  START_DONE=1
  trap - EXIT INT TERM
  say "$name serving after $((SECONDS - t0))s"
}

cmd_stop_node() {
  [[ $# -eq 2 ]] || usage
  valid_member "$2" || die "unknown member '$2'; one of: $(all_members)"
  layout "$1"
  stop_member "$2"
  say "$2 stopped"
}

cmd_stop() {
  [[ $# -eq 1 ]] || usage
  layout "$1"
  local t0=$SECONDS
  # shellcheck disable=SC2046
  stop_members $(all_members)
  say "stopped after $((SECONDS - t0))s"
}

cmd_pids() {
  [[ $# -eq 1 ]] || usage
  layout "$1"
  local name n pid p
  for name in $(all_members); do
    pid=$(member_pid "$name") || pid=-
    echo "$name $pid"
  done
  for n in "${PG_NODES[@]}"; do
    pid=$(pg_pid "$n") || pid=-
    echo "pg-$n $pid"
  done
  p=$(primary_node) && echo "pg-primary pg-$p" || echo "pg-primary -"
  p=$(recorded_controller) && echo "kafka-controller kafka-$p" || echo "kafka-controller -"
}

cmd_controller() {
  [[ $# -eq 1 ]] || usage
  layout "$1"
  local out id live=() n
  for n in "${KAFKA_NODES[@]}"; do
    member_pid "kafka-$n" >/dev/null && live+=("127.0.0.1:${KAFKA_PORT[n]}")
  done
  ((${#live[@]})) || die "no Kafka node of $DIR runs"
  kafka_tool
  out=$(timeout 60 "${TOOL[@]}" org.apache.kafka.tools.MetadataQuorumCommand \
    --bootstrap-server "$(join_by , "${live[@]}")" describe --status) ||
    die "the KRaft quorum did not answer (nodes: ${live[*]})"
  id=$(sed -n 's/^LeaderId:[[:space:]]*\([0-9]*\).*/\1/p' <<<"$out")
  [[ -n $id ]] || die "no LeaderId in the quorum status: $out"
  echo "kafka-controller kafka-$id"
}

cmd_status() {
  [[ $# -eq 1 ]] || usage
  layout "$1"
  local name pid all=0 p
  for name in $(all_members); do
    if pid=$(member_pid "$name"); then
      echo "$name running $pid"
    else
      echo "$name stopped"
      all=3
    fi
  done
  p=$(primary_node) && echo "pg-primary pg-$p" || { echo "pg-primary -"; all=3; }
  return "$all"
}

[[ $# -ge 1 ]] || usage
cmd="$1"; shift
case "$cmd" in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  start-node) cmd_start_node "$@" ;;
  stop-node) cmd_stop_node "$@" ;;
  pids) cmd_pids "$@" ;;
  controller) cmd_controller "$@" ;;
  status) cmd_status "$@" ;;
  -h|--help|help) usage ;;
  *) say "unknown command '$cmd'"; usage ;;
esac
