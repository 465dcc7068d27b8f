"""Posting many messages fast: several keep-alive connections at once."""
import http.client
import json
import threading
import time


class PostFailed(AssertionError):
    pass


def post_concurrently(port, user, n, connections=4, tag="m", retries_503=20, timeout=60, progress=None,
                      content_chars=0, pad="x"):
    """Posts n messages as `user` over `connections` keep-alive connections in
    parallel. Returns the ids answered 202, in no particular order. A 503
    (queue full) is retried after a short wait, as a client should; any
    other status fails. `progress` (a list) gets each id as it is accepted,
    so other threads can watch posting advance. content_chars pads each
    content with `pad` up to that many characters (the limit is 280)."""
    ids = progress if progress is not None else []
    lock = threading.Lock()
    errors = []
    deadline = time.monotonic() + timeout
    counter = iter(range(n))

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        try:
            while not errors:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                content = f"{tag} {i} "
                content += pad * max(0, content_chars - len(content))
                body = json.dumps({"user_id": user, "content": content[:max(content_chars, len(f"{tag} {i}"))]})
                for attempt in range(retries_503 + 1):
                    if time.monotonic() > deadline:
                        raise PostFailed(f"posting {n} took over {timeout}s")
                    conn.request("POST", "/api/messages", body=body, headers={"Content-Type": "application/json"})
                    r = conn.getresponse()
                    data = r.read()
                    if r.getheader("Connection", "").lower() == "close":
                        conn.close()
                    if r.status == 202:
                        with lock:
                            ids.append(json.loads(data)["id"])
                        break
                    if r.status != 503 or attempt == retries_503:
                        raise PostFailed(f"post {i} answered {r.status}: {data[:200]!r}")
                    time.sleep(0.05)
        except Exception as e:
            errors.append(e)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, min(connections, n)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 5)
    if errors:
        raise errors[0]
    if len(ids) != n:
        raise PostFailed(f"{len(ids)} of {n} posts answered 202")
    return ids
