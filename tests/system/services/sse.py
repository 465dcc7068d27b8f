"""A minimal Server-Sent Events client that records every event it gets."""
import http.client
import json
import queue
import threading
import time
import urllib.parse


class Event:
    def __init__(self, id, data):
        self.id = id
        self.data = data

    @property
    def seq(self):
        return int(self.id)

    @property
    def message(self):
        return json.loads(self.data)

    def __repr__(self):
        return f"Event(id={self.id}, data={self.data[:60]})"


class SseClient:
    def __init__(self, url, headers=None, timeout=10):
        u = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        path = u.path + (f"?{u.query}" if u.query else "")
        self.conn.connect()
        sock = self.conn.sock
        self.conn.request("GET", path, headers=headers or {})
        self.response = self.conn.getresponse()
        self.status = self.response.status
        # The timeout bounds connecting and the response head; the stream
        # itself may stay quiet for a long time (close() ends the reader).
        sock.settimeout(None)
        self.headers = dict(self.response.getheaders())
        self.events = queue.Queue()
        self.comments = 0
        self.closed = threading.Event()
        if self.status == 200:
            self.thread = threading.Thread(target=self._read, daemon=True)
            self.thread.start()
        else:
            self.body = self.response.read()

    def _read(self):
        id_, data = None, []
        try:
            while True:
                line = self.response.fp.readline()
                if not line:
                    break
                line = line.decode("utf-8").rstrip("\r\n")
                if line == "":
                    if data:
                        self.events.put(Event(id_, "\n".join(data)))
                    id_, data = None, []
                elif line.startswith(":"):
                    self.comments += 1
                elif line.startswith("id:"):
                    id_ = line[3:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip(" ") if line.startswith("data: ") else line[5:])
        except (OSError, ValueError):
            pass
        finally:
            self.closed.set()

    def next(self, timeout=10):
        return self.events.get(timeout=timeout)

    def take(self, n, timeout=10):
        """The next n events; fails if they do not all come within timeout."""
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"got {len(out)} of {n} events within {timeout}s: {out[-3:]}")
            try:
                out.append(self.events.get(timeout=remaining))
            except queue.Empty:
                pass
        return out

    def quiet(self, seconds=0.5):
        """Events that arrive within `seconds` (expected: none)."""
        time.sleep(seconds)
        out = []
        while not self.events.empty():
            out.append(self.events.get_nowait())
        return out

    def close(self):
        try:
            self.conn.sock and self.conn.sock.shutdown(2)
        except OSError:
            pass
        self.conn.close()
