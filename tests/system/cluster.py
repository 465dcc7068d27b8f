"""The replicated local cluster of scripts/cluster.sh, for failure tests.

Three Kafka nodes (broker + controller each), three etcd members and two
PostgreSQL nodes under Patroni: a primary and a synchronous standby. Every
call runs the script, so a test and a person at a shell see the same cluster
and the same errors. Each call is bounded; a failing call raises ClusterError
carrying the script's stderr (which ends with the failing member's log).

Member names: kafka-1..3, etcd-1..3, patroni-1..2; the postmasters are
pg-1..2 (pg-N runs under patroni-N).
"""
import collections
import os
import random
import re
import shutil
import socket
import subprocess
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "scripts", "cluster.sh")

# Above the script's own bounds (CLUSTER_START_TIMEOUT 240 s; 30 s per
# process when stopping), so the script reports a hang before we kill it.
START_TIMEOUT = 330
STOP_TIMEOUT = 240
QUERY_TIMEOUT = 90

MEMBERS = ("kafka-1", "kafka-2", "kafka-3", "etcd-1", "etcd-2", "etcd-3", "patroni-1", "patroni-2")
POSTMASTERS = ("pg-1", "pg-2")

_START_OUTPUT = re.compile(r"KAFKA_BROKERS=(?P<brokers>[^\n]+)\nDATABASE_URL=(?P<url>[^\n]+)\n")


class ClusterError(RuntimeError):
    pass


Settings = collections.namedtuple("Settings", "brokers database_url")


# Ports of clusters the tests start: above the 20000-25999 that ./test.sh's
# own Kafka and PostgreSQL take, below the kernel's ephemeral range.
PORT_RANGE = (26000, 32000)
SPAN = 24  # ports BASE .. BASE+23, as laid out in the script's header


def free_port_base(span=SPAN):
    """A base whose ports BASE .. BASE+span-1 all bind on 127.0.0.1 now."""
    for _ in range(200):
        base = random.randrange(PORT_RANGE[0], PORT_RANGE[1] - span)
        try:
            for port in range(base, base + span):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {span} free ports in a row in {PORT_RANGE[0]}-{PORT_RANGE[1]}")


def scratch_dir(name):
    """A fresh directory for a cluster under /tmp, traversable by the
    postgres OS user that Patroni runs PostgreSQL as. Not under pytest's
    tmp_path: pytest makes its root private again whenever another session
    starts, and ./test.sh runs two at once."""
    d = tempfile.mkdtemp(prefix=f"feed-{name}-", dir="/tmp")
    os.chmod(d, 0o755)
    return d


def remove_scratch_dir(d):
    shutil.rmtree(d, ignore_errors=True)


def skip_reason():
    """Why the cluster tests cannot run here, or '' when they can."""
    if os.environ.get("FEED_SKIP_CLUSTER"):
        return f"FEED_SKIP_CLUSTER is set ({os.environ['FEED_SKIP_CLUSTER']})"
    absent = missing()
    return f"the replicated cluster needs {absent} (scripts/install-deps.sh installs them)" if absent else ""


def missing():
    """What the cluster needs and this machine lacks, as a sentence ('' when nothing)."""
    tools = {"patroni": "patroni", "etcd": "etcd-server", "etcdctl": "etcd-client", "java": "openjdk-17-jre-headless",
             "mvn": "maven", "curl": "curl", "psql": "postgresql"}
    absent = [f"{tool} (Debian package {package})" for tool, package in tools.items() if not shutil.which(tool)]
    return ", ".join(absent)


def _run(*args, timeout, port_base=None):
    env = dict(os.environ)
    if port_base is not None:
        env["CLUSTER_PORT_BASE"] = str(port_base)
    try:
        r = subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        raise ClusterError(f"cluster.sh {' '.join(args)} did not finish within {timeout}s:\n{e.stderr or ''}") from e
    if r.returncode != 0:
        raise ClusterError(f"cluster.sh {' '.join(args)} exited with {r.returncode}:\n{r.stderr}")
    return r.stdout


def start(dir, port_base=None):
    """Starts (or resumes) the cluster in dir; returns Settings, i.e.
    (brokers, database_url). port_base only matters for a new dir: an
    existing one keeps its ports."""
    out = _run("start", dir, timeout=START_TIMEOUT, port_base=port_base)
    m = _START_OUTPUT.fullmatch(out)
    if not m:
        raise ClusterError(f"cluster.sh start printed something other than the two result lines:\n{out!r}")
    return Settings(m["brokers"], m["url"])


def stop(dir):
    _run("stop", dir, timeout=STOP_TIMEOUT)


def start_node(dir, name):
    """Starts one stopped or killed member (kafka-N, etcd-N, patroni-N) on its
    ports and waits until it serves."""
    _run("start-node", dir, name, timeout=START_TIMEOUT)


def stop_node(dir, name):
    _run("stop-node", dir, name, timeout=STOP_TIMEOUT)


def pids(dir):
    """{name: pid or None} for the members and postmasters, plus 'pg-primary'
    (the node Patroni runs as primary, 'pg-1'/'pg-2', or None) and
    'kafka-controller' (as the live Kafka nodes last recorded it, or None)."""
    result = {}
    for line in _run("pids", dir, timeout=QUERY_TIMEOUT).splitlines():
        name, value = line.split(" ", 1)
        if name in ("pg-primary", "kafka-controller"):
            result[name] = None if value == "-" else value
        else:
            result[name] = None if value == "-" else int(value)
    return result


def primary(dir):
    """'pg-1' or 'pg-2', whichever is the primary now; None during a failover."""
    return pids(dir)["pg-primary"]


def controller(dir):
    """The active KRaft controller ('kafka-N'), asked of the quorum itself."""
    out = _run("controller", dir, timeout=QUERY_TIMEOUT).strip()
    name, value = out.split(" ", 1)
    if name != "kafka-controller":
        raise ClusterError(f"unexpected output of cluster.sh controller: {out!r}")
    return value
