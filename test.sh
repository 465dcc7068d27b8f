#!/usr/bin/env bash
# The one test command: installs what is missing, builds, starts a private
# Kafka broker and PostgreSQL cluster on loopback, runs the unit tests
# (CTest) and the system tests (pytest), and stops what it started.
#
#   ./test.sh                 everything
#   ./test.sh -k feed         pass extra arguments to pytest
# Environment: BUILD_DIR (default build), FEED_SKIP_SERVICES=1 to run without
# Kafka/PostgreSQL (their tests are then skipped, and say so).
set -euo pipefail
cd "$(dirname "$0")"
root=$(pwd)
build=${BUILD_DIR:-build}

scripts/install-deps.sh

werror=OFF
[[ -n "${CI:-}" ]] && werror=ON
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFEED_WERROR=$werror -DFEED_BUILD_TESTS=ON >/dev/null
cmake --build "$build" -j"$(nproc)"

services=$(mktemp -d /tmp/feed-test-services.XXXXXX)
chmod 755 "$services"
cleanup() {
  set +e
  [[ -f "$services/kafka/pid" ]] && scripts/kafka.sh stop "$services/kafka" >/dev/null 2>&1
  [[ -f "$services/pg/PG_VERSION" ]] && scripts/postgres.sh stop "$services/pg" >/dev/null 2>&1
  rm -rf "$services"
}
trap cleanup EXIT

# Below the kernel's ephemeral range (32768+), so that no client socket can
# take the port while a service is stopped for a failure test; Kafka also
# needs the next port for its controller.
free_port() {
  python3 - <<'PY'
import random, socket
for _ in range(200):
    p = random.randrange(20000, 32000)
    try:
        for q in (p, p + 1):
            with socket.socket() as s:
                s.bind(("127.0.0.1", q))
    except OSError:
        continue
    print(p)
    break
else:
    raise SystemExit("no free port pair in 20000-32000")
PY
}

if [[ -z "${FEED_SKIP_SERVICES:-}" ]]; then
  echo "test.sh: starting PostgreSQL and Kafka on loopback" >&2
  export FEED_TEST_DATABASE_URL=$(scripts/postgres.sh start "$services/pg" "$(free_port)")
  export FEED_TEST_KAFKA_BROKERS=$(scripts/kafka.sh start "$services/kafka" "$(free_port)")
  export FEED_TEST_PG_DIR="$services/pg"
  export FEED_TEST_KAFKA_DIR="$services/kafka"
fi

echo "test.sh: unit tests" >&2
(cd "$build" && ctest --output-on-failure --timeout 300)

echo "test.sh: system tests" >&2
FEED_BUILD_DIR="$root/$build" .venv/bin/python -m pytest tests/system -q -p no:cacheprovider "$@"
