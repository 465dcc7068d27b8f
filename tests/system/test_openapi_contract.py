"""docs/openapi.yaml against a running feed-api, with schemathesis.

Every operation but the feed gets generated valid and invalid requests:
no 5xx, every status documented, every body matching its schema, the
documented content types, invalid input rejected with a 4xx. The feed
streams forever, so it gets a bounded check of its own: generated requests,
then the status, the headers and the first bytes of the stream.

One embedded server serves the whole module (the checks do not depend on
each other's data). Examples are derandomized so a failure reproduces (each
failure prints a curl command); FEED_CONTRACT_SEED=<int> draws others and
FEED_CONTRACT_EXAMPLES=<n> sets how many per operation.
"""
import os
import re

import pytest
import requests
import schemathesis
from schemathesis.generation import GenerationMode
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from conftest import binary
from services.feed_api import FeedApi

SPEC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "openapi.yaml")
EXAMPLES = int(os.environ.get("FEED_CONTRACT_EXAMPLES", "300"))
SEED = os.environ.get("FEED_CONTRACT_SEED")  # other examples than the derandomized ones


def bounded(test):
    test = settings(max_examples=EXAMPLES, deadline=None, derandomize=not SEED, database=None,
                    suppress_health_check=list(HealthCheck))(test)
    return seed(int(SEED))(test) if SEED else test

schema = schemathesis.openapi.from_path(SPEC)
# Unknown query parameters are ignored, as HTTP APIs and the reference do
# (EventSource polyfills and caches add their own); schemathesis would count
# them as invalid input the server should reject.
schema.config.generation.update(allow_extra_parameters=False)
# Valid requests that reuse one Idempotency-Key for other content are
# rightly 422: the spec cannot say that a key is bound to its first request.
schema.config.checks.positive_data_acceptance.expected_statuses += ["422"]
# A conditional GET whose If-None-Match matches (any valid tag list may hold
# the current one, and "*" always does) is rightly 304 Not Modified.
schema.config.checks.positive_data_acceptance.expected_statuses += ["304"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    api = FeedApi(binary("feed-api"), str(tmp_path_factory.mktemp("contract")), args=["--log-level", "warn"])
    api.start()
    yield api
    api.stop()


schemathesis.checks.load_all_checks()  # the OpenAPI checks register lazily


def negative_data_rejection(ctx, response, case):
    """schemathesis' check less one false alarm: a query string carries no
    types, so a "string" that spells an integer (limit="2") is the same
    request as that integer, and serving it is right."""
    data = case.meta.phase.data if case.meta else None
    name = getattr(data, "parameter", None)
    location = getattr(getattr(data, "parameter_location", None), "value", None)
    value = (case.query or {}).get(name) if name and location == "query" else None
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
        return None
    return schemathesis.checks.negative_data_rejection(ctx, response, case)


def positive_data_acceptance(ctx, response, case):
    """schemathesis' check less one false alarm: a user_id is limited to 64
    bytes of UTF-8, which JSON Schema cannot say (its maxLength counts
    characters), so a valid-looking one over 64 bytes is rightly 400."""
    ids = [v.get("user_id") for v in (case.body, case.query) if isinstance(v, dict)]
    if any(isinstance(u, str) and len(u.encode("utf-8", "surrogatepass")) > 64 for u in ids):
        return None
    return schemathesis.checks.positive_data_acceptance(ctx, response, case)


CHECKS = [getattr(schemathesis.checks, name) for name in (
    "not_a_server_error", "status_code_conformance", "content_type_conformance", "response_headers_conformance",
    "response_schema_conformance")] + [positive_data_acceptance, negative_data_rejection]


@schema.exclude(path="/api/feed").parametrize()
@bounded
def test_every_response_matches_the_spec(case, server):
    case.call_and_validate(base_url=server.base, checks=CHECKS, timeout=10)


def test_an_empty_idempotency_key_is_rejected(server):
    # Issue 9: this was 202 with the key ignored; schemathesis found it too.
    r = requests.post(server.url("/api/messages"), json={"user_id": "contract", "content": "empty key"},
                      headers={"Idempotency-Key": ""}, timeout=10)
    assert r.status_code == 400, r.text
    assert isinstance(r.json()["error"], str)


feed_operation = schema["/api/feed"]["GET"]


def first_bytes(response, n=64):
    """Up to n bytes of a streaming body (an SSE stream never ends)."""
    got = b""
    for chunk in response.iter_content(chunk_size=1):
        got += chunk
        if len(got) >= n or got.endswith(b"\n\n"):
            break
    return got


@bounded
@given(case=st.one_of(feed_operation.as_strategy(), feed_operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)))
def test_the_feed_answers_as_the_spec_says(case, server):
    kwargs = case.as_transport_kwargs(base_url=server.base)
    with requests.request(**kwargs, stream=True, timeout=5) as r:
        documented = {200, 400}
        assert r.status_code in documented, f"{r.status_code} for {kwargs}: {r.text[:300]}"
        if r.status_code == 200:
            assert r.headers["Content-Type"] == "text/event-stream"
            assert r.headers["Cache-Control"] == "no-cache"
            head = first_bytes(r)
            assert head.startswith((b"retry:", b"id:", b":", b"event:", b"data:")), head
        else:
            assert r.headers["Content-Type"].startswith("application/json")
            body = r.json()
            assert isinstance(body, dict) and isinstance(body.get("error"), str), body
