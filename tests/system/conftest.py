"""System tests: the real feed-api binary over HTTP.

Each test gets a fresh feed-api on a free port with its own data dir
(function scope keeps tests independent; start-up takes milliseconds).
Tests that take the `api` or `make_api` fixture run twice: embedded (SQLite
+ in-process queue) and distributed (Kafka + PostgreSQL, a fresh database,
topics and consumer group per test). The distributed services come from
FEED_TEST_KAFKA_BROKERS and FEED_TEST_DATABASE_URL, which ./test.sh sets.
"""
import os
import uuid

import pytest
import requests

from services.feed_api import FeedApi, wait_until
from services.postgres import Postgres

BUILD_DIR = os.environ.get("FEED_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))


def binary(name):
    path = os.path.abspath(os.path.join(BUILD_DIR, name))
    if not os.path.exists(path):
        pytest.fail(f"{path} does not exist; build first (./test.sh does)")
    return path


@pytest.fixture
def feed_binary():
    return binary("feed-api")


@pytest.fixture(params=["embedded", "kafka"])
def mode(request):
    if request.param == "kafka" and not (os.environ.get("FEED_TEST_KAFKA_BROKERS")
                                         and os.environ.get("FEED_TEST_DATABASE_URL")):
        pytest.skip("Kafka + PostgreSQL mode needs FEED_TEST_KAFKA_BROKERS and FEED_TEST_DATABASE_URL (./test.sh sets them)")
    return request.param


@pytest.fixture(scope="session")
def postgres():
    url = os.environ.get("FEED_TEST_DATABASE_URL")
    return Postgres(url, os.environ.get("FEED_TEST_PG_DIR")) if url else None


def distributed_args(postgres):
    """feed-api flags for Kafka + PostgreSQL: a fresh database, topics and group."""
    tag = uuid.uuid4().hex[:10]
    return ["--kafka-brokers", os.environ["FEED_TEST_KAFKA_BROKERS"],
            "--database-url", postgres.create_database(f"t_{tag}"),
            "--kafka-events-topic", f"events-{tag}", "--kafka-processed-topic", f"processed-{tag}",
            "--kafka-group", f"group-{tag}"]


@pytest.fixture(scope="session", autouse=True)
def kafka_ready_accepts(postgres, tmp_path_factory):
    """On the suite's freshest broker, before any test: once /api/ready
    says 200, a post is accepted within the default publish timeout. A
    fresh broker's first idempotent producer waits for its producer id
    ("coordinator load in progress", over a second once on a loaded CI
    machine), and readiness includes that wait, so the tests after this
    one find a broker that hands out producer ids at once."""
    if not (postgres and os.environ.get("FEED_TEST_KAFKA_BROKERS")):
        return
    api = FeedApi(binary("feed-api"), str(tmp_path_factory.mktemp("kafka-first-ready")),
                  args=["--log-level", "warn", *distributed_args(postgres)])
    api.start(timeout=60)
    try:
        answers = []

        def ready():
            r = requests.get(api.url("/api/ready"), timeout=5)
            answers.append(r)
            return r.status_code == 200

        wait_until(ready, 90, interval=0.05, what="/api/ready on a fresh broker")
        for r in answers[:-1]:
            assert r.status_code == 503 and r.json()["problems"], r.text
        r = api.post("first", "posted once ready")
        assert r.status_code == 202, f"ready, yet the post was refused: {r.status_code} {r.text}"
    finally:
        api.stop()


@pytest.fixture
def backend_args(mode, postgres):
    """feed-api flags selecting this test's backends (empty when embedded)."""
    return [] if mode == "embedded" else distributed_args(postgres)


@pytest.fixture
def make_api(request, tmp_path, feed_binary, backend_args):
    """Factory: make_api(*args) starts a feed-api; all are stopped at the end.
    Every instance of one test shares its backends (database, topics). A
    test marked publish_timeout_ms(N) gets --publish-timeout-ms N first."""
    started = []
    marked = request.node.get_closest_marker("publish_timeout_ms")
    first = ["--publish-timeout-ms", str(marked.args[0])] if marked else []

    def make(*args, data_dir=None, env=None, start=True):
        api = FeedApi(feed_binary, str(data_dir or tmp_path / "data"),
                      args=["--log-level", "info", *backend_args, *first, *args], env=env)
        api.distributed = bool(backend_args)
        started.append(api)
        return api.start() if start else api

    yield make
    for api in started:
        if api.alive():
            api.stop()


@pytest.fixture
def api(make_api):
    return make_api()


@pytest.fixture
def user():
    """A user id unique to the test, so tests never see each other's messages."""
    return "u" + uuid.uuid4().hex[:12]


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "publish_timeout_ms(n): the test's feed-api instances wait up to n ms for each post's "
                   "durability, for tests whose posts only set the scene")
    config.addinivalue_line(
        "markers", "cluster: starts the replicated cluster or a network namespace; ./test.sh runs these "
                   "in a stream of their own, beside the others, on ports 26000-31999")
