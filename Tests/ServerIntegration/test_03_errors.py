"""Error responses: HTTP status plus OpenAI's error shape {"error": {message, type, param, code}}.
Raw HTTP where the SDK cannot produce the input; the SDK's exception mapping is checked too."""
import json

import openai
import pytest
from openai import OpenAI

from support import API_KEY, CTX, assert_openai_error, raw_post_large

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "Say hello."}]


def body(model_id, **kw):
    return {"model": model_id, "messages": HELLO, "max_tokens": 4, **kw}


def test_malformed_json(raw):
    for payload in (b'{"model": "x", "messages": [', b"not json at all", b""):
        r = raw.post(CHAT, content=payload, headers={"Content-Type": "application/json"})
        assert_openai_error(r, 400, code="invalid_json")


def test_body_not_an_object(raw):
    r = raw.post(CHAT, json=[1, 2, 3])
    assert_openai_error(r, 400)


def test_missing_messages(raw, model_id):
    r = raw.post(CHAT, json={"model": model_id, "max_tokens": 4})
    assert_openai_error(r, 400, code="missing_required_parameter", param="messages")


def test_missing_prompt(raw, model_id):
    r = raw.post("/v1/completions", json={"model": model_id, "max_tokens": 4})
    assert_openai_error(r, 400, code="missing_required_parameter", param="prompt")


@pytest.mark.parametrize("field,value", [
    ("temperature", "hot"), ("messages", 5), ("max_tokens", "x"), ("top_p", [1]), ("stop", 5),
    ("seed", "abc"), ("stream", "yes"), ("logit_bias", "x"),
])
def test_wrong_type(raw, model_id, field, value):
    r = raw.post(CHAT, json=body(model_id, **{field: value}))
    err = assert_openai_error(r, 400, code="invalid_type")
    assert err["param"] is not None and err["param"].split(".")[0].split("[")[0] == field, \
        f"param should name {field!r}: {err}"


def test_wrong_type_inside_messages(raw, model_id):
    r = raw.post(CHAT, json={"model": model_id, "messages": [{"role": "user", "content": 5}]})
    err = assert_openai_error(r, 400)
    assert err["param"] and err["param"].startswith("messages"), err


def test_unknown_model(raw, client):
    r = raw.post(CHAT, json=body("no-such-model"))
    assert_openai_error(r, 404, code="model_not_found", param="model", type_="invalid_request_error")
    r = raw.post("/v1/completions", json={"model": "no-such-model", "prompt": "x", "max_tokens": 2})
    assert_openai_error(r, 404, code="model_not_found", param="model")
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=HELLO, max_tokens=2)


def test_auth(anon, server, recorder, model_id):
    r = anon.post(CHAT, json=body(model_id))
    assert_openai_error(r, 401, code="invalid_api_key")
    r = anon.post(CHAT, json=body(model_id), headers={"Authorization": "Bearer wrong-key"})
    assert_openai_error(r, 401, code="invalid_api_key")
    r = anon.get("/v1/models", headers={"Authorization": "Basic dGVzdC1rZXk6"})
    assert_openai_error(r, 401, code="invalid_api_key")
    r = anon.get("/v1/models")
    assert_openai_error(r, 401, code="invalid_api_key")
    # /health and /metrics need no key.
    assert anon.get("/health").status_code == 200
    assert anon.get("/metrics").status_code == 200
    http_client = recorder.client(server.base_url)
    bad = OpenAI(base_url=server.base_url + "/v1", api_key="wrong-key", max_retries=0, http_client=http_client)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    http_client.close()


def test_context_length_prompt_too_long(raw, model_id, tokenize):
    text = "The sea was calm and the sky was grey. " * 110
    msgs = [{"role": "user", "content": text}]
    n = tokenize(messages=msgs)["count"]
    assert CTX < n < 1400, f"test prompt should be ~1100 tokens, is {n}"
    r = raw.post(CHAT, json={"model": model_id, "messages": msgs, "max_tokens": 16})
    err = assert_openai_error(r, 400, code="context_length_exceeded", param="messages")
    assert str(n) in err["message"], f"message should state the prompt's {n} tokens: {err['message']!r}"
    assert str(CTX) in err["message"], f"message should state the {CTX}-token context: {err['message']!r}"
    # Same on the completions endpoint, param "prompt".
    n2 = tokenize(prompt=text)["count"]
    r = raw.post("/v1/completions", json={"model": model_id, "prompt": text, "max_tokens": 16})
    err = assert_openai_error(r, 400, code="context_length_exceeded", param="prompt")
    assert str(n2) in err["message"], f"message should state the prompt's {n2} tokens: {err['message']!r}"


def test_context_length_max_tokens_too_large(raw, model_id, tokenize):
    n = tokenize(messages=HELLO)["count"]
    r = raw.post(CHAT, json={"model": model_id, "messages": HELLO, "max_tokens": 5000})
    err = assert_openai_error(r, 400, code="context_length_exceeded")
    assert str(n) in err["message"] and "5000" in err["message"], \
        f"message should state both the prompt's {n} tokens and the 5000 requested: {err['message']!r}"
    r = raw.post(CHAT, json={"model": model_id, "messages": HELLO, "max_completion_tokens": 5000})
    assert_openai_error(r, 400, code="context_length_exceeded")


def test_body_too_large(server, raw):
    big = json.dumps({"model": "x", "messages": [{"role": "user", "content": "a" * (9 * 1024 * 1024)}]}).encode()
    status, headers, data = raw_post_large(server.port, CHAT, big, {
        "Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"})
    assert status == 413, f"expected 413 for a 9 MiB body, got {status}: {data[:300]!r}"
    if data:
        err = json.loads(data)
        assert err["error"]["code"] == "request_too_large", err
    # The server is still fine afterwards.
    assert raw.get("/v1/models").status_code == 200


@pytest.mark.parametrize("field,value", [
    ("n", 17),
    ("response_format", {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "string", "not": {"const": "a"}}}}),
])
def test_unsupported(raw, model_id, field, value):
    r = raw.post(CHAT, json=body(model_id, **{field: value}))
    if field == "response_format":
        # Structured output is served (test_21); a schema keyword it can't enforce is refused by name.
        assert_openai_error(r, 400, code="unsupported_schema", param="response_format.json_schema.schema")
        assert "'not'" in r.json()["error"]["message"]
        return
    # n is served (test_02), up to 16 choices.
    assert_openai_error(r, 400, code="invalid_value", param=field)


def test_out_of_range_n_through_sdk(client, model_id):
    for n in (0, 17):
        with pytest.raises(openai.BadRequestError) as e:
            client.chat.completions.create(model=model_id, messages=HELLO, max_tokens=2, n=n)
        assert e.value.status_code == 400 and e.value.param == "n"


def test_n_1_is_fine(client, model_id):
    r = client.chat.completions.create(model=model_id, messages=HELLO, max_tokens=2, n=1)
    assert len(r.choices) == 1


def test_still_serving_after_errors(client, model_id):
    r = client.chat.completions.create(model=model_id, messages=HELLO, max_tokens=8, temperature=0)
    assert r.choices[0].message.content and r.choices[0].finish_reason in ("stop", "length")
