"""SSE subscribers on raw sockets, for tests that need real backpressure.

SseClient (sse.py) reads as fast as it can through http.client; these read
from a socket whose receive buffer can be made small and whose reading can
be paused, so that the server's per-client buffer really fills up. A
ResumingSubscriber reconnects as a browser's EventSource does when the
server drops it: same URL, plus Last-Event-ID once it has seen an id.
"""
import json
import socket
import threading
import time


class SseEvent:
    __slots__ = ("id", "event", "data")

    def __init__(self, id, event, data):
        self.id = id
        self.event = event
        self.data = data

    def __repr__(self):
        return f"SseEvent(id={self.id}, event={self.event}, data={self.data[:60]!r})"


class SseParser:
    """Incremental text/event-stream parser (the WHATWG rules this server uses)."""

    def __init__(self):
        self._partial = b""
        self._id = None
        self._event = None
        self._data = []
        self.comments = 0
        self.retry = None

    def feed(self, chunk):
        """Parses a chunk of bytes; returns the events it completes."""
        out = []
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        for raw in lines:
            line = raw[:-1] if raw.endswith(b"\r") else raw
            if not line:
                if self._data:
                    out.append(SseEvent(self._id, self._event or "message", "\n".join(self._data)))
                self._id, self._event, self._data = None, None, []
                continue
            text = line.decode("utf-8")  # invalid UTF-8 from the server is a failure
            if text.startswith(":"):
                self.comments += 1
                continue
            name, _, value = text.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "id":
                self._id = value
            elif name == "data":
                self._data.append(value)
            elif name == "event":
                self._event = value
            elif name == "retry":
                self.retry = value
        return out


def read_response_head(sock, deadline):
    """Reads an HTTP response head; returns (status, headers, bytes after the head)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        if len(buf) > 65536:
            raise AssertionError(f"response head too long: {buf[:200]!r}")
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed before the response head ended: {buf[:200]!r}")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, rest


class ResumingSubscriber(threading.Thread):
    """Subscribes to `target` and keeps every event it is sent, reconnecting
    with Last-Event-ID whenever the server closes the stream.

    pauses: [(after_n_events, seconds)], in order: once this subscriber has
    received after_n_events events in all, it stops reading for `seconds`
    while the server keeps sending.
    rcvbuf: SO_RCVBUF set before connecting (None = the kernel's default).
    reconnect_delay: a browser waits `retry:` (2 s here); waiting less keeps
    tests short and changes nothing the server may rely on.
    max_fruitless: consecutive reconnects that bring no new event before the
    subscriber gives up (the server is not letting it catch up).
    """

    def __init__(self, port, target, headers=None, rcvbuf=None, pauses=(), reconnect_delay=0.02,
                 max_fruitless=50, name="subscriber"):
        super().__init__(daemon=True, name=name)
        self.port = port
        self.target = target
        self.headers = dict(headers or {})
        self.rcvbuf = rcvbuf
        self.pauses = sorted(pauses)
        self.reconnect_delay = reconnect_delay
        self.max_fruitless = max_fruitless
        self.events = []            # every message event, in arrival order
        self.other_events = []      # events with an `event:` type other than message
        self.connections = 0
        self.fruitless = 0
        self.error = None           # why it gave up, if it did
        self.last_progress = time.monotonic()
        self.paused_until = 0.0
        self.open = False
        self._halt = threading.Event()
        self._sock = None

    # --- observed state (read from other threads) ---
    @property
    def last_id(self):
        return self.events[-1].id if self.events else None

    def count(self):
        return len(self.events)

    def stop(self):
        self._halt.set()
        s = self._sock
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.join(10)

    def describe(self):
        last = self.last_id
        return (f"{self.name} {self.target} {self.headers}: {len(self.events)} events, last id {last}, "
                f"{self.connections} connection(s), {self.fruitless} fruitless reconnect(s) in a row, "
                f"{'open' if self.open else 'closed'}, error={self.error}, other events={self.other_events[:3]}")

    # --- the reader ---
    def _request(self):
        headers = dict(self.headers)
        if self.events:
            headers["Last-Event-ID"] = self.events[-1].id
        lines = [f"GET {self.target} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", "Accept: text/event-stream",
                 "Cache-Control: no-cache"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def _connect(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        s.settimeout(10)
        s.connect(("127.0.0.1", self.port))
        self._sock = s
        s.sendall(self._request())
        status, headers, rest = read_response_head(s, time.monotonic() + 10)
        if status != 200:
            raise AssertionError(f"GET {self.target} answered {status}: {rest[:300]!r}")
        if headers.get("content-type") != "text/event-stream":
            raise AssertionError(f"GET {self.target} Content-Type {headers.get('content-type')}")
        return s, rest

    def run(self):
        try:
            while not self._halt.is_set():
                before = len(self.events)
                try:
                    s, rest = self._connect()
                except ConnectionError:
                    s, rest = None, b""
                if s is not None:
                    self.connections += 1
                    self.open = True
                    try:
                        self._read(s, rest)
                    finally:
                        self.open = False
                        s.close()
                        self._sock = None
                if self._halt.is_set():
                    return
                self.fruitless = 0 if len(self.events) > before else self.fruitless + 1
                if self.fruitless >= self.max_fruitless:
                    self.error = f"{self.fruitless} reconnects in a row brought nothing new"
                    return
                time.sleep(self.reconnect_delay)
        except Exception as e:  # reported by the test through .error
            self.error = f"{type(e).__name__}: {e}"

    def _read(self, s, first):
        parser = SseParser()
        chunk = first
        s.settimeout(0.2)
        while not self._halt.is_set():
            if chunk:
                for e in parser.feed(chunk):
                    if e.event != "message":
                        self.other_events.append(e)
                        continue
                    self.events.append(e)
                    self.last_progress = time.monotonic()
                    while self.pauses and len(self.events) >= self.pauses[0][0]:
                        _, seconds = self.pauses.pop(0)
                        self.paused_until = time.monotonic() + seconds
                if self.paused_until > time.monotonic():
                    self._halt.wait(self.paused_until - time.monotonic())
                    self.last_progress = time.monotonic()
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                chunk = b""
                continue
            except OSError:  # reset, or stop() shut it down
                return
            if not chunk:
                return


def message_of(event):
    return json.loads(event.data)
