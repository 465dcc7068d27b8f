#!/usr/bin/env bash
# Installs what building and testing need, from Debian's packages and PyPI
# (into .venv). Safe to run again: only missing packages are installed.
#
#   scripts/install-deps.sh          build + test dependencies
#   scripts/install-deps.sh --bench  also the benchmark tools (wrk, nginx + nchan, perf)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  # build
  g++ cmake ninja-build pkg-config ccache
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libsqlite3-dev libspdlog-dev libfmt-dev libcli11-dev prometheus-cpp-dev
  librdkafka-dev libpq-dev libjemalloc-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # fuzz targets (libFuzzer and its sanitizer runtimes; clang only recommends them)
  clang libclang-rt-14-dev
  # real services for the system tests
  postgresql openjdk-17-jre-headless maven
  # the replicated cluster of scripts/cluster.sh: etcd (etcdctl for its
  # health checks) and Patroni, whose etcd3 DCS imports python3-etcd
  etcd-server etcd-client patroni python3-etcd
  # system tests
  python3 python3-venv curl procps
  # the web page's browser tests: Playwright drives Debian's chromium (its
  # own browser download is never run), with a font to render text
  chromium fonts-dejavu-core
  # network partitions for the system tests (scripts/netns.sh)
  iproute2 nftables
)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(wrk nginx libnginx-mod-nchan linux-perf valgrind)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# Python for the system tests, pinned in tests/system/requirements.txt.
if [[ ! -x .venv/bin/pytest ]] || ! cmp -s tests/system/requirements.txt .venv/.requirements 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r tests/system/requirements.txt >&2
  cp tests/system/requirements.txt .venv/.requirements
fi
