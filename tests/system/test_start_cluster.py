"""./start.sh --cluster (scripts/start-cluster.sh, which start.sh runs once
it has built): the cluster, three instances sharing it and the bot; every
address printed, the page first; Ctrl-C stops everything and exits 0; the
data directory keeps every message between runs."""
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

import cluster
from services.feed_api import wait_until

SKIP = cluster.skip_reason()
pytestmark = [pytest.mark.cluster, pytest.mark.skipif(bool(SKIP), reason=SKIP)]

SCRIPT = os.path.join(cluster.ROOT, "scripts", "start-cluster.sh")
BUILD_DIR = os.path.abspath(os.environ.get("FEED_BUILD_DIR", os.path.join(cluster.ROOT, "build")))


class Started:
    """start-cluster.sh in its own session, as a terminal would run it."""

    def __init__(self, data_dir, port, port_base, *args):
        env = dict(os.environ, PORT=str(port), CLUSTER_PORT_BASE=str(port_base), BUILD_DIR=BUILD_DIR)
        self.proc = subprocess.Popen([SCRIPT, "--data-dir", str(data_dir), *args], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def said(self):
        return [line for line in self.lines if line.startswith("start.sh:")]

    def wait_running(self, timeout=240):
        def up():
            if self.proc.poll() is not None:
                self.reader.join(5)
                raise AssertionError(f"start-cluster.sh exited {self.proc.returncode}:\n" + "\n".join(self.lines[-40:]))
            return any("Ctrl-C stops everything" in line for line in self.lines)
        wait_until(up, timeout, interval=0.2, what="start-cluster.sh to say it is running")

    def ctrl_c(self, timeout=120):
        """SIGINT to the whole process group, as Ctrl-C in a terminal sends it."""
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            self.reader.join(5)


@pytest.fixture
def state():
    d = cluster.scratch_dir("start")
    yield Path(d) / "state"
    cluster.remove_scratch_dir(d)


def test_start_cluster_serves_three_instances_and_stops_everything_on_ctrl_c(state):
    data = state
    # The instances take the three ports after the cluster's.
    base = cluster.free_port_base(cluster.SPAN + 3)
    port = base + cluster.SPAN
    urls = [f"http://127.0.0.1:{port + i}" for i in range(3)]

    run = Started(data, port, base)
    try:
        run.wait_running()
        said = run.said()
        # The page's address comes first, then every instance.
        addresses = [line for line in said if "http://" in line]
        assert addresses[0].endswith(f"{urls[0]}/"), said
        for u in urls:
            assert any(u in line for line in addresses), said
        for u in urls:
            page = requests.get(u + "/", timeout=5)
            assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        # The first writes to a fresh topic on a replicated cluster may take
        # longer than the publish timeout (RELIABILITY.md, "Known limits"):
        # retried as a client would, with a key, so it is stored once.
        for _ in range(20):
            posted = requests.post(urls[0] + "/api/messages", json={"user_id": "kept", "content": "across runs"},
                                   headers={"Idempotency-Key": "kept-across-runs"}, timeout=10)
            if posted.status_code != 503:
                break
            time.sleep(0.5)
        assert posted.status_code == 202, posted.text
        ident = posted.json()["id"]
        # Every instance serves it, and the bot posts through them too.
        for u in urls:
            wait_until(lambda: ident in {m["id"] for m in requests.get(u + "/api/messages", timeout=5)
                                          .json()["messages"]}, 30, interval=0.3, what=f"the message on {u}")
        wait_until(lambda: any(m["user_id"].startswith("user_") for m in
                               requests.get(urls[2] + "/api/messages", timeout=5).json()["messages"]),
                   40, interval=0.5, what="a message from the bot")
    finally:
        status = run.ctrl_c()
    assert status == 0, "\n".join(run.lines[-30:])
    leftover = {name: pid for name, pid in cluster.pids(str(data / "cluster")).items()
                if re.fullmatch(r"\d+", str(pid))}
    assert leftover == {}, leftover
    for u in urls:
        with pytest.raises(requests.ConnectionError):
            requests.get(u + "/api/health", timeout=2)

    # The same data directory again: the message is still there.
    again = Started(data, port, base, "--no-bot")
    try:
        again.wait_running()
        stored = requests.get(urls[1] + "/api/messages", params={"user_id": "kept"}, timeout=10).json()["messages"]
        assert [m["id"] for m in stored] == [ident]
    finally:
        assert again.ctrl_c() == 0
