"""A full queue answers 429 with Retry-After, in OpenAI's error shape. Uses its own server with one
sequence slot and a queue of one, so of four simultaneous requests at least two must be refused."""
import json, threading, time

import pytest

from support import API_KEY, EOS_BIAS, MODEL_ID, assert_openai_error


@pytest.fixture(scope="module")
def small_server(start_server):
    server, stop = start_server("queue", ["--max-sequences", "1", "--max-queue", "1"])
    yield server
    stop()  # asserts a clean exit 0 after SIGTERM


def test_queue_full_gives_429(small_server, recorder):
    payload = {"model": MODEL_ID, "messages": [{"role": "user", "content": "Tell me a long story."}],
               "max_tokens": 300, "temperature": 0, "stream": True, "logit_bias": EOS_BIAS}
    n = 4
    barrier = threading.Barrier(n)
    results = [None] * n

    def go(i):
        with recorder.client(small_server.base_url, headers={"Authorization": f"Bearer {API_KEY}"}) as c:
            barrier.wait()
            with c.stream("POST", "/v1/chat/completions", json=payload) as resp:
                if resp.status_code == 200:
                    first = None
                    for line in resp.iter_lines():  # one chunk is enough; hanging up frees the slot
                        if line.startswith("data:"):
                            first = json.loads(line[5:])
                            break
                    results[i] = (200, dict(resp.headers), first)
                else:
                    resp.read()
                    results[i] = (resp.status_code, dict(resp.headers), resp)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert all(r is not None for r in results), f"some requests did not finish: {results}"
    statuses = sorted(r[0] for r in results)
    assert statuses.count(429) >= 1, f"expected at least one 429 from 4 requests on 1 slot + queue of 1: {statuses}"
    assert statuses.count(200) >= 1, f"at least the first request should be served: {statuses}"
    assert set(statuses) <= {200, 429}, statuses
    for status, headers, resp in results:
        if status != 429:
            continue
        headers = {k.lower(): v for k, v in headers.items()}
        assert "retry-after" in headers, f"429 without Retry-After: {headers}"
        assert headers["retry-after"].strip().isdigit() and int(headers["retry-after"]) >= 1, headers["retry-after"]
        assert_openai_error(resp, 429, code="queue_full")
    # The small server serves again once the abandoned streams are cleaned up (give it 10 s).
    deadline = time.time() + 10
    with recorder.client(small_server.base_url, headers={"Authorization": f"Bearer {API_KEY}"}) as c:
        while True:
            r = c.post("/v1/chat/completions", json={**payload, "stream": False, "max_tokens": 4})
            if r.status_code != 429 or time.time() > deadline:
                break
            time.sleep(0.5)
        assert r.status_code == 200, f"still refused 10 s after all clients hung up: {r.text}"
