"""HTTP/1.1 framing and semantics over raw sockets: message framing
(RFC 9112 §6), Host and request-target forms (§3.2), HEAD and OPTIONS
(RFC 9110 §9.3), error bodies that are always UTF-8 JSON, and errors that
reach clients still sending their request."""
import http.client
import json
import os
import re
import socket
import time
import uuid

import pytest
import requests
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from services.feed_api import wait_until
from services.sse import SseClient

BODY = b'{"user_id":"smuggler","content":"should never be stored"}'


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        values = self.headers.get(name.lower(), [])
        assert len(values) <= 1, f"{name} sent {len(values)} times"
        return values[0] if values else None

    def json(self):
        return json.loads(self.body.decode("utf-8", errors="strict"))


class Conn:
    """One raw connection; reads responses framed by Content-Length."""

    def __init__(self, port, timeout=5):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)
        return self

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError(f"connection closed; unparsed: {self.buf[:200]!r}")
        self.buf += chunk

    def response(self, head=False):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        raw, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, value = line.split(b":", 1)
            headers.setdefault(name.decode().lower(), []).append(value.strip().decode("latin-1"))
        length = 0 if head or status in (204, 304) else int(headers.get("content-length", ["0"])[0])
        while len(self.buf) < length:
            self._fill()
        body, self.buf = self.buf[:length], self.buf[length:]
        return Response(status, headers, body)

    def closed_with_nothing_more(self):
        """True when the server closes the connection after what was read."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return self.buf == b""
                self.buf += chunk
        except socket.timeout:
            return False
        except ConnectionResetError:
            return self.buf == b""


def exchange(port, data, head=False):
    with Conn(port) as c:
        return c.send(data).response(head=head)


def send_in_pieces(conn, wire, rng, pieces):
    """`wire` in up to `pieces` writes cut at random, 2 ms apart; a server
    that refuses early may close before the rest is sent."""
    cuts = sorted(rng.sample(range(1, len(wire)), min(pieces - 1, len(wire) - 1)))
    try:
        for a, b in zip([0] + cuts, cuts + [len(wire)]):
            conn.sock.sendall(wire[a:b])
            time.sleep(0.002)
    except (BrokenPipeError, ConnectionResetError):
        pass


def smuggled_post(port):
    return (f"POST /api/messages HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(BODY)}\r\n\r\n").encode() + BODY


# --- message framing (RFC 9112 §6) ---

@pytest.mark.parametrize("coding,expected", [
    ("identity", 400), ("chunked, identity", 400), ("gzip", 400), ("xchunked", 400), ("chunked, chunked", 400),
    ("gzip, chunked", 501), ("", 400),
])
def test_transfer_encoding_not_ending_in_chunked_is_refused_and_closes(api, coding, expected):
    # Ignoring the field would read the smuggled request as the next one.
    head = (f"POST /api/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Transfer-Encoding: {coding}\r\n\r\n").encode()
    with Conn(api.port) as c:
        r = c.send(head + smuggled_post(api.port)).response()
        assert r.status == expected, r.body
        assert "Transfer-Encoding" in r.json()["error"]
        assert r.header("Connection") == "close"
        assert c.closed_with_nothing_more()
    api.assert_nothing_stored()


@pytest.mark.parametrize("fields", [
    "Transfer-Encoding: identity\r\nContent-Length: {n}\r\n",
    "Transfer-Encoding: chunked\r\nContent-Length: {n}\r\n",
    "Content-Length: {n}\r\nTransfer-Encoding: chunked\r\n",
])
def test_transfer_encoding_with_content_length_is_400_and_closes(api, fields):
    chunked = f"{len(BODY):x}\r\n".encode() + BODY + b"\r\n0\r\n\r\n"
    head = ("POST /api/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + fields.format(n=len(BODY)) + "\r\n").encode()
    with Conn(api.port) as c:
        r = c.send(head + (chunked if "identity" not in fields else BODY)).response()
        assert r.status == 400 and r.header("Connection") == "close"
        assert c.closed_with_nothing_more()
    api.assert_nothing_stored()


def test_http10_with_transfer_encoding_is_400_and_closes(api):
    chunked = f"{len(BODY):x}\r\n".encode() + BODY + b"\r\n0\r\n\r\n"
    head = b"POST /api/messages HTTP/1.0\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    with Conn(api.port) as c:
        r = c.send(head + chunked).response()
        assert r.status == 400 and "Transfer-Encoding" in r.json()["error"]
        assert c.closed_with_nothing_more()
    api.assert_nothing_stored()


def test_chunked_post_still_works(api, user):
    body = json.dumps({"user_id": user, "content": "chunked"}).encode()
    head = b"POST /api/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    r = exchange(api.port, head + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
    assert r.status == 202, r.body


CHUNKED_HEAD = (b"POST /api/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")


def test_a_body_in_one_byte_chunks_is_accepted(api, user):
    body = json.dumps({"user_id": user, "content": "x" * 280}).encode()
    chunks = b"".join(b"1\r\n" + bytes([c]) + b"\r\n" for c in body)
    r = exchange(api.port, CHUNKED_HEAD + chunks + b"0\r\n\r\n")
    assert r.status == 202, r.body


def chunked_post(body, head_fields=b"", trailer=b""):
    return (b"POST /api/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + head_fields +
            b"Transfer-Encoding: chunked\r\n\r\n" + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n" +
            trailer + b"\r\n")


# RFC 9110 §6.5.1: a trailer field MUST NOT be merged into the header
# section unless its definition allows it; none of the fields read here
# does. Each was acted on when it came in a trailer (a key applied, a 415);
# now trailers are dropped.
@pytest.mark.parametrize("trailer", [
    b"Idempotency-Key: trailer-key\r\n", b"Content-Encoding: gzip\r\n", b"Content-Type: text/plain\r\n",
    b"Content-Type: text/plain\r\nX-Other: y\r\nIdempotency-Key: trailer-key\r\n"])
def test_trailer_fields_are_not_read_as_header_fields(api, user, trailer):
    body = json.dumps({"user_id": user, "content": "a trailer came"}).encode()
    r = exchange(api.port, chunked_post(body, trailer=trailer))
    assert r.status == 202, r.body
    assert uuid.UUID(r.json()["id"]).version == 7, "an Idempotency-Key from the trailer was applied"
    # Nothing of the trailer is remembered for this user's next keyed post.
    again = api.post(user, "other content", headers={"Idempotency-Key": "trailer-key"})
    assert again.status_code == 202, again.text


TRAILER_NAMES = ["Idempotency-Key", "Content-Type", "Content-Encoding", "Last-Event-ID", "Host", "Connection",
                 "Expect", "X-Other"]


@settings(max_examples=int(os.environ.get("FEED_PROPERTY_EXAMPLES", "25")), deadline=None, database=None,
          derandomize=not os.environ.get("FEED_PROPERTY_SEED"), suppress_health_check=list(HealthCheck))
@given(trailer=st.lists(st.tuples(st.sampled_from(TRAILER_NAMES), st.booleans(),
                                  st.text(alphabet="abcdefxyz019-_.", max_size=20)), max_size=5),
       head_key=st.booleans())
def test_generated_trailers_change_nothing_about_the_request(api, trailer, head_key):
    # Any trailer fields, named like fields the server reads, in any case,
    # repeated or not, with or without the same field in the head, with
    # token values (a malformed Connection list is 400 wherever it is, as
    # Beast checks it while parsing): the post
    # is answered as its head alone says, and a request pipelined after it
    # on the same connection is served.
    user = f"tr{uuid.uuid4().hex[:12]}"
    body = json.dumps({"user_id": user, "content": "generated trailer"}).encode()
    key = f"head-{uuid.uuid4().hex[:8]}"
    fields = b"".join((name.lower() if lower else name).encode() + b": " + value.strip().encode() + b"\r\n"
                      for name, lower, value in trailer)
    head = f"Idempotency-Key: {key}\r\n".encode() if head_key else b""
    with Conn(api.port) as c:
        r = c.send(chunked_post(body, head_fields=head, trailer=fields) +
                   b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n").response()
        assert r.status == 202, (fields, r.body)
        assert c.response().status == 200
    version = uuid.UUID(r.json()["id"]).version
    assert version == (5 if head_key else 7), "a trailer changed how the id was made"
    if head_key:  # the head's key, and only it, names the message
        again = api.post(user, "generated trailer", headers={"Idempotency-Key": key})
        assert again.status_code == 202 and again.json()["id"] == r.json()["id"]


@pytest.mark.parametrize("field", [b"Content-Length: 999", b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip"])
def test_a_framing_field_in_a_trailer_is_400_and_nothing_is_stored(api, user, field):
    # A framing field where no sender may put one (RFC 9110 §6.5.1): the
    # parser refuses the message rather than guess which framing was meant.
    body = json.dumps({"user_id": user, "content": "framing in a trailer"}).encode()
    with Conn(api.port) as c:
        r = c.send(chunked_post(body, trailer=field + b"\r\n")).response()
        assert r.status == 400 and field.split(b":")[0].decode() in r.json()["error"]
        assert c.closed_with_nothing_more()
    assert api.messages(user_id=user)["messages"] == []


def test_a_field_in_both_head_and_trailer_is_the_heads_alone(api, user):
    # Beast files a field beside an earlier one of the same name, so the
    # trailer's copy sits among the head's fields: it is dropped all the
    # same, and no "given twice" 400 follows.
    body = json.dumps({"user_id": user, "content": "head key wins"}).encode()
    first = exchange(api.port, chunked_post(body, head_fields=b"Idempotency-Key: head-key\r\n",
                                            trailer=b"Idempotency-Key: trailer-key\r\n"))
    assert first.status == 202, first.body
    same = api.post(user, "head key wins", headers={"Idempotency-Key": "head-key"})
    assert same.status_code == 202 and same.json()["id"] == first.json()["id"]
    other = api.post(user, "other content", headers={"Idempotency-Key": "trailer-key"})
    assert other.status_code == 202, other.text


def test_a_last_event_id_in_a_trailer_does_not_move_the_streams_start(api, user):
    ids = []
    for i in range(3):
        r = api.post(user, f"before {i}")
        assert r.status_code == 202
        ids.append(r.json()["id"])
    # With Kafka a 202 comes before the store, and the events reach the
    # broadcaster after that: the stream would see them as live events.
    stored = api.wait_stored(ids)
    newest = max(m["seq"] for m in stored)
    wait_until(lambda: int(re.search(r"^feed_last_seq (\d+)", requests.get(api.url("/metrics")).text,
                                     re.M).group(1)) >= newest, 30, what="the broadcaster to have them")
    with Conn(api.port, timeout=3) as c:
        c.send(b"GET /api/feed?history=0 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"0\r\nLast-Event-ID: 0\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += c.sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200"), head
        got = head.split(b"\r\n\r\n", 1)[1]
        deadline = time.monotonic() + 1.5
        c.sock.settimeout(0.2)
        while time.monotonic() < deadline:
            try:
                more = c.sock.recv(65536)
            except socket.timeout:
                continue
            if not more:
                break
            got += more
        assert b"data:" not in got, "the trailer's Last-Event-ID replayed history"


# Beast bounds a chunked body's data, not its framing: a chunk extension or a
# trailer of any length was read whole (a 5 MB extension was accepted), and
# a trailer field over 64 KiB ended the connection without a status (an
# older build aborted the process on it). Each now gets a status, and the
# server goes on serving.
@pytest.mark.parametrize("framing,expected", [
    ("extension", 413), ("trailer", 413), ("trailer_field", 431)])
def test_oversized_chunk_framing_gets_a_status_and_is_not_stored(api, user, framing, expected):
    body = json.dumps({"user_id": user, "content": framing}).encode()
    size = f"{len(body):x}".encode()
    if framing == "extension":
        data = CHUNKED_HEAD + size + b";x=" + b"a" * 1_000_000 + b"\r\n" + body + b"\r\n0\r\n\r\n"
    elif framing == "trailer":
        data = CHUNKED_HEAD + size + b"\r\n" + body + b"\r\n0\r\n" + b"X-T: " + b"a" * 1_000_000 + b"\r\n\r\n"
    else:  # one field just over what Beast holds, within the read buffer
        data = CHUNKED_HEAD + size + b"\r\n" + body + b"\r\n0\r\n" + b"X-T: " + b"a" * 70_000 + b"\r\n\r\n"
    with Conn(api.port) as c:
        try:
            c.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the answer came, and the server stopped reading
        r = c.response()
    assert r.status == expected, r.body
    assert api.messages(user_id=user)["messages"] == []
    assert exchange(api.port, b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n").status == 200


def chunked_with_framing(body, total):
    """`body` in three chunks whose extensions pad the bytes after the head
    (sizes, extensions, data, CRLFs, the last chunk) to exactly `total`."""
    parts = [body[:10], body[10:20], body[20:]]

    def wire(pads):
        return b"".join(f"{len(p):x}".encode() + b";x=" + b"a" * k + b"\r\n" + p + b"\r\n"
                        for p, k in zip(parts, pads)) + b"0\r\n\r\n"
    pads = [45_000, 45_000, 0]
    pads[2] = total - len(wire(pads))
    data = wire(pads)
    assert len(data) == total and pads[2] > 0
    return data


# The bound on a chunked body's bytes after the head, framing included:
# 8 x the body limit (16 KiB) + 8 KiB. It holds to the byte, whichever
# read or chunk crosses it.
@pytest.mark.parametrize("over", [0, 1])
def test_chunked_framing_is_bounded_to_the_byte(api, user, over):
    bound = 8 * 16384 + 8192
    body = json.dumps({"user_id": user, "content": f"bound {over}"}).encode()
    with Conn(api.port) as c:
        c.sock.sendall(CHUNKED_HEAD + chunked_with_framing(body, bound + over))
        r = c.response()
    assert r.status == (413 if over else 202), r.body
    if not over:
        api.wait_stored([json.loads(r.body)["id"]])  # with Kafka, stored after the 202
    stored = api.messages(user_id=user)["messages"]
    assert len(stored) == (0 if over else 1)


@settings(max_examples=int(os.environ.get("FEED_PROPERTY_EXAMPLES", "25")), deadline=None, database=None,
          derandomize=not os.environ.get("FEED_PROPERTY_SEED"), suppress_health_check=list(HealthCheck))
@given(chunks=st.integers(3, 30), offset=st.integers(-40, 40), jitter=st.randoms(use_true_random=False),
       pieces=st.integers(1, 6))
def test_generated_chunk_layouts_meet_the_framing_bound_to_the_byte(api, chunks, offset, jitter, pieces):
    # Any number of chunks, extensions of uneven lengths, the bytes after the
    # head within 40 of the bound either way, sent in up to 6 writes: 202 and
    # stored up to the bound, 413 and nothing stored past it.
    bound = 8 * 16384 + 8192
    user = f"gen{uuid.uuid4().hex[:12]}"
    body = json.dumps({"user_id": user, "content": "generated framing " + "x" * 40}).encode()
    cut = sorted(jitter.sample(range(1, len(body)), chunks - 1))
    parts = [body[a:b] for a, b in zip([0] + cut, cut + [len(body)])]
    fixed = sum(len(f"{len(p):x};x=\r\n".encode()) + len(p) + 2 for p in parts) + len(b"0\r\n\r\n")
    pad = bound + offset - fixed
    weights = [jitter.uniform(0.5, 1.5) for _ in parts]
    pads = [int(pad * w / sum(weights)) for w in weights]
    pads[-1] += pad - sum(pads)
    data = b"".join(f"{len(p):x}".encode() + b";x=" + b"a" * k + b"\r\n" + p + b"\r\n"
                    for p, k in zip(parts, pads)) + b"0\r\n\r\n"
    assert len(data) == bound + offset
    wire = CHUNKED_HEAD + data
    with Conn(api.port) as c:
        send_in_pieces(c, wire, jitter, pieces)
        r = c.response()
    assert r.status == (413 if offset > 0 else 202), (offset, r.body)
    if offset <= 0:
        api.wait_stored([json.loads(r.body)["id"]])  # with Kafka, stored after the 202
    assert len(api.messages(user_id=user)["messages"]) == (0 if offset > 0 else 1)


@settings(max_examples=int(os.environ.get("FEED_PROPERTY_EXAMPLES", "25")), deadline=None, database=None,
          derandomize=not os.environ.get("FEED_PROPERTY_SEED"), suppress_health_check=list(HealthCheck))
@given(post=st.booleans(), after_valid=st.booleans(),
       endings=st.lists(st.sampled_from([b"\r\n", b"\r\n", b"\n", b"\r", b"\r;"]), min_size=5, max_size=5),
       jitter=st.randoms(use_true_random=False), pieces=st.integers(1, 6))
def test_a_bare_cr_or_lf_in_a_head_gets_400_however_the_writes_are_cut(api, post, after_valid, endings, jitter,
                                                                        pieces):
    # A head's lines end in CRLF. One with a bare CR or LF in place of any
    # of its line endings (its last two included: then no CRLF CRLF ends
    # it) is refused with 400, whether it comes in one write or in pieces,
    # also behind a valid request on the same connection. Before, in pieces
    # it waited out the header timeout and was closed without an answer.
    # The client sends nothing more, as a client waiting for its answer.
    user = f"crlf{uuid.uuid4().hex[:12]}"
    body = json.dumps({"user_id": user, "content": "bare line ending"}).encode()
    lines = ([b"POST /api/messages HTTP/1.1", b"Host: x", b"Content-Type: application/json",
              b"Content-Length: %d" % len(body), b""] if post else [b"GET /api/health HTTP/1.1", b"Host: x", b""])
    head = b"".join(line + ending for line, ending in zip(lines, endings))
    bad = head + (body if post else b"")
    # A CR at the very end is no bare CR yet: its LF may follow.
    assume(any(c == 0x0A and (k == 0 or bad[k - 1] != 0x0D) or c == 0x0D and bad[k + 1:k + 2] not in (b"\n", b"")
               for k, c in enumerate(bad)))
    valid = b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n" if after_valid else b""
    wire = valid + bad
    with Conn(api.port, timeout=15) as c:
        send_in_pieces(c, wire, jitter, pieces)
        if after_valid:
            assert c.response().status == 200
        r = c.response()
        assert r.status == 400, (head, r.body)
        assert "malformed" in r.json()["error"]
    assert api.messages(user_id=user)["messages"] == []


@settings(max_examples=int(os.environ.get("FEED_PROPERTY_EXAMPLES", "25")), deadline=None, database=None,
          derandomize=not os.environ.get("FEED_PROPERTY_SEED"), suppress_health_check=list(HealthCheck))
@given(sizes=st.lists(st.integers(1, 40), min_size=1, max_size=4), trailer=st.booleans(),
       endings=st.lists(st.sampled_from([b"\r\n", b"\r\n", b"\n", b"\rx", b"\r\r\n"]), min_size=7, max_size=7),
       jitter=st.randoms(use_true_random=False), pieces=st.integers(1, 6))
def test_chunk_lines_end_in_crlf_and_a_bare_lf_or_cr_gets_400_at_once(api, sizes, trailer, endings, jitter, pieces):
    # A chunked body's size lines, trailer lines and last line end in CRLF
    # (RFC 9112 §7.1); its data may hold any bytes, bare LFs among them.
    # The body here has newlines in its data, cut into chunks of the drawn
    # sizes, and each line of its framing ends as drawn. With every ending
    # a CRLF it is stored; with a bare LF or CR in any one, it is 400 as
    # soon as that byte arrives, whatever the writes. Before, a bare LF
    # ending a chunk-size line waited out the header timeout (10 s here)
    # and closed without an answer. The client sends nothing more.
    user = f"chunk{uuid.uuid4().hex[:12]}"
    body = json.dumps({"user_id": user, "content": "line one\nline two"}, indent=1).encode()
    assert b"\n" in body
    chunks, at = [], 0
    for size in sizes:
        if at < len(body):
            chunks.append(body[at:at + size])
            at += size
    if at < len(body):
        chunks.append(body[at:])
    ends = iter(endings + [b"\r\n"] * len(chunks))
    wire = b"".join(b"%x" % len(c) + next(ends) + c + b"\r\n" for c in chunks)
    # A bare CR comes with a byte after it: alone, it and the next line's
    # LF would make a CRLF, or at the end it would wait for its LF.
    wire += b"0" + next(ends) + (b"X-Trailer: t" + next(ends) if trailer else b"") + next(ends)
    framing_ok = all(e == b"\r\n" for e in endings[:len(chunks) + 1 + trailer + 1])
    note(f"wire: {wire!r}")
    with Conn(api.port, timeout=8) as c:
        t0 = time.monotonic()
        send_in_pieces(c, CHUNKED_HEAD + wire, jitter, pieces)
        r = c.response()
        waited = time.monotonic() - t0
    if framing_ok:
        assert r.status == 202, r.body
        api.wait_stored([json.loads(r.body)["id"]])
        assert [m["content"] for m in api.messages(user_id=user)["messages"]] == ["line one\nline two"]
    else:
        assert r.status == 400, (wire, r.body)
        assert "malformed" in r.json()["error"]
        assert waited < 5, f"answered after {waited:.1f} s"
        assert api.messages(user_id=user)["messages"] == []


# --- empty lines before a request-line (RFC 9112 §2.2) ---

def test_a_crlf_after_a_post_body_does_not_break_the_next_request(api, user):
    # Old clients end a POST's body with an extra CRLF. Read as the start of
    # the next request it used to get 400 and close the kept-alive
    # connection under the client's next request.
    body = json.dumps({"user_id": user, "content": "crlf after the body"}).encode()
    post = (b"POST /api/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body + b"\r\n"
    with Conn(api.port) as c:
        assert c.send(post).response().status == 202
        time.sleep(0.3)
        assert c.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n").response().status == 200
    assert len(api.messages(user_id=user)["messages"]) == 1


@settings(max_examples=int(os.environ.get("FEED_PROPERTY_EXAMPLES", "25")), deadline=None, database=None,
          derandomize=not os.environ.get("FEED_PROPERTY_SEED"), suppress_health_check=list(HealthCheck))
@given(blanks=st.lists(st.integers(0, 4), min_size=1, max_size=4), trailing=st.integers(0, 3),
       jitter=st.randoms(use_true_random=False), pieces=st.integers(1, 8))
def test_empty_lines_before_each_request_are_ignored_however_the_writes_are_cut(api, blanks, trailing, jitter,
                                                                                  pieces):
    # Each request on one connection comes after 0-4 empty lines, and more
    # may follow the last one; the whole is cut into random writes (a CRLF
    # may be split between two). Every request is answered, in order.
    paths = [b"/api/health", b"/api/messages?limit=1", b"/api/openapi.yaml", b"/api/nope"]
    expected = [200, 200, 200, 404]
    wire = b"".join(b"\r\n" * n + b"GET " + paths[k % 4] + b" HTTP/1.1\r\nHost: x\r\n\r\n"
                    for k, n in enumerate(blanks)) + b"\r\n" * trailing
    with Conn(api.port, timeout=10) as c:
        send_in_pieces(c, wire, jitter, pieces)
        for k in range(len(blanks)):
            assert c.response().status == expected[k % 4], (k, wire)
        # The connection is still usable after the trailing empty lines.
        assert c.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n").response().status == 200


@pytest.mark.parametrize("prefix", [b"\n", b"\r\n\n", b"\r\r\n", b" \r\n"])
def test_a_bare_lf_or_cr_or_a_space_before_the_request_line_is_still_400(api, prefix):
    r = exchange(api.port, prefix + b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.status == 400


@pytest.mark.parametrize("after_post", [False, True])
@pytest.mark.parametrize("writes", [1, 2, 8])
def test_empty_lines_past_the_head_limit_get_431_however_the_writes_are_cut(api, user, writes, after_post):
    # 4,097 empty lines (8,194 bytes, over the 8 KiB head limit), then a
    # request, alone or after a POST on the same connection. In one write
    # they used to pass (up to 8,702 bytes) where in pieces they got 431.
    wire = b"\r\n" * 4097 + b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n"
    if after_post:
        body = json.dumps({"user_id": user, "content": "then blank lines"}).encode()
        wire = (b"POST /api/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)) + body + wire
    cut = [len(wire) * k // writes for k in range(writes + 1)]
    with Conn(api.port) as c:
        try:
            for a, b in zip(cut, cut[1:]):
                c.sock.sendall(wire[a:b])
                time.sleep(0.01)
        except (BrokenPipeError, ConnectionResetError):
            pass
        if after_post:
            assert c.response().status == 202
        assert c.response().status == 431


def test_empty_lines_just_within_the_head_limit_are_served(api):
    with Conn(api.port) as c:
        r = c.send(b"\r\n" * 4096 + b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n").response()
        assert r.status == 200


def test_a_connection_closed_after_only_empty_lines_gets_no_answer(api):
    with Conn(api.port) as c:
        c.send(b"\r\n\r\n")
        c.sock.shutdown(socket.SHUT_WR)
        assert c.closed_with_nothing_more()


@pytest.mark.parametrize("version", [b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.x"])
def test_versions_other_than_1_0_and_1_1_are_refused(api, version):
    r = exchange(api.port, b"GET /api/health " + version + b"\r\nHost: x\r\n\r\n")
    assert r.status == 400 and r.json()["error"]


def test_whitespace_before_the_colon_is_400(api):
    # RFC 9112 §5.1: a MUST, as such a field is read differently by proxies.
    r = exchange(api.port, b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n")
    assert r.status == 400


# --- Host and request targets (RFC 9112 §3.2) ---

@pytest.mark.parametrize("host_fields", ["", "Host: a\r\nHost: b\r\n", "Host: a\r\nhost: a\r\n", "Host: a b\r\n",
                                         "Host: user@a\r\n"])
def test_missing_duplicate_or_invalid_host_is_400(api, host_fields):
    r = exchange(api.port, f"GET /api/health HTTP/1.1\r\n{host_fields}\r\n".encode())
    assert r.status == 400 and "Host" in r.json()["error"]


def test_http10_needs_no_host_and_an_empty_host_is_fine(api):
    assert exchange(api.port, b"GET /api/health HTTP/1.0\r\n\r\n").status == 200
    assert exchange(api.port, b"GET /api/health HTTP/1.1\r\nHost:\r\n\r\n").status == 200


def test_absolute_form_targets_are_routed_by_path_and_query(api, user):
    body = json.dumps({"user_id": user, "content": "absolute"}).encode()
    r = exchange(api.port, (f"POST http://127.0.0.1:{api.port}/api/messages HTTP/1.1\r\nHost: 127.0.0.1:{api.port}\r\n"
                            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body)
    assert r.status == 202, r.body
    r = exchange(api.port, f"GET HTTP://example.com/api/messages?limit=x HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert r.status == 400 and "limit" in r.json()["error"]  # the query was read


@pytest.mark.parametrize("target", ["ftp://x/api/health", "127.0.0.1:80", "*", "api/health"])
def test_other_target_forms_are_400(api, target):
    assert exchange(api.port, f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode()).status == 400


@pytest.mark.parametrize("target", ["/api%2Fmessages", "/api%2fmessages", "/%61pi%2Fmessages"])
def test_an_escaped_slash_is_not_a_separator(api, user, target):
    # RFC 3986 §2.2: "%2F" is data inside one segment; "/api%2Fmessages"
    # does not name /api/messages (a proxy in front would not think so).
    body = json.dumps({"user_id": user, "content": "escaped slash"}).encode()
    r = exchange(api.port, (f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                            f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
    assert r.status == 404, r.body
    assert target in r.json()["error"]
    assert exchange(api.port, b"GET /api/%6Dessages?limit=1 HTTP/1.1\r\nHost: x\r\n\r\n").status == 200
    assert api.all_messages(user_id=user) == []


@pytest.mark.parametrize("version,lines", [
    ("1.1", ["Connection: keep-alive", "Connection: close"]),
    ("1.1", ["Connection: x", "Connection: close, te"]),
    ("1.0", ["Connection: keep-alive", "Connection: close"]),
])
def test_close_on_any_connection_line_closes(api, version, lines):
    # RFC 9110 §5.3: several Connection lines are one list.
    head = "\r\n".join([f"GET /api/health HTTP/{version}", "Host: x", *lines]) + "\r\n\r\n"
    with Conn(api.port, timeout=3) as c:
        r = c.send(head.encode()).response()
        assert r.status == 200
        assert c.closed_with_nothing_more()


@pytest.mark.parametrize("where", ["target", "field"])
@pytest.mark.parametrize("split", [None, 449, 4000])
def test_the_head_limit_is_exact_however_the_head_arrives(api, where, split):
    # The default limit is 8 KiB of head, wherever its bytes are and however
    # the client's writes cut them.
    def head(size):
        base = "GET /api/health{} HTTP/1.1\r\nHost: x\r\n{}\r\n"
        fixed = len(base.format("", "")) + (len("?x=") if where == "target" else len("X-P: \r\n"))
        pad = "a" * (size - fixed)
        return (base.format("?x=" + pad, "") if where == "target" else base.format("", f"X-P: {pad}\r\n")).encode()
    for size, status in ((8192, 200), (8193, 431), (8700, 431)):
        data = head(size)
        assert len(data) == size
        with Conn(api.port) as c:
            if split:
                c.send(data[:split])
                time.sleep(0.05)
                c.send(data[split:])
            else:
                c.send(data)
            assert c.response().status == status, (size, where, split)


# --- HEAD (RFC 9110 §9.3.2) ---

@pytest.mark.parametrize("path", ["/api/health", "/api/messages?limit=5", "/api/openapi.yaml", "/api/nope"])
def test_head_is_get_without_the_body_and_keeps_the_connection_usable(api, path):
    get = exchange(api.port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    with Conn(api.port) as c:
        head = c.send(f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()).response(head=True)
        assert head.status == get.status
        assert head.header("Content-Type") == get.header("Content-Type")
        assert head.header("Content-Length") == str(len(get.body))
        after = c.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n").response()
        assert after.status == 200 and after.json() == {"status": "ok"}, "HEAD sent a body"


@pytest.mark.parametrize("path", ["/api/ready", "/metrics"])
def test_head_on_every_get_route(api, path):
    with Conn(api.port) as c:
        head = c.send(f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()).response(head=True)
        assert head.status in (200, 503) and int(head.header("Content-Length")) > 0
        assert c.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n").response().status == 200


def test_head_on_the_feed_answers_the_stream_head_without_streaming(api):
    with Conn(api.port) as c:
        head = c.send(b"HEAD /api/feed HTTP/1.1\r\nHost: x\r\n\r\n").response(head=True)
        assert head.status == 200
        assert head.header("Content-Type") == "text/event-stream"
        assert head.header("Cache-Control") == "no-cache"
        assert head.header("Content-Length") is None
        assert head.header("Connection") == "keep-alive"  # as GET's stream head says
        after = c.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n").response()
        assert after.status == 200 and after.json() == {"status": "ok"}
    with Conn(api.port) as c:  # HTTP/1.0: GET's stream head says close, and so does HEAD
        head = c.send(b"HEAD /api/feed HTTP/1.0\r\nHost: x\r\n\r\n").response(head=True)
        assert head.status == 200 and head.header("Connection") == "close"


FEED_REQUESTS = [
    ("/api/feed?history=0", ""), ("/api/feed?history=x", ""), ("/api/feed?since=-1", ""),
    ("/api/feed?user_id=a%20b", ""), ("/api/feed?user_id=a%01b", ""), ("/api/feed?history=1&history=2", ""), ("/api/feed?history=all&since=3", ""),
    ("/api/feed", "Last-Event-ID: abc\r\n"), ("/api/feed", "Last-Event-ID: 0\r\n"),
    ("/api/feed", "Last-Event-ID: 1\r\nLast-Event-ID: 2\r\n"),
]


@pytest.mark.parametrize("target,extra", FEED_REQUESTS)
def test_head_on_the_feed_has_gets_status_and_fields(api, target, extra):
    # RFC 9110 §9.3.2: the same status and header fields as GET, without the
    # body; a parameter GET refuses is refused on HEAD too. Connection is
    # the connection's own business: the stream ends by closing it.
    request = f" {target} HTTP/1.1\r\nHost: x\r\n{extra}\r\n"
    get_head = exchange(api.port, ("GET" + request).encode(), head=True)
    with Conn(api.port) as c:
        head = c.send(("HEAD" + request).encode()).response(head=True)
        assert head.status == get_head.status, (target, extra)
        if get_head.status == 200:
            fields = lambda r: {k: v for k, v in r.headers.items() if k not in ("connection",)}
            assert fields(head) == fields(get_head)
        else:
            get = exchange(api.port, ("GET" + request).encode())
            assert head.header("Content-Length") == str(len(get.body))
            assert head.header("Content-Type") == get.header("Content-Type")
        if head.header("Connection") != "close":  # a malformed head closes the connection
            assert c.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n").response().status == 200


@pytest.mark.parametrize("version,connection,says", [
    ("1.1", [], "keep-alive"), ("1.1", ["close"], "close"), ("1.1", ["keep-alive, close"], "close"),
    ("1.1", ["keep-alive", "close"], "close"), ("1.1", ["close", "keep-alive"], "close"),
    ("1.1", ["Foo, CLOSE"], "close"), ("1.0", [], "close"), ("1.0", ["keep-alive"], "keep-alive"),
    ("1.0", ["keep-alive, close"], "close"), ("1.0", ["keep-alive", "close"], "close"),
])
def test_the_stream_head_does_not_contradict_the_clients_connection_option(api, version, connection, says):
    # RFC 9112 §9.6: a request's "close", on any of its Connection lines
    # (RFC 9110 §5.3 joins them), is answered with "close".
    extra = "".join(f"Connection: {c}\r\n" for c in connection)
    request = f"GET /api/feed?history=0 HTTP/{version}\r\nHost: x\r\n{extra}\r\n".encode()
    with Conn(api.port) as c:
        c.send(request)
        while b"\r\n\r\n" not in c.buf:
            c._fill()
        status_line = c.buf.split(b"\r\n", 1)[0]
        r = c.response(head=True)
    assert r.status == 200 and r.header("Content-Type") == "text/event-stream"
    assert r.header("Connection") == says
    # The status line's version is the request's, as in every other answer
    # (and in HEAD's).
    assert status_line == f"HTTP/{version} 200 OK".encode()


PROPERTY = dict(max_examples=int(os.environ.get("FEED_PROPERTY_EXAMPLES", "25")), deadline=None, database=None,
                derandomize=not os.environ.get("FEED_PROPERTY_SEED"), suppress_health_check=list(HealthCheck))
NUMBERS = st.sampled_from(["0", "1", "5", "-1", "abc", "", "01", "1.5", "99999999999999999999", "all", "%31"])


@settings(**PROPERTY)
@given(params=st.lists(st.tuples(st.sampled_from(["history", "since", "user_id", "other"]),
                                 st.one_of(NUMBERS, st.sampled_from(["alice", "a%20b", "a%1Bb", "x" * 65, "%2E"]))),
                       max_size=4),
       last_event_id=st.lists(NUMBERS, max_size=2))
def test_generated_feed_requests_get_the_same_status_and_fields_on_head_as_on_get(api, params, last_event_id):
    # RFC 9110 §9.3.2, for any mix of the feed's parameters, repeated or
    # not, valid or not, with zero, one or two Last-Event-ID lines.
    query = "&".join(f"{k}={v}" for k, v in params)
    extra = "".join(f"Last-Event-ID: {v}\r\n" for v in last_event_id)
    request = f" /api/feed?{query} HTTP/1.1\r\nHost: x\r\n{extra}\r\n"
    get_head = exchange(api.port, ("GET" + request).encode(), head=True)
    head = exchange(api.port, ("HEAD" + request).encode(), head=True)
    assert head.status == get_head.status, request
    without_connection = lambda r: {k: v for k, v in r.headers.items() if k != "connection"}
    assert without_connection(head) == without_connection(get_head), request


@settings(**PROPERTY)
@given(version=st.sampled_from(["1.0", "1.1"]),
       lines=st.lists(st.lists(st.sampled_from(["close", "Close", "keep-alive", "KEEP-ALIVE", "foo"]),
                               min_size=1, max_size=3), max_size=3))
def test_generated_connection_options_decide_the_stream_heads_connection(api, version, lines):
    # RFC 9112 §9.3 and §9.6: every line counts; close wins; HTTP/1.0
    # persists only with keep-alive.
    tokens = [t.lower() for line in lines for t in line]
    says = "close" if "close" in tokens or (version == "1.0" and "keep-alive" not in tokens) else "keep-alive"
    extra = "".join("Connection: " + ", ".join(line) + "\r\n" for line in lines)
    r = exchange(api.port, f"GET /api/feed?history=0 HTTP/{version}\r\nHost: x\r\n{extra}\r\n".encode(), head=True)
    assert r.status == 200 and r.header("Connection") == says, extra


def test_a_bad_since_is_refused_even_beside_last_event_id(api):
    # As ?history= is: the URL was refused at its first connect, and a
    # reconnect with Last-Event-ID is answered the same.
    for since in ("abc", "-5"):
        r = exchange(api.port, f"GET /api/feed?since={since} HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 2\r\n\r\n".encode())
        assert r.status == 400 and "since" in r.json()["error"], since


@pytest.mark.parametrize("path", ["/api/feed", "/api/health", "/api/messages"])
@pytest.mark.parametrize("trouble,status", [
    ("Content-Length: 99999999\r\n", 413), ("bad header\r\n", 400), ("X: " + "a" * 9000 + "\r\n", 431),
], ids=["body-too-large", "malformed-field", "head-too-large"])
def test_a_head_request_refused_while_it_is_read_gets_no_body(api, path, trouble, status):
    # RFC 9110 §9.3.2 / RFC 9112 §6.3: an answer to HEAD ends with its head,
    # also when the request's own fields or body are what is refused.
    with Conn(api.port) as c:
        c.send(f"HEAD {path} HTTP/1.1\r\nHost: x\r\n{trouble}\r\n".encode())
        r = c.response(head=True)
        assert r.status == status
        assert int(r.header("Content-Length")) > 0  # the length GET's error body would have
        assert c.closed_with_nothing_more(), c.buf


def test_head_errors_have_no_body_either(api):
    with Conn(api.port) as c:
        r = c.send(b"HEAD /api/messages?limit=0 HTTP/1.1\r\nHost: x\r\n\r\n").response(head=True)
        assert r.status == 400 and int(r.header("Content-Length")) > 0
        assert c.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n").response().status == 200


# --- OPTIONS (RFC 9110 §9.3.7) and CORS preflight ---

@pytest.mark.parametrize("path,allow", [
    ("/api/messages", "GET, HEAD, POST, OPTIONS"), ("/api/feed", "GET, HEAD, OPTIONS"),
    ("/api/health", "GET, HEAD, OPTIONS"),
])
def test_options_answers_204_with_allow_and_cors_preflight(api, path, allow):
    with Conn(api.port) as c:
        r = c.send(f"OPTIONS {path} HTTP/1.1\r\nHost: x\r\nOrigin: http://example.com\r\n"
                   "Access-Control-Request-Method: POST\r\n\r\n".encode()).response()
        assert r.status == 204 and r.body == b""
        assert r.header("Content-Length") is None  # RFC 9110 §8.6: never on a 204
        assert r.header("Allow") == allow
        assert r.header("Access-Control-Allow-Origin") == "*"
        assert r.header("Access-Control-Allow-Methods") == allow
        headers = {h.strip().lower() for h in r.header("Access-Control-Allow-Headers").split(",")}
        assert headers == {"content-type", "idempotency-key", "last-event-id"}
        assert int(r.header("Access-Control-Max-Age")) > 0
        assert c.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n").response().status == 200


def test_answers_are_readable_from_any_origin(api, user):
    body = json.dumps({"user_id": user, "content": "cors"}).encode()
    r = exchange(api.port, (f"POST /api/messages HTTP/1.1\r\nHost: x\r\nOrigin: http://example.com\r\n"
                            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body)
    assert r.status == 202 and r.header("Access-Control-Allow-Origin") == "*"
    r = exchange(api.port, b"GET /api/nope HTTP/1.1\r\nHost: x\r\nOrigin: http://example.com\r\n\r\n")
    assert r.status == 404 and r.header("Access-Control-Allow-Origin") == "*"


def test_options_asterisk_lists_every_method(api):
    r = exchange(api.port, b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.status == 204 and r.header("Allow") == "GET, HEAD, POST, OPTIONS"


def test_options_on_an_unknown_path_is_404(api):
    assert exchange(api.port, b"OPTIONS /api/nope HTTP/1.1\r\nHost: x\r\n\r\n").status == 404


@pytest.mark.parametrize("method", [b"FOO", b"get", b"PROPFIND"])
def test_a_method_this_server_does_not_implement_is_501(api, method):
    for path in (b"/api/health", b"/api/nope"):
        r = exchange(api.port, method + b" " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert r.status == 501, (method, path, r.status)
        assert method.decode() in r.json()["error"]
    assert exchange(api.port, b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n").status == 200


def test_405_allow_lists_head_and_options(api):
    r = exchange(api.port, b"DELETE /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.status == 405 and r.header("Allow") == "GET, HEAD, OPTIONS"
    r = exchange(api.port, b"PUT /api/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert r.status == 405 and r.header("Allow") == "GET, HEAD, POST, OPTIONS"


# --- error bodies are UTF-8 JSON ---

@pytest.mark.parametrize("request_bytes", [
    b"GET /api/%FF HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/feed?history=%FF HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/feed?history=%C3%28%ED%A0%80 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/feed?since=%FF HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/feed HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 1\xff\r\n\r\n",
    b"GET /api/messages?limit=%FF HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/messages?before=%F0%9F HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /api/messages HTTP/1.1\r\nHost: x\r\nContent-Type: text/\xff\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /api/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json; charset=\xff\r\n"
    b"Content-Length: 2\r\n\r\n{}",
], ids=["path", "raw path", "history", "history mixed", "since", "last-event-id", "limit", "before",
        "content-type", "charset"])
def test_error_bodies_are_valid_utf8_json(api, request_bytes):
    r = exchange(api.port, request_bytes)
    assert 400 <= r.status < 500
    assert r.header("Content-Type") == "application/json"
    r.body.decode("utf-8", errors="strict")
    assert isinstance(r.json()["error"], str) and r.json()["error"]


def test_invalid_bytes_become_replacement_characters(api):
    r = exchange(api.port, b"GET /api/a%FFb HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.status == 404 and "/api/a\ufffdb" in r.json()["error"]


# --- the 503 at the connection cap ---

def hold_the_only_connection(api):
    """An SSE client holding the single connection a --max-connections 1
    server allows (once the start-up health check's connection is gone)."""
    def hold():
        c = SseClient(api.url("/api/feed?history=0"))
        if c.status == 200:
            return c
        c.close()
        return None
    return wait_until(hold, 5, interval=0.05, what="the connection slot")


def read_to_eof(sock):
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_connection_cap_503_is_framed_exactly(make_api):
    api = make_api("--max-connections", "1")
    held = hold_the_only_connection(api)
    with socket.create_connection(("127.0.0.1", api.port), timeout=5) as s:
        s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_to_eof(s)
    head, body = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 503")
    lengths = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    assert lengths == [str(len(body)).encode()], data
    assert json.loads(body)["error"]
    held.close()


# --- errors reach clients that send the whole request first (lingering close) ---

def post_with_http_client(port, body, chunked=False):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"}
        if chunked:
            conn.request("POST", "/api/messages", body=iter([body[i:i + 65536] for i in range(0, len(body), 65536)]),
                         headers=headers, encode_chunked=True)
        else:
            conn.request("POST", "/api/messages", body=body, headers=headers)
        r = conn.getresponse()
        r.read()
        return r.status
    except (BrokenPipeError, ConnectionResetError) as e:
        return type(e).__name__
    finally:
        conn.close()


def test_413_reaches_a_client_sending_a_1mb_body(api):
    body = b'{"user_id":"a","content":"' + b"x" * 1_000_000 + b'"}'
    statuses = [post_with_http_client(api.port, body) for _ in range(20)]
    assert statuses == [413] * 20
    statuses = [post_with_http_client(api.port, body, chunked=True) for _ in range(5)]
    assert statuses == [413] * 5


def test_503_at_the_cap_reaches_a_client_sending_a_body(make_api):
    api = make_api("--max-connections", "1")
    held = hold_the_only_connection(api)
    body = b'{"user_id":"a","content":"' + b"x" * 1_000_000 + b'"}'
    statuses = [post_with_http_client(api.port, body) for _ in range(10)]
    assert statuses == [503] * 10
    held.close()


def test_400_for_garbage_reaches_a_client_still_sending(api):
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", api.port), timeout=10) as s:
            try:
                s.sendall(b"NOT HTTP AT ALL\r\n\r\n" + b"z" * 1_000_000)
            except (BrokenPipeError, ConnectionResetError) as e:
                pytest.fail(f"{type(e).__name__} before the response could be read")
            assert read_to_eof(s).startswith(b"HTTP/1.1 400")


def test_431_reaches_a_client_still_sending(api):
    big = b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n"
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", api.port), timeout=10) as s:
            try:
                s.sendall(big)
            except (BrokenPipeError, ConnectionResetError) as e:
                pytest.fail(f"{type(e).__name__} before the response could be read")
            assert read_to_eof(s).startswith(b"HTTP/1.1 431")


def test_lingering_ends_when_the_client_keeps_sending(api):
    # The server gives up on a client that never stops (bounded time and bytes).
    import time
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as s:
        s.sendall(b"POST /api/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n")
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < 15:
                s.sendall(b"y" * 65536)
                time.sleep(0.01)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert time.monotonic() - t0 < 10


@pytest.fixture
def api_1s(make_api):
    return make_api("--header-timeout", "1", "--idle-timeout", "2")


@settings(max_examples=int(os.environ.get("FEED_PROPERTY_EXAMPLES", "25")) // 2, deadline=None, database=None,
          derandomize=not os.environ.get("FEED_PROPERTY_SEED"), suppress_health_check=list(HealthCheck))
@given(chunked=st.booleans(), cut=st.floats(0, 1), empty_lines=st.integers(0, 2), after_valid=st.booleans(),
       jitter=st.randoms(use_true_random=False), pieces=st.integers(1, 4))
def test_a_request_cut_off_gets_408_and_a_silent_connection_nothing(api_1s, chunked, cut, empty_lines, after_valid,
                                                                     jitter, pieces):
    # RFC 9110 §15.5.9: a request begun and not finished within the header
    # timeout is answered 408 and the connection closed; one that sent
    # nothing of a request (or only the empty lines allowed before one) is
    # closed unanswered, as a 408 there could be taken for the answer to a
    # request the client is just sending. Nothing cut off is stored.
    user = f"cut{uuid.uuid4().hex[:12]}"
    body = json.dumps({"user_id": user, "content": "cut off"}).encode()
    framing = (b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
               if chunked else b"Content-Length: %d\r\n\r\n" % len(body) + body)
    whole = b"POST /api/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + framing
    part = b"\r\n" * empty_lines + whole[:int(cut * (len(whole) - 1))]
    note(f"sent {part!r}")
    valid = b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n" if after_valid else b""
    with Conn(api_1s.port, timeout=10) as c:
        started = time.monotonic()
        if valid + part:
            send_in_pieces(c, valid + part, jitter, pieces)
        if after_valid:
            assert c.response().status == 200
        if part.strip(b"\r\n"):
            r = c.response()
            assert r.status == 408, r.body
            assert r.json()["error"] == "the request was not received within the header timeout"
        with pytest.raises(EOFError):
            c.response()
        assert time.monotonic() - started < 8
    assert api_1s.messages(user_id=user)["messages"] == []
