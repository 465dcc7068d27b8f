#!/usr/bin/env bash
# End-to-end smoke test of feed-bot against the stand-in server: a clean run
# must verify (exit 0); lost, duplicated and 503'd messages must be noticed.
# Usage: smoke.sh <feed-bot> <bot_discard_server>
set -uo pipefail
BOT=$1
SERVER=$2
OUT=$(mktemp -d)
SERVER_PID=
trap '[[ -n $SERVER_PID ]] && kill $SERVER_PID 2>/dev/null; rm -rf "$OUT"' EXIT
fail() { echo "FAIL: $*"; cat "$OUT/bot.err" >&2; exit 1; }

run() {  # run <server flags...> -- <bot flags...>; sets RC and JSON
  local sflags=()
  while [[ $1 != -- ]]; do sflags+=("$1"); shift; done; shift
  "$SERVER" --port 0 --max-seconds 60 "${sflags[@]}" >"$OUT/server.out" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 50); do grep -q '^port' "$OUT/server.out" 2>/dev/null && break; sleep 0.1; done
  local port
  port=$(awk '/^port/{print $2}' "$OUT/server.out")
  timeout 60 "$BOT" --api "http://127.0.0.1:$port" --progress 0 "$@" >"$OUT/bot.out" 2>"$OUT/bot.err"
  RC=$?
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=
  JSON=$(tail -n 1 "$OUT/bot.out")
}
field() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2], {}, d))" "$JSON" "$1"; }

run -- --subscribers 50 --verify --rate 200 --duration 2
[[ $RC == 0 ]] || fail "clean run exited $RC"
[[ $(field 'delivery["received"]') == 20000 ]] || fail "clean run: received $(field 'delivery["received"]'), want 20000"

run --chunked --drop-every 10 --dup-every 25 -- --subscribers 4 --verify --rate 500 --count 100 --verify-timeout 1
[[ $RC == 1 ]] || fail "faulty server: exit $RC, want 1"
# seq 10, 20, ... 100 dropped, at 4 subscribers
[[ $(field 'delivery["missing"]') == 40 ]] || fail "missing $(field 'delivery["missing"]'), want 40"
# seq 25 and 75 doubled (50 and 100 are dropped first), at 4 subscribers
[[ $(field 'delivery["duplicated"]') == 8 ]] || fail "duplicated $(field 'delivery["duplicated"]'), want 8"

run --reject-every 5 -- --subscribers 2 --verify --rate 100 --count 50 --max-retries 2
[[ $RC == 0 ]] || fail "503 retries: exit $RC, want 0"
[[ $(field 'posts["retries_503"]') -ge 10 ]] || fail "retries $(field 'posts["retries_503"]'), want >= 10"
[[ $(field 'posts["accepted_2xx"]') == 50 ]] || fail "accepted $(field 'posts["accepted_2xx"]'), want 50"

# The server hangs up on connections idle for 150 ms; posts 400 ms apart each
# find their kept-alive connection closed and must be sent again, not lost.
run --idle-close-ms 150 -- --subscribers 2 --verify --rate 2.5 --count 5 --concurrency 1
[[ $RC == 0 ]] || fail "idle-closed connections: exit $RC, want 0"
[[ $(field 'posts["accepted_2xx"]') == 5 ]] || fail "idle-closed: accepted $(field 'posts["accepted_2xx"]'), want 5"
[[ $(field 'posts["transport_errors"]') == 0 ]] || fail "idle-closed: transport errors $(field 'posts["transport_errors"]'), want 0"
[[ $(field 'posts["resent_on_stale_connection"]') -ge 3 ]] ||
  fail "idle-closed: resent $(field 'posts["resent_on_stale_connection"]'), want >= 3"

"$BOT" --rate nope >/dev/null 2>&1
[[ $? == 2 ]] || fail "bad flag should exit 2"
echo "smoke ok"
