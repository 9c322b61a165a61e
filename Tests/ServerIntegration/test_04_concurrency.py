"""Batching must not change results; a client that goes away must free its sequence; /metrics."""
import json, threading, time
from concurrent.futures import ThreadPoolExecutor

from support import API_KEY, CHAT_PROMPTS, EOS_BIAS, metric_sum, parse_prometheus

PROMPTS = CHAT_PROMPTS


def test_concurrent_equals_sequential(client, model_id):
    def ask(prompt):
        r = client.chat.completions.create(model=model_id, messages=[{"role": "user", "content": prompt}],
                                           max_tokens=48, temperature=0)
        return r.choices[0].message.content, r.usage.completion_tokens

    sequential = [ask(p) for p in PROMPTS]
    assert len({t for t, _ in sequential}) == len(PROMPTS), "different prompts should give different texts"
    barrier = threading.Barrier(len(PROMPTS))

    def ask_together(prompt):
        barrier.wait()
        return ask(prompt)

    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        concurrent = list(pool.map(ask_together, PROMPTS))
    for p, s, c in zip(PROMPTS, sequential, concurrent):
        assert s == c, f"prompt {p!r}: alone -> {s!r}, batched with 7 others -> {c!r}"


def _metrics(anon):
    r = anon.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers.get("content-type", "").startswith("text/plain"), r.headers.get("content-type")
    return parse_prometheus(r.text), r.text


def test_client_disconnect_frees_the_sequence(server, anon, recorder, model_id):
    payload = {"model": model_id, "messages": [{"role": "user", "content": "Write a very long story about dragons."}],
               "max_tokens": 900, "temperature": 0, "stream": True, "logit_bias": EOS_BIAS}
    with recorder.client(server.base_url, headers={"Authorization": f"Bearer {API_KEY}"}) as c:
        with c.stream("POST", "/v1/chat/completions", json=payload) as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            events = 0
            for line in resp.iter_lines():
                if line.startswith("data:"):
                    chunk = json.loads(line[5:])
                    assert not chunk["choices"] or chunk["choices"][0]["finish_reason"] is None
                    events += 1
                    if events == 3:
                        break
            samples, _ = _metrics(anon)
            active = metric_sum(samples, "verity_active_sequences")
            assert active > 0, "verity_active_sequences should count the stream in progress"
        # leaving both `with`s closes the response and the connection
    t0 = time.time()
    while True:
        samples, text = _metrics(anon)
        active = metric_sum(samples, "verity_active_sequences")
        if active == 0:
            break
        assert time.time() - t0 < 2.0, f"sequence still active {time.time() - t0:.1f}s after disconnect:\n{text}"
        time.sleep(0.05)


def test_metrics(anon, raw, client, model_id):
    client.chat.completions.create(model=model_id, messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
    assert raw.post("/v1/chat/completions", json={"model": "no-such-model", "messages": []}).status_code == 404
    samples, text = _metrics(anon)
    names = {n for n, _, _ in samples}
    for name in ("verity_requests_total", "verity_prompt_tokens_total", "verity_completion_tokens_total",
                 "verity_queue_depth", "verity_active_sequences"):
        assert name in names, f"/metrics lacks {name}:\n{text}"
    for hist in ("verity_time_to_first_token_seconds", "verity_time_per_output_token_seconds"):
        for suffix in ("_bucket", "_sum", "_count"):
            assert hist + suffix in names, f"/metrics lacks {hist}{suffix}:\n{text}"
        assert f"# TYPE {hist} histogram" in text, f"{hist} should be declared a histogram"
        buckets = [(l, v) for n, l, v in samples if n == hist + "_bucket"]
        assert any(l.get("le") == "+Inf" for l, _ in buckets), f"{hist} needs an le=\"+Inf\" bucket"
        assert metric_sum(samples, hist + "_count") > 0
    reqs = [(l, v) for n, l, v in samples if n == "verity_requests_total"]
    assert all("status" in l for l, _ in reqs), f"verity_requests_total needs a status label: {reqs}"
    assert any(l["status"].startswith("2") and v > 0 for l, v in reqs), reqs
    assert any(l["status"].startswith("4") and v > 0 for l, v in reqs), f"the 404 should be counted: {reqs}"
    for gauge in ("verity_active_sequences", "verity_queue_depth"):
        assert all("model" in l for n, l, _ in samples if n == gauge), f"{gauge} needs a model label"
    assert metric_sum(samples, "verity_prompt_tokens_total") > 0
    assert metric_sum(samples, "verity_completion_tokens_total") > 0
