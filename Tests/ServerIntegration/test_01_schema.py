"""The schema check itself: it must accept OpenAI's own examples and reject broken bodies, so a
validator that silently accepts everything (bad $ref resolution, empty schema) fails here first.
No server needed."""
import copy, json

import pytest

from support import _SCHEMAS, check_exchange, schema_errors, sse_events

CHAT = {
    "id": "chatcmpl-123", "object": "chat.completion", "created": 1741570283, "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi.", "refusal": None},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
}
CHUNK = {"id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190, "model": "m",
         "choices": [{"index": 0, "delta": {"content": "Hello"}, "logprobs": None, "finish_reason": None}]}
USAGE_CHUNK = {"id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190, "model": "m",
               "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}
COMPLETION = {"id": "cmpl-1", "object": "text_completion", "created": 1589478378, "model": "m",
              "choices": [{"text": "x", "index": 0, "logprobs": None, "finish_reason": "length"}],
              "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}
MODEL = {"id": "m", "object": "model", "created": 1686935002, "owned_by": "verity"}
ERROR = {"error": {"message": "bad", "type": "invalid_request_error", "param": None, "code": None}}


def test_schema_file_is_self_contained():
    text = json.dumps(_SCHEMAS)
    assert "f85dbe22" in _SCHEMAS["$comment"] and "MIT" in _SCHEMAS["$comment"]
    assert '"discriminator":' not in text and '"nullable":' not in text
    for name in ("CreateChatCompletionResponse", "CreateChatCompletionStreamResponse", "CreateCompletionResponse",
                 "ListModelsResponse", "Model", "ErrorResponse"):
        assert name in _SCHEMAS["components"]["schemas"]


@pytest.mark.parametrize("name,body", [
    ("CreateChatCompletionResponse", CHAT), ("CreateChatCompletionStreamResponse", CHUNK),
    ("CreateChatCompletionStreamResponse", USAGE_CHUNK), ("CreateCompletionResponse", COMPLETION),
    ("Model", MODEL), ("ListModelsResponse", {"object": "list", "data": [MODEL]}), ("ErrorResponse", ERROR),
])
def test_valid_examples_pass(name, body):
    assert schema_errors(name, body) == []


def _without(body, *path):
    b = copy.deepcopy(body)
    node = b
    for p in path[:-1]:
        node = node[p]
    del node[path[-1]]
    return b


@pytest.mark.parametrize("name,body", [
    ("CreateChatCompletionResponse", _without(CHAT, "choices")),                   # the required one
    ("CreateChatCompletionResponse", _without(CHAT, "choices", 0, "message", "content")),
    ("CreateChatCompletionResponse", _without(CHAT, "choices", 0, "logprobs")),
    ("CreateChatCompletionResponse", {**CHAT, "object": "chat.completion.chunk"}),
    ("CreateChatCompletionResponse", {**CHAT, "created": "1741570283"}),
    ("CreateChatCompletionResponse", {**CHAT, "system_fingerprint": None}),
    ("CreateChatCompletionStreamResponse", _without(CHUNK, "choices", 0, "finish_reason")),
    ("CreateChatCompletionStreamResponse", _without(CHUNK, "choices", 0, "delta")),
    ("CreateChatCompletionStreamResponse", {**CHUNK, "choices": [{**CHUNK["choices"][0], "finish_reason": "eos"}]}),
    ("CreateChatCompletionStreamResponse", {**USAGE_CHUNK, "usage": {"prompt_tokens": 5}}),
    ("CreateCompletionResponse", _without(COMPLETION, "choices", 0, "logprobs")),
    ("Model", _without(MODEL, "owned_by")),
    ("ListModelsResponse", {"object": "list", "data": [_without(MODEL, "created")]}),
    ("ErrorResponse", {"error": {"message": "bad", "type": "x"}}),
    ("ErrorResponse", {"message": "bad"}),
])
def test_broken_bodies_fail(name, body):
    assert schema_errors(name, body), f"validator accepted a broken {name}: {body}"


def test_nullable_became_null_alternative():
    # Upstream marks the chunk's finish_reason (an enum) `nullable: true`: null must pass, junk must not.
    assert schema_errors("CreateChatCompletionStreamResponse", CHUNK) == []
    assert schema_errors("CreateChatCompletionStreamResponse", {**USAGE_CHUNK, "usage": None}) == []


class _FakeExchange:
    def __init__(self, path, status, body, sse=False):
        self.method, self.path, self.status, self.complete = "POST", path, status, True
        self.headers = {"content-type": "text/event-stream" if sse else "application/json"}
        self.body = body.encode()
        self.is_sse = sse

    def decoded_body(self):
        return self.body


def test_recorded_exchanges_are_checked():
    ok_stream = "".join(f"data: {json.dumps(c)}\n\n" for c in (CHUNK, USAGE_CHUNK)) + "data: [DONE]\n\n"
    assert check_exchange(_FakeExchange("/v1/chat/completions", 200, ok_stream, sse=True)) == []
    bad_stream = f"data: {json.dumps(_without(CHUNK, 'choices'))}\n\ndata: [DONE]\n\n"
    assert check_exchange(_FakeExchange("/v1/chat/completions", 200, bad_stream, sse=True))
    no_done = f"data: {json.dumps(CHUNK)}\n\n"
    assert check_exchange(_FakeExchange("/v1/chat/completions", 200, no_done, sse=True))
    assert check_exchange(_FakeExchange("/v1/chat/completions", 200, json.dumps(_without(CHAT, "choices"))))
    assert check_exchange(_FakeExchange("/v1/completions", 400, json.dumps({"error": "nope"})))
    assert check_exchange(_FakeExchange("/v1/models/m", 200, json.dumps(MODEL))) == []
    # Completion stream chunks: finish_reason null is excused (OpenAI sends it), a missing one is not.
    cchunk = {**COMPLETION, "choices": [{**COMPLETION["choices"][0], "finish_reason": None}]}
    ok = f"data: {json.dumps(cchunk)}\n\ndata: {json.dumps(COMPLETION)}\n\ndata: [DONE]\n\n"
    assert check_exchange(_FakeExchange("/v1/completions", 200, ok, sse=True)) == []
    bad = f"data: {json.dumps(_without(COMPLETION, 'choices', 0, 'finish_reason'))}\n\ndata: [DONE]\n\n"
    assert check_exchange(_FakeExchange("/v1/completions", 200, bad, sse=True))


def test_sse_parsing():
    assert sse_events("data: 1\n\ndata:2\r\n\r\n: comment\n\ndata: [DONE]\n\n") == ["1", "2", "[DONE]"]
    assert sse_events("data: 1\n\ndata: {partial") == ["1"]
