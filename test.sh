#!/usr/bin/env bash
# The one test command: installs what is missing, builds, starts a private
# Kafka broker and PostgreSQL cluster on loopback, runs the unit tests
# (CTest), the system tests (pytest; among them the web page in headless
# chromium, and faults on a replicated cluster that the tests start with
# scripts/cluster.sh) and short runs of the fuzz targets (fuzz/run.sh), and
# stops what it started.
#
#   ./test.sh                    everything, on the Release build (build/)
#   ./test.sh -k feed            pass extra arguments to pytest
#   ./test.sh --sanitize=address the unit and system tests on an ASan + UBSan
#                                build (build-asan/); any sanitizer report fails
#   ./test.sh --sanitize=thread  the same on a TSan build (build-tsan/)
#
# With CI set (.ci/run), the Release build runs its unit tests and the whole
# suite then runs on the ASan + UBSan build, so that CI stays well within its
# time while every test runs under the sanitizers.
# Environment: BUILD_DIR (default build, build-asan or build-tsan),
# FEED_SKIP_SERVICES=1 to run without Kafka/PostgreSQL (their tests are then
# skipped, and say so), FEED_SKIP_CLUSTER=why to leave out the replicated
# cluster's tests, FEED_SKIP_FUZZ=1 to leave out the fuzz runs.
set -euo pipefail
cd "$(dirname "$0")"
root=$(pwd)

sanitize=
pytest_args=()
for arg in "$@"; do
  case "$arg" in
    --sanitize=address|--sanitize=thread) sanitize=${arg#--sanitize=} ;;
    --sanitize=*) echo "test.sh: --sanitize takes address or thread, not '${arg#--sanitize=}'" >&2; exit 2 ;;
    *) pytest_args+=("$arg") ;;
  esac
done

scripts/install-deps.sh

werror=OFF
[[ -n "${CI:-}" ]] && werror=ON
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # Paths relative to the checkout, so that another clone hits the cache too.
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root}
fi

# build DIR [SANITIZER]: configures and builds the tree in DIR.
build() {
  local dir="$1" san="${2:-}" flags=(-DCMAKE_BUILD_TYPE=Release -DFEED_WERROR=$werror)
  # -O1 with asserts on: sanitized code runs at a usable speed and compiles
  # faster than -O2. Warnings are the Release build's to fail on: at -O1
  # with sanitizers GCC warns of much that is not there.
  [[ -n "$san" ]] && flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g"
                            -DFEED_SANITIZE="$san" -DFEED_WERROR=OFF)
  echo "test.sh: building $dir${san:+ ($san sanitizer)}" >&2
  cmake -S . -B "$dir" -G Ninja "${flags[@]}" -DFEED_BUILD_TESTS=ON "${launcher[@]}" >/dev/null
  cmake --build "$dir" -j"$(nproc)"
}

services=$(mktemp -d /tmp/feed-test-services.XXXXXX)
chmod 755 "$services"
cleanup() {
  set +e
  [[ -f "$services/kafka/kafka.pid" ]] && scripts/kafka.sh stop "$services/kafka" >/dev/null 2>&1
  [[ -f "$services/pg/PG_VERSION" ]] && scripts/postgres.sh stop "$services/pg" >/dev/null 2>&1
  rm -rf "$services"
}
trap cleanup EXIT

# Sanitizer reports go to files as well as failing the process that made
# them, so that a report from a feed-api a system test started (and maybe
# stopped without looking at its exit status) still fails the run.
sanitizer_logs="$services/sanitizer"
sanitizer_env() {
  mkdir -p "$sanitizer_logs"
  case "$1" in
    address)
      export ASAN_OPTIONS="abort_on_error=1:halt_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:log_path=$sanitizer_logs/asan"
      export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:log_path=$sanitizer_logs/ubsan"
      ;;
    thread)
      export TSAN_OPTIONS="halt_on_error=1:abort_on_error=1:second_deadlock_stack=1:log_path=$sanitizer_logs/tsan"
      ;;
  esac
}
check_sanitizer_logs() {
  local f found=0
  for f in "$sanitizer_logs"/*; do
    [[ -s "$f" ]] || continue
    found=1
    echo "test.sh: sanitizer report $f:" >&2
    cat "$f" >&2
  done
  ((found == 0)) || { echo "test.sh: sanitizer reports above; failing" >&2; return 1; }
}

# Below the kernel's ephemeral range (32768+), so that no client socket can
# take the port while a service is stopped for a failure test; Kafka also
# needs the next port for its controller.
free_port() {
  python3 - <<'PY'
import random, socket
for _ in range(200):
    p = random.randrange(20000, 26000)  # 26000-31999 is the cluster tests' (tests/system/cluster.py)
    try:
        for q in (p, p + 1):
            with socket.socket() as s:
                s.bind(("127.0.0.1", q))
    except OSError:
        continue
    print(p)
    break
else:
    raise SystemExit("no free port pair in 20000-26000")
PY
}

unit_tests() {
  echo "test.sh: unit tests ($1)" >&2
  (cd "$1" && ctest --output-on-failure --timeout 300 "${ctest_exclude[@]}")
}
# Two streams side by side: the tests that start the replicated cluster (or a
# network namespace) spend most of their time waiting for it, so they run
# beside the rest instead of after it. Each stream's own ports keep them
# apart (tests/system/cluster.py). pytest's status 5 means the arguments
# selected nothing in that stream.
system_tests() {
  echo "test.sh: system tests ($1), the cluster tests beside the others" >&2
  local log="$services/cluster-tests.log" cluster_status=0 status=0 pid
  FEED_BUILD_DIR="$root/$1" .venv/bin/python -m pytest tests/system -q -p no:cacheprovider -m cluster \
    "${pytest_args[@]}" >"$log" 2>&1 &
  pid=$!
  FEED_BUILD_DIR="$root/$1" .venv/bin/python -m pytest tests/system -q -p no:cacheprovider -m "not cluster" \
    "${pytest_args[@]}" || status=$?
  wait "$pid" || cluster_status=$?
  echo "test.sh: the cluster tests ($1):" >&2
  cat "$log" >&2
  ((status == 5)) && status=0
  ((cluster_status == 5)) && cluster_status=0
  ((status == 0 && cluster_status == 0))
}

# What to build and run: a release build (unit tests, and system tests unless
# they run on a sanitized build) and at most one sanitized build (everything).
release=
sanitized=
if [[ -n "$sanitize" ]]; then
  sanitized=${BUILD_DIR:-build-${sanitize:0:1}san}
elif [[ -n "${CI:-}" ]]; then
  release=${BUILD_DIR:-build}
  sanitize=address
  sanitized=build-asan
else
  release=${BUILD_DIR:-build}
fi

[[ -z "$release" ]] || build "$release"
[[ -z "$sanitized" ]] || build "$sanitized" "$sanitize"

# librdkafka starts its threads with C11 thrd_create, which GCC 12's
# ThreadSanitizer does not intercept: those threads crash inside TSan's
# allocator. Under TSan the Kafka parts are therefore left out (no broker,
# so the Kafka-mode system tests skip themselves, and the unit tests that
# start librdkafka threads without a broker are excluded).
kafka=1
ctest_exclude=()
if [[ "$sanitize" == thread ]]; then
  kafka=
  export FEED_SKIP_CLUSTER="librdkafka under TSan"
  ctest_exclude=(-E '^KafkaUnreachable[.]')
  echo "test.sh: under TSan the Kafka tests are left out (librdkafka's threads are invisible to it)" >&2
fi

if [[ -n "${FEED_SKIP_SERVICES:-}" ]]; then
  export FEED_SKIP_CLUSTER="FEED_SKIP_SERVICES"
else
  echo "test.sh: starting PostgreSQL${kafka:+ and Kafka} on loopback" >&2
  export FEED_TEST_DATABASE_URL=$(scripts/postgres.sh start "$services/pg" "$(free_port)")
  export FEED_TEST_PG_DIR="$services/pg"
  if [[ -n "$kafka" ]]; then
    export FEED_TEST_KAFKA_BROKERS=$(scripts/kafka.sh start "$services/kafka" "$(free_port)")
    export FEED_TEST_KAFKA_DIR="$services/kafka"
  fi
fi

if [[ -n "$release" ]]; then
  unit_tests "$release"
  [[ -n "$sanitized" ]] || system_tests "$release"
fi
if [[ -n "$sanitized" ]]; then
  (
    sanitizer_env "$sanitize"
    # Both suites run even when one fails: each may find something.
    status=0
    unit_tests "$sanitized" || status=$?
    system_tests "$sanitized" || status=$?
    check_sanitizer_logs || status=1
    exit "$status"
  )
fi

# Short fuzz runs, to catch a target that no longer builds or an input that
# crashes at once; bench/fuzz.sh runs them for millions of executions.
if [[ -z "${FEED_SKIP_FUZZ:-}" && -n "$release" ]]; then
  if command -v clang++ >/dev/null; then
    echo "test.sh: fuzz targets" >&2
    fuzz/run.sh --runs 100000 --seconds 10
  else
    echo "test.sh: clang++ not found, fuzz targets skipped" >&2
  fi
fi
