"""feed-bot against feed-api: every accepted message reaches every subscriber once."""
import contextlib
import http.server
import json
import re
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest

from conftest import binary
from services.feed_api import free_port


@contextlib.contextmanager
def stand_in(answer_post):
    """A stand-in API on loopback whose POST handler is
    answer_post(handler), after the request body was read; yields its base
    URL."""
    class StandIn(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            answer_post(self)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def bot_against(answer_post, *args):
    """Runs feed-bot with `args` against stand_in(answer_post); returns the
    finished process."""
    with stand_in(answer_post) as url:
        return subprocess.run([binary("feed-bot"), "--api", url, "--progress", "0", *args], capture_output=True,
                              text=True, timeout=60)


def test_bot_verifies_delivery_to_fifty_subscribers(api):
    out = subprocess.run([binary("feed-bot"), "--api", api.base, "--subscribers", "50", "--verify", "--rate", "100",
                          "--duration", "3", "--users", "5", "--verify-timeout", "20"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    text = json.dumps(report)
    assert "missing" in text and "duplicated" in text

    def find(d, key):
        if isinstance(d, dict):
            for k, v in d.items():
                if k == key:
                    return v
                found = find(v, key)
                if found is not None:
                    return found
        return None

    assert find(report, "missing") == 0
    assert find(report, "duplicated") == 0


def test_bot_moves_past_an_instance_that_is_down(api):
    """--api lists a port nothing listens on first: its posting connections
    back off, its share of posts and its subscribers go to the next instance."""
    dead = f"http://127.0.0.1:{free_port()}"
    out = subprocess.run([binary("feed-bot"), "--api", f"{dead},{api.base}", "--subscribers", "4", "--verify",
                          "--rate", "50", "--count", "100", "--concurrency", "4", "--verify-timeout", "20"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    down, up = report["instances"]
    assert report["accepted"] == 100 and report["lost"] == 0 and report["duplicated"] == 0, report
    assert down["answered_2xx"] == 0 and down["connect_failures"] > 0 and down["stream_failures"] >= 2, down
    assert up["answered_2xx"] == 100 and up["subscribers_at_end"] == 4, up
    assert down["unavailable_at_end"] is True and up["unavailable_at_end"] is False, report["instances"]
    # The bot read the feed's newest seq before posting, to resume from there.
    assert report["config"]["resume_floor"] >= 0


def test_bot_exits_1_when_no_post_is_accepted():
    """An API that fails every post (here 500, a final answer) leaves nothing
    accepted: not an ok run, with or without --verify."""
    def fail(handler):
        body = b'{"error":"broken"}'
        handler.send_response(500)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    out = bot_against(fail, "--count", "5", "--rate", "50")
    assert out.returncode == 1, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["accepted"] == 0 and report["posts"]["failed_5xx"] == 5 and report["exit_code"] == 1, report
    assert "no post was accepted" in out.stderr


def test_an_unreachable_api_is_named_and_so_is_its_return(make_api):
    """Posts due before the API is up wait in the queue; the bot says so
    within seconds, naming the instance and why, and says so again once
    posts are accepted, rather than only showing a growing queue."""
    api = make_api(start=False)
    bot = subprocess.Popen([binary("feed-bot"), "--api", api.base, "--rate", "5", "--count", "20", "--progress", "0"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2.5)
        api.start()
        out, err = bot.communicate(timeout=60)
    finally:
        if bot.poll() is None:
            bot.kill()
            bot.wait()
    assert bot.returncode == 0, err[-3000:]
    report = json.loads(out.strip().splitlines()[-1])
    assert report["accepted"] == 20, report["posts"]
    down = [line for line in err.splitlines() if "no post accepted" in line]
    assert len(down) == 1, err
    assert api.base in down[0] and "connect: Connection refused" in down[0], down
    back = re.findall(rf"{re.escape(api.base)}: accepting posts again after ([0-9.]+) s", err)
    assert len(back) == 1, err
    assert 2.0 <= float(back[0]) <= 30, back


def test_a_stop_signal_reports_within_seconds_against_a_server_that_never_answers():
    """SIGTERM lets the answers in flight come in, but not for the whole
    --request-timeout: the summary must be out before a container runtime's
    grace (10 s) ends in SIGKILL."""
    listener = socket.create_server(("127.0.0.1", 0))
    held = []

    def accept():
        while True:
            try:
                held.append(listener.accept()[0])  # read nothing, answer nothing
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    bot = subprocess.Popen([binary("feed-bot"), "--api", f"http://127.0.0.1:{listener.getsockname()[1]}",
                            "--rate", "5", "--progress", "0", "--request-timeout", "60"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        sent = time.monotonic()
        bot.send_signal(signal.SIGTERM)
        out, err = bot.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if bot.poll() is None:
            bot.kill()
            bot.wait()
        listener.close()
        for conn in held:
            conn.close()
    assert took < 8, f"reported {took:.1f} s after SIGTERM"
    assert "posts still unanswered 5 s after the stop signal" in err, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["accepted"] == 0 and report["exit_code"] == 1 and bot.returncode == 1, report


def test_a_stream_cut_inside_an_event_resumes_before_it_and_finds_nothing_lost(api):
    """A proxy cuts each subscriber's first stream right after the line
    `id: <seq>` of the tenth event: that event never ended, so the stream
    resumes before it (Last-Event-ID of the ninth) and nothing is lost. The
    bot resumed after it and blamed the server for the loss."""
    listener = socket.create_server(("127.0.0.1", 0))
    cut_streams = []

    def pipe(src, dst, cut_after=None):
        seen = b""
        try:
            while data := src.recv(65536):
                if cut_after is not None:
                    seen += data
                    at = seen.find(cut_after)
                    if at >= 0:  # cut: both ways, as a dropped connection
                        dst.sendall(data[:len(data) - (len(seen) - (at + len(cut_after)))])
                        cut_streams.append(cut_after)
                        for sock in (src, dst):
                            sock.shutdown(socket.SHUT_RDWR)
                        return
                    seen = seen[-64:]
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    first_streams = []

    def serve(client):
        upstream = socket.create_connection(("127.0.0.1", api.port))
        head = client.recv(65536)  # posting connections send theirs only when a post is due
        upstream.sendall(head)
        cut = None
        if head.startswith(b"GET /api/feed") and len(first_streams) < 3:
            first_streams.append(head)
            cut = b"id: %d\n" % (floor + 10)
        threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
        pipe(upstream, client, cut)

    def accept():
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(client,), daemon=True).start()

    floor = api.messages(limit=1)["messages"][0]["seq"] if api.messages(limit=1)["messages"] else 0
    threading.Thread(target=accept, daemon=True).start()
    try:
        out = subprocess.run([binary("feed-bot"), "--api", f"http://127.0.0.1:{listener.getsockname()[1]}",
                              "--rate", "50", "--count", "30", "--subscribers", "3", "--verify",
                              "--verify-timeout", "10", "--progress", "0"],
                             capture_output=True, text=True, timeout=90)
    finally:
        listener.close()
    assert len(cut_streams) == 3, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert out.returncode == 0, out.stderr[-3000:]
    assert report["accepted"] == 30 and report["lost"] == 0 and report["duplicated"] == 0, report["delivery"]
    assert report["subscribers"]["reconnects"] >= 3, report["subscribers"]


def test_an_interim_100_is_not_taken_for_the_answer():
    """RFC 9110 §15.2: a client parses interim 1xx answers before the final
    one. The bot took a 100 Continue for the answer ("other status"), then
    read the 202 that followed as the next post's answer."""
    def continue_then_accept(handler):
        handler.send_response_only(100)
        handler.end_headers()
        body = json.dumps({"id": str(uuid.uuid4())}).encode()
        handler.send_response(202)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    out = bot_against(continue_then_accept, "--count", "5", "--rate", "50", "--concurrency", "1")
    assert out.returncode == 0, out.stderr[-3000:]
    posts = json.loads(out.stdout.strip().splitlines()[-1])["posts"]
    assert posts["accepted_2xx"] == 5 and posts["other_status"] == 0 and posts["requests"] == 5, posts


def test_retries_are_counted_when_sent_not_when_planned():
    """Every post answered 503 with Retry-After: 2, stopped at 3 s: the
    retries still waiting then are cancelled, not counted as made."""
    seen = []

    def busy(handler):
        seen.append(handler.headers.get("Idempotency-Key"))
        body = b'{"error":"busy"}'
        handler.send_response(503)
        handler.send_header("Retry-After", "2")
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    with stand_in(busy) as url:
        bot = subprocess.Popen([binary("feed-bot"), "--api", url, "--rate", "10", "--count", "2", "--max-retries", "3",
                                "--progress", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        bot.send_signal(signal.SIGTERM)
        out, err = bot.communicate(timeout=30)
    posts = json.loads(out.strip().splitlines()[-1])["posts"]
    assert len(seen) == 4, seen  # each post, then its retry after 2 s
    assert posts["requests"] == 4 and posts["retries_503"] == 2 and posts["cancelled"] == 2, posts
    assert posts["requests"] == posts["scheduled"] + posts["retries_503"] + posts["retries_transport"], posts


@pytest.mark.parametrize("feed", ["html", "error events"])
def test_only_what_an_eventsource_takes_as_a_message_counts_as_delivered(feed):
    """A feed a browser would refuse (200 as text/html) is no stream, and a
    message named only in another event type's payload (event: error) was
    not delivered: the bot counted both as delivered."""
    stored, lock = [], threading.Condition()

    class FakeFeed(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            message = {"id": str(uuid.uuid4()), "user_id": body["user_id"], "content": body["content"],
                       "created_at": "2026-01-01T00:00:00Z"}
            with lock:
                stored.append(message)
                lock.notify_all()
            self.reply(202, json.dumps({"id": message["id"]}).encode())

        def do_GET(self):
            if not self.path.startswith("/api/feed"):
                return self.reply(200, b'{"messages": [], "next_before": null}')
            self.send_response(200)
            self.send_header("Content-Type", "text/html" if feed == "html" else "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            sent = 0
            try:
                while True:
                    with lock:
                        lock.wait_for(lambda: len(stored) > sent, timeout=1)
                        fresh = stored[sent:]
                    for m in fresh:
                        sent += 1
                        self.wfile.write(b"id: %d\nevent: error\ndata: %s\n\n" % (sent, json.dumps(m).encode()))
                    self.wfile.flush()
            except OSError:
                pass

        def reply(self, status, body):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeFeed)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        out = subprocess.run([binary("feed-bot"), "--api", f"http://127.0.0.1:{server.server_port}", "--rate", "50",
                              "--count", "5", "--subscribers", "2", "--verify", "--verify-timeout", "2",
                              "--connect-timeout", "2", "--dial-timeout", "1", "--progress", "0"],
                             capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert out.returncode == 1, out.stderr[-3000:]
    if feed == "html":
        assert report["subscribers"]["connected"] == 0 and report["subscribers"]["failed"] == 2, report["subscribers"]
        assert "without Content-Type: text/event-stream" in out.stderr
    else:
        assert report["accepted"] == 5 and report["lost"] == 5, report["delivery"]
        assert report["delivery"]["foreign_events"] == 10, report["delivery"]


def test_a_connection_closed_before_its_first_request_costs_no_retry(make_api):
    """The bot opens its posting connections ahead of the schedule; one left
    unused past the server's header timeout is closed by the server, and the
    post that then finds it closed is sent again without counting a retry or
    an outage, as for a kept-alive connection."""
    api = make_api("--header-timeout", "1")
    out = subprocess.run([binary("feed-bot"), "--api", api.base, "--rate", "1", "--count", "4", "--concurrency", "4",
                          "--progress", "0"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    posts = report["posts"]
    assert report["accepted"] == 4, report
    assert posts["resent_on_stale_connection"] >= 1, posts
    assert posts["retries_transport"] == 0 and posts["transport_errors"] == 0, posts
    assert report["availability"]["unavailable_outages"] == 0, report["availability"]


def test_a_server_that_drops_requests_unanswered_gets_each_post_at_most_twice():
    """A server that reads each request whole and closes without answering
    looks like a stale connection to the bot; it may send a post again once
    for that, not once per spare connection past --max-retries."""
    seen = []

    def drop(handler):
        seen.append(handler.headers.get("Idempotency-Key"))
        time.sleep(0.2)
        handler.close_connection = True

    out = bot_against(drop, "--rate", "0.5", "--count", "2", "--max-retries", "0", "--request-timeout", "3")
    report = json.loads(out.stdout.strip().splitlines()[-1])
    posts = report["posts"]
    assert report["accepted"] == 0 and posts["transport_errors"] == 2, posts
    assert posts["resent_on_stale_connection"] <= 2, posts
    for key in set(seen):
        assert seen.count(key) <= 2, seen


def test_a_connection_closed_unused_just_before_its_first_request_costs_no_retry():
    """A server closes a connection that sent nothing within 0.5 s of its
    accept and serves kept-alive ones without limit. Posts due at 0.67 s
    intervals find their spare connection closed under a second after the bot
    opened it: that is a stale connection, sent again once without a retry
    or an outage, not a transport failure."""
    listener = socket.create_server(("127.0.0.1", 0))
    served = []

    def serve(conn):
        with conn:
            conn.settimeout(0.5)
            buf = b""
            try:
                while True:
                    while b"\r\n\r\n" not in buf:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        buf += chunk
                    head, _, buf = buf.partition(b"\r\n\r\n")
                    length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
                    conn.settimeout(10)
                    while len(buf) < length:
                        buf += conn.recv(65536)
                    buf = buf[length:]
                    served.append(head)
                    body = json.dumps({"id": str(uuid.uuid4())}).encode()
                    conn.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: "
                                 + str(len(body)).encode() + b"\r\n\r\n" + body)
            except (socket.timeout, OSError):
                return

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        out = subprocess.run([binary("feed-bot"), "--api", f"http://127.0.0.1:{listener.getsockname()[1]}",
                              "--rate", "1.5", "--count", "3", "--concurrency", "3", "--progress", "0"],
                             capture_output=True, text=True, timeout=60)
    finally:
        listener.close()
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    posts = report["posts"]
    assert report["accepted"] == 3 and len(served) == 3, (report, len(served))
    assert posts["resent_on_stale_connection"] >= 1, posts
    assert posts["retries_transport"] == 0 and posts["transport_errors"] == 0, posts
    assert report["availability"]["unavailable_outages"] == 0, report["availability"]
