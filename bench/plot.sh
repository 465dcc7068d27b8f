#!/usr/bin/env bash
# Makes docs/img/*.png from the newest bench/results (see plot.py), in a
# venv under bench/.venv with matplotlib installed by pip.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_venv
exec "$BENCH_DIR/.venv/bin/python" "$BENCH_DIR/plot.py" "$@"
