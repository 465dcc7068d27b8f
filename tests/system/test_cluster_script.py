"""scripts/cluster.sh for real: one replicated cluster (3 Kafka nodes, 3 etcd
members, 2 PostgreSQL nodes under Patroni) started in a temporary directory,
then attacked in order: the tests below share it and each leaves it in the
state the next one expects (a module-scoped fixture, as the start-up is the
expensive part). The ports come from a random free base in cluster.PORT_RANGE, so
parallel runs do not collide.
"""
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import uuid

import pytest

import cluster

SKIP = cluster.skip_reason()
pytestmark = [pytest.mark.cluster, pytest.mark.skipif(bool(SKIP), reason=SKIP)]

KAFKA_SH = os.path.join(cluster.ROOT, "scripts", "kafka.sh")
FAILOVER_BOUND = 30
REJOIN_BOUND = 90


def wait_until(what, predicate, timeout, interval=0.3):
    """Polls predicate until it returns something truthy; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(interval)


def node_url(port):
    return f"postgresql://root@127.0.0.1:{port}/defaultdb?sslmode=disable"


def sql(url, statement, check=True):
    r = subprocess.run(["psql", url, "-X", "-v", "ON_ERROR_STOP=1", "-qAt", "-c", statement],
                       capture_output=True, text=True, timeout=30, env={**os.environ, "PGCONNECT_TIMEOUT": "5"})
    if check and r.returncode != 0:
        raise AssertionError(f"psql {url} {statement!r}: {r.stderr}")
    return r.stdout.strip() if r.returncode == 0 else None


def topics(brokers, *args):
    return subprocess.run(["bash", KAFKA_SH, "topics", "--bootstrap-server", brokers, *args],
                          capture_output=True, text=True, timeout=90, check=True).stdout


def in_sync_replicas(brokers, topic):
    m = re.search(r"\bIsr: ([0-9,]+)", topics(brokers, "--describe", "--topic", topic))
    return sorted(int(i) for i in m[1].split(",")) if m else []


def alive(pid):
    """Running, as opposed to gone or a zombie waiting for its parent to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class Cluster:
    def __init__(self, dir, base):
        self.dir = dir
        self.base = base
        self.pg_port = {"pg-1": base + 20, "pg-2": base + 21}
        self.brokers = self.url = None
        self.marks = {}  # what one test leaves for a later one to check

    def start(self):
        t0 = time.monotonic()
        self.brokers, self.url = cluster.start(self.dir, self.base)
        print(f"cluster.sh start took {time.monotonic() - t0:.1f}s")

    def node(self, name):
        return node_url(self.pg_port[name])

    @staticmethod
    def other(name):
        return "pg-2" if name == "pg-1" else "pg-1"


@pytest.fixture(scope="module")
def c():
    # Under /tmp and world-traversable: Patroni runs as the postgres OS user.
    dir = tempfile.mkdtemp(prefix="feed-cluster-", dir="/tmp")
    os.chmod(dir, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    c = Cluster(os.path.join(dir, "c"), cluster.free_port_base())
    try:
        c.start()
        yield c
    finally:
        if os.path.exists(os.path.join(c.dir, "port-base")):
            cluster.stop(c.dir)
        if not os.environ.get("FEED_TEST_KEEP_CLUSTER"):
            shutil.rmtree(dir, ignore_errors=True)


def test_start_prints_the_brokers_and_a_multi_host_url(c):
    b = c.base
    assert c.brokers == f"127.0.0.1:{b},127.0.0.1:{b + 1},127.0.0.1:{b + 2}"
    assert c.url == (f"postgresql://root@127.0.0.1:{b + 20},127.0.0.1:{b + 21}/defaultdb"
                     "?sslmode=disable&target_session_attrs=read-write")
    # libpq takes the multi-host URL and lands on the primary, as root in defaultdb.
    assert sql(c.url, "SELECT current_user, current_database(), pg_is_in_recovery()") == "root|defaultdb|f"


def test_pids_names_every_process_and_the_primary(c):
    p = cluster.pids(c.dir)
    assert set(p) == {*cluster.MEMBERS, *cluster.POSTMASTERS, "pg-primary", "kafka-controller"}
    for name in (*cluster.MEMBERS, *cluster.POSTMASTERS):
        assert p[name] and alive(p[name]), (name, p)
    assert p["pg-primary"] in cluster.POSTMASTERS
    # The quorum's own answer names the same controller as the recorded one
    # (they can only differ across an election, and none is under way).
    assert cluster.controller(c.dir) == p["kafka-controller"]
    assert p["kafka-controller"] in ("kafka-1", "kafka-2", "kafka-3")


def test_a_topic_with_replication_3_has_3_in_sync_replicas(c):
    c.marks["topic"] = topic = f"cluster-{uuid.uuid4().hex[:8]}"
    topics(c.brokers, "--create", "--topic", topic, "--partitions", "1", "--replication-factor", "3")
    wait_until("3 in-sync replicas", lambda: in_sync_replicas(c.brokers, topic) == [1, 2, 3], 30)


def test_a_commit_on_the_primary_is_visible_on_the_standby_at_once(c):
    primary = cluster.primary(c.dir)
    standby = c.other(primary)
    assert sql(c.node(primary), "SELECT sync_state FROM pg_stat_replication") == "sync"
    c.marks["before_failover"] = value = uuid.uuid4().hex
    sql(c.url, "CREATE TABLE marks (v text PRIMARY KEY)")
    sql(c.url, f"INSERT INTO marks VALUES ('{value}')")
    # No polling: remote_apply means the commit returned after the standby applied it.
    assert sql(c.node(standby), f"SELECT pg_is_in_recovery(), count(*) FROM marks WHERE v = '{value}'") == "t|1"


def test_pg_primary_names_the_node_not_in_recovery(c):
    in_recovery = {name: sql(c.node(name), "SELECT pg_is_in_recovery()") for name in cluster.POSTMASTERS}
    primary = cluster.primary(c.dir)
    assert in_recovery[primary] == "f"
    assert in_recovery[c.other(primary)] == "t"
    c.marks["system_identifier"] = sql(c.url, "SELECT system_identifier FROM pg_control_system()")


def test_sigkill_of_the_primary_fails_over_to_the_standby(c):
    p = cluster.pids(c.dir)
    old = p["pg-primary"]
    new = c.other(old)
    c.marks["killed"] = old
    t0 = time.monotonic()
    os.kill(p[old], signal.SIGKILL)
    wait_until(f"{new} becomes the primary", lambda: cluster.primary(c.dir) == new, FAILOVER_BOUND)
    # The multi-host URL now reaches the new primary for writes.
    c.marks["after_failover"] = value = uuid.uuid4().hex
    sql(c.url, f"INSERT INTO marks VALUES ('{value}')")
    print(f"failover to {new} took {time.monotonic() - t0:.1f}s")
    assert sql(c.url, "SELECT inet_server_port()") == str(c.pg_port[new])
    # Nothing the old primary acknowledged is lost.
    assert sql(c.url, f"SELECT count(*) FROM marks WHERE v = '{c.marks['before_failover']}'") == "1"


def test_the_killed_primary_rejoins_as_a_sync_replica(c):
    old = c.marks["killed"]
    new = c.other(old)
    t0 = time.monotonic()

    def rejoined():
        if sql(c.node(old), "SELECT pg_is_in_recovery()", check=False) != "t":
            return False
        return sql(c.node(new), f"SELECT sync_state FROM pg_stat_replication WHERE application_name = '{old}'",
                   check=False) == "sync"

    # Patroni restarts it by itself; start-node is for a Patroni that is gone.
    if not cluster.pids(c.dir)[f"patroni-{old[-1]}"]:
        cluster.start_node(c.dir, f"patroni-{old[-1]}")
    wait_until(f"{old} streams as a sync replica", rejoined, REJOIN_BOUND)
    print(f"{old} rejoined after {time.monotonic() - t0:.1f}s")
    assert sql(c.node(old), f"SELECT count(*) FROM marks WHERE v = '{c.marks['after_failover']}'") == "1"
    assert cluster.primary(c.dir) == new


def test_start_node_brings_back_a_killed_broker_and_patroni(c):
    p = cluster.pids(c.dir)
    replica = c.other(p["pg-primary"])
    victims = ["kafka-2", f"patroni-{replica[-1]}"]
    for name in victims:
        os.kill(p[name], signal.SIGKILL)
    wait_until("the killed members are gone", lambda: not any(alive(p[name]) for name in victims), 10)
    after = cluster.pids(c.dir)
    assert [after[name] for name in victims] == [None, None]
    # A Patroni killed alone leaves its postgres running; the new one adopts it.
    assert after[replica] == p[replica]
    for name in victims:
        cluster.start_node(c.dir, name)
    restarted = cluster.pids(c.dir)
    for name in victims:
        assert restarted[name] and restarted[name] != p[name] and alive(restarted[name]), (name, restarted)
    # The broker catches up and is back in the ISR; the replica is still sync.
    wait_until("kafka-2 back in the ISR", lambda: in_sync_replicas(c.brokers, c.marks["topic"]) == [1, 2, 3], 60)
    wait_until(f"{replica} sync again", lambda: sql(
        c.node(restarted["pg-primary"]), "SELECT sync_state FROM pg_stat_replication") == "sync", 30)


def test_stop_leaves_none_of_the_processes(c):
    before = cluster.pids(c.dir)
    running = {name: pid for name, pid in before.items() if name in (*cluster.MEMBERS, *cluster.POSTMASTERS)}
    assert all(running.values()), before
    t0 = time.monotonic()
    cluster.stop(c.dir)
    took = time.monotonic() - t0
    print(f"cluster.sh stop took {took:.1f}s")
    assert [name for name, pid in running.items() if alive(pid)] == []
    after = cluster.pids(c.dir)
    assert all(after[name] is None for name in running), after
    assert after["pg-primary"] is None


def test_a_second_start_resumes_the_same_data(c):
    brokers, url = c.brokers, c.url
    c.start()
    assert (c.brokers, c.url) == (brokers, url)
    # The same database (no new initdb) with the rows written before.
    assert sql(c.url, "SELECT system_identifier FROM pg_control_system()") == c.marks["system_identifier"]
    assert sql(c.url, "SELECT count(*) FROM marks") == "2"
    assert c.marks["topic"] in topics(c.brokers, "--list").split()
    assert wait_until("3 in-sync replicas", lambda: in_sync_replicas(c.brokers, c.marks["topic"]) == [1, 2, 3], 30)
