"""Tool calling (issue #20): `tools`, `tool_choice` (`auto`, `none`, `required`, a named function) and
`parallel_tool_calls` on chat completions. With `required` or a named function the call is decoded
under a grammar of the call syntax whose arguments follow the function's parameter schema, so they
always validate, even from SmolLM2-135M; tool results go back through the template. Driven with the
openai SDK (streaming and not) and LangChain's `bind_tools` agent loop."""
import json

import jsonschema
import pytest

from support import MODEL_ID, assert_openai_error

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
           "required": ["city", "unit"], "additionalProperties": False}
ADD = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "The current weather in a city", "parameters": WEATHER}},
         {"type": "function", "function": {"name": "add", "description": "Adds two integers", "parameters": ADD}}]
SCHEMAS = {"get_weather": WEATHER, "add": ADD}


def check_calls(calls, only=None):
    assert calls, "no tool calls"
    for call in calls:
        assert call.type == "function" and call.id.startswith("call_")
        assert call.function.name in SCHEMAS and (only is None or call.function.name == only), call
        jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])


def test_required_call_validates_and_the_result_goes_back(client):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    for seed in range(3):
        r = client.chat.completions.create(model=MODEL_ID, messages=messages, tools=TOOLS, tool_choice="required",
                                           temperature=0.9, seed=seed, max_tokens=120)
        choice = r.choices[0]
        assert choice.finish_reason == "tool_calls", choice
        check_calls(choice.message.tool_calls)
    call = choice.message.tool_calls[0]
    messages += [choice.message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature": 18, "sky": "clear"})}]
    r = client.chat.completions.create(model=MODEL_ID, messages=messages, tools=TOOLS, tool_choice="none", temperature=0, max_tokens=40)
    assert r.choices[0].finish_reason in ("stop", "length") and r.choices[0].message.content
    assert not r.choices[0].message.tool_calls
    # The conversation with the call and its result is longer than the question alone.
    first = client.chat.completions.create(model=MODEL_ID, messages=messages[:1], max_tokens=1)
    assert r.usage.prompt_tokens > first.usage.prompt_tokens + 20


def test_named_function_and_streamed_tool_call_deltas(client):
    stream = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Add 2 and 3."}], tools=TOOLS,
                                            tool_choice={"type": "function", "function": {"name": "add"}}, temperature=0,
                                            max_tokens=80, stream=True)
    deltas, finish = [], None
    for chunk in stream:
        for c in chunk.choices:
            deltas += c.delta.tool_calls or []
            finish = c.finish_reason or finish
    assert finish == "tool_calls"
    check_calls(deltas, only="add")
    assert [d.index for d in deltas] == list(range(len(deltas)))


def test_parallel_calls_and_auto(client):
    r = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Weather in Rome and in Oslo?"}],
                                       tools=TOOLS, tool_choice="required", parallel_tool_calls=True, temperature=0, max_tokens=200)
    check_calls(r.choices[0].message.tool_calls)
    r = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Weather in Rome?"}],
                                       tools=TOOLS, tool_choice="required", parallel_tool_calls=False, temperature=0, max_tokens=200)
    assert len(r.choices[0].message.tool_calls) == 1
    # auto: the model chooses; whatever it chose comes back well-formed.
    r = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Hello!"}], tools=TOOLS, temperature=0,
                                       max_tokens=40)
    m = r.choices[0].message
    assert (m.tool_calls and r.choices[0].finish_reason == "tool_calls") or (m.content and not m.tool_calls)
    if m.tool_calls:
        check_calls(m.tool_calls)


@pytest.mark.parametrize("extra,param", [
    ({"tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
    ({"tool_choice": "sometimes"}, "tool_choice"),
    ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools[0].function.name"),
    ({"tools": [{"type": "retrieval"}]}, "tools[0]"),
    ({"tools": [], "tool_choice": "required"}, "tool_choice"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {
        "x": {"type": "string", "pattern": "(?=a)"}}}}}], "tool_choice": "required"}, "tools"),
])
def test_malformed_tools_are_400s(raw, extra, param):
    body = {"model": MODEL_ID, "messages": [{"role": "user", "content": "hi"}], "tools": TOOLS, **extra}
    assert_openai_error(raw.post("/v1/chat/completions", json=body), 400, param=param)


def test_langchain_bind_tools_agent_loop(server):
    pytest.importorskip("langchain_openai")
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI
    import support

    @tool
    def multiply(a: int, b: int) -> int:
        """Multiplies two integers."""
        return a * b

    server_url = server.base_url
    llm = ChatOpenAI(model=MODEL_ID, base_url=server_url + "/v1", api_key=support.API_KEY, temperature=0, max_tokens=120)
    agent = llm.bind_tools([multiply], tool_choice="multiply")
    for streaming in (False, True):
        messages = [HumanMessage("What is 6 times 7?")]
        if streaming:
            ai = None
            for piece in agent.stream(messages):
                ai = piece if ai is None else ai + piece
        else:
            ai = agent.invoke(messages)
        assert ai.tool_calls and ai.tool_calls[0]["name"] == "multiply", ai
        args = ai.tool_calls[0]["args"]
        assert isinstance(args["a"], int) and isinstance(args["b"], int)
        messages += [ai, ToolMessage(str(multiply.invoke(args)), tool_call_id=ai.tool_calls[0]["id"])]
        final = llm.invoke(messages)
        assert isinstance(final.content, str) and final.content
