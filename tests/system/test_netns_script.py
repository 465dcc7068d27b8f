"""scripts/netns.sh for real: a namespace, an echo "backend" on the host's
loopback, an HTTP server inside, and a partition cut and healed between them.

Needs root and `ip netns` (skipped otherwise). Every namespace, port and
process here is the test's own; fixtures remove them even when a test fails.
"""
import http.client
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import pytest

from services.feed_api import wait_until

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NETNS_SH = os.path.join(ROOT, "scripts", "netns.sh")


def _unavailable():
    if os.geteuid() != 0:
        return "needs root (network namespaces and nftables need CAP_NET_ADMIN)"
    if shutil.which("ip") is None:
        return "ip (iproute2) is not installed"
    if subprocess.run(["ip", "netns", "list"], capture_output=True, timeout=10).returncode != 0:
        return "`ip netns` does not work here"
    if shutil.which("nft") is None:
        return "nft is not installed (scripts/install-deps.sh installs nftables)"
    return None


# In the serial stream with the cluster tests: its ports are random too.
pytestmark = [pytest.mark.cluster, pytest.mark.skipif(_unavailable() is not None, reason=_unavailable() or "")]


def netns_sh(*args, check=True, timeout=30):
    r = subprocess.run([NETNS_SH, *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, f"netns.sh {' '.join(args)} exited {r.returncode}: {r.stderr}"
    return r


def status(name):
    r = netns_sh("status", name)
    return dict(line.split("=", 1) for line in r.stdout.splitlines())


def unique_name():
    return "t" + uuid.uuid4().hex[:8]


def bound_listener(used):
    """A listening socket on a random free 127.0.0.1 port in 20000-32000."""
    for _ in range(100):
        port = random.randint(20000, 32000)
        if port in used:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        s.listen(16)
        used.add(port)
        return s
    raise RuntimeError("no free port in 20000-32000")


def free_port(used):
    with bound_listener(used) as s:
        return s.getsockname()[1]


class EchoServer:
    """The stand-in backend: echoes bytes and remembers each connection's
    peer address and what arrived, so a test can tell a dropped request from
    a dropped reply."""

    def __init__(self, listener):
        self.listener = listener
        self.port = listener.getsockname()[1]
        self.peers = []
        self.received = []
        self.conns = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, peer = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.peers.append(peer)
                self.received.append(bytearray())
                self.conns.append(conn)
                index = len(self.received) - 1
            threading.Thread(target=self._echo, args=(conn, index), daemon=True).start()

    def _echo(self, conn, index):
        try:
            while data := conn.recv(4096):
                with self.lock:
                    self.received[index] += data
                conn.sendall(data)
        except OSError:
            pass

    def close(self):
        self.listener.close()
        with self.lock:
            for c in self.conns:
                c.close()


# Runs inside the namespace (through netns.sh exec): makes unconnected TCP
# sockets there and hands them back over a unix socket. A socket keeps the
# namespace it was made in, so the test can then connect, send and time out
# on them directly as if it were the process inside.
AGENT = r"""
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[2]))]
with socket.socket(socket.AF_UNIX) as u:
    u.connect(sys.argv[1])
    socket.send_fds(u, [b"x"], [s.fileno() for s in socks])
"""


def sockets_inside(name, count):
    with tempfile.TemporaryDirectory(prefix="netns-") as d, socket.socket(socket.AF_UNIX) as srv:
        path = os.path.join(d, "agent.sock")
        srv.bind(path)
        srv.listen(1)
        srv.settimeout(10)
        agent = subprocess.Popen([NETNS_SH, "exec", name, "--", sys.executable, "-c", AGENT, path, str(count)])
        try:
            conn, _ = srv.accept()
            with conn:
                _, fds, _, _ = socket.recv_fds(conn, 16, count)
        finally:
            assert agent.wait(10) == 0
    assert len(fds) == count
    return [socket.socket(fileno=fd) for fd in fds]


def http_get(port, path, timeout=3):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def echo_roundtrip(sock, payload, timeout):
    sock.settimeout(timeout)
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(len(payload) - len(got))
        assert chunk, "the echo server closed the connection"
        got += chunk
    return got


class Namespace:
    """One namespace made by netns.sh, with an HTTP server inside it."""

    def __init__(self, name, backend_port, http_port, serve_dir):
        self.name = name
        self.http_port = http_port
        out = netns_sh("create", name, "--backend-ports", str(backend_port), "--http-port", str(http_port)).stdout
        # The one stdout line is where the host reaches the inside HTTP port.
        assert out == f"127.0.0.1:{http_port}\n"
        self.token = uuid.uuid4().hex
        with open(os.path.join(serve_dir, "token"), "w") as f:
            f.write(self.token)
        self.server = subprocess.Popen(
            [NETNS_SH, "exec", name, "--", sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(http_port)],
            cwd=serve_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def serving():
            assert self.server.poll() is None, "the HTTP server inside exited"
            try:
                return http_get(http_port, "/token", timeout=1) == (200, self.token.encode())
            except OSError:
                return False

        wait_until(serving, 15, interval=0.05, what="the HTTP server inside the namespace")

    def stop(self):
        if self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(5)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(5)
        netns_sh("delete", self.name)


@pytest.fixture
def ports():
    return set()


@pytest.fixture
def echo(ports):
    server = EchoServer(bound_listener(ports))
    yield server
    server.close()


@pytest.fixture
def make_ns(ports, echo, tmp_path):
    made = []

    def make():
        serve_dir = tmp_path / f"www{len(made)}"
        serve_dir.mkdir()
        name = unique_name()
        try:
            ns = Namespace(name, echo.port, free_port(ports), str(serve_dir))
        except BaseException:
            netns_sh("delete", name, check=False)
            raise
        made.append(ns)
        return ns

    yield make
    for ns in made:
        ns.stop()


def test_inside_reaches_the_hosts_loopback_backend_and_the_host_reaches_the_inside_server(make_ns, echo, ports):
    ns = make_ns()
    # exec hands over CMD's own pid, so the caller can signal it directly.
    assert str(ns.server.pid) in status(ns.name)["pids"].split(",")

    backend, unlisted = sockets_inside(ns.name, 2)
    with backend, unlisted:
        backend.settimeout(5)
        backend.connect(("127.0.0.1", echo.port))
        assert echo_roundtrip(backend, b"hello", 5) == b"hello"
        # The backend sees a loopback peer, as pg_hba.conf's 127.0.0.1/32 needs.
        assert echo.peers[0][0] == "127.0.0.1"

        # A host port that is not a backend port is not mapped: inside,
        # 127.0.0.1 is the namespace's own loopback, where nothing listens.
        with bound_listener(ports) as other:
            unlisted.settimeout(5)
            with pytest.raises(ConnectionRefusedError):
                unlisted.connect(("127.0.0.1", other.getsockname()[1]))

    assert http_get(ns.http_port, "/token") == (200, ns.token.encode())


def test_cut_drops_backend_traffic_silently_and_heal_resumes_it(make_ns, echo):
    ns = make_ns()
    established, during_cut, after_heal = sockets_inside(ns.name, 3)
    with established, during_cut, after_heal:
        established.settimeout(5)
        established.connect(("127.0.0.1", echo.port))
        assert echo_roundtrip(established, b"before", 5) == b"before"

        netns_sh("cut", ns.name)
        assert status(ns.name)["state"] == "cut"

        # A partition, not a refusal: the connect hangs until its own timeout.
        during_cut.settimeout(2)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            during_cut.connect(("127.0.0.1", echo.port))
        assert time.monotonic() - started >= 1.9

        # The established connection stays open but nothing gets through;
        # the echo server's record shows the request itself was dropped.
        established.settimeout(1.5)
        established.sendall(b"during")
        with pytest.raises(TimeoutError):
            established.recv(16)
        assert bytes(echo.received[0]) == b"before"

        # The host's path to the HTTP port is not part of the partition.
        assert http_get(ns.http_port, "/token") == (200, ns.token.encode())

        netns_sh("heal", ns.name)
        assert status(ns.name)["state"] == "connected"

        # TCP retransmits what was sent during the cut; it arrives within the
        # retransmission backoff, and the connection goes on working.
        established.settimeout(15)
        got = b""
        while len(got) < len(b"during"):
            chunk = established.recv(16)
            assert chunk, "the established connection was closed"
            got += chunk
        assert got == b"during"
        assert echo_roundtrip(established, b"after", 5) == b"after"

        after_heal.settimeout(5)
        after_heal.connect(("127.0.0.1", echo.port))
        assert echo_roundtrip(after_heal, b"new", 5) == b"new"
    assert http_get(ns.http_port, "/token") == (200, ns.token.encode())


def test_two_namespaces_coexist(make_ns, echo):
    first, second = make_ns(), make_ns()
    a, b = status(first.name), status(second.name)
    assert a["subnet"] != b["subnet"]
    assert http_get(first.http_port, "/token") == (200, first.token.encode())
    assert http_get(second.http_port, "/token") == (200, second.token.encode())

    netns_sh("cut", first.name)
    assert status(second.name)["state"] == "connected"
    (s,) = sockets_inside(second.name, 1)
    with s:
        s.settimeout(5)
        s.connect(("127.0.0.1", echo.port))
        assert echo_roundtrip(s, b"second", 5) == b"second"


def test_delete_removes_everything_and_can_be_repeated(make_ns):
    ns = make_ns()
    link, table = f"fn-{ns.name}", f"feed-netns-{ns.name}"
    assert table in subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout
    ns.stop()
    ns.stop()  # the fixture's clean-up will call it a third time

    assert ns.name not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout.split()
    assert subprocess.run(["ip", "link", "show", "dev", link], capture_output=True).returncode != 0
    assert table not in subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout
    assert not os.path.exists(f"/run/feed-netns/{ns.name}")
    assert netns_sh("status", ns.name, check=False).returncode == 3
    # The host's 127.0.0.1:Q is the host's own again: nothing listens there.
    with pytest.raises(ConnectionRefusedError):
        http_get(ns.http_port, "/", timeout=2)


def test_refuses_bad_names_and_namespaces_it_did_not_make():
    for bad in ("", "UPPER", "under_score", "thirteen-char", "a/b"):
        r = netns_sh("create", bad, "--backend-ports", "20000", check=False)
        assert r.returncode != 0 and r.stdout == "", bad
    r = netns_sh("create", "ok", "--backend-ports", "20000,x", check=False)
    assert r.returncode != 0 and "not a TCP port" in r.stderr
    r = netns_sh("create", "ok", "--backend-ports", "20000", "--http-port", "20000", check=False)
    assert r.returncode != 0 and "both" in r.stderr

    foreign = unique_name()
    subprocess.run(["ip", "netns", "add", foreign], check=True)
    try:
        for args in (["create", foreign, "--backend-ports", "20000"], ["delete", foreign], ["cut", foreign],
                     ["exec", foreign, "--", "true"]):
            r = netns_sh(*args, check=False)
            assert r.returncode == 1, (args, r.stderr)
        assert foreign in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    finally:
        subprocess.run(["ip", "netns", "delete", foreign], check=True)
