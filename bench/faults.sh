#!/usr/bin/env bash
# Faults under load, the long versions of tests/system/test_cluster_faults.py:
# on a fresh local cluster (scripts/cluster.sh), three feed-api instances,
# feed-bot posting to all three with --verify and subscribers on all three,
# and one fault per run, held for HOLD seconds:
#
#   kill-partition-leader   SIGKILL the broker leading most partitions, restart it
#   kill-active-controller  SIGKILL the active KRaft controller, restart it
#   pause-broker            SIGSTOP a partition leader for HOLD s, then SIGCONT
#   kill-database-primary   SIGKILL the PostgreSQL primary; Patroni promotes the standby
#   kill-instance           SIGKILL one feed-api; its subscribers move on; restart it
#   cut-instance            cut one feed-api off Kafka and PostgreSQL (network
#                           namespace, scripts/netns.sh) for HOLD s, then heal
#
#   bench/faults.sh                   every fault (about 20 min)
#   bench/faults.sh pause-broker ...  some of them
#
# Environment: RATE (posts/s, default 300), DURATION (s of posting, 90),
# SUBSCRIBERS (30), FAULT_AT (s into the run, 20), HOLD (30),
# CLUSTER_PORT_BASE (29200). Prints the table of docs/RELIABILITY.md; the
# bot summaries and logs stay in bench/results/<timestamp>-faults/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_built
[[ -x "$ROOT/.venv/bin/python" ]] || "$ROOT/scripts/install-deps.sh"
OUT="$(bench_results_dir faults)"
chmod 755 "$OUT"  # the cluster's PostgreSQL runs as the postgres user
machine_info >"$OUT/machine.txt"
say "results in $OUT"
"$ROOT/.venv/bin/python" "$ROOT/tests/system/faults.py" --build-dir "$BUILD" --work-dir "$OUT" \
  --port-base "${CLUSTER_PORT_BASE:-29200}" --rate "${RATE:-300}" --duration "${DURATION:-90}" \
  --subscribers "${SUBSCRIBERS:-30}" --fault-at "${FAULT_AT:-20}" --hold "${HOLD:-30}" "$@" |
  tee "$OUT/table.md"
