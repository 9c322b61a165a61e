#!/usr/bin/env python3
"""Extract the response schemas the server integration tests validate against from OpenAI's
published OpenAPI description, and write them as one self-contained JSON document.

Input: openapi.yaml from openai/openai-openapi (commit f85dbe22, MIT licence), by default
/work/shared/openai/openapi.yaml. Output: Tests/ServerIntegration/openai-schemas.json (committed, so
CI on a clean clone does not need the 3 MB yaml) and Tests/ServerIntegration/OPENAI-LICENSE.

The yaml is not loadable by strict JSON Schema validators as shipped, so this script:
  * keeps only the closure (following $ref) of the root schemas listed in ROOTS;
  * removes every `discriminator` (many have no `mapping`; they only steer code generators);
  * turns OpenAPI 3.0-style `nullable: true` into `anyOf: [<schema>, {"type": "null"}]`;
  * drops `x-oaiMeta` (documentation examples), which is not schema.
References stay as `#/components/schemas/Name`, so a validator resolves them against the output
document's root (see Tests/ServerIntegration/openai_schema.py).

Usage: scripts/extract-openai-schemas.py [--yaml PATH] [--license PATH] [--out DIR]
"""
import argparse, datetime, json, re, shutil, sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SOURCE_COMMIT = "f85dbe22"
ROOTS = [
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    "CreateCompletionResponse",
    "ListModelsResponse",
    "Model",
    "DeleteModelResponse",
    "ErrorResponse",
    "Response",
    "ResponseStreamEvent",
]
REF = re.compile(r"^#/components/schemas/(.+)$")
# The operations the server answers, for openai-openapi-served.json, which schemathesis drives
# (Tests/ServerIntegration/test_24_schemathesis.py): the OpenAPI document cut to them.
SERVED_OPERATIONS = ["createChatCompletion", "createCompletion", "listModels", "retrieveModel",
                     "createResponse", "getResponse", "deleteResponse"]
ANY_REF = re.compile(r"^#/components/([A-Za-z]+)/(.+)$")
# Keywords whose values are data, not schemas: never rewritten.
DATA_KEYWORDS = {"enum", "const", "default", "example", "examples", "required"}


def fix(node):
    """Rewrite one schema node (recursively) into plain JSON Schema 2020-12."""
    if isinstance(node, list):
        return [fix(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("discriminator", "nullable", "x-oaiMeta"):
            continue
        if key in DATA_KEYWORDS:
            out[key] = value
        elif key in ("properties", "patternProperties", "$defs", "dependentSchemas") and isinstance(value, dict):
            out[key] = {name: fix(sub) for name, sub in value.items()}  # keys are names, not keywords
        else:
            out[key] = fix(value)
    if node.get("nullable") is True:
        # Wrap rather than add "null" to `type`: an `enum` or `$ref` beside it would still reject null.
        outer = {k: out.pop(k) for k in ("description", "title", "deprecated") if k in out}
        if "default" in out and out["default"] is None:
            outer["default"] = out.pop("default")
        outer["anyOf"] = [out, {"type": "null"}]
        return outer
    return out


def refs_in(node, found):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                m = REF.match(value)
                if not m:
                    sys.exit(f"unsupported $ref {value!r}")
                found.add(m.group(1))
            elif key not in DATA_KEYWORDS:
                refs_in(value, found)
    elif isinstance(node, list):
        for x in node:
            refs_in(x, found)


def closure(schemas, roots):
    todo, seen = list(roots), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in schemas:
            sys.exit(f"schema {name!r} not found in components/schemas")
        seen.add(name)
        found = set()
        refs_in(schemas[name], found)
        todo.extend(sorted(found - seen))
    return sorted(seen)


def served_document(spec):
    """The OpenAPI document with only SERVED_OPERATIONS and the components they reach, unchanged
    (schemathesis reads OpenAPI 3.1 as it is)."""
    paths = {}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and op.get("operationId") in SERVED_OPERATIONS:
                kept = {k: v for k, v in op.items() if k != "x-oaiMeta"}
                paths.setdefault(path, {})[method] = kept
        if path in paths:
            for key in ("parameters", "summary", "description"):
                if key in item:
                    paths[path][key] = item[key]
    found = {o for ops in paths.values() for o in (x.get("operationId") for x in ops.values() if isinstance(x, dict)) if o}
    if found != set(SERVED_OPERATIONS):
        sys.exit(f"operations not found: {sorted(set(SERVED_OPERATIONS) - found)}")
    components, todo = {}, [paths]
    while todo:
        node = todo.pop()
        stack = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, dict):
                for k, v in n.items():
                    if k == "$ref" and isinstance(v, str):
                        m = ANY_REF.match(v)
                        if not m:
                            sys.exit(f"unsupported $ref {v!r}")
                        kind, name = m.groups()
                        if name not in components.setdefault(kind, {}):
                            target = spec["components"][kind][name]
                            components[kind][name] = {k2: v2 for k2, v2 in target.items() if k2 != "x-oaiMeta"} if isinstance(target, dict) else target
                            todo.append(components[kind][name])
                    elif k != "x-oaiMeta":
                        stack.append(v)
            elif isinstance(n, list):
                stack.extend(n)
    if "securitySchemes" in spec.get("components", {}):
        components["securitySchemes"] = spec["components"]["securitySchemes"]
    return {"openapi": spec["openapi"], "info": spec["info"], "servers": spec.get("servers", []),
            "security": spec.get("security", []), "paths": paths, "components": components,
            "x-comment": f"Cut by scripts/extract-openai-schemas.py from OpenAI's openapi.yaml (commit {SOURCE_COMMIT}, MIT licence: "
                         f"OPENAI-LICENSE) to the operations Verity serves: {', '.join(SERVED_OPERATIONS)}."}


def jsonable(x):
    if isinstance(x, (datetime.date, datetime.datetime)):
        return x.isoformat()
    raise TypeError(f"not JSON-serializable: {x!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--yaml", default="/work/shared/openai/openapi.yaml")
    ap.add_argument("--license", default=None, help="LICENSE file (default: next to the yaml)")
    ap.add_argument("--out", default=str(ROOT / "Tests/ServerIntegration"))
    args = ap.parse_args()
    src = Path(args.yaml)
    lic = Path(args.license) if args.license else src.parent / "LICENSE"
    out = Path(args.out)

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(src, encoding="utf-8") as f:
        spec = yaml.load(f, Loader=loader)
    schemas = spec["components"]["schemas"]
    names = closure(schemas, ROOTS)
    doc = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": (
            f"Extracted by scripts/extract-openai-schemas.py from OpenAI's openapi.yaml "
            f"(github.com/openai/openai-openapi, commit {SOURCE_COMMIT}; OpenAPI {spec.get('openapi')}, "
            f"API version {spec.get('info', {}).get('version')}). Copyright OpenAI, MIT licence: see "
            f"OPENAI-LICENSE in this directory. Changes: only the $ref closure of {', '.join(ROOTS)}; "
            f"discriminators removed; 'nullable: true' rewritten as anyOf with a null type; x-oaiMeta dropped."
        ),
        "x-roots": ROOTS,
        "components": {"schemas": {name: fix(schemas[name]) for name in names}},
    }
    text = json.dumps(doc, indent=1, sort_keys=False, ensure_ascii=False, default=jsonable) + "\n"
    for keyword in ('"discriminator":', '"nullable":'):
        if keyword in text:  # a property of that name would be legitimate, but none is expected here
            sys.exit(f"{keyword} left in output")
    out.mkdir(parents=True, exist_ok=True)
    (out / "openai-schemas.json").write_text(text, encoding="utf-8")
    served = served_document(spec)
    (out / "openai-openapi-served.json").write_text(json.dumps(served, indent=None, ensure_ascii=False, default=jsonable) + "\n",
                                                      encoding="utf-8")
    print(f"wrote {out / 'openai-openapi-served.json'} ({len(served['paths'])} paths)")
    shutil.copyfile(lic, out / "OPENAI-LICENSE")
    print(f"wrote {out / 'openai-schemas.json'} ({len(names)} schemas, {len(text)} bytes) and {out / 'OPENAI-LICENSE'}")


if __name__ == "__main__":
    main()
