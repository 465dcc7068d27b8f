#!/usr/bin/env bash
# End-to-end smoke test of feed-bot against the stand-in server: a clean run
# must verify (exit 0); lost, duplicated and 503'd messages must be noticed;
# posts and streams must fail over from a dead instance to the next one, and
# posts whose outcome is unknown must be accounted for.
# Usage: smoke.sh <feed-bot> <bot_discard_server>
set -uo pipefail
BOT=$1
SERVER=$2
OUT=$(mktemp -d)
SERVER_PID=
trap '[[ -n $SERVER_PID ]] && kill $SERVER_PID 2>/dev/null; rm -rf "$OUT"' EXIT
fail() { echo "FAIL: $*"; cat "$OUT/bot.err" >&2; exit 1; }

# A port nothing listens on: an instance that is down from the start.
DEAD=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# run <server flags...> -- <bot flags...>; sets RC and JSON. API (default
# "{port}") lists the instances; {port2} is the server's second port (with
# --two-ports) and {dead} the dead one.
run() {
  local sflags=()
  while [[ $1 != -- ]]; do sflags+=("$1"); shift; done; shift
  # Emptied here, not by the redirection below: that happens in the child,
  # and until then the last run's port could be read.
  : >"$OUT/server.out"
  "$SERVER" --port 0 --max-seconds 60 "${sflags[@]}" >>"$OUT/server.out" 2>&1 &
  SERVER_PID=$!
  local port= port2= api
  # Whole lines only: the file may be read between two of the server's writes.
  for _ in $(seq 300); do
    port=$(awk '/^port [0-9]+$/{print $2}' "$OUT/server.out" 2>/dev/null)
    [[ -n $port ]] && break
    sleep 0.1
  done
  [[ -n $port ]] || fail "the stand-in server did not start: $(cat "$OUT/server.out")"
  if [[ " ${sflags[*]} " == *" --two-ports "* ]]; then
    for _ in $(seq 50); do
      port2=$(awk '/^port2 [0-9]+$/{print $2}' "$OUT/server.out")
      [[ -n $port2 ]] && break
      sleep 0.1
    done
  fi
  api=${API:-"{port}"}
  api=${api//\{port2\}/http://127.0.0.1:$port2}
  api=${api//\{port\}/http://127.0.0.1:$port}
  api=${api//\{dead\}/http://127.0.0.1:$DEAD}
  timeout 60 "$BOT" --api "$api" --progress 1 "$@" >"$OUT/bot.out" 2>"$OUT/bot.err"
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

# Two instances on one feed; the first in the list dies 1.5 s into the run.
# Its subscribers (0 and 2) resume on the other with Last-Event-ID, its
# posts are retried there with the same Idempotency-Key: nothing lost or doubled.
API="{port2},{port}" run --two-ports --replay --kill-second-after 1.5 -- \
  --subscribers 4 --verify --rate 200 --duration 3 --concurrency 4
[[ $RC == 0 ]] || fail "instance killed: exit $RC, want 0"
[[ $(field 'lost') == 0 && $(field 'duplicated') == 0 && $(field 'duplicated_content') == 0 ]] ||
  fail "instance killed: lost $(field 'lost') duplicated $(field 'duplicated'), want 0 0"
[[ $(field 'instances[0]["subscribers_at_end"]') == 0 && $(field 'instances[1]["subscribers_at_end"]') == 4 ]] ||
  fail "instance killed: subscribers at end $(field '[i["subscribers_at_end"] for i in instances]'), want [0, 4]"
[[ $(field 'subscribers["reconnects"]') -ge 2 ]] || fail "instance killed: reconnects $(field 'subscribers["reconnects"]')"
[[ $(field 'instances[1]["answered_2xx"]') -gt 300 ]] || fail "instance killed: survivor took $(field 'instances[1]["answered_2xx"]') posts"
python3 -c "import sys; sys.exit(not 0 < $(field 'longest_subscriber_gap_s') < 1.5)" ||
  fail "instance killed: longest subscriber gap $(field 'longest_subscriber_gap_s') s"
unset API

# An instance down from the start: its connections back off, its share of
# posts and its subscribers go to the next one.
API="{dead},{port}" run -- --subscribers 4 --verify --rate 200 --count 200 --concurrency 4
[[ $RC == 0 ]] || fail "dead first instance: exit $RC, want 0"
[[ $(field 'instances[0]["connect_failures"]') -ge 2 && $(field 'instances[1]["answered_2xx"]') == 200 ]] ||
  fail "dead first instance: $(field 'instances')"
[[ $(field 'instances[0]["unavailable_at_end"]') == True ]] || fail "dead first instance: not reported unavailable at the end"
unset API

# Every 7th new message is stored and its connection closed mid-answer. With
# no retries those 10 end with an unknown outcome, and all of them appear:
# delivered, yet neither unexpected nor a failure.
run --hangup-every 7 -- --subscribers 2 --verify --rate 200 --count 70 --max-retries 0 --concurrency 2
[[ $RC == 0 ]] || fail "hang-ups without retries: exit $RC, want 0"
[[ $(field 'unknown_outcome') == 10 && $(field 'unknown_delivered') == 10 && $(field 'accepted') == 60 ]] ||
  fail "hang-ups: unknown $(field 'unknown_outcome') delivered $(field 'unknown_delivered') accepted $(field 'accepted')"
[[ $(field 'delivery["unexpected"]') == 0 && $(field 'lost') == 0 ]] || fail "hang-ups: unexpected or lost"
# With retries the same Idempotency-Key finds the stored message: all accepted, once.
run --hangup-every 7 -- --subscribers 2 --verify --rate 200 --count 70 --concurrency 2
[[ $RC == 0 && $(field 'accepted') == 70 && $(field 'unknown_outcome') == 0 && $(field 'duplicated') == 0 ]] ||
  fail "hang-ups with retries: exit $RC accepted $(field 'accepted') unknown $(field 'unknown_outcome')"
[[ $(field 'posts["retries_transport"]') -ge 10 ]] || fail "hang-ups: transport retries $(field 'posts["retries_transport"]')"

# The same through 503s that name the message (feed-api's "outcome unknown").
run --unknown-every 5 -- --subscribers 2 --verify --rate 200 --count 50 --max-retries 0
[[ $RC == 0 && $(field 'unknown_outcome') == 10 && $(field 'unknown_delivered') == 10 ]] ||
  fail "503 outcome unknown: exit $RC unknown $(field 'unknown_outcome') delivered $(field 'unknown_delivered')"
[[ $(field 'posts["unavailable_503"]') == 10 && $(field 'delivery["unexpected"]') == 0 ]] || fail "503 outcome unknown: counts"
run --unknown-every 5 -- --subscribers 2 --verify --rate 200 --count 50 --max-retries 1
[[ $RC == 0 && $(field 'accepted') == 50 && $(field 'unknown_outcome') == 0 && $(field 'duplicated') == 0 ]] ||
  fail "503 outcome unknown, retried: exit $RC accepted $(field 'accepted')"

# Every 10th message stored twice under two ids: duplicated_content, exit 1.
run --dup-content-every 10 -- --subscribers 2 --verify --rate 200 --count 50
[[ $RC == 1 && $(field 'duplicated_content') == 5 && $(field 'duplicated') == 0 ]] ||
  fail "stored twice: exit $RC duplicated_content $(field 'duplicated_content') duplicated $(field 'duplicated')"

"$BOT" --api "http://127.0.0.1:1,,http://127.0.0.1:2" >/dev/null 2>&1
[[ $? == 2 ]] || fail "an empty --api entry should exit 2"
"$BOT" --rate nope >/dev/null 2>&1
[[ $? == 2 ]] || fail "bad flag should exit 2"
echo "smoke ok"
