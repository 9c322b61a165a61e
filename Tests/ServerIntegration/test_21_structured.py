"""Structured output (issue #20): `response_format` json_object and json_schema on chat, the same and
a GBNF `verity.grammar` on completions, enforced by grammar-constrained decoding. The official SDK's
`.parse()` with pydantic models gets a valid object back for 21 schemas (nested, recursive, enums,
bounds, formats, unions) even from SmolLM2-135M: the grammar, not the model, guarantees it. A schema
feature the compiler can't enforce is a 400 that names it, and the schema is recorded in the ledger."""
import datetime, enum, json, re, uuid
from typing import Annotated, Dict, List, Literal, Optional, Union

import jsonschema
import pytest
from pydantic import BaseModel, Field

from support import MODEL_ID, assert_openai_error, sse_events


class Color(str, enum.Enum):
    red = "red"
    green = "green"
    blue = "blue"


class City(BaseModel):
    name: str
    population: int


class Address(BaseModel):
    street: str
    city: City


class Person(BaseModel):
    name: str
    age: int
    address: Address


class TreeNode(BaseModel):
    label: str
    children: List["TreeNode"]


class Step(BaseModel):
    explanation: str
    output: str


class MathReasoning(BaseModel):
    steps: Annotated[List[Step], Field(max_length=3)]
    final_answer: str


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: Annotated[int, Field(ge=0, le=9)]


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool


class Pet(BaseModel):
    pet: Union[Cat, Dog] = Field(discriminator="kind")


class Expr(BaseModel):
    op: Literal["+", "-", "*", "/"]
    left: Union[float, "Expr"]
    right: Union[float, "Expr"]


SCHEMAS = {
    "flat": ("Describe a book.", type("Book", (BaseModel,), {"__annotations__": {"title": str, "author": str, "year": int}})),
    "booleans": ("Is water wet? Is fire cold?", type("Facts", (BaseModel,), {"__annotations__": {"water_wet": bool, "fire_cold": bool}})),
    "numbers": ("Give the coordinates of Paris.", type("Point", (BaseModel,), {"__annotations__": {"lat": float, "lon": float}})),
    "enum": ("What color is the sky?", type("Sky", (BaseModel,), {"__annotations__": {"color": Color}})),
    "literal": ("Rate this movie.", type("Rating", (BaseModel,), {"__annotations__": {"verdict": Literal["good", "bad", "meh"]}})),
    "list": ("List three fruits.", type("Fruits", (BaseModel,), {"__annotations__": {"fruits": List[str]}})),
    "bounded-list": ("Name two planets.", type("Planets", (BaseModel,), {"__annotations__": {"planets": Annotated[List[str], Field(min_length=2, max_length=2)]}})),
    "int-bounds": ("Rate pizza from 1 to 5.", type("Score", (BaseModel,), {"__annotations__": {"score": Annotated[int, Field(ge=1, le=5)]}})),
    "optional": ("Describe a user; the nickname may be unknown.", type("User", (BaseModel,), {"__annotations__": {"name": str, "nickname": Optional[str]}})),
    "nested": ("Describe a person and where they live.", Person),
    "recursive": ("Give a small family tree.", TreeNode),
    "reasoning": ("Solve 8x + 7 = -23 step by step.", MathReasoning),
    "discriminated-union": ("Describe a pet.", Pet),
    "recursive-union": ("Write 1 + 2 * 3 as an expression tree.", Expr),
    "dict": ("Count the letters of 'hello'.", type("Counts", (BaseModel,), {"__annotations__": {"counts": Dict[str, int]}})),
    "date": ("When did Apollo 11 land?", type("Event", (BaseModel,), {"__annotations__": {"name": str, "day": datetime.date}})),
    "datetime": ("When is the meeting?", type("Meeting", (BaseModel,), {"__annotations__": {"topic": str, "at": datetime.datetime}})),
    "uuid": ("Make an order.", type("Order", (BaseModel,), {"__annotations__": {"id": uuid.UUID, "items": List[str]}})),
    "tuple-like": ("A key and a value.", type("Pair", (BaseModel,), {"__annotations__": {"key": str, "value": Union[int, str, None]}})),
    "pattern": ("Make up a flight number.", type("Flight", (BaseModel,), {"__annotations__": {"number": Annotated[str, Field(pattern=r"^[A-Z]{2}\d{3,4}$")]}})),
    "string-lengths": ("A short code name.", type("Code", (BaseModel,), {"__annotations__": {"code": Annotated[str, Field(min_length=3, max_length=6)]}})),
}


def parse(client, **kw):
    parse_fn = getattr(client.chat.completions, "parse", None) or client.beta.chat.completions.parse
    return parse_fn(**kw)


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_sdk_parse_returns_a_valid_object_for_every_schema(client, name):
    prompt, model = SCHEMAS[name]
    completion = parse(client, model=MODEL_ID, messages=[{"role": "user", "content": prompt}], response_format=model,
                       temperature=0, max_tokens=400)
    choice = completion.choices[0]
    assert choice.finish_reason == "stop", choice.message.content
    assert isinstance(choice.message.parsed, model), choice.message.content
    # The text itself validates against the schema the SDK sent.
    jsonschema.validate(json.loads(choice.message.content), model.model_json_schema())


def test_sampled_and_streamed_output_follows_the_schema(client, raw):
    schema = Person.model_json_schema()
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}}
    for seed in range(4):
        r = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Invent a person."}],
                                           response_format=fmt, temperature=1.0, seed=seed, max_tokens=400)
        assert r.choices[0].finish_reason == "stop"
        jsonschema.validate(json.loads(r.choices[0].message.content), schema)
    resp = raw.post("/v1/chat/completions", json={"model": MODEL_ID, "messages": [{"role": "user", "content": "Invent a person."}],
                                                 "response_format": fmt, "stream": True, "max_tokens": 400, "seed": 5,
                                                 "logprobs": True, "top_logprobs": 3})
    assert resp.status_code == 200, resp.text
    events = [json.loads(e) for e in sse_events(resp.text) if e != "[DONE]"]
    text = "".join(c["delta"].get("content") or "" for e in events for c in e["choices"])
    jsonschema.validate(json.loads(text), schema)
    tokens = [t for e in events for c in e["choices"] if c.get("logprobs") for t in c["logprobs"]["content"]]
    assert "".join(t["token"] for t in tokens) == text
    assert all(len(t["top_logprobs"]) <= 3 and all(a["logprob"] > -1e30 for a in t["top_logprobs"]) for t in tokens)


def test_json_object_mode_returns_an_object(client):
    r = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Describe a cat as JSON."}],
                                       response_format={"type": "json_object"}, temperature=0, max_tokens=300)
    if r.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(r.choices[0].message.content), dict)
    else:
        assert r.choices[0].finish_reason == "length"


def test_length_is_reported_when_the_document_is_cut(client):
    fmt = {"type": "json_schema", "json_schema": {"name": "p", "schema": Person.model_json_schema()}}
    r = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Invent a person."}],
                                       response_format=fmt, temperature=0, max_tokens=5)
    assert r.choices[0].finish_reason == "length"
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.choices[0].message.content)


def test_completions_take_a_gbnf_grammar_and_a_schema(raw):
    grammar = 'root ::= answer "." \nanswer ::= "yes" | "no" | "maybe"'
    for seed in range(3):
        r = raw.post("/v1/completions", json={"model": MODEL_ID, "prompt": "Is the sky blue? Answer:", "max_tokens": 20,
                                              "temperature": 1.0, "seed": seed, "verity": {"grammar": grammar}})
        assert r.status_code == 200, r.text
        choice = r.json()["choices"][0]
        assert choice["text"] in ("yes.", "no.", "maybe.") and choice["finish_reason"] == "stop", choice
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 10, "maximum": 20}}, "required": ["n"]}
    for body in ({"verity": {"json_schema": schema}},
                 {"response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}}}):
        r = raw.post("/v1/completions", json={"model": MODEL_ID, "prompt": "A number:", "max_tokens": 30, "temperature": 0, **body})
        assert r.status_code == 200, r.text
        value = json.loads(r.json()["choices"][0]["text"])
        assert 10 <= value["n"] <= 20


@pytest.mark.parametrize("schema,named", [
    ({"type": "object", "properties": {"zip": {"type": "string", "pattern": "(?<=a)b"}}}, "look-around"),
    ({"type": "object", "properties": {"email": {"type": "string", "format": "email"}}}, "'email'"),
    ({"type": "number", "maximum": 3.5}, "'maximum'"),
    ({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, "uniqueItems"),
    ({"$ref": "#/$defs/Nowhere"}, "points to nothing"),
    ({"type": "thing"}, "unknown type 'thing'"),
])
def test_a_schema_the_compiler_cannot_enforce_is_a_400_naming_it(raw, schema, named):
    r = raw.post("/v1/chat/completions", json={"model": MODEL_ID, "messages": [{"role": "user", "content": "hi"}],
                                               "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}})
    assert_openai_error(r, 400, param="response_format.json_schema.schema")
    assert named in r.json()["error"]["message"], r.text


@pytest.mark.parametrize("body,param", [
    ({"response_format": {"type": "xml"}}, "response_format.type"),
    ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
    ({"response_format": "json"}, "response_format"),
])
def test_malformed_response_formats_are_400s(raw, body, param):
    r = raw.post("/v1/chat/completions", json={"model": MODEL_ID, "messages": [{"role": "user", "content": "hi"}], **body})
    assert_openai_error(r, 400, param=param)


def test_bad_gbnf_is_a_400_with_the_line(raw):
    r = raw.post("/v1/completions", json={"model": MODEL_ID, "prompt": "x", "verity": {"grammar": 'root ::= "a" | \n  ( "b"'}})
    assert_openai_error(r, 400, param="verity.grammar")
    assert "line" in r.json()["error"]["message"]
    r = raw.post("/v1/completions", json={"model": MODEL_ID, "prompt": "x", "verity": {"grammar": "root ::= root \"a\""}})
    assert_openai_error(r, 400, param="verity.grammar")
    assert "left-recursive" in r.json()["error"]["message"]


def test_hostile_grammars_are_400s_and_the_server_lives(raw):
    deep = "root ::= " + "(" * 20000 + '"a"' + ")" * 20000
    r = raw.post("/v1/completions", json={"model": MODEL_ID, "prompt": "x", "max_tokens": 3, "verity": {"grammar": deep}})
    assert_openai_error(r, 400, param="verity.grammar")
    chain = "".join(f"r{i} ::= r{i + 1}\n" for i in range(50000)) + 'r50000 ::= "z"\nroot ::= r0\n'
    r = raw.post("/v1/completions", json={"model": MODEL_ID, "prompt": "x", "max_tokens": 3, "verity": {"grammar": chain}})
    assert r.status_code == 200 and r.json()["choices"][0]["text"] == "z", r.text
    r = raw.post("/v1/completions", json={"model": MODEL_ID, "prompt": "x", "verity": {"grammar": 'root ::= "a"{0,9999999}'}})
    assert_openai_error(r, 400, param="verity.grammar")
    defs = {f"D{i}": {"$ref": f"#/$defs/D{i + 1}"} for i in range(100)}
    defs["D100"] = {"type": "integer"}
    for schema, named in (({"$defs": defs, "$ref": "#/$defs/D0"}, "nest more than"),
                          ({"$defs": {"A": {"anyOf": [{"$ref": "#/$defs/A"}, {"type": "null"}]}}, "$ref": "#/$defs/A"}, "refers to itself")):
        r = raw.post("/v1/chat/completions", json={"model": MODEL_ID, "messages": [{"role": "user", "content": "x"}],
                                                   "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}})
        assert_openai_error(r, 400, param="response_format.json_schema.schema")
        assert named in r.json()["error"]["message"], r.text
    assert raw.get("/health").status_code == 200
