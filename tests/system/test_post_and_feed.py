"""The message path end to end: post, store, stream; history; resume."""
import concurrent.futures
import time
import urllib.parse

import requests

from services.feed_api import wait_until
from services.sse import SseClient


def feed(api, query="", headers=None):
    return SseClient(api.url("/api/feed" + query), headers=headers)


def test_health(api):
    r = requests.get(api.url("/api/health"))
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_post_answers_202_with_the_id_and_streams_it_live(api, user):
    client = feed(api, "?history=0")
    assert client.status == 200
    assert client.headers["Content-Type"] == "text/event-stream"
    assert client.headers["Cache-Control"] == "no-cache"
    r = api.post(user, "hello, feed")
    assert r.status_code == 202
    body = r.json()
    assert body["status"] == "accepted"
    event = client.next()
    msg = event.message
    assert msg["id"] == body["id"]
    assert msg["user_id"] == user and msg["content"] == "hello, feed"
    assert set(msg) == {"id", "user_id", "content", "created_at"}
    assert msg["created_at"].endswith("Z") and "." in msg["created_at"]
    assert event.seq == 1
    client.close()


def test_a_202_means_it_is_durable(api, user):
    ids = [api.post(user, f"m{i}").json()["id"] for i in range(5)]
    if api.distributed:
        # 202 = acknowledged by Kafka (acks=all); the worker stores it next.
        wait_until(lambda: len(api.all_messages(user_id=user)) == 5, 20, what="the worker to store")
    # Embedded: no waiting at all, a 202 is sent only after the commit.
    stored = [m["id"] for m in api.all_messages(user_id=user)]
    assert stored == ids


def test_history_bounds(api, user):
    # History covers what this instance has streamed, so wait for the live
    # stream (with Kafka, a message is stored slightly before it is streamed).
    watcher = feed(api, "?history=0")
    for i in range(1, 106):
        assert api.post(user, f"message {i}").status_code == 202
    assert [e.seq for e in watcher.take(105)] == list(range(1, 106))
    watcher.close()
    default = feed(api)
    got = default.take(100)
    assert [e.message["content"] for e in got] == [f"message {i}" for i in range(6, 106)]
    assert default.quiet(0.3) == []
    two = feed(api, "?history=2")
    assert [e.seq for e in two.take(2)] == [104, 105]
    none = feed(api, "?history=0")
    everything = feed(api, "?history=all")
    assert [e.seq for e in everything.take(105)] == list(range(1, 106))
    assert none.quiet(0.3) == []
    # After history, live events follow with no gap.
    api.post(user, "live")
    for c in (default, two, none, everything):
        e = c.next()
        assert e.seq == 106 and e.message["content"] == "live"
        c.close()


def test_history_and_live_have_no_gap_or_duplicate_under_load(api, user):
    stop = time.monotonic() + 3
    posted = []

    def poster():
        s = requests.Session()
        i = 0
        while time.monotonic() < stop and i < 2000:
            r = api.post(user, f"p{i}", session=s)
            assert r.status_code == 202
            posted.append(r.json()["id"])
            i += 1

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(poster)]
        clients = []
        for _ in range(5):  # connect while posts stream in
            time.sleep(0.3)
            clients.append(feed(api, "?history=all"))
        for f in futures:
            f.result()
    total = len(posted)
    for c in clients:
        seqs = [e.seq for e in c.take(total, timeout=30)]
        assert seqs == list(range(1, total + 1))
        assert c.quiet(0.2) == []
        c.close()


def test_last_event_id_resumes_exactly_after_it(api, user):
    first = feed(api, "?history=0")
    for i in range(5):
        api.post(user, f"m{i}")
    seen = first.take(3)
    first.close()
    last = seen[-1].id
    for i in range(5, 8):
        api.post(user, f"m{i}")
    resumed = feed(api, headers={"Last-Event-ID": last})
    got = resumed.take(5)
    assert [e.message["content"] for e in got] == ["m3", "m4", "m5", "m6", "m7"]
    assert resumed.quiet(0.3) == []
    api.post(user, "m8")
    assert resumed.next().message["content"] == "m8"
    # ?since= does the same; Last-Event-ID wins when both are given.
    since = feed(api, "?since=6")
    assert [e.seq for e in since.take(3)] == [7, 8, 9]
    both = feed(api, "?since=1", headers={"Last-Event-ID": "8"})
    assert [e.seq for e in both.take(1)] == [9]
    assert both.quiet(0.3) == []
    for c in (resumed, since, both):
        c.close()


def test_resume_from_far_back_replays_from_the_store(make_api, user):
    # A ring of 16 events: resuming from seq 2 after 300 posts needs the store.
    api = make_api("--sse-ring-frames", "16")
    api.wait_stored([api.post(user, f"m{i}").json()["id"] for i in range(300)])
    c = feed(api, "?since=2")
    assert [e.seq for e in c.take(298)] == list(range(3, 301))
    api.post(user, "after")
    assert c.next().seq == 301
    c.close()


def test_user_filter(api, user):
    other = user + "x"
    c = feed(api, f"?history=0&user_id={user}")
    api.post(other, "not for you")
    api.post(user, "for you")
    assert c.next().message["content"] == "for you"
    hist = feed(api, f"?user_id={other}")
    assert [e.message["content"] for e in hist.take(1)] == ["not for you"]
    assert hist.quiet(0.2) == []
    c.close()
    hist.close()


def test_user_ids_the_reference_takes_post_stream_and_filter(api, user):
    """Any text without control characters is a user id, as in the reference:
    its README's load test posts as "user$i" (single quotes keep the $),
    and e-mail addresses and names with spaces or accents are common."""
    tag = user[-6:]
    ids = [f"user$i{tag}", f"alice+{tag}@example.com", f"Jos\u00e9 D\u00edaz {tag}", f"<b>&{tag}</b>"]
    for uid in ids:
        r = api.post(uid, f"hello from {uid}")
        assert r.status_code == 202, (uid, r.text)
    api.wait_stored([])
    for uid in ids:
        c = feed(api, "?" + urllib.parse.urlencode({"user_id": uid}))
        assert [(e.message["user_id"], e.message["content"]) for e in c.take(1)] == [(uid, f"hello from {uid}")]
        assert c.quiet(0.2) == []
        c.close()
        assert [m["content"] for m in api.all_messages(user_id=uid)] == [f"hello from {uid}"]


def test_four_hundred_concurrent_posts_each_appear_once_in_seq_order(api, user):
    watcher = feed(api, "?history=0")

    def post(i):
        return api.post(user, f"concurrent {i}", session=requests.Session())

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        responses = list(pool.map(post, range(400)))
    assert [r.status_code for r in responses] == [202] * 400
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 400
    events = watcher.take(400, timeout=30)
    assert [e.seq for e in events] == list(range(1, 401))
    assert {e.message["id"] for e in events} == ids
    assert watcher.quiet(0.3) == []
    stored = api.all_messages()
    assert [m["seq"] for m in stored] == list(range(1, 401))
    watcher.close()


def test_idempotency_key_gives_one_message(api, user):
    a = api.post(user, "once", headers={"Idempotency-Key": "key-1"})
    b = api.post(user, "once", headers={"Idempotency-Key": "key-1"})
    c = api.post(user + "z", "once", headers={"Idempotency-Key": "key-1"})
    assert a.status_code == b.status_code == c.status_code == 202
    assert a.json()["id"] == b.json()["id"] != c.json()["id"]
    # One author's messages keep their order, so once a later one is stored
    # the retry has been handled too.
    marker = api.post(user, "marker").json()["id"]
    api.wait_stored([marker])
    assert [m["content"] for m in api.all_messages(user_id=user)] == ["once", "marker"]


def test_list_messages_pages_newest_first(api, user):
    api.wait_stored([api.post(user, f"m{i}").json()["id"] for i in range(7)])
    page = api.messages(limit=3)
    assert [m["seq"] for m in page["messages"]] == [7, 6, 5]
    assert page["next_before"] == 5
    page = api.messages(limit=3, before=5)
    assert [m["seq"] for m in page["messages"]] == [4, 3, 2]
    page = api.messages(limit=3, before=2)
    assert [m["seq"] for m in page["messages"]] == [1]
    assert page["next_before"] is None
    assert api.messages(user_id="nobody")["messages"] == []


def test_an_authors_pages_end_with_a_null_cursor_on_the_last_page(api, user):
    # The author's first message is not seq 1, and their count is a
    # multiple of some limits: the last full page still has no cursor, so a
    # client pages exactly ceil(n / limit) times.
    ids = [api.post("someone-else", "first").json()["id"]]
    for i in range(4):
        ids.append(api.post(user, f"a{i}").json()["id"])
        ids.append(api.post("someone-else", f"b{i}").json()["id"])
    api.wait_stored(ids)
    for limit in (1, 2, 3, 4, 5):
        pages, seen, before = 0, [], None
        while True:
            params = {"limit": limit, "user_id": user, **({"before": before} if before else {})}
            page = api.messages(**params)
            pages += 1
            seen += [m["content"] for m in page["messages"]]
            before = page["next_before"]
            if before is None:
                break
            assert pages <= 4, f"limit {limit}: more pages than messages"
        assert seen == ["a3", "a2", "a1", "a0"], f"limit {limit}"
        assert pages == -(-4 // limit), f"limit {limit}: {pages} pages"


def test_heartbeat_comments_keep_idle_streams_alive(make_api):
    api = make_api("--heartbeat-interval", "1")
    c = feed(api, "?history=0")
    deadline = time.monotonic() + 5
    while c.comments < 3 and time.monotonic() < deadline:  # retry: + at least 2 heartbeats
        time.sleep(0.1)
    assert c.comments >= 3
    c.close()


def test_openapi_document_is_served(api):
    r = requests.get(api.url("/api/openapi.yaml"))
    assert r.status_code == 200
    assert r.text.startswith("openapi: 3")
    for path in ("/api/messages", "/api/feed", "/api/health", "/api/ready"):
        assert path + ":" in r.text


def test_metrics_count_what_happened(api, user):
    watcher = feed(api, "?history=0")
    api.post(user, "counted")
    requests.post(api.url("/api/messages"), data=b"{", headers={"Content-Type": "application/json"})
    watcher.next()
    text = requests.get(api.url("/metrics")).text
    values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line and not line.startswith("#")}
    assert values['feed_http_responses_total{class="4xx"}'] >= 1
    assert values['feed_http_responses_total{class="2xx"}'] >= 1
    assert values["feed_sse_subscribers"] == 1
    assert values["feed_last_seq"] == 1
    assert values["feed_sse_frames_sent_total"] >= 1
    watcher.close()


def test_content_cannot_forge_sse_events(api, user):
    watcher = feed(api, "?history=0")
    evil = 'x\n\ndata: {"id":"forged"}\n\nid: 999\n\n'
    assert api.post(user, evil).status_code == 202
    assert api.post(user, "a\r\n\r\ndata: x").status_code == 400  # CR is a control character
    assert api.post(user, "next").status_code == 202
    first, second = watcher.take(2)
    assert (first.seq, first.message["content"]) == (1, evil)
    assert (second.seq, second.message["content"]) == (2, "next")
    assert watcher.quiet(0.3) == []
    watcher.close()
