"""The web page at GET /, in a real browser: Debian's chromium, headless,
driven by Playwright (no browser download; scripts/install-deps.sh installs
both).

Each test starts its own embedded feed-api and opens pages in fresh browser
contexts. Waits are Playwright's (expect, wait_for) with bounded timeouts;
nothing sleeps to let something happen. The page's CSP forbids eval, so
conditions evaluated in the page are functions, never expression strings.
Screenshots go to $FEED_ARTIFACTS, or tests/system/artifacts.
"""
import contextlib
import os
import re
import sqlite3
import subprocess

import pytest
import requests
from playwright.sync_api import expect, sync_playwright

from services.feed_api import FeedApi, wait_until
from services.poster import post_concurrently

CHROMIUM = os.environ.get("FEED_CHROMIUM", "/usr/bin/chromium")
WEB_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "web")
ARTIFACTS = os.environ.get("FEED_ARTIFACTS") or os.path.join(os.path.dirname(__file__), "artifacts")
TIMEOUT_MS = 15_000
DOM_CAP = 500  # web/app.js

# The page talks to one server the same way whatever its backends are.
pytestmark = pytest.mark.parametrize("mode", ["embedded"], indirect=True)

expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: scripts/install-deps.sh installs Debian's chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


@pytest.fixture
def open_page(browser):
    """open_page(url, **context_options): a page in a context of its own (its
    own storage, as another browser would have). Uncaught script errors fail
    the test."""
    contexts, errors = [], []

    def open_(url, **options):
        context = browser.new_context(**options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda e: errors.append(e))
        page.goto(url)
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not errors, f"script errors on the page: {errors}"


def items(page):
    return page.locator("#messages > li")


def shown(page):
    """What the list shows, top to bottom: (seq, author, content)."""
    return [tuple(row) for row in items(page).evaluate_all(
        "els => els.map(e => [Number(e.dataset.seq), e.querySelector('.author').textContent,"
        " e.querySelector('.content').textContent])")]


def assert_newest_first_once(rows):
    seqs = [seq for seq, _, _ in rows]
    assert seqs == sorted(set(seqs), reverse=True), f"not each once, newest first: {seqs}"


def compose(page, user_id, text):
    page.fill("#user", user_id)
    page.fill("#text", text)
    page.click("#send")


def server_error(api, content, user="someone"):
    r = api.post(user, content)
    assert r.status_code >= 400, r.text
    return r.json()["error"]


def test_the_page_and_its_assets_are_cached_by_content_hash(make_api):
    api = make_api()
    page = requests.get(api.url("/"), timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Cache-Control"] == "no-cache"
    etag = page.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{16}"', etag)
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "connect-src 'self'" in csp

    # A revalidation costs a 304 and no body, also as a weak tag or in a list.
    for tag in (etag, "W/" + etag, '"other", ' + etag, "*"):
        r = requests.get(api.url("/"), headers={"If-None-Match": tag}, timeout=10)
        assert r.status_code == 304 and r.content == b"" and r.headers["ETag"] == etag, tag
    assert requests.get(api.url("/"), headers={"If-None-Match": '"other"'}, timeout=10).status_code == 200
    head = requests.head(api.url("/"), timeout=10)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(page.content)

    # The page names its script and styles by hash; those never change.
    names = re.findall(r'"/(app\.[0-9a-f]{16}\.js|style\.[0-9a-f]{16}\.css)"', page.text)
    assert sorted(n.split(".")[0] for n in names) == ["app", "style"], names
    for name in names:
        r = requests.get(api.url("/" + name), timeout=10)
        assert r.status_code == 200, name
        assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert r.headers["ETag"] == '"%s"' % name.split(".")[1]
        # Embedded byte for byte.
        with open(os.path.join(WEB_DIR, name.split(".")[0] + "." + name.split(".")[2]), "rb") as f:
            assert r.content == f.read(), name
        assert requests.get(api.url("/" + name), headers={"If-None-Match": r.headers["ETag"]},
                            timeout=10).status_code == 304
    assert requests.get(api.url("/app.js"), timeout=10).status_code == 404


def test_a_post_from_the_form_shows_in_two_open_pages(make_api, open_page, user):
    api = make_api()
    first, second = open_page(api.base), open_page(api.base)

    # The counter counts code points, as the server does: one emoji is one.
    first.fill("#text", "h\u00e9llo \U0001F600")
    expect(first.locator("#counter")).to_have_text("7 / 280")
    first.fill("#text", "x" * 281)
    expect(first.locator("#counter")).to_have_text("281 / 280")
    expect(first.locator("#counter")).to_have_class(re.compile(r"\bover\b"))

    compose(first, user, "hello from the form")
    expect(first.locator("#post-status")).to_have_text("Posted.")
    expect(first.locator("#text")).to_have_value("")
    for page in (first, second):
        expect(items(page)).to_have_count(1)
        expect(items(page).first.locator(".content")).to_have_text("hello from the form")
        expect(items(page).first.locator(".author")).to_have_text(user)
        expect(items(page).first.locator("time")).to_have_text(re.compile(r"\S"))

    # The keyboard alone: Ctrl+Enter posts from the text box.
    first.focus("#text")
    first.keyboard.type("typed, then Ctrl+Enter")
    first.keyboard.press("Control+Enter")
    for page in (first, second):
        expect(items(page).first.locator(".content")).to_have_text("typed, then Ctrl+Enter")
        assert_newest_first_once(shown(page))
    assert [m["content"] for m in api.all_messages()] == ["hello from the form", "typed, then Ctrl+Enter"]


def test_a_post_made_with_curl_shows_up(make_api, open_page, user):
    api = make_api()
    page = open_page(api.base)
    subprocess.run(["curl", "-fsS", "-X", "POST", api.url("/api/messages"), "-H", "Content-Type: application/json",
                    "-d", '{"user_id": "%s", "content": "sent with curl"}' % user],
                   check=True, capture_output=True, timeout=30)
    expect(items(page)).to_have_count(1)
    expect(items(page).first.locator(".content")).to_have_text("sent with curl")


def test_a_refused_post_shows_the_servers_error(make_api, open_page, tmp_path, user):
    data = tmp_path / "d"
    api = make_api("--publish-timeout-ms", "300", data_dir=data)
    page = open_page(api.base)
    status = page.locator("#post-status")

    # An empty box is not sent: Post is disabled, and Ctrl+Enter does nothing.
    page.fill("#user", user)
    page.fill("#text", "")
    expect(page.locator("#send")).to_be_disabled()
    page.press("#text", "Control+Enter")
    expect(status).to_be_hidden()
    # 400: blank, and one character over the limit.
    compose(page, user, "   ")
    expect(status).to_have_text(server_error(api, "   ") + " (400)")
    expect(status).to_have_attribute("data-kind", "error")
    compose(page, user, "y" * 281)
    expect(status).to_have_text(server_error(api, "y" * 281) + " (400)")
    # 400 for a user id the server does not take: 33 characters, 66 bytes.
    page.fill("#user", "\u00e9" * 33)
    page.fill("#text", "fine text")
    page.click("#send")
    expect(status).to_have_text(server_error(api, "fine text", user="\u00e9" * 33) + " (400)")

    # 413: a body over 16 KiB (the server answers before reading it all).
    compose(page, user, "z" * 17_000)
    expect(status).to_have_text(server_error(api, "z" * 17_000) + " (413)")

    # 503: another process holds SQLite's write lock, so the post is not
    # confirmed within --publish-timeout-ms; the answer names Retry-After.
    db = sqlite3.connect(os.path.join(data, "feed.db"), isolation_level=None, timeout=1)
    db.execute("BEGIN IMMEDIATE")
    try:
        compose(page, user, "while the store is stuck")
        expect(status).to_have_text(re.compile(
            r"(the message was not stored|the outcome is unknown).* \(503; retry after 1 s\)$"))
    finally:
        db.execute("ROLLBACK")
        db.close()

    # Posting works again once the store does.
    wait_until(lambda: requests.get(api.url("/api/ready"), timeout=5).status_code == 200, 15, what="ready again")
    compose(page, user, "after the refusals")
    expect(status).to_have_text("Posted.")
    expect(page.locator("#messages .content", has_text="after the refusals")).to_have_count(1)


def test_after_a_restart_the_page_resumes_and_shows_each_missed_message_once(make_api, open_page, user):
    api = make_api()
    for i in range(3):
        assert api.post(user, f"before {i}").status_code == 202
    page = open_page(api.base)
    expect(items(page)).to_have_count(3)
    feed_requests = []
    page.on("request", lambda r: feed_requests.append(r) if "/api/feed" in r.url else None)

    api.stop()
    expect(page.locator("#conn")).to_have_attribute("data-state", re.compile("reconnecting|offline"))

    # Back on the same port and data; the page is held off until the posts
    # are in, so that every one of them is missed, not received live.
    page.route("**/api/feed**", lambda route: route.abort())
    api.start()
    for i in range(5):
        assert api.post(user, f"missed {i}").status_code == 202
    expect(page.locator("#conn")).not_to_have_attribute("data-state", "live")
    expect(items(page)).to_have_count(3)
    page.unroute("**/api/feed**")

    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(items(page)).to_have_count(8)
    rows = shown(page)
    assert [c for _, _, c in rows] == [f"missed {i}" for i in reversed(range(5))] + [
        f"before {i}" for i in reversed(range(3))]
    assert_newest_first_once(rows)
    # It resumed after what it had (Last-Event-ID: 3), not from scratch.
    resumed = feed_requests[-1].all_headers()
    assert resumed.get("last-event-id") == "3", resumed
    expect(page.locator("#messages > li.missed")).to_have_count(5)
    expect(page.locator("#notice")).to_contain_text("5 messages posted while the connection was down")

    # Once more, with posts racing the reconnect: still each once, in order.
    api.stop()
    expect(page.locator("#conn")).to_have_attribute("data-state", re.compile("reconnecting|offline"))
    api.start()
    for i in range(3):
        assert api.post(user, f"after {i}").status_code == 202
    expect(items(page)).to_have_count(11)
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    rows = shown(page)
    assert_newest_first_once(rows)
    assert [c for _, _, c in rows] == [m["content"] for m in reversed(api.all_messages())]


def test_offline_and_the_pages_own_retries(make_api, open_page, user):
    api = make_api()
    page = open_page(api.base)
    conn = page.locator("#conn")

    # The browser says it is offline.
    page.context.set_offline(True)
    expect(conn).to_have_attribute("data-state", "offline")
    expect(page.locator("#conn-text")).to_have_text("offline")
    page.context.set_offline(False)
    expect(conn).to_have_attribute("data-state", "live")

    # The server answers the stream with a 503: EventSource gives up
    # (CLOSED), so the page retries by itself, showing "reconnecting" (the
    # browser is online), resuming with ?since= where the browser would
    # have sent Last-Event-ID.
    assert api.post(user, "seen").status_code == 202
    expect(items(page)).to_have_count(1)
    feed_urls = []
    page.on("request", lambda r: feed_urls.append(r.url) if "/api/feed" in r.url else None)
    refused = []

    def refuse(route):
        refused.append(route.request.url)
        route.fulfill(status=503, content_type="application/json", headers={"Retry-After": "1"},
                      body='{"error": "too many open connections; retry later"}')

    page.route("**/api/feed**", refuse)
    api.stop()
    api.start()
    # Refused twice: the browser's own reconnect, then one of the page's.
    for _ in range(200):  # Playwright runs the route handler only while called
        if len(refused) >= 2:
            break
        page.wait_for_timeout(100)
    assert refused[1].endswith("/api/feed?since=1"), refused
    expect(conn).to_have_attribute("data-state", "reconnecting")
    expect(page.locator("#conn-text")).to_have_text("reconnecting")
    for i in range(2):
        assert api.post(user, f"while offline {i}").status_code == 202
    page.unroute("**/api/feed**")
    expect(conn).to_have_attribute("data-state", "live")
    expect(items(page)).to_have_count(3)
    assert [c for _, _, c in shown(page)] == ["while offline 1", "while offline 0", "seen"]
    assert feed_urls[-1].endswith("/api/feed?since=1"), feed_urls


@contextlib.contextmanager
def page_moved_to_another_database(make_api, feed_binary, open_page, tmp_path, user, seen, stored_there):
    """A page that saw `seen` messages, then the same address served from
    another database holding `stored_there`; yields (page, the new server)."""
    api = make_api()
    for i in range(seen):
        assert api.post(user, f"database A {i}").status_code == 202
    page = open_page(api.base)
    expect(items(page)).to_have_count(seen)
    api.stop()
    other = FeedApi(feed_binary, str(tmp_path / "other"), args=["--log-level", "info"], port=api.port)
    try:
        other.start()
        for i in range(stored_there):
            assert other.post(user, f"database B {i}").status_code == 202
        yield page, other
    finally:
        other.stop()


def test_a_server_without_the_pages_messages_starts_the_page_over(make_api, feed_binary, open_page, tmp_path, user):
    # An empty database: the page's Last-Event-ID (3) is ahead of everything
    # there, the server says "reset", and the page shows the new feed from
    # its start.
    with page_moved_to_another_database(make_api, feed_binary, open_page, tmp_path, user, 3, 1) as (page, other):
        expect(items(page)).to_have_count(1)
        expect(items(page).first.locator(".content")).to_have_text("database B 0")
        expect(page.locator("#notice")).to_contain_text("started over")
        assert other.post(user, "and live").status_code == 202
        expect(items(page)).to_have_count(2)
        assert [c for _, _, c in shown(page)] == ["and live", "database B 0"]


def test_a_server_on_another_database_with_more_messages_starts_the_page_over(make_api, feed_binary, open_page,
                                                                                tmp_path, user):
    """The page resumes after its last seq. A server on another database
    that holds that seq (for another message) must not have its later
    messages shown as if they followed, nor its older ones as missed."""
    with page_moved_to_another_database(make_api, feed_binary, open_page, tmp_path, user, 5, 20) as (page, other):
        expect(page.locator("#notice")).to_contain_text("not the one this page showed")
        expect(items(page)).to_have_count(20)
        assert [c for _, _, c in shown(page)] == [f"database B {i}" for i in reversed(range(20))]
        expect(page.locator("#messages > li.missed")).to_have_count(0)
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        assert other.post(user, "live on B").status_code == 202
        expect(items(page)).to_have_count(21)


def test_missed_messages_are_told_by_seq_not_by_the_browsers_clock(make_api, open_page, user):
    """A browser clock two minutes ahead: messages posted after the stream
    came back are live, not missed."""
    api = make_api()
    assert api.post(user, "before").status_code == 202
    page = open_page(api.base)
    page.context.add_init_script("(() => { const now = Date.now; Date.now = () => now() + 120000; })()")
    page.reload()
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(items(page)).to_have_count(1)
    api.stop()
    expect(page.locator("#conn")).to_have_attribute("data-state", re.compile("reconnecting|offline"))
    api.start()
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    page.wait_for_timeout(500)  # the page's check on reconnecting is answered
    for i in range(3):
        assert api.post(user, f"after {i}").status_code == 202
    expect(items(page)).to_have_count(4)
    expect(page.locator("#messages > li.missed")).to_have_count(0)
    expect(page.locator("#notice")).not_to_contain_text("while the connection was down")


def test_text_typed_while_a_post_is_on_its_way_is_kept(make_api, open_page, user):
    api = make_api()
    page = open_page(api.base)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions",
             {"offline": False, "latency": 1500, "downloadThroughput": -1, "uploadThroughput": -1})
    compose(page, user, "first message")
    expect(page.locator("#post-status")).to_have_text("Posting…")
    page.type("#text", " and more")
    expect(page.locator("#post-status")).to_have_text("Posted.")
    expect(page.locator("#text")).to_have_value("first message and more")
    assert [m["content"] for m in api.all_messages()] == ["first message"]
    expect(page.locator("#send")).to_be_enabled()


def test_the_page_asks_for_its_history_whatever_the_servers_default(make_api, open_page, user):
    api = make_api("--history", "0")
    for i in range(3):
        assert api.post(user, f"stored {i}").status_code == 202
    page = open_page(api.base)
    expect(items(page)).to_have_count(3)
    expect(page.locator("#empty")).to_be_hidden()


def test_a_hidden_tab_gives_its_stream_up_and_resumes_when_shown(make_api, open_page, user):
    """Six tabs each holding a stream used up the browser's six connections
    to the server, and no tab could post. A tab hidden for 3 s closes its
    stream; shown again, it resumes where it was, highlighting what came."""
    api = make_api()
    assert api.post(user, "seen").status_code == 202
    page = open_page(api.base)
    expect(items(page)).to_have_count(1)

    def set_visibility(state):
        page.evaluate("""state => {
            Object.defineProperty(document, 'visibilityState', {value: state, configurable: true});
            Object.defineProperty(document, 'hidden', {value: state === 'hidden', configurable: true});
            document.dispatchEvent(new Event('visibilitychange'));
        }""", state)

    def streams():
        return requests.get(api.url("/metrics"), timeout=5).text

    set_visibility("hidden")
    expect(page.locator("#conn")).to_have_attribute("data-state", "paused", timeout=6000)
    wait_until(lambda: re.search(r"^feed_sse_subscribers(\{[^}]*\})? 0(\.0)?$", streams(), re.M), 10,
               what="the stream closed")
    for i in range(2):
        assert api.post(user, f"while hidden {i}").status_code == 202
    set_visibility("visible")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(items(page)).to_have_count(3)
    assert [c for _, _, c in shown(page)] == ["while hidden 1", "while hidden 0", "seen"]
    expect(page.locator("#messages > li.missed")).to_have_count(2)

    # Shown again within 3 s, it keeps its stream.
    set_visibility("hidden")
    page.wait_for_timeout(1000)
    set_visibility("visible")
    page.wait_for_timeout(2500)
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")


def test_an_author_id_with_a_right_to_left_override_stays_inside_its_name(make_api, open_page):
    api = make_api()
    evil = "\u202eevil"
    assert api.post(evil, "hello").status_code == 202
    page = open_page(api.base + "/?user=" + requests.utils.quote(evil))
    expect(items(page)).to_have_count(1)
    assert page.locator(".author").first.evaluate("e => getComputedStyle(e).unicodeBidi") == "isolate"
    assert page.locator("#filter-user").evaluate("e => getComputedStyle(e).unicodeBidi") == "isolate"
    assert page.title() == "\u2068" + evil + "\u2069 · feed"


XSS = [
    '<img src=x onerror="window.__xss = 1; alert(1)">',
    '</script><script>window.__xss = 2; alert(2)</script>',
    '<svg onload="window.__xss = 3"></svg><b>not bold</b> &amp; &lt;',
]


def test_markup_in_messages_is_shown_as_text_and_runs_nothing(make_api, open_page, user):
    api = make_api()
    # Each way a message reaches the page: the first through "older"
    # (GET /api/messages), behind 100 others that arrive as the feed's
    # history, and the rest live.
    assert api.post(user, XSS[0]).status_code == 202
    post_concurrently(api.port, user, 100, tag="filler")
    page = open_page(api.base)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    expect(items(page)).to_have_count(100)
    for content in XSS[1:]:
        assert api.post(user, content).status_code == 202
    page.click("#older")
    expect(items(page)).to_have_count(100 + len(XSS))

    assert [c for _, _, c in shown(page) if not c.startswith("filler")] == list(reversed(XSS))
    assert page.locator("#messages img, #messages script, #messages svg, #messages b").count() == 0
    assert page.evaluate("() => window.__xss") is None
    assert dialogs == []
    # Even markup forced into the page could not run: Trusted Types refuse
    # HTML strings outright.
    forced = page.evaluate("""() => {
        try { document.body.insertAdjacentHTML('beforeend', '<img src=x onerror="window.__xss = 9">'); }
        catch (e) { return e.name; }
        return 'inserted';
    }""")
    assert forced == "TypeError"
    assert page.evaluate("() => window.__xss") is None


def test_the_author_filter_and_older_pages(make_api, open_page, user):
    api = make_api()
    alpha, beta = user + "_alpha", user + "_beta"
    session = requests.Session()
    for i in range(135):
        assert api.post(beta if i % 27 == 0 else alpha, f"message {i}", session=session).status_code == 202
    page = open_page(api.base)

    # The feed's history is the newest 100; "older" pages back to the first.
    expect(items(page)).to_have_count(100)
    expect(items(page).first).to_have_attribute("data-seq", "135")
    page.click("#older")
    expect(items(page)).to_have_count(135)
    expect(page.locator("#older")).to_have_text("No older messages")
    expect(page.locator("#older")).to_be_disabled()
    assert [seq for seq, _, _ in shown(page)] == list(range(135, 0, -1))

    # Clicking an author shows only theirs, and the address says so.
    page.locator("#messages .author", has_text=beta).first.click()
    expect(page).to_have_url(re.compile(r"[?&]user=" + beta + "$"))
    expect(page.locator("#filter")).to_be_visible()
    expect(page.locator("#filter-user")).to_have_text(beta)
    expect(items(page)).to_have_count(5)
    assert {a for _, a, _ in shown(page)} == {beta}
    # Live messages are filtered too: alpha's is sent first, so had it come
    # through it would be on the page by the time beta's is.
    assert api.post(alpha, "not for this view").status_code == 202
    assert api.post(beta, "for this view").status_code == 202
    expect(items(page).first.locator(".content")).to_have_text("for this view")
    expect(items(page)).to_have_count(6)
    page.click("#older")
    expect(page.locator("#older")).to_have_text("No older messages")
    expect(items(page)).to_have_count(6)

    # Back shows everyone again; the address alone opens the filtered view.
    page.go_back()
    expect(page).to_have_url(api.base + "/")
    expect(page.locator("#filter")).to_be_hidden()
    expect(items(page)).to_have_count(100)
    expect(items(page).first.locator(".content")).to_have_text("for this view")
    direct = open_page(api.url(f"/?user={beta}"))
    expect(items(direct)).to_have_count(6)
    assert {a for _, a, _ in shown(direct)} == {beta}

    # The keyboard alone: Tab to an author, Enter filters.
    direct.locator("#clear-filter").focus()
    direct.keyboard.press("Enter")
    expect(direct).to_have_url(api.base + "/")
    expect(items(direct)).to_have_count(100)
    direct.locator("#messages .author", has_text=alpha).first.focus()
    direct.keyboard.press("Enter")
    expect(direct).to_have_url(re.compile(r"[?&]user=" + alpha + "$"))
    expect(direct.locator("#messages .author", has_text=beta)).to_have_count(0)


def test_ten_thousand_messages_keep_the_page_capped_and_responsive(make_api, open_page, user):
    api = make_api()
    page = open_page(api.base)
    post_concurrently(api.port, user, 10_000, connections=16, tag="burst", timeout=90)
    newest = api.messages(limit=1)["messages"][0]["seq"]
    expect(items(page).first).to_have_attribute("data-seq", str(newest), timeout=60_000)

    # Only the newest DOM_CAP are on the page, in order, each once.
    expect(items(page)).to_have_count(DOM_CAP)
    assert [seq for seq, _, _ in shown(page)] == list(range(newest, newest - DOM_CAP, -1))
    # Still quick to answer the keyboard.
    page.fill("#text", "")
    page.focus("#text")
    page.keyboard.type("still responsive")
    expect(page.locator("#counter")).to_have_text("16 / 280", timeout=2000)

    # "Older" brings back what was dropped; the page stays capped by letting
    # the newest go, and one click brings those back.
    page.click("#older")
    expect(items(page).last).to_have_attribute("data-seq", str(newest - DOM_CAP - 49))
    expect(items(page)).to_have_count(DOM_CAP)
    expect(page.locator("#newer")).to_be_visible()
    assert api.post(user, "while reading older ones").status_code == 202
    expect(page.locator("#newer")).to_have_text(re.compile(r"\(1 new\)"))
    page.click("#newer")
    expect(items(page).first.locator(".content")).to_have_text("while reading older ones")
    expect(page.locator("#newer")).to_be_hidden()
    assert_newest_first_once(shown(page))


def test_screenshots(make_api, open_page):
    """Desktop and phone screenshots for the README and the CI artifacts."""
    api = make_api()
    for user_id, content in [
        ("ada", "Shipped the new feed page: history, then live, straight from feed-api."),
        ("grace", "Resumed after a restart and nothing showed twice. Nice."),
        ("linus", "<b>markup</b> stays text"),
        ("ada", "Filter by author: click a name, and the address follows."),
    ]:
        assert api.post(user_id, content).status_code == 202
    os.makedirs(ARTIFACTS, exist_ok=True)
    desktop = open_page(api.base, viewport={"width": 1280, "height": 800})
    expect(items(desktop)).to_have_count(4)
    compose(desktop, "grace", "Posted from the page itself.")
    expect(items(desktop)).to_have_count(5)
    desktop.fill("#text", "Counting code points as I type")
    desktop.screenshot(path=os.path.join(ARTIFACTS, "page-desktop.png"))

    phone = open_page(api.base, viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                      has_touch=True)
    expect(items(phone)).to_have_count(5)
    # Nothing sticks out sideways on a narrow screen.
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390
    phone.screenshot(path=os.path.join(ARTIFACTS, "page-phone.png"))
