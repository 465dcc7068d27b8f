#!/usr/bin/env bash
# A private PostgreSQL cluster for tests and local runs, beside (never
# touching) any system cluster.
#
#   scripts/postgres.sh start  DIR PORT   initdb DIR if needed, start, print URL
#   scripts/postgres.sh stop   DIR        fast shutdown of that cluster only
#   scripts/postgres.sh status DIR        pg_ctl status (exit 0 = running)
#
# start listens on 127.0.0.1:PORT only (unix socket in DIR), fsync on, trust
# auth for local connections, and creates the superuser role `root` and the
# database `defaultdb` (the names CockroachDB uses by default, so one URL shape
# serves both). Its only stdout line is the connection URL:
#   postgresql://root@127.0.0.1:PORT/defaultdb?sslmode=disable
# Diagnostics go to stderr; the server log is DIR/log.
#
# PostgreSQL refuses to run as root, so when invoked as root the server
# commands run as the `postgres` OS user (created by the Debian package); any
# other user runs them as itself.
set -euo pipefail

readonly WAIT_SECONDS=30

die() {
  echo "postgres.sh: $*" >&2
  exit 1
}

usage() {
  cat >&2 <<'EOF'
usage: scripts/postgres.sh start DIR PORT
       scripts/postgres.sh stop DIR
       scripts/postgres.sh status DIR
EOF
  exit 2
}

# The newest installed server version's binaries; Debian keeps them off PATH.
find_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -V -r); do
    if [[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]]; then
      echo "$d"
      return 0
    fi
  done
  local initdb
  if initdb=$(command -v initdb 2>/dev/null) && command -v pg_ctl >/dev/null && command -v postgres >/dev/null; then
    dirname "$initdb"
    return 0
  fi
  return 1
}

BINDIR=$(find_bindir) ||
  die "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; install them with: apt-get install postgresql"

# Runs a command as the cluster's owner. From / so that a cwd the owner cannot
# read (e.g. /root) does not break the server tools.
RUN_AS=()
if [[ $(id -u) -eq 0 ]]; then
  getent passwd postgres >/dev/null ||
    die "running as root needs the 'postgres' OS user (apt-get install postgresql creates it)"
  if command -v runuser >/dev/null; then
    RUN_AS=(runuser -u postgres --)
  else
    RUN_AS=(su_postgres)
  fi
fi
su_postgres() {
  local q
  q=$(printf '%q ' "$@")
  su -s /bin/sh postgres -c "$q"
}
as_owner() {
  (cd / && "${RUN_AS[@]}" "$@")
}

# Absolute path without requiring it to exist yet.
abspath() {
  case $1 in
    /*) echo "$1" ;;
    *) echo "$PWD/$1" ;;
  esac
}

# Creates DIR (and missing parents, world-traversable) owned by the cluster
# owner with the 0700 mode initdb insists on.
prepare_dir() {
  local dir=$1 p missing=()
  p=$dir
  while [[ ! -e $p ]]; do
    missing+=("$p")
    p=$(dirname "$p")
  done
  if ((${#missing[@]})); then
    mkdir -p "$dir"
    # Parents we created must let the owner through; DIR itself is 0700 below.
    chmod 755 "${missing[@]}"
  fi
  [[ -d $dir ]] || die "$dir exists and is not a directory"
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres:postgres "$dir"
  fi
  chmod 700 "$dir"
  as_owner test -x "$dir" -a -w "$dir" ||
    die "the cluster owner cannot reach $dir; make its parent directories traversable (chmod o+x)"
}

# Prints the port a running cluster listens on (line 4 of postmaster.pid).
running_port() {
  sed -n 4p "$1/postmaster.pid" 2>/dev/null
}

is_running() {
  as_owner "$BINDIR/pg_ctl" status -D "$1" >/dev/null 2>&1
}

psql_admin() {
  local dir=$1 port=$2
  shift 2
  as_owner "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres -tA "$@"
}

cmd_start() {
  local dir port
  dir=$(abspath "$1")
  port=$2
  [[ $port =~ ^[0-9]+$ ]] && ((port > 0 && port < 65536)) || die "PORT must be a TCP port number, got '$port'"
  # The unix socket lives in DIR and socket paths are limited to 107 bytes.
  ((${#dir} + 18 < 108)) || die "$dir is too long for a unix socket path; use a shorter DIR"

  prepare_dir "$dir"

  if [[ ! -f $dir/PG_VERSION ]]; then
    if [[ -n $(ls -A "$dir") ]]; then
      die "$dir is neither empty nor a PostgreSQL data directory"
    fi
    echo "postgres.sh: initialising a cluster in $dir" >&2
    local out
    out=$(as_owner "$BINDIR/initdb" -D "$dir" -U postgres -E UTF8 --no-locale \
      --auth-local=trust --auth-host=trust 2>&1) || {
      echo "$out" >&2
      die "initdb failed"
    }
    # Only loopback TCP and the socket: nothing else may connect at all.
    as_owner sh -c "cat >'$dir/pg_hba.conf'" <<'EOF'
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 trust
host    all       all   127.0.0.1/32  trust
EOF
  fi

  if is_running "$dir"; then
    local have
    have=$(running_port "$dir")
    [[ $have == "$port" ]] || die "the cluster in $dir is already running on port $have, not $port"
    echo "postgres.sh: the cluster in $dir is already running" >&2
  else
    # Settings go on the command line so that reusing DIR with another PORT
    # just works; fsync is on explicitly because tests measure durability.
    # syncfs: crash recovery (failure tests kill the server) syncs the data
    # directory with one call instead of an fsync per file, which took over
    # 30 s on a busy machine once many test databases existed.
    local opts="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$dir' -c fsync=on -c recovery_init_sync_method=syncfs"
    if ! as_owner "$BINDIR/pg_ctl" start -D "$dir" -l "$dir/log" -w -t "$WAIT_SECONDS" -o "$opts" >/dev/null; then
      tail -n 20 "$dir/log" >&2 || true
      die "the server in $dir did not start (is port $port in use?); log: $dir/log"
    fi
  fi

  # pg_ctl -w already waited; this also proves TCP on 127.0.0.1 accepts.
  local i
  for ((i = 0; i < WAIT_SECONDS * 10; i++)); do
    if as_owner "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$port" -t 1; then
      break
    fi
    sleep 0.1
  done
  as_owner "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$port" -t 1 ||
    die "the server in $dir is not accepting connections on 127.0.0.1:$port after ${WAIT_SECONDS}s; log: $dir/log"

  if [[ -z $(psql_admin "$dir" "$port" -c "SELECT 1 FROM pg_roles WHERE rolname = 'root'") ]]; then
    psql_admin "$dir" "$port" -c "CREATE ROLE root SUPERUSER LOGIN" >/dev/null
  fi
  if [[ -z $(psql_admin "$dir" "$port" -c "SELECT 1 FROM pg_database WHERE datname = 'defaultdb'") ]]; then
    psql_admin "$dir" "$port" -c "CREATE DATABASE defaultdb OWNER root" >/dev/null
  fi

  echo "postgresql://root@127.0.0.1:$port/defaultdb?sslmode=disable"
}

cmd_stop() {
  local dir
  dir=$(abspath "$1")
  [[ -f $dir/PG_VERSION ]] || die "$dir is not a PostgreSQL data directory"
  if ! is_running "$dir"; then
    echo "postgres.sh: the cluster in $dir is not running" >&2
    return 0
  fi
  if as_owner "$BINDIR/pg_ctl" stop -D "$dir" -m fast -w -t "$WAIT_SECONDS" >/dev/null; then
    return 0
  fi
  # A fast shutdown that hangs (e.g. a stuck client) must not hang the caller.
  echo "postgres.sh: fast shutdown timed out; stopping immediately" >&2
  as_owner "$BINDIR/pg_ctl" stop -D "$dir" -m immediate -w -t "$WAIT_SECONDS" >/dev/null ||
    die "could not stop the cluster in $dir"
}

cmd_status() {
  local dir
  dir=$(abspath "$1")
  as_owner "$BINDIR/pg_ctl" status -D "$dir"
}

[[ $# -ge 1 ]] || usage
case $1 in
  start)
    [[ $# -eq 3 ]] || usage
    cmd_start "$2" "$3"
    ;;
  stop)
    [[ $# -eq 2 ]] || usage
    cmd_stop "$2"
    ;;
  status)
    [[ $# -eq 2 ]] || usage
    cmd_status "$2"
    ;;
  *) usage ;;
esac
