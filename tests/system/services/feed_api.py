"""A feed-api process for a test: free port, its own data dir, log file."""
import os
import signal
import socket
import subprocess
import time

import requests


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


class FeedApi:
    def __init__(self, binary, data_dir, args=(), env=None, port=None, prefix=()):
        self.binary = binary
        # A command the binary runs under, e.g. scripts/netns.sh exec NAME --
        # (which execs it, so the pid is still feed-api's).
        self.prefix = list(prefix)
        self.data_dir = data_dir
        self.args = list(args)
        self.env = env
        self.port = port or free_port()
        self.proc = None
        self.log_path = os.path.join(data_dir, f"feed-api-{self.port}.log")

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def url(self, path):
        return self.base + path

    def start(self, timeout=20):
        os.makedirs(self.data_dir, exist_ok=True)
        self.log = open(self.log_path, "ab")
        cmd = [*self.prefix, self.binary, "--port", str(self.port), "--data-dir", self.data_dir, *self.args]
        env = dict(os.environ, **(self.env or {}))
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)

        def healthy():
            if self.proc.poll() is not None:
                raise RuntimeError(f"feed-api exited with {self.proc.returncode}; log: {self.read_log()[-2000:]}")
            try:
                return requests.get(self.url("/api/health"), timeout=1).ok
            except requests.RequestException:
                return False

        wait_until(healthy, timeout, what="feed-api health")
        return self

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"feed-api did not stop within {timeout}s after {sig}")
        finally:
            self.log.close()

    def kill(self):
        return self.stop(signal.SIGKILL)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # --- API helpers ---
    def post(self, user_id, content, headers=None, session=None, timeout=10):
        h = {"Content-Type": "application/json", **(headers or {})}
        return (session or requests).post(self.url("/api/messages"), json={"user_id": user_id, "content": content},
                                          headers=h, timeout=timeout)

    def messages(self, **params):
        r = requests.get(self.url("/api/messages"), params=params, timeout=10)
        r.raise_for_status()
        return r.json()

    def wait_stored(self, ids, timeout=60):
        """Waits until every id in `ids` is stored; returns all stored messages."""
        want = set(ids)
        result = []

        def done():
            result[:] = self.all_messages()
            return want <= {m["id"] for m in result}

        wait_until(done, timeout, interval=0.2, what=f"{len(want)} messages to be stored")
        return result

    def assert_nothing_stored(self):
        """Only a marker posted now gets stored. A check straight after a bad
        request would pass whatever happened in Kafka mode, where a wrongly
        accepted message is stored a moment later; the marker goes through
        the same queue and worker, so once it is stored, so is anything
        accepted before it."""
        # Retried like any client would: a fresh topic's first post, or a
        # busy machine, may take longer than the publish timeout.
        key = {"Idempotency-Key": f"marker-{self.port}-{time.monotonic_ns()}"}
        for _ in range(10):
            marker = self.post("marker", "posted after the bad input", headers=key)
            if marker.status_code != 503:
                break
            time.sleep(0.5)
        assert marker.status_code == 202, marker.text
        marker_id = marker.json()["id"]
        stored = self.wait_stored([marker_id], timeout=30)
        assert [m["id"] for m in stored] == [marker_id], stored

    def all_messages(self, user_id=None):
        """Every stored message, oldest first, through the paging API."""
        out, before = [], None
        while True:
            params = {"limit": 200}
            if before:
                params["before"] = before
            if user_id:
                params["user_id"] = user_id
            page = self.messages(**params)
            out.extend(page["messages"])
            before = page["next_before"]
            if before is None:
                return list(reversed(out))
