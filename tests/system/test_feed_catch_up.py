"""Catching up: resumes and history of any size reach the client at the pace
it reads, under the per-client memory bound, and always make progress.

The clients here are raw sockets, so a test decides exactly when (and how
much) the client reads, and a small receive buffer makes backpressure real.
"""
import concurrent.futures
import json
import re
import socket
import time

import pytest
import requests

from services.feed_api import wait_until

EVENT = re.compile(rb"(?:^|\n)id: (\d+)\n")

# The posts here only set the scene: a test about catching up must not fail
# because one acknowledgement took over the default second (each test's
# Kafka topics are new, and a new topic's first produces on a machine busy
# with the cluster tests can take longer).
pytestmark = pytest.mark.publish_timeout_ms(10000)


def post_many(api, user, n, size=200, threads=8, content=None):
    """Posts n messages over a few keep-alive connections; returns their ids."""
    def worker(part):
        s = requests.Session()
        out = []
        for i in part:
            r = api.post(user, content or f"m{i} " + "x" * size, session=s)
            assert r.status_code == 202, r.text
            out.append(r.json()["id"])
        return out
    parts = [range(k, n, threads) for k in range(threads)]
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        return [i for ids in ex.map(worker, parts) for i in ids]


class RawFeed:
    """A feed client on a raw socket that reads only when told to."""

    def __init__(self, api, query="", headers=None, rcvbuf=None):
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", api.port))
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.sock.sendall(f"GET /api/feed{query} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode())
        self.data = b""
        self.closed = False

    def read_for(self, seconds, until=None):
        """Reads for `seconds`, or until `until` events have come."""
        deadline = time.monotonic() + seconds
        while not self.closed and time.monotonic() < deadline:
            if until is not None and len(self.seqs()) >= until:
                break
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(1 << 20 if until is None else 4096)
            except socket.timeout:
                break
            except OSError:
                self.closed = True
                break
            if not chunk:
                self.closed = True
            self.data += chunk

    def seqs(self):
        body = self.data.split(b"\r\n\r\n", 1)[-1]
        complete = body[: body.rfind(b"\n\n") + 2]
        return [int(m) for m in EVENT.findall(complete)]

    def read_until(self, n, timeout):
        deadline = time.monotonic() + timeout
        while len(self.seqs()) < n and not self.closed and time.monotonic() < deadline:
            self.read_for(0.2, n)
        return self.seqs()

    def close(self):
        self.sock.close()


def wait_streamed(api, n, timeout=60):
    """Waits until this instance has streamed seq n (with Kafka a message is
    stored a moment before it is streamed)."""
    def stored():
        page = api.messages(limit=1)["messages"]
        return page and page[0]["seq"] >= n
    wait_until(stored, timeout, interval=0.1, what=f"seq {n} to be stored")
    watcher = RawFeed(api, f"?since={n - 1}")
    try:
        got = watcher.read_until(1, timeout)
        assert got[:1] == [n], f"seq {n} was not streamed within {timeout}s"
    finally:
        watcher.close()


def test_a_resume_from_the_ring_delivers_the_whole_backlog_in_a_quiet_feed(api, user):
    # Small events: the socket takes whole gather writes without ever
    # filling, which is when a visit's write budget used to end the stream.
    post_many(api, user, 600, size=10)
    wait_streamed(api, 600)
    for how in ({"headers": {"Last-Event-ID": "100"}}, {"query": "?since=100"}):
        client = RawFeed(api, how.get("query", ""), how.get("headers"))
        # Nothing is posted meanwhile: the backlog alone must arrive.
        client.read_for(3)
        assert client.seqs() == list(range(101, 601))
        client.close()


def test_a_reader_that_pauses_gets_everything_once_it_reads_again(make_api, user):
    # A buffer large enough that the pause is not "too slow" (that is the
    # next test); ~7 MB posted meanwhile, more than any kernel buffer, so the
    # server must wait for the socket and then finds whole gather writes
    # taken once the client reads again.
    api = make_api("--sse-client-buffer", str(16 << 20))
    client = RawFeed(api, "?history=0", rcvbuf=8192)
    client.read_for(0.2)
    post_many(api, user, 6000, content="\U0001F600" * 280)
    wait_streamed(api, 6000)
    # Big reads, and seqs() parsed once a second: it re-reads all 7 MB.
    deadline = time.monotonic() + 60
    while len(client.seqs()) < 6000 and not client.closed and time.monotonic() < deadline:
        client.read_for(1)
    assert client.seqs() == list(range(1, 6001))
    assert not client.closed
    client.close()


def test_a_client_dropped_for_being_slow_catches_up_on_reconnect(make_api, user):
    api = make_api("--sse-client-buffer", "65536")
    post_many(api, user, 1000)  # ~280 KB of events, over four times the buffer
    wait_streamed(api, 1000)
    for _ in range(3):  # the same resume, again and again, must work each time
        client = RawFeed(api, headers={"Last-Event-ID": "1"}, rcvbuf=8192)
        assert client.read_until(999, 30) == list(range(2, 1001))
        client.close()


def test_an_event_larger_than_the_client_buffer_reaches_a_caught_up_client(make_api, user):
    """The smallest --sse-client-buffer is below the largest event (280
    four-byte characters). A caught-up client was dropped as slow by each
    such event before it was sent it, and got it only by resuming."""
    api = make_api("--sse-client-buffer", "1024")
    client = RawFeed(api, "?history=0")
    client.read_for(0.5)
    for i in range(5):
        r = api.post(user, "\U0001F600" * 280)
        assert r.status_code == 202, r.text
        assert client.read_until(i + 1, 10) == list(range(1, i + 2)), client.data[-300:]
    assert not client.closed
    client.close()
    metrics = requests.get(api.url("/metrics"), timeout=5).text
    assert re.search(r"^feed_sse_dropped_slow_total 0$", metrics, re.M), metrics


def test_a_client_that_stops_reading_mid_catch_up_resumes_where_it_was(make_api, user):
    api = make_api("--sse-client-buffer", "65536", "--sse-stall-timeout", "1")
    post_many(api, user, 2000)
    wait_streamed(api, 2000)
    client = RawFeed(api, "?history=all", rcvbuf=8192)
    client.read_until(100, 10)
    time.sleep(4)  # stops reading: the stall timeout lets it go
    client.read_for(1)
    got = client.seqs()
    assert client.closed and 0 < len(got) < 2000
    assert got == list(range(1, len(got) + 1))
    again = RawFeed(api, headers={"Last-Event-ID": str(got[-1])})
    assert again.read_until(2000 - len(got), 30) == list(range(got[-1] + 1, 2001))
    again.close()


def rss_kib(api):
    with open(f"/proc/{api.proc.pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def test_history_all_clients_that_never_read_are_bounded_counted_and_timed_out(make_api, user):
    api = make_api("--sse-client-buffer", "65536", "--sse-stall-timeout", "2")
    post_many(api, user, 3000, size=250)  # ~1 MB of history
    wait_streamed(api, 3000)
    before = rss_kib(api)
    clients = [RawFeed(api, "?history=all", rcvbuf=4096) for _ in range(50)]
    time.sleep(1)
    grown = rss_kib(api) - before
    # Each holds at most one store page sized to the 64 KiB buffer (the
    # kernel holds the rest of what was sent); before, ~2.8 MB each.
    assert grown < 50 * 128, f"{grown} KiB for 50 clients that never read"
    metrics = requests.get(api.url("/metrics"), timeout=5).text
    assert int(re.search(r"^feed_sse_subscribers (\d+)", metrics, re.M).group(1)) >= 50
    def all_dropped():
        m = requests.get(api.url("/metrics"), timeout=5).text
        return int(re.search(r"^feed_sse_subscribers (\d+)", m, re.M).group(1)) == 0
    wait_until(all_dropped, 15, interval=0.2, what="stalled history clients to be disconnected")
    for c in clients:
        c.close()


@pytest.mark.parametrize("given_as", ["Last-Event-ID", "?since="])
def test_a_resume_ahead_of_the_store_gets_a_reset_event_then_what_follows(api, user, given_as):
    post_many(api, user, 5)
    wait_streamed(api, 5)
    if given_as == "Last-Event-ID":
        client = RawFeed(api, headers={"Last-Event-ID": "999999"})
    else:
        client = RawFeed(api, query="?since=999999")
    client.read_for(0.5)
    body = client.data.split(b"\r\n\r\n", 1)[1]
    reset = re.search(rb"event: reset\nid: (\d+)\ndata: (.*)\n\n", body)
    assert reset, body[:500]
    assert int(reset.group(1)) == 5
    notice = json.loads(reset.group(2))
    assert notice["last_event_id"] == 999999 and notice["head"] == 5
    # It names what the client sent: a ?since= client sent no Last-Event-ID.
    assert notice["reason"].startswith(given_as + " is ahead of the newest stored event"), notice
    r = api.post(user, "after the reset")
    assert r.status_code == 202
    assert client.read_until(2, 20)[-1] == 6  # the reset's id, then the new event
    client.close()
