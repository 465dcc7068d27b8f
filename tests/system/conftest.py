"""System tests: the real feed-api binary over HTTP.

Each test gets a fresh feed-api on a free port with its own data dir
(function scope keeps tests independent; start-up takes milliseconds).
"""
import os
import uuid

import pytest

from services.feed_api import FeedApi

BUILD_DIR = os.environ.get("FEED_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))


def binary(name):
    path = os.path.abspath(os.path.join(BUILD_DIR, name))
    if not os.path.exists(path):
        pytest.fail(f"{path} does not exist; build first (./test.sh does)")
    return path


@pytest.fixture
def feed_binary():
    return binary("feed-api")


@pytest.fixture
def make_api(tmp_path, feed_binary):
    """Factory: make_api(*args) starts a feed-api; all are stopped at the end."""
    started = []

    def make(*args, data_dir=None, env=None, start=True):
        api = FeedApi(feed_binary, str(data_dir or tmp_path / "data"), args=["--log-level", "info", *args], env=env)
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
