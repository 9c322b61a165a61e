"""Other wire formats (issue #20): OpenAI's Responses API (`/v1/responses`) and Anthropic's Messages API
(`/v1/messages`), each driven with its provider's own SDK. Both are translations onto the chat path, so
at temperature 0 they must answer exactly what chat answers for the same conversation: the tests compare
them token for token, and count the prompt tokens. Every response and stream event is validated, the
Responses API's against OpenAI's published schema and the Messages API's with Anthropic's SDK types
(see support.check_exchange)."""
import json

import anthropic
import jsonschema
import pydantic
import pytest

from support import API_KEY, MODEL_ID, assert_openai_error

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
           "required": ["city", "unit"], "additionalProperties": False}


@pytest.fixture(scope="module")
def claude(server, recorder):
    """Anthropic's SDK pointed at the server (it sends the key as x-api-key)."""
    http_client = recorder.client(server.base_url)
    c = anthropic.Anthropic(base_url=server.base_url, api_key=API_KEY, max_retries=0, timeout=120, http_client=http_client)
    yield c
    http_client.close()


# The Messages API's temperature: Anthropic's current SDK no longer has the parameter, older clients
# send it, and the server takes it.
T0 = {"temperature": 0}


def chat(client, messages, **kw):
    return client.chat.completions.create(model=MODEL_ID, messages=messages, temperature=0, **kw)


# ---------------------------------------------------------------------------------------------
# Responses API


def test_responses_answer_as_chat_does(client, raw):
    r = client.responses.create(model=MODEL_ID, instructions="You are terse.", input="Name three colours.", max_output_tokens=24,
                                temperature=0)
    assert r.id.startswith("resp_") and r.object == "response" and r.status in ("completed", "incomplete")
    c = chat(client, [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name three colours."}], max_tokens=24)
    assert r.output_text == c.choices[0].message.content
    assert r.usage.input_tokens == c.usage.prompt_tokens and r.usage.output_tokens == c.usage.completion_tokens
    assert (r.status == "incomplete") == (c.choices[0].finish_reason == "length")
    if r.status == "incomplete":
        assert r.incomplete_details.reason == "max_output_tokens"
    assert r.instructions == "You are terse." and r.max_output_tokens == 24
    # Its ledger record is the response's own id.
    assert r.model_extra["verity"]["record_id"] == r.id
    h = raw.post("/v1/responses", json={"model": MODEL_ID, "input": [{"role": "user", "content": [{"type": "input_text", "text": "Hi"}]}],
                                       "max_output_tokens": 4})
    assert h.status_code == 200 and h.headers["x-verity-record"] == h.json()["id"]


def test_responses_stream_events(client):
    events = list(client.responses.create(model=MODEL_ID, input="Count from one to five.", max_output_tokens=20, temperature=0,
                                          stream=True))
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] in ("response.completed", "response.incomplete")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response
    assert final.output_text == text and text
    assert next(e for e in events if e.type == "response.output_text.done").text == text
    c = chat(client, [{"role": "user", "content": "Count from one to five."}], max_tokens=20)
    assert text == c.choices[0].message.content and final.usage.output_tokens == c.usage.completion_tokens


def test_previous_response_id_continues_the_stored_conversation(client, raw):
    first = client.responses.create(model=MODEL_ID, input="My name is Ada.", max_output_tokens=12, temperature=0)
    second = client.responses.create(model=MODEL_ID, previous_response_id=first.id, input="What is my name?", max_output_tokens=12,
                                     temperature=0)
    assert second.previous_response_id == first.id
    same = chat(client, [{"role": "user", "content": "My name is Ada."}, {"role": "assistant", "content": first.output_text},
                         {"role": "user", "content": "What is my name?"}], max_tokens=12)
    assert second.usage.input_tokens == same.usage.prompt_tokens and second.output_text == same.choices[0].message.content
    assert client.responses.retrieve(first.id).output_text == first.output_text
    client.responses.delete(first.id)
    assert raw.get(f"/v1/responses/{first.id}").status_code == 404
    r = raw.post("/v1/responses", json={"model": MODEL_ID, "previous_response_id": first.id, "input": "Again?"})
    assert_openai_error(r, 404, code="previous_response_not_found", param="previous_response_id")
    # Not stored: nothing to retrieve or continue.
    unstored = client.responses.create(model=MODEL_ID, input="Hi", max_output_tokens=2, store=False)
    assert raw.get(f"/v1/responses/{unstored.id}").status_code == 404


def test_responses_function_calls_and_their_outputs(client):
    tools = [{"type": "function", "name": "get_weather", "description": "The weather in a city", "parameters": WEATHER}]
    r = client.responses.create(model=MODEL_ID, input="Weather in Paris?", tools=tools, tool_choice="required", max_output_tokens=80,
                                temperature=0)
    calls = [o for o in r.output if o.type == "function_call"]
    assert calls and r.status == "completed"
    for call in calls:
        assert call.name == "get_weather" and call.call_id
        jsonschema.validate(json.loads(call.arguments), WEATHER)
    outputs = [{"type": "function_call_output", "call_id": c.call_id, "output": json.dumps({"sky": "clear"})} for c in calls]
    follow = client.responses.create(model=MODEL_ID, previous_response_id=r.id, input=outputs, tools=tools, tool_choice="none",
                                     max_output_tokens=20, temperature=0)
    assert follow.output_text and not [o for o in follow.output if o.type == "function_call"]
    # Streamed: the call arrives as its item and argument events.
    events = list(client.responses.create(model=MODEL_ID, input="Weather in Oslo?", tools=tools,
                                          tool_choice={"type": "function", "name": "get_weather"}, max_output_tokens=80,
                                          temperature=0, stream=True))
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert done and all(json.loads(e.arguments)["city"] is not None for e in done)
    assert [o.type for o in events[-1].response.output].count("function_call") == len(done)


class Colour(pydantic.BaseModel):
    name: str
    rgb: list[int]


def test_responses_structured_output(client):
    r = client.responses.parse(model=MODEL_ID, input="A colour, please.", text_format=Colour, max_output_tokens=80, temperature=0)
    assert isinstance(r.output_parsed, Colour)
    r = client.responses.create(model=MODEL_ID, input="Say a JSON object.", text={"format": {"type": "json_object"}}, max_output_tokens=60)
    assert isinstance(json.loads(r.output_text), dict)


@pytest.mark.parametrize("body,param", [
    ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "http://x/y.png"}]}]}, "input[0].content[0]"),
    ({"background": True}, "background"),
    ({"truncation": "auto"}, "truncation"),
    ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
    ({"input": 5}, "input"),
])
def test_responses_refuse_what_they_cannot_do(raw, body, param):
    r = raw.post("/v1/responses", json={"model": MODEL_ID, "input": "Hi", **body})
    assert_openai_error(r, 400, param=param)


# ---------------------------------------------------------------------------------------------
# Messages API


def test_messages_answer_as_chat_does(claude, client):
    m = claude.messages.create(model=MODEL_ID, max_tokens=24, system="You are terse.", extra_body=T0,
                               messages=[{"role": "user", "content": "Name three animals."}])
    assert m.id.startswith("msg_") and m.type == "message" and m.role == "assistant"
    c = chat(client, [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name three animals."}], max_tokens=24)
    assert m.content[0].type == "text" and m.content[0].text == c.choices[0].message.content
    assert m.usage.input_tokens == c.usage.prompt_tokens and m.usage.output_tokens == c.usage.completion_tokens
    assert m.stop_reason == ("max_tokens" if c.choices[0].finish_reason == "length" else "end_turn")
    assert m.model_extra["verity"]["record_id"] == m.id


def test_messages_stream(claude, client):
    messages = [{"role": "user", "content": [{"type": "text", "text": "Count from one to five."}]}]
    with claude.messages.stream(model=MODEL_ID, max_tokens=20, extra_body=T0, messages=messages) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.content[0].text == text
    c = chat(client, [{"role": "user", "content": "Count from one to five."}], max_tokens=20)
    assert text == c.choices[0].message.content
    # The input tokens are known only at the end: message_delta's usage gives them.
    assert final.usage.input_tokens == c.usage.prompt_tokens and final.usage.output_tokens == c.usage.completion_tokens


def test_messages_stop_sequences_name_the_one_that_stopped(claude, client):
    messages = [{"role": "user", "content": "Write a sentence about the sea."}]
    whole = claude.messages.create(model=MODEL_ID, max_tokens=30, extra_body=T0, messages=messages).content[0].text
    words = whole.split()
    assert len(words) > 4, whole
    stop = " " + words[3]
    m = claude.messages.create(model=MODEL_ID, max_tokens=30, extra_body=T0, messages=messages, stop_sequences=["zzz", stop])
    assert m.stop_reason == "stop_sequence" and m.stop_sequence == stop
    assert m.content[0].text == whole[:whole.index(stop)]
    # Chat says which stop string it was as vLLM does, in the choice's stop_reason.
    c = chat(client, messages, max_tokens=30, stop=["zzz", stop])
    assert c.choices[0].finish_reason == "stop" and c.choices[0].model_extra["stop_reason"] == stop


def test_messages_tool_use_and_results(claude):
    tools = [{"name": "get_weather", "description": "The weather in a city", "input_schema": WEATHER}]
    messages = [{"role": "user", "content": "Weather in Rome?"}]
    m = claude.messages.create(model=MODEL_ID, max_tokens=80, extra_body=T0, tools=tools, tool_choice={"type": "any"}, messages=messages)
    assert m.stop_reason == "tool_use"
    uses = [b for b in m.content if b.type == "tool_use"]
    assert uses and all(u.name == "get_weather" for u in uses)
    for u in uses:
        jsonschema.validate(u.input, WEATHER)
    messages += [{"role": "assistant", "content": [b.model_dump() for b in m.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": u.id, "content": "Sunny, 24 C"} for u in uses]}]
    follow = claude.messages.create(model=MODEL_ID, max_tokens=20, extra_body=T0, tools=tools, tool_choice={"type": "none"},
                                    messages=messages)
    assert follow.content[0].type == "text" and follow.content[0].text
    # Streamed: the call's input arrives as input_json_delta, which the SDK parses back.
    with claude.messages.stream(model=MODEL_ID, max_tokens=80, extra_body=T0, tools=tools,
                                tool_choice={"type": "tool", "name": "get_weather"}, messages=messages[:1]) as stream:
        final = stream.get_final_message()
    streamed = [b for b in final.content if b.type == "tool_use"]
    assert streamed and final.stop_reason == "tool_use"
    jsonschema.validate(streamed[0].input, WEATHER)


def test_messages_count_tokens_is_the_prompt_the_answer_used(claude):
    tools = [{"name": "get_weather", "description": "The weather in a city", "input_schema": WEATHER}]
    kw = dict(model=MODEL_ID, system="Be brief.", messages=[{"role": "user", "content": "Weather in Rome?"}], tools=tools)
    counted = claude.messages.count_tokens(**kw)
    m = claude.messages.create(max_tokens=4, **kw)
    assert counted.input_tokens == m.usage.input_tokens
    plain = claude.messages.count_tokens(model=MODEL_ID, messages=[{"role": "user", "content": "Weather in Rome?"}])
    assert 0 < plain.input_tokens < counted.input_tokens


def test_messages_structured_output(claude):
    m = claude.messages.parse(model=MODEL_ID, max_tokens=80, extra_body=T0, output_format=Colour,
                              messages=[{"role": "user", "content": "A colour, please."}])
    assert isinstance(m.parsed_output, Colour)


def test_messages_errors_in_anthropics_shape(claude, server):
    with pytest.raises(anthropic.BadRequestError) as e:
        claude.messages.create(model=MODEL_ID, max_tokens=10,
                               messages=[{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "http://x/y.png"}}]}])
    assert e.value.body["type"] == "error" and e.value.body["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.BadRequestError) as e:
        claude.post("/v1/messages", body={"model": MODEL_ID, "messages": [{"role": "user", "content": "Hi"}]}, cast_to=object)
    assert "max_tokens" in e.value.body["error"]["message"]
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.create(model="no-such-model", max_tokens=4, messages=[{"role": "user", "content": "Hi"}])
    wrong = anthropic.Anthropic(base_url=server.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as e:
        wrong.messages.create(model=MODEL_ID, max_tokens=4, messages=[{"role": "user", "content": "Hi"}])
    assert e.value.body["error"]["type"] == "authentication_error"
