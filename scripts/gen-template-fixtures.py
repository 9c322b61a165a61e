#!/usr/bin/env python3
"""Generate ChatTemplates fidelity fixtures by rendering chat templates with Python jinja2,
configured exactly like transformers' `_compile_jinja_template` (ImmutableSandboxedEnvironment,
trim_blocks, lstrip_blocks, loopcontrols, `generation` tag, raise_exception, strftime_now, tojson).

Usage: scripts/gen-template-fixtures.py [--templates DIR] [--gguf MODEL.gguf]
Writes Tests/ChatTemplatesTests/Fixtures/{templates/*.jinja, fixtures.json}.
"""
import argparse
import json
import os
import shutil
from datetime import datetime
from pathlib import Path

import jinja2
import jinja2.ext
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Deterministic clock for strftime_now (naive local time, like datetime.now()).
FIXED_NOW = datetime(2025, 1, 15, 10, 30, 45)


def make_env():
    class AssistantTracker(Extension):
        # transformers' {% generation %} ... {% endgeneration %} tag; renders its body unchanged.
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(lineno)

        @jinja2.pass_eval_context
        def _generation_support(self, context, caller):
            return caller()

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return FIXED_NOW.strftime(format)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name, e.g. Paris"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
            },
        },
    }
]

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
CONVERSATIONS = {
    "system_user": [SYSTEM, {"role": "user", "content": "Hello! What's 2+2?"}],
    "user_only": [{"role": "user", "content": "Write a haiku about the sea."}],
    "multi_turn": [
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello! How can I help you today?"},
        {"role": "user", "content": "Tell me a joke.\nMake it short."},
    ],
    "system_multi_turn": [
        SYSTEM,
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "The capital of France is Paris."},
        {"role": "user", "content": "And of Germany? Answer in \"quotes\" & <tags>, ünïcödé 🙂"},
    ],
    "tools": [SYSTEM, {"role": "user", "content": "What's the weather in Paris?"}],
}
BOS, EOS = "<s>", "</s>"


# Interpreter feature snippets: rendered with `ctx` as context; Swift unit tests compare byte-equal.
SNIPPETS = [
    "a\n  {% if true %}\n  x\n  {% endif %}\n  b {{ 1 }}\n",
    "  {%- if true -%}  x  {%- endif %}  y\n",
    "{% for i in range(3) +%}\n{{ i }}{% endfor %}",
    "  {%+ if true %}x{% endif %}",
    "{# comment #}\n  {# c2 #}\nz",
    "{% raw %}{{ not rendered }}{% endraw %}",
    "{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }}{{ loop.cycle('o','e') }};{% endfor %}",
    "{% for x in [1,2,3,4] if x is even %}{{ x }}{{ loop.length }}{% else %}none{% endfor %}",
    "{% for x in [] %}{{ x }}{% else %}empty{% endfor %}",
    "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}",
    "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c %}block {{ a }}{% endset %}{{ c }}",
    "{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}",
    "{% set c = 0 %}{% for i in range(3) %}{% set c = c + 1 %}{{ c }}{% endfor %}{{ c }}",
    "{% macro m(a, b='d') %}[{{ a }}{{ b }}{{ varargs }}{{ kwargs }}]{% endmacro %}{{ m(1) }}{{ m(1, 2, 3, x=4) }}",
    "{% macro w() %}<{{ caller() }}>{% endmacro %}{% call w() %}inner{% endcall %}",
    "{% filter upper %}hello {{ 'x' }}{% endfilter %}",
    "{{ [1, 'a', none, true, 1.0, {'k': [2.5, false]}] }}|{{ (1,) }}|{{ 1, 2 }}",
    "{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 7 / 2 }} {{ 4 / 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 1e16 }} {{ 1.5e-5 }} {{ 0.1 + 0.2 }} {{ 1_000 }}",
    "{{ 'ab' * 3 }} {{ [1] * 2 }} {{ [1] + [2] }} {{ 'a' ~ 1 ~ none }} {{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' < 'b' }} {{ [1,2] < [1,3] }}",
    "{{ 'b' in 'abc' }} {{ 2 not in [1] }} {{ 'k' in {'k': 1} }} {{ 0 and 1 }} {{ 0 or 'x' }} {{ not 0 }} {{ 'y' if 0 else 'n' }}[{{ 'y' if 0 }}]",
    "{{ 'hello'[1:3] }} {{ 'hello'[::-1] }} {{ [1,2,3,4,5][-2:] }} {{ [1,2,3,4,5][::2] }} {{ 'hello'[-1] }} {{ [1,2,3][5] }}|{{ 'héllo'[1] }}",
    "{{ x is defined }} {{ y is undefined }} {{ none is none }} {{ 1 is number }} {{ 1.0 is float }} {{ 1 is integer }} {{ 'a' is string }} {{ {} is mapping }} {{ [] is iterable }} {{ 'a' is sequence }} {{ true is boolean }} {{ true is true }} {{ 3 is odd }} {{ 9 is divisibleby 3 }} {{ 2 is eq 2 }} {{ 1 is lt 2 }} {{ 1 is in [1] }} {{ range is callable }}",
    "{{ '  hi  '|trim }}|{{ 'xxhixx'|trim('x') }}|{{ 'Hello World'|upper }}|{{ 'ABC'|lower }}|{{ 'hello wORLD-x(y'|title }}|{{ 'hELLO'|capitalize }}|{{ 'aaa'|replace('a', 'b', 2) }}",
    "{{ [1,2,3]|join(', ') }}|{{ undef|default('d') }}|{{ ''|default('e', true) }}|{{ [3,1,2]|first }}{{ [3,1,2]|last }}|{{ 'abc'|list }}|{{ 42|string }}|{{ '42'|int + 1 }}|{{ 'x'|int(7) }}|{{ '3.5'|float }}|{{ -3|abs }}|{{ 2.567|round(2) }}|{{ 2.5|round }}",
    "{{ [3,1,2]|reverse|list }}|{{ 'abc'|reverse }}|{{ ['b','A','c']|sort }}|{{ [{'n': 2}, {'n': 1}]|sort(attribute='n') }}|{{ [1,2,1,3]|unique|list }}|{{ [{'a': 1}, {'a': 2}]|map(attribute='a')|list }}|{{ ['a','b']|map('upper')|list }}",
    "{{ [1,2,3,4]|select('odd')|list }}|{{ [1,2,3,4]|reject('odd')|list }}|{{ [{'r': 'u'}, {'r': 's'}]|selectattr('r', 'equalto', 'u')|list }}|{{ [{'r': 1}, {'r': 0}]|rejectattr('r')|list }}|{{ {'b': 1, 'a': 2}|dictsort }}|{{ {'a': 1}|items|list }}",
    "{{ {'a': [1, 'é', none, true], 'b': 1.5}|tojson }}|{{ {'a': 1, 'b': [1, 2]}|tojson(indent=2) }}|{{ 'x\"\n'|tojson }}|{{ {'b': 1, 'a': 2}|tojson(sort_keys=true, separators=(',', ':')) }}",
    "{{ 'a\nb\n\nc'|indent(2) }}|{{ 'a\nb'|indent(2, true) }}|{{ '<a href=\"x\">&</a>'|e }}|{{ 'one two  three'|wordcount }}|{{ 'ab'|center(6) }}|{{ [1,2,3,4,5]|batch(2)|list }}|{{ [1,2,3,4,5]|slice(2)|list }}",
    "{{ [1,2,3]|sum }}|{{ [3,1,2]|min }}{{ [3,1,2]|max }}|{{ '%s-%d'|format('a', 3) }}|{{ 'hello world foo bar'|truncate(9) }}|{{ [1,2]|length }}{{ 'abc'|count }}|{{ '<b>x</b>  y'|striptags }}",
    "{{ ' a b '.strip() }}|{{ 'xxaxx'.lstrip('x') }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a b c'.rsplit(' ', 1) }}|{{ 'abc'.startswith(('x', 'a')) }}|{{ 'abc'.endswith('bc') }}",
    "{{ 'hello'.upper() }}{{ 'HeLLo'.lower() }}{{ 'hello world'.title() }}{{ 'hello'.capitalize() }}|{{ 'aaa'.replace('a', 'b', 1) }}|{{ 'hello'.find('l') }}{{ 'hello'.rfind('l') }}{{ 'hello'.find('z') }}{{ 'hello'.index('e') }}{{ 'hello'.count('l') }}",
    "{{ '-'.join(['a', 'b']) }}|{{ '{} {x}'.format(1, x=2) }}{{ '{0}{0}'.format(3) }}|{{ '12'.isdigit() }}{{ 'ab'.isalpha() }}{{ ' '.isspace() }}|{{ {'a': 1}.items()|list }}{{ {'a': 1}.keys()|list }}{{ {'a': 1}.values()|list }}{{ {'a': 1}.get('b', 'z') }}{{ {'a': 1}.get('a') }}|{{ [1,2].index(2) }}",
    "{{ undef }}|{{ undef|length }}|{{ undef is defined }}|{{ none.x }}|{{ 'abc'.nope }}|{{ undef == undef }}|{% for x in undef %}{{ x }}{% endfor %}|{{ undef ~ 'x' }}",
    "{% set d = {4096: 512, 1: 'a'} %}{{ d[4096] }}{{ d }}{% for k, v in d|dictsort %}{{ k }}={{ v }};{% endfor %}{{ d|tojson }}",
    "{{ dict(a=1, b=2) }}{{ range(2, 8, 3)|list }}{{ messages|selectattr('role', 'equalto', 'x') is iterable }}{% if [1]|select('odd') %}gen-truthy{% endif %}",
    "{% with a = 5 %}{{ a }}{% endwith %}{{ a }}|{% generation %}gen{% endgeneration %}|{{ strftime_now('%Y-%m-%d %H:%M:%S %b %B %a %A %-d %j %p %I %y') }}",
    "{% for a in [[1, [[2, []]]], [3, []]] recursive %}{{ a[0] }}{% if a[1] %}({{ loop(a[1]) }}){% endif %}{% endfor %}",
]
SNIPPET_CTX = {"x": 1, "messages": [{"role": "user", "content": "hi"}]}


def render(env, source, messages, add_generation_prompt, tools):
    template = env.from_string(source)
    return template.render(
        messages=messages,
        tools=tools,
        documents=None,
        add_generation_prompt=add_generation_prompt,
        bos_token=BOS,
        eos_token=EOS,
    )


def smollm2_template(gguf_path):
    try:
        import gguf
    except ImportError:
        return None
    if not os.path.exists(gguf_path):
        return None
    reader = gguf.GGUFReader(gguf_path)
    field = reader.fields["tokenizer.chat_template"]
    return bytes(field.parts[field.data[0]]).decode()


def main():
    cache = Path(os.environ.get("VERITY_CACHE_DIR", Path.home() / ".cache" / "verity"))
    ap = argparse.ArgumentParser()
    ap.add_argument("--templates", default=str(cache / "templates"))
    ap.add_argument("--gguf", default=str(cache / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "Tests/ChatTemplatesTests/Fixtures"))
    args = ap.parse_args()

    out = Path(args.out)
    tdir = out / "templates"
    if tdir.exists():
        shutil.rmtree(tdir)
    tdir.mkdir(parents=True)

    sources = {}
    for path in sorted(Path(args.templates).glob("*.jinja")):
        sources[path.name] = path.read_text(encoding="utf-8")
    smol = smollm2_template(args.gguf)
    if smol is not None:
        sources["SmolLM2-135M-Instruct.jinja"] = smol

    env = make_env()
    cases = []
    for name, source in sources.items():
        (tdir / name).write_text(source, encoding="utf-8")
        for conv_name, messages in CONVERSATIONS.items():
            tools = TOOLS if conv_name == "tools" else None
            for agp in (False, True):
                case = {
                    "template": name,
                    "conversation": conv_name,
                    "messages": messages,
                    "tools": tools,
                    "add_generation_prompt": agp,
                    "bos": BOS,
                    "eos": EOS,
                }
                try:
                    case["expected"] = render(env, source, json.loads(json.dumps(messages)), agp, tools)
                except Exception as e:  # expected error
                    case["error"] = f"{type(e).__name__}: {e}"
                    case["error_message"] = str(e)
                    case["error_type"] = type(e).__name__
                cases.append(case)

    snippets = []
    for src in SNIPPETS:
        entry = {"source": src}
        try:
            entry["expected"] = env.from_string(src).render(**SNIPPET_CTX)
        except Exception as e:
            entry["error"] = f"{type(e).__name__}: {e}"
        snippets.append(entry)
    (out / "snippets.json").write_text(
        json.dumps({"jinja2_version": jinja2.__version__, "context": SNIPPET_CTX, "snippets": snippets},
                   ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    doc = {
        "jinja2_version": jinja2.__version__,
        "now": FIXED_NOW.isoformat(),
        "bos": BOS,
        "eos": EOS,
        "cases": cases,
    }
    (out / "fixtures.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    errors = sum(1 for c in cases if "error" in c)
    print(f"jinja2 {jinja2.__version__}: {len(sources)} templates, {len(cases)} cases ({errors} expected errors)")


if __name__ == "__main__":
    main()
