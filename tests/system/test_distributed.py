"""Kafka + PostgreSQL: several instances, failures of each service, and a
database laid out by the reference system."""
import concurrent.futures
import os
import re
import subprocess
import threading
import urllib.parse
import time
import uuid

import pytest
import requests

from services.feed_api import FeedApi, wait_until
from services.freezable_proxy import FreezableProxy
from services.kafka import Kafka
from services.sse import SseClient
from test_durability import burst

pytestmark = pytest.mark.parametrize("mode", ["kafka"], indirect=True)


@pytest.fixture
def kafka():
    return Kafka(os.environ["FEED_TEST_KAFKA_BROKERS"], os.environ.get("FEED_TEST_KAFKA_DIR"))


# Its posts only set the scene: on two loaded cores (the ASan build beside the
# cluster tests) a first acknowledgement from a fresh producer can take more
# than the default second, and a 503 there says nothing of the streams.
@pytest.mark.publish_timeout_ms(10000)
def test_two_instances_stream_every_message_once_in_one_order(make_api, tmp_path, user):
    a = make_api(data_dir=tmp_path / "a")
    b = make_api(data_dir=tmp_path / "b")
    feeds = [SseClient(x.url("/api/feed?history=0")) for x in (a, b, a, b)]
    ids = []
    sessions = [requests.Session(), requests.Session()]
    for i in range(60):
        target = (a, b)[i % 2]
        r = target.post(f"{user}{i % 3}", f"m{i}", session=sessions[i % 2])
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    orders = []
    for f in feeds:
        events = f.take(60, timeout=30)
        assert [e.seq for e in events] == list(range(1, 61))
        assert sorted(e.message["id"] for e in events) == sorted(ids)
        assert f.quiet(0.3) == []
        orders.append([e.message["id"] for e in events])
        f.close()
    assert all(o == orders[0] for o in orders)


def post_until_accepted(api, user, content, bound=20):
    """A post retried while the instance is not ready yet (503)."""
    deadline = time.monotonic() + bound
    while True:
        r = api.post(user, content)
        if r.status_code != 503 or time.monotonic() > deadline:
            assert r.status_code == 202, r.text
            return r.json()["id"]
        time.sleep(0.1)


def test_an_instance_killed_and_restarted_with_its_instance_id_resumes_at_once(make_api, tmp_path, user):
    # Static membership (--kafka-instance-id): the restarted process takes
    # the dead one's place in the workers' group, so its partitions are
    # read again at once. Without it the restart's join waits for the dead
    # member's session (10 s) to end, and so does every partition.
    name = "w-" + uuid.uuid4().hex[:8]
    a = make_api("--kafka-instance-id", name, data_dir=tmp_path / "a")
    a.wait_stored([post_until_accepted(a, user, "before the kill")], timeout=30)
    a.kill()
    b = make_api("--kafka-instance-id", name, data_dir=tmp_path / "b")
    t0 = time.monotonic()
    b.wait_stored([post_until_accepted(b, user, "after the restart")], timeout=30)
    assert time.monotonic() - t0 < 5, "the restarted member waited for the dead one's session"


def test_a_second_live_instance_with_the_same_instance_id_fences_the_first_which_says_so(make_api, tmp_path,
                                                                                        user):
    # Two live instances given one --kafka-instance-id: the broker fences
    # the first. It says so once, stops reading without spinning, and its
    # posts are still stored (by the other's worker); it stops cleanly.
    name = "w-" + uuid.uuid4().hex[:8]
    a = make_api("--kafka-instance-id", name, data_dir=tmp_path / "a")
    wait_until(lambda: "kafka consumer: assigned" in a.read_log(), 30, what="the first instance's assignment")
    b = make_api("--kafka-instance-id", name, data_dir=tmp_path / "b")
    wait_until(lambda: "failed fatally" in a.read_log(), 30, what="the first instance to be fenced")
    b.wait_stored([post_until_accepted(a, user, "through the fenced one")], timeout=30)

    def failed(api):
        text = requests.get(api.url("/metrics"), timeout=5).text
        return re.search(r"^feed_kafka_consumer_failed (\S+)$", text, re.M).group(1)

    assert (failed(a), failed(b)) == ("1", "0")  # the fenced one shows in its metrics too

    def cpu_seconds():
        with open(f"/proc/{a.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    before = cpu_seconds()
    time.sleep(2)
    assert cpu_seconds() - before < 0.5, "the fenced consumer's worker spins"
    log = a.read_log()
    assert log.count("failed fatally") == 1, log[-3000:]
    assert "--kafka-instance-id" in log
    assert a.stop() == 0


def test_acknowledgements_reach_posts_on_every_event_loop(make_api, user):
    # The first loop serves Kafka's delivery reports; posts waiting on the
    # other loop are settled from there. Connections are spread over loops.
    api = make_api("--threads", "2")
    sessions = [requests.Session() for _ in range(8)]
    ids = []
    for i in range(80):
        r = api.post(user, f"loop post {i}", session=sessions[i % len(sessions)], timeout=10)
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    assert sorted(m["id"] for m in api.wait_stored(ids)) == sorted(ids)
    t0 = time.monotonic()
    assert api.stop() == 0
    assert time.monotonic() - t0 < 5, "the report pump kept a loop from stopping"


def test_a_database_outage_is_absorbed_by_kafka(make_api, postgres, user):
    api = make_api()
    watcher = SseClient(api.url("/api/feed?history=0"))
    accepted = [api.post(user, f"before {i}").json()["id"] for i in range(5)]
    postgres.stop()
    try:
        # The outage lasts 20 s; posts keep getting 202 all along.
        t_end = time.monotonic() + 20
        i = 0
        while time.monotonic() < t_end:
            r = api.post(user, f"during {i}", timeout=5)
            assert r.status_code == 202, r.text
            accepted.append(r.json()["id"])
            i += 1
            time.sleep(0.05)
        assert requests.get(api.url("/api/ready")).status_code == 503
    finally:
        postgres.start()
    accepted += [api.post(user, f"after {i}").json()["id"] for i in range(5)]
    stored = api.wait_stored(accepted, timeout=90)
    assert len(stored) == len(accepted) == len({m["id"] for m in stored})
    events = watcher.take(len(accepted), timeout=60)
    assert [e.seq for e in events] == list(range(1, len(accepted) + 1))
    assert [e.message["id"] for e in events] == accepted  # one author: one partition, in order
    assert watcher.quiet(0.5) == []
    watcher.close()


def test_a_stream_that_must_catch_up_from_a_stopped_database_gets_503(make_api, postgres, user):
    # Streams whose first events come from the store (the ring of a fresh
    # process holds none) answered 200, sent nothing and ended while the
    # database was down: a client saw an empty feed.
    api = make_api()
    api.wait_stored([api.post(user, f"before {i}").json()["id"] for i in range(3)])
    api.stop()
    api.start()
    wait_until(lambda: requests.get(api.url("/api/ready"), timeout=5).status_code == 200, 60, what="ready")
    postgres.stop()
    try:
        for path, headers in [("/api/feed?history=all", {}), ("/api/feed", {"Last-Event-ID": "1"}),
                              ("/api/feed?since=1", {}), ("/api/feed", {})]:
            start = time.monotonic()
            r = requests.get(api.url(path), headers=headers, timeout=30)
            assert r.status_code == 503, (path, headers, r.status_code, r.text)
            assert "cannot read the store" in r.json()["error"], r.text
            assert r.headers["Retry-After"]
            assert time.monotonic() - start < 6.5
        # A stream that needs nothing from the store still opens.
        live = requests.get(api.url("/api/feed?history=0"), stream=True, timeout=10)
        assert live.status_code == 200
        live.close()
    finally:
        postgres.start()
    stream = SseClient(api.url("/api/feed?history=all"))
    assert [e.seq for e in stream.take(3, timeout=30)] == [1, 2, 3]
    stream.close()


def api_behind_a_freezable_database(feed_binary, postgres, data_dir):
    """A Kafka-mode feed-api on a fresh database reached through a proxy
    that freezes: to feed-api the database then hangs as a paused VM would."""
    tag = uuid.uuid4().hex[:10]
    url = urllib.parse.urlsplit(postgres.create_database(f"t_{tag}"))
    proxy = FreezableProxy(url.port)
    via = urllib.parse.urlunsplit((url.scheme, f"{url.username}@127.0.0.1:{proxy.port}", url.path, url.query, ""))
    api = FeedApi(feed_binary, str(data_dir), args=[
        "--log-level", "warn", "--kafka-brokers", os.environ["FEED_TEST_KAFKA_BROKERS"], "--database-url", via,
        "--kafka-events-topic", f"events-{tag}", "--kafka-processed-topic", f"processed-{tag}",
        "--kafka-group", f"group-{tag}", "--shutdown-timeout", "3"]).start()
    api.database = f"t_{tag}"
    return api, proxy


class StoreLock:
    """Holds the row lock every store write takes first (feed_sequence's),
    in a psql session of its own: the worker cannot store, while lookups
    and reads still answer."""

    def __init__(self, postgres, database):
        self.psql = subprocess.Popen(["psql", postgres.url_for(database), "-qAt", "-v", "ON_ERROR_STOP=1"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.psql.stdin.write("BEGIN;\nSELECT last_seq FROM feed_sequence WHERE id = 1 FOR UPDATE;\n")
        self.psql.stdin.flush()
        assert self.psql.stdout.readline().strip().isdigit(), "the lock was not taken"

    def release(self):
        if self.psql.poll() is None:
            self.psql.communicate("COMMIT;\n", timeout=30)


def test_ready_and_reads_answer_in_time_while_postgres_hangs(mode, feed_binary, postgres, tmp_path, user):
    # The database hangs. Reads sent meanwhile hold the pooled connections and
    # the blocking pool; readiness must still answer, and say 503, and every
    # read must be answered 503 within the store wait (5 s), however many
    # wait, without leaving work behind for later ones.
    api, proxy = api_behind_a_freezable_database(feed_binary, postgres, tmp_path / "d")
    pool = concurrent.futures.ThreadPoolExecutor(8)
    try:
        wait_until(lambda: requests.get(api.url("/api/ready"), timeout=5).status_code == 200, 60, what="ready")
        ids = [api.post(user, f"before {i}").json()["id"] for i in range(5)]
        api.wait_stored(ids)
        proxy.freeze()
        sent = time.monotonic()
        reads = [pool.submit(requests.get, api.url("/api/messages?limit=5"), timeout=60) for _ in range(8)]
        time.sleep(0.5)
        for _ in range(3):
            start = time.monotonic()
            r = requests.get(api.url("/api/ready"), timeout=10)
            took = time.monotonic() - start
            assert r.status_code == 503 and "store" in r.json()["problems"], r.text
            assert took < 3.5, f"/api/ready took {took:.1f} s"
        assert api.post(user, "during").status_code == 202  # Kafka still takes posts
        for f in reads:
            # The store wait, or a new connection's 5 s connect timeout,
            # whichever ends first.
            r = f.result(timeout=30)
            assert r.status_code == 503 and ("did not answer" in r.text or "cannot connect" in r.text), r.text
        assert time.monotonic() - sent < 8, "reads waited past the store wait"
        # A second wave while the first's calls still hold the pool: answered
        # as fast, not queued behind the abandoned ones.
        sent = time.monotonic()
        again = [pool.submit(requests.get, api.url("/api/messages?limit=5"), timeout=60) for _ in range(8)]
        stream = requests.get(api.url("/api/feed"), headers={"Last-Event-ID": "1000000"}, timeout=60)
        assert stream.status_code == 503 and "the store did not answer" in stream.text, stream.text
        for f in again:
            assert f.result(timeout=30).status_code == 503
        assert time.monotonic() - sent < 8, "a second wave of reads waited behind the first"
        proxy.thaw()
        wait_until(lambda: requests.get(api.url("/api/ready"), timeout=5).status_code == 200, 30, what="ready again")
        wait_until(lambda: requests.get(api.url("/api/messages?limit=5"), timeout=30).status_code == 200, 30,
                   what="reads again")
        start = time.monotonic()
        assert api.stop() == 0
        assert time.monotonic() - start < 6
    finally:
        proxy.thaw()
        pool.shutdown(wait=False, cancel_futures=True)
        if api.alive():
            api.stop()
        proxy.close()


def test_a_keyed_post_the_store_cannot_check_is_never_202(mode, feed_binary, postgres, tmp_path, user):
    # With the database hung, Kafka still takes posts, but a keyed post's
    # check of its key cannot be made. A key reused for other content was
    # answered 202 then, and the worker kept the stored content and dropped
    # the new one: a 202 for a message never stored. Such a post is now 503
    # "outcome unknown" with its id; the retry once the store answers is
    # 422 for other content and 202 (stored once) for a new key.
    api, proxy = api_behind_a_freezable_database(feed_binary, postgres, tmp_path / "d")
    try:
        wait_until(lambda: requests.get(api.url("/api/ready"), timeout=5).status_code == 200, 60, what="ready")
        feed = SseClient(api.url("/api/feed?history=0"))
        first = {f"k{i}": api.post(user, f"first {i}", headers={"Idempotency-Key": f"k{i}"}) for i in range(3)}
        assert all(r.status_code == 202 for r in first.values()), [r.text for r in first.values()]
        # Streamed: this instance has seen them stored, so it no longer
        # answers for their keys from what it accepted; only the store can.
        assert len(feed.take(3, timeout=30)) == 3
        feed.close()
        proxy.freeze()
        answers = [api.post(user, f"changed {i}", headers={"Idempotency-Key": f"k{i}"}) for i in range(3)]
        fresh = api.post(user, "new key", headers={"Idempotency-Key": "fresh"})
        for r in answers + [fresh]:
            assert r.status_code == 503, r.text
            body = r.json()
            assert "outcome is unknown" in body["error"] and "Idempotency-Key" in body["error"], body
            assert r.headers["Retry-After"] == "1"
        assert [r.json()["id"] for r in answers] == [first[f"k{i}"].json()["id"] for i in range(3)]
        assert api.post(user, "no key").status_code == 202  # Kafka still takes posts
        proxy.thaw()
        wait_until(lambda: requests.get(api.url("/api/ready"), timeout=5).status_code == 200, 30, what="ready again")
        for i in range(3):
            # The unchecked posts are durable in Kafka, so their keys are
            # held here while other content may land; the store, which has
            # the first content, ends that once it answers again (503 with
            # Retry-After until then): the retry is 202.
            give_up = time.monotonic() + 15
            while True:
                again = api.post(user, f"first {i}", headers={"Idempotency-Key": f"k{i}"})
                if again.status_code != 503 or time.monotonic() > give_up:
                    break
                assert "not stored" in again.json()["error"], again.text
                time.sleep(float(again.headers["Retry-After"]))
            assert again.status_code == 202 and again.json()["id"] == first[f"k{i}"].json()["id"], again.text
            assert api.post(user, f"changed {i}", headers={"Idempotency-Key": f"k{i}"}).status_code == 422
        retry = api.post(user, "new key", headers={"Idempotency-Key": "fresh"})
        assert retry.status_code == 202 and retry.json()["id"] == fresh.json()["id"], retry.text
        api.wait_stored([retry.json()["id"]])
        contents = sorted(m["content"] for m in api.all_messages(user_id=user))
        assert contents == ["first 0", "first 1", "first 2", "new key", "no key"], contents
    finally:
        proxy.thaw()
        if api.alive():
            api.stop()
        proxy.close()


def test_kafka_down_gives_quick_503_and_recovers_without_restart(make_api, kafka, user):
    api = make_api("--publish-timeout-ms", "1000")
    assert api.post(user, "before").status_code == 202
    kafka.stop()
    try:
        t0 = time.monotonic()
        r = api.post(user, "while down", timeout=10)
        took = time.monotonic() - t0
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "1"
        assert took < 2.5
        def down():
            r = requests.get(api.url("/api/ready"))
            return r.json() if r.status_code == 503 else None
        ready = wait_until(down, 10, what="/api/ready to report Kafka down")
        assert "queue" in ready["problems"]
    finally:
        kafka.start()
    wait_until(lambda: requests.get(api.url("/api/ready")).status_code == 200, 60, interval=0.5,
               what="ready after Kafka returns")
    ok = wait_until(lambda: api.post(user, "after").status_code == 202, 60, interval=0.5, what="posts to succeed")
    assert ok
    c = SseClient(api.url("/api/feed?history=all"))
    contents = [e.message["content"] for e in c.take(2, timeout=60)]
    assert contents[0] == "before" and "after" in contents
    c.close()


def test_a_reference_database_is_upgraded_and_its_rows_streamed(make_api, postgres, feed_binary, tmp_path):
    name = "ref_" + uuid.uuid4().hex[:8]
    url = postgres.create_database(name)
    # What the reference's migration 1 and its worker leave behind.
    postgres.sql("""
        CREATE TABLE messages (id UUID PRIMARY KEY, user_id TEXT, content TEXT, created_at TIMESTAMPTZ DEFAULT now());
        CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY, dirty BOOLEAN NOT NULL);
        INSERT INTO schema_migrations VALUES (1, false);
        INSERT INTO messages VALUES
          ('3f1c0e6a-0000-4000-8000-000000000003', 'carol', 'third', '2024-01-01T00:00:03Z'),
          ('3f1c0e6a-0000-4000-8000-000000000001', 'alice', 'first', '2024-01-01T00:00:01+00:00'),
          ('3f1c0e6a-0000-4000-8000-000000000002', 'bob', 'second', '2024-01-01T02:00:02+02:00');
    """, database=name)
    from services.feed_api import FeedApi
    tag = uuid.uuid4().hex[:8]
    api = FeedApi(feed_binary, str(tmp_path / "ref"),
                  args=["--kafka-brokers", os.environ["FEED_TEST_KAFKA_BROKERS"], "--database-url", url,
                        "--kafka-events-topic", f"e-{tag}", "--kafka-processed-topic", f"p-{tag}",
                        "--kafka-group", f"g-{tag}"]).start()
    try:
        assert postgres.sql("SELECT version, dirty FROM schema_migrations", database=name) == "2|f"
        c = SseClient(api.url("/api/feed"))
        events = c.take(3)
        assert [(e.seq, e.message["content"]) for e in events] == [(1, "first"), (2, "second"), (3, "third")]
        assert events[1].message["created_at"] == "2024-01-01T00:00:02.000000Z"
        r = api.post("dave", "fourth")
        assert r.status_code == 202
        assert c.next(timeout=20).seq == 4
        c.close()
    finally:
        api.stop()


def test_a_key_accepted_but_not_stored_yet_refuses_other_content(mode, feed_binary, postgres, tmp_path, user):
    # With Kafka a post is answered 202 once the broker has it; the worker
    # may store it much later (its backlog after a database outage). A reuse
    # of the key with other content meanwhile found nothing in the store, was
    # answered 202, and the worker kept the first content and dropped it: a
    # 202 for a message never stored. The instance now remembers the key's
    # accepted content until it sees it stored.
    api, proxy = api_behind_a_freezable_database(feed_binary, postgres, tmp_path / "d")
    lock = None
    try:
        wait_until(lambda: requests.get(api.url("/api/ready"), timeout=5).status_code == 200, 60, what="ready")
        lock = StoreLock(postgres, api.database)
        key = {"Idempotency-Key": "reused"}
        first = api.post(user, "first", headers=key)
        assert first.status_code == 202, first.text
        time.sleep(0.5)
        assert api.messages(user_id=user)["messages"] == [], "stored despite the lock"
        other = api.post(user, "other", headers=key)
        assert other.status_code == 422, other.text
        assert "different content" in other.json()["error"]
        retry = api.post(user, "first", headers=key)
        assert retry.status_code == 202 and retry.json()["id"] == first.json()["id"], retry.text
        lock.release()
        stored = api.wait_stored([first.json()["id"]], timeout=30)
        assert [m["content"] for m in stored if m["user_id"] == user] == ["first"]
        # Stored: the store answers as before.
        assert api.post(user, "other", headers=key).status_code == 422
        again = api.post(user, "first", headers=key)
        assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
        metrics = requests.get(api.url("/metrics"), timeout=5).text
        dropped = re.search(r"^feed_worker_idempotency_conflicts_total (\S+)", metrics, re.M)
        assert dropped and float(dropped.group(1)) == 0, "the worker dropped a conflicting post"
    finally:
        if lock:
            lock.release()
        proxy.thaw()
        api.stop()
