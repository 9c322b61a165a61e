"""LoRA adapters against the reference implementations (adapters and references: lora_fixtures.py):

1. PEFT adapters on tiny random models of every architecture, in every configuration peft writes
   (target lists, a regex, rank/alpha patterns, rsLoRA, modules_to_save, r 4/8/16, BF16):
   `verity logits --lora` within 1e-4 of transformers + peft; the adapter moves them by far more.
   Also --lora-scale, --adapter among several, and an adapter from the hub (hf:ORG/NAME).
2. Real weights (SmolLM2-135M F32): top-1 agreement and KL against transformers + peft.
3. GGUF LoRA (llama.cpp's converter) on the Q4_1 GGUF: greedy tokens equal to llama.cpp's with the
   same lora_path up to its first near-tie.
4. Adapters Verity must refuse (DoRA, another base's shapes, another base's name): a clear error.
5-7. A server with three adapters: mixed batches answer as each request alone; the operator's admin
   API (auth, hot load and unload under load, LRU residency); /v1/models and /v1/completions; the
   ledger names the adapter.
8. `verity lora merge`: the merged folder equals peft's merge_and_unload().

Interface under test: `--lora NAME=PATH` (PEFT folder, GGUF LoRA file or hf:ORG/NAME),
`--lora-scale NAME=S`, `--adapter NAME|none`; `serve --admin-key`, `--max-adapters`;
/v1/adapters and vLLM's /v1/load_lora_adapter, /v1/unload_lora_adapter; `verity lora merge`."""
import hashlib
import json
import os
import random
import re
import shutil
import stat
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import hf_fixtures
import lora_fixtures as lf
import support
from support import API_KEY, CHAT_PROMPTS, EOS_BIAS, MODEL_ID, VerityServer, assert_openai_error, cli, http
from test_12_hf_models import kl_and_top1, reference_text, verity_logits

# The references (run.sh installs them): a missing one fails the module here, not as a skip.
import llama_cpp  # noqa: F401
import peft  # noqa: F401
import torch

ADMIN_KEY = "vk_admin-test-key-0123456789"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def tiny_sequences():
    """Two sequences (80 and 33 random tokens) so that the second reuses nothing of the first."""
    rng = random.Random(7)
    return [[rng.randrange(49152) for _ in range(80)], [rng.randrange(49152) for _ in range(33)]]


def max_abs(a, b):
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


def lora_logits(name, sequences, tmp_path, *extra):
    """Verity's logits (transformers' numerics, --precision f32) of an adapter's base with it."""
    return verity_logits(lf.base_path(name), sequences, tmp_path, "--lora", f"a={lf.adapter(name)}",
                         "--precision", "f32", *extra)


# ---------------------------------------------------------------------------------------------
# 1. PEFT fidelity on tiny models: every architecture and every configuration variant.

@pytest.mark.parametrize("name", lf.FIDELITY)
def test_peft_adapter_logits_match_transformers_peft(name, tmp_path):
    sequences = tiny_sequences()
    want = lf.peft_logits(name, sequences)
    base = lf.base_logits(name, sequences)
    # The adapter must matter far beyond the tolerance, or ignoring it would pass.
    moved = max_abs(want, base)
    assert moved > 0.1, f"fixture {name}: the adapter moves peft's logits by only {moved}"
    got = lora_logits(name, sequences, tmp_path)
    for g, w in zip(got, want):
        assert g.shape == w.shape, f"{name}: verity gave {g.shape}, peft {w.shape}"
    err = max_abs(got, want)
    assert err <= 1e-4, (f"{name}: max |verity - peft| = {err} (the adapter moves logits by {moved}; "
                         f"verity vs the bare base: {max_abs(got, base)})")
    assert all((g.argmax(-1) == w.argmax(-1)).all() for g, w in zip(got, want))


@pytest.mark.parametrize("name,change,reads", [
    ("qwen3-rslora-r16", {"use_rslora": False}, "use_rslora: scale is alpha/sqrt(r), not alpha/r"),
    ("mistral-patterns", {"alpha_pattern": {}}, "alpha_pattern"),
])
def test_config_fields_that_change_the_scale_are_read(name, change, reads, tmp_path):
    """The same tensors under a config without the field give other logits (peft's): Verity must
    follow the edited config too, so it reads the field rather than assuming its usual value."""
    sequences = tiny_sequences()[:1]
    folder = tmp_path / "variant"
    shutil.copytree(lf.adapter(name), folder, ignore=shutil.ignore_patterns(".verity-*"))
    config = json.loads((folder / "adapter_config.json").read_text())
    config.update(change)
    (folder / "adapter_config.json").write_text(json.dumps(config))
    real = lf.peft_logits(name, sequences)
    ignored = lf.peft_logits_of_folder(name, folder, sequences)
    assert max_abs(real, ignored) > 0.1, f"{name}: {reads} hardly matters for this fixture"
    got = verity_logits(lf.base_path(name), sequences, tmp_path, "--lora", f"a={folder}", "--precision", "f32")
    assert max_abs(got, ignored) <= 1e-4, f"{name} without {reads}: verity does not follow the config"


@pytest.mark.parametrize("scale", [0.5, 2.0, 0.0])
def test_lora_scale_multiplies_the_update(scale, tmp_path):
    name = "llama-all7"
    sequences = tiny_sequences()[:1]
    want = lf.peft_logits(name, sequences, scale=scale)
    got = lora_logits(name, sequences, tmp_path, "--lora-scale", f"a={scale:g}")
    err = max_abs(got, want)
    assert err <= 1e-4, f"--lora-scale a={scale:g}: max |verity - peft (lora_B × {scale:g})| = {err}"
    if scale == 0.0:
        assert max_abs(got, lf.base_logits(name, sequences)) <= 1e-4


def test_adapter_flag_picks_one_of_several_and_none_is_the_base(tmp_path):
    sequences = tiny_sequences()[:1]
    base = lf.base_path("llama-all7")
    loras = ["--lora", f"all7={lf.adapter('llama-all7')}", "--lora", f"qv={lf.adapter('llama-qv-r4')}", "--precision", "f32"]
    for adapter, want in (("all7", lf.peft_logits("llama-all7", sequences)),
                          ("qv", lf.peft_logits("llama-qv-r4", sequences)),
                          ("none", lf.base_logits("llama-all7", sequences))):
        got = verity_logits(base, sequences, tmp_path, *loras, "--adapter", adapter)
        assert max_abs(got, want) <= 1e-4, f"--adapter {adapter}: max |verity - reference| = {max_abs(got, want)}"
    # Two adapters and no --adapter: which one answers is ambiguous, so it is an error.
    p = cli("logits", "--model", base, *loras, "--input", tmp_path / "seq.json", "--output", tmp_path / "x.f32", check=False)
    assert p.returncode != 0 and "--adapter" in p.stderr, p.stderr
    p = cli("logits", "--model", base, *loras, "--adapter", "nope", "--input", tmp_path / "seq.json",
            "--output", tmp_path / "x.f32", check=False)
    assert p.returncode != 0 and "nope" in p.stderr, p.stderr


def test_adapter_from_the_hub(tmp_path):
    """`--lora a=hf:ORG/NAME` downloads the PEFT folder from the hub (the test hub) and gives the
    same logits as the local folder."""
    from test_11_hub import hf_env, start_hub
    from test_12_hf_models import hub_root_with
    repo = "test-org/tiny-llama-lora"
    hub = start_hub(hub_root_with(tmp_path, {repo: lf.adapter("llama-all7")}))
    try:
        seq = tmp_path / "seq.json"
        seq.write_text(json.dumps(tiny_sequences()[:1]))
        base = lf.base_path("llama-all7")
        (tmp_path / "hf-home").mkdir()
        p = subprocess.run([str(support.verity_binary()), "logits", "--model", base, "--lora", f"a=hf:{repo}",
                            "--precision", "f32", "--input", seq, "--output", tmp_path / "hub.f32"],
                           capture_output=True, text=True, env=hf_env(hub, tmp_path / "hf-home"), timeout=600)
        assert p.returncode == 0, p.stderr[-3000:]
    finally:
        hub.stop()
    cli("logits", "--model", base, "--lora", f"a={lf.adapter('llama-all7')}", "--precision", "f32",
        "--input", seq, "--output", tmp_path / "local.f32")
    assert (tmp_path / "hub.f32").read_bytes() == (tmp_path / "local.f32").read_bytes()


# ---------------------------------------------------------------------------------------------
# 2. Real weights: SmolLM2-135M F32 with an adapter, 1,024 positions.

def smollm2_sequences(count=2, length=512):
    from tokenizers import Tokenizer
    path = lf.base_path("smollm2-all7")
    ids = Tokenizer.from_file(os.path.join(path, "tokenizer.json")).encode(reference_text(), add_special_tokens=False).ids
    assert len(ids) >= count * length
    return [ids[i * length:(i + 1) * length] for i in range(count)]


def test_smollm2_adapter_agrees_with_transformers_peft(tmp_path):
    name = "smollm2-all7"
    # As PEFT writes it for an adapter trained on this very folder: the numerics alone are judged
    # here (the refusal tests judge base-name matching).
    folder = tmp_path / "adapter"
    shutil.copytree(lf.adapter(name), folder, ignore=shutil.ignore_patterns(".verity-*"))
    config = json.loads((folder / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = lf.base_path(name)
    (folder / "adapter_config.json").write_text(json.dumps(config))
    sequences = smollm2_sequences()
    assert sum(map(len, sequences)) >= 1024
    want = np.concatenate(lf.peft_logits(name, sequences))
    base = np.concatenate(lf.base_logits(name, sequences))
    moved = float(np.abs(want - base).max())
    kl_base, top1_base = kl_and_top1(base, want)
    print(f"{name}: adapter moves logits by max {moved:.3f}; the bare base vs peft: KL {kl_base:.2e}, top-1 {top1_base:.2%}")
    # Visible but sane: a wrong or missing adapter must fail the bounds below.
    assert 0.5 <= moved <= 10 and top1_base < 0.985 and kl_base > 3e-3, (moved, top1_base, kl_base)
    del base
    got = np.concatenate(verity_logits(lf.base_path(name), sequences, tmp_path, "--lora", f"a={folder}", "--precision", "f32"))
    assert got.shape == want.shape
    kl, top1 = kl_and_top1(got, want)
    print(f"{name}: verity vs transformers + peft: mean KL {kl:.3e}, top-1 {top1:.4%}")
    assert top1 >= 0.995, f"top-1 agreement {top1:.4%} < 99.5% (the bare base gets {top1_base:.2%})"
    assert kl <= 1e-3, f"mean KL {kl} > 1e-3 (the bare base gets {kl_base:.2e})"


# ---------------------------------------------------------------------------------------------
# 3. GGUF LoRA on a quantized GGUF base against llama.cpp.

GGUF_PROMPTS = ["The capital of France is", "Once upon a time, in a small village,"]
GREEDY_TOKENS = 40
# Where llama.cpp's best two logits are closer than this, two correct engines may pick differently
# (Verity need not add the LoRA product in llama.cpp's order): compare only the tokens before.
NEAR_TIE = 0.05


def verity_run(prompt, *extra, max_tokens=GREEDY_TOKENS):
    out = cli("run", "--model", lf.smollm2_gguf(), "--raw", "--prompt", prompt, "--temperature", "0",
              "--max-tokens", max_tokens, "--json", "--threads", "2", *extra, timeout=600).stdout
    return json.loads(out)


def first_near_tie(margins):
    return next((i for i, m in enumerate(margins) if m < NEAR_TIE), len(margins))


@pytest.mark.parametrize("prompt", GGUF_PROMPTS)
def test_gguf_lora_greedy_equals_llama_cpp(prompt):
    lora = lf.gguf_adapter("smollm2-all7")
    ids, want, margins, reason = lf.llama_cpp_greedy(prompt, GREEDY_TOKENS, lora=lora)
    _, base_want, _, _ = lf.llama_cpp_greedy(prompt, GREEDY_TOKENS)
    stop = first_near_tie(margins)
    print(f"{prompt!r}: llama.cpp with the LoRA: first near-tie (top-2 margin < {NEAR_TIE}) at token {stop} of "
          f"{len(want)}; smallest margin before it {min(margins[:stop], default=float('nan')):.3f}")
    assert stop >= 8, f"fixture: llama.cpp's greedy path meets a near-tie at token {stop}; pick another prompt"
    assert want[:stop] != base_want[:stop], "fixture: the LoRA does not change llama.cpp's greedy tokens"

    run = verity_run(prompt, "--lora", f"a={lora}")
    assert run["prompt_tokens"] == ids, f"prompt tokens: verity {run['prompt_tokens']}, llama.cpp {ids}"
    assert run["completion_tokens"][:stop] == want[:stop], \
        f"GGUF LoRA: verity {run['completion_tokens'][:stop]} vs llama.cpp {want[:stop]} (first near-tie at {stop})"
    if stop == len(want) and reason == "stop":
        # llama.cpp's next token ends the text (Verity lists that token last, llama.cpp's list omits it).
        assert run["finish_reason"] == "stop" and len(run["completion_tokens"]) <= len(want) + 1, run

    # The same adapter as a PEFT folder (HF layout: Verity must map q/k rows as the converter does)
    # gives the same tokens on the GGUF base.
    peft_run = verity_run(prompt, "--lora", f"a={lf.adapter('smollm2-all7')}")
    assert peft_run["completion_tokens"][:stop] == want[:stop], \
        f"PEFT folder on the GGUF base: verity {peft_run['completion_tokens'][:stop]} vs llama.cpp {want[:stop]}"

    # Not vacuous: without the adapter (or with --adapter none) Verity gives the base's tokens.
    bare = verity_run(prompt)
    none = verity_run(prompt, "--lora", f"a={lora}", "--adapter", "none")
    assert none["completion_tokens"] == bare["completion_tokens"]
    assert bare["completion_tokens"] != run["completion_tokens"]


# ---------------------------------------------------------------------------------------------
# 4. Adapters to refuse, with a message that says why.

REFUSALS = [
    ("dora", "llama-dora", lambda: lf.base_path("llama-dora"), "DoRA"),
    ("dora-on-gguf", "smollm2-dora", lf.smollm2_gguf, "DoRA"),
    ("shape", "llama96-shape", lambda: lf.base_path("llama-all7"), "shape"),
    ("base-name-gguf", "smollm2-other-base", lf.smollm2_gguf, "base model"),
    ("base-name-folder", "smollm2-other-base", lambda: lf.base_path("smollm2-all7"), "base model"),
]


@pytest.mark.parametrize("case,name,base,expected", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_unsupported_adapter_is_refused(case, name, base, expected, tmp_path):
    base = base()
    p = cli("run", "--model", base, "--lora", f"a={lf.adapter(name)}", "--raw", "--prompt", "Hello", "--max-tokens", 2,
            "--threads", "2", check=False, timeout=300)
    assert p.returncode != 0, f"{case}: verity ran with an adapter it must refuse:\n{p.stdout}\n{p.stderr[-2000:]}"
    lines = [l for l in p.stderr.splitlines() if expected in l]
    assert lines, f"{case}: no line of stderr says {expected!r}:\n{p.stderr[-3000:]}"
    assert "Fatal error" not in p.stderr and "Trace" not in p.stderr and "couldn't be completed" not in p.stderr
    assert not p.stdout.strip(), f"{case}: generated output despite the refusal: {p.stdout[:300]!r}"
    if case.startswith("base-name"):
        # The control: the same adapter naming its real base loads on this base.
        ok = cli("run", "--model", base, "--lora", f"a={lf.adapter('smollm2-all7')}", "--raw", "--prompt", "Hello",
                 "--max-tokens", 2, "--threads", "2", check=False, timeout=300)
        # The folder's own names: "smollm2-f32", config.json's _model_name_or_path "Smollm2 135M …";
        # SmolLM2-135M-Instruct is not a clearly different model.
        assert ok.returncode == 0, f"the adapter for {lf.SMOLLM2_NAME} was refused on {base}:\n{ok.stderr[-2000:]}"


def test_serve_refuses_a_dora_adapter_at_startup(tmp_path):
    args = [str(support.verity_binary()), "serve", "--host", "127.0.0.1", "--port", str(support.free_port()),
            "--data-dir", str(tmp_path / "data"), "--threads", "2", "--lora", f"a={lf.adapter('smollm2-dora')}"]
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise AssertionError("verity serve with a DoRA adapter kept running instead of refusing it")
    assert p.returncode != 0 and "DoRA" in p.stderr + p.stdout, (p.returncode, p.stderr[-2000:])


# ---------------------------------------------------------------------------------------------
# 5-7. A server with three adapters: a (PEFT, all projections), b (PEFT, rsLoRA on q/v, scale 1.5),
# c (GGUF LoRA of an MLP adapter), on the default model (SmolLM2 Q4_1 GGUF).

B_SCALE = 1.5
PROMPTS = CHAT_PROMPTS
SERVED = ["a", "b", "c", MODEL_ID]


def adapter_flags():
    return ["--lora", f"a={lf.adapter('smollm2-all7')}", "--lora", f"b={lf.adapter('smollm2-qv-rslora')}",
            "--lora-scale", f"b={B_SCALE:g}", "--lora", f"c={lf.gguf_adapter('smollm2-mlp')}"]


class LoraServer:
    def __init__(self, root):
        self.root, self.data = root, root / "data"
        account = root / "alice.json"
        cli("account", "create", "--out", account)
        self.account_key = json.loads(cli("keys", "create", "--data-dir", self.data, "--account-file", account,
                                          "--json").stdout)["key"]
        self.server = VerityServer(["--data-dir", self.data, "--max-sequences", "8", "--admin-key", ADMIN_KEY,
                                    *adapter_flags()], root / "verity-serve.log", ready_timeout=300)
        self.url = self.server.base_url
        self._alone = {}

    def chat(self, model, prompt, max_tokens=24, key=API_KEY, **extra):
        r = http.post(self.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, timeout=300,
                      json={"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
                            "temperature": 0, "logit_bias": EOS_BIAS, **extra})
        return r

    def answer(self, model, prompt, max_tokens=24):
        r = self.chat(model, prompt, max_tokens)
        assert r.status_code == 200, f"{model}: {r.status_code} {r.text[:500]}"
        return r.json()["choices"][0]["message"]["content"]

    def alone(self, model, prompt):
        """The answer to one request sent with nothing else running (cached)."""
        if (model, prompt) not in self._alone:
            self._alone[(model, prompt)] = self.answer(model, prompt)
        return self._alone[(model, prompt)]

    def admin(self, method, path, key=ADMIN_KEY, **kw):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return http.request(method, self.url + path, headers=headers, timeout=300, **kw)

    def adapters(self):
        r = self.admin("GET", "/v1/adapters")
        assert r.status_code == 200, r.text
        body = r.json()
        check_adapter_list(body)
        return body


def check_adapter_list(body):
    assert isinstance(body.get("data"), list) and isinstance(body.get("resident_bytes"), int), body
    for entry in body["data"]:
        for key, kind in (("name", str), ("parent", str), ("path", str), ("digest", str), ("resident", bool), ("bytes", int)):
            assert isinstance(entry.get(key), kind), f"adapter entry {key} must be {kind.__name__}: {entry}"
        assert isinstance(entry.get("scale"), (int, float)) and not isinstance(entry["scale"], bool), entry
        assert DIGEST.match(entry["digest"]), entry
        assert entry["bytes"] > 0, entry
    resident = sum(e["bytes"] for e in body["data"] if e["resident"])
    assert body["resident_bytes"] == resident, f"resident_bytes {body['resident_bytes']} != the resident adapters' bytes {resident}"


@pytest.fixture(scope="module")
def lora_server(tmp_path_factory):
    env = LoraServer(tmp_path_factory.mktemp("lora-serve"))
    yield env
    assert env.server.stop(timeout=20) == 0, env.server.log_tail()


def test_mixed_batches_answer_as_each_request_alone(lora_server):
    alone = {(m, p): lora_server.alone(m, p) for p in PROMPTS for m in SERVED}
    # Not vacuous: each adapter changes most answers, and no two adapters answer alike.
    for m in ("a", "b", "c"):
        changed = sum(alone[(m, p)] != alone[(MODEL_ID, p)] for p in PROMPTS)
        assert changed >= 4, f"adapter {m} changes only {changed} of {len(PROMPTS)} answers of the base"
    assert len({tuple(alone[(m, p)] for p in PROMPTS) for m in SERVED}) == 4
    for shift in range(4):
        jobs = [(SERVED[(i + shift) % 4], p) for i, p in enumerate(PROMPTS)]
        barrier = threading.Barrier(len(jobs))

        def ask(job):
            barrier.wait()
            return lora_server.answer(*job)

        with ThreadPoolExecutor(len(jobs)) as pool:
            together = list(pool.map(ask, jobs))
        for job, got in zip(jobs, together):
            assert got == alone[job], f"{job[0]} on {job[1]!r}: alone -> {alone[job]!r}, in a mixed batch -> {got!r}"


def test_models_lists_the_adapters_with_their_parent(lora_server, recorder):
    with recorder.client(lora_server.url, headers={"Authorization": f"Bearer {API_KEY}"}) as c:
        models = c.get("/v1/models").json()["data"]
        by_id = {m["id"]: m for m in models}
        assert set(by_id) == {MODEL_ID, "a", "b", "c"}, sorted(by_id)
        assert by_id[MODEL_ID].get("parent") is None
        for name in ("a", "b", "c"):
            assert by_id[name]["object"] == "model" and by_id[name]["parent"] == MODEL_ID, by_id[name]
            r = c.get(f"/v1/models/{name}")
            assert r.status_code == 200 and r.json()["id"] == name and r.json()["parent"] == MODEL_ID, r.text
        r = c.post("/v1/chat/completions", json={"model": "no-such-adapter", "messages": [{"role": "user", "content": "hi"}]})
        assert_openai_error(r, 404, code="model_not_found")
        # The model field of an answer names what answered.
        r = c.post("/v1/chat/completions", json={"model": "a", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
        assert r.status_code == 200 and r.json()["model"] == "a", r.text


def test_completions_answer_with_the_adapter_too(lora_server, recorder):
    # Prompts whose greedy continuation a and c change (confident ones, like "Once upon a time", they do not).
    prompts = ["The capital of France is", "Once upon a time, in a small village,", "The three primary colors are"]
    with recorder.client(lora_server.url, headers={"Authorization": f"Bearer {API_KEY}"}) as c:
        def complete(model, prompt):
            r = c.post("/v1/completions", json={"model": model, "prompt": prompt, "max_tokens": 24, "temperature": 0,
                                                "logit_bias": EOS_BIAS})
            assert r.status_code == 200, r.text
            assert r.json()["model"] == model
            return r.json()["choices"][0]["text"]
        for name in ("a", "c"):
            differ = sum(complete(name, p) != complete(MODEL_ID, p) for p in prompts)
            assert differ >= 2, f"/v1/completions with model {name} answers as the bare base on {len(prompts) - differ} of {len(prompts)} prompts"


def adapter_in_record(record):
    """(name, digest, scale) of the adapter a decrypted ledger record names, or None. Accepted
    shapes: `adapter` = {name, digest, scale} (or its JSON text), or flat adapter_name /
    adapter_digest / adapter_scale; at the record's top level or in its parameters."""
    for place in (record, record.get("parameters") or {}):
        value = place.get("adapter")
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        if isinstance(value, dict):
            return value.get("name"), value.get("digest"), value.get("scale")
        if place.get("adapter_name") is not None:
            return place["adapter_name"], place.get("adapter_digest"), place.get("adapter_scale")
    return None


def test_the_ledger_records_the_adapter(lora_server):
    listed = {e["name"]: e for e in lora_server.adapters()["data"]}
    base_digest = next(m for m in http.get(lora_server.url + "/v1/models", headers={"Authorization": f"Bearer {API_KEY}"})
                       .json()["data"] if m["id"] == MODEL_ID)["digest"]
    operator = lora_server.data / "operator.json"
    for model in ("b", "c", MODEL_ID):
        r = lora_server.chat(model, "Say hello.", max_tokens=4)
        assert r.status_code == 200, r.text
        record = json.loads(cli("ledger", "decrypt", r.json()["id"], "--account", operator, "--url", lora_server.url).stdout)
        assert record["model_digest"] == base_digest, record
        found = adapter_in_record(record)
        if model == MODEL_ID:
            assert found is None or found[0] is None, f"a bare-base request's record names an adapter: {found}"
            continue
        assert found is not None, f"the record of a request to adapter {model} does not name it: {json.dumps(record)[:2000]}"
        name, digest, scale = found
        assert name == model, found
        assert isinstance(digest, str) and DIGEST.match(digest), found
        assert digest == listed[model]["digest"], (found, listed[model])
        assert float(scale) == (B_SCALE if model == "b" else 1.0), found
    assert listed["b"]["scale"] == B_SCALE and listed["a"]["scale"] == 1.0
    assert len({e["digest"] for e in listed.values()}) == len(listed), "distinct adapters, equal digests"
    # A GGUF LoRA's digest is its file's.
    with open(lf.gguf_adapter("smollm2-mlp"), "rb") as f:
        assert listed["c"]["digest"] == "sha256:" + hashlib.sha256(f.read()).hexdigest()


# ---------------------------------------------------------------------------------------------
# 6. The operator's admin API.

ADMIN_CALLS = [
    ("GET", "/v1/adapters", None),
    ("POST", "/v1/adapters", {"name": "x", "path": "<smollm2-attn>", "scale": 1.0}),
    ("DELETE", "/v1/adapters/a", None),
    ("POST", "/v1/load_lora_adapter", {"lora_name": "x", "lora_path": "<smollm2-attn>"}),
    ("POST", "/v1/unload_lora_adapter", {"lora_name": "a"}),
]


def test_admin_api_takes_only_the_operator_key(lora_server):
    for method, path, body in ADMIN_CALLS:
        if body:
            body = {k: (lf.adapter("smollm2-attn") if v == "<smollm2-attn>" else v) for k, v in body.items()}
        kw = {"json": body} if body else {}
        for key, status in ((None, 401), ("vk_never-issued", 401), (API_KEY, 403), (lora_server.account_key, 403)):
            r = lora_server.admin(method, path, key=key, **kw)
            assert_openai_error(r, status)
    # Nothing those calls tried happened.
    assert sorted(e["name"] for e in lora_server.adapters()["data"]) == ["a", "b", "c"]
    assert lora_server.answer("a", PROMPTS[0]) == lora_server.alone("a", PROMPTS[0])


def test_admin_rejects_bad_adapters_with_a_client_error(lora_server):
    def refused(body):
        r = lora_server.admin("POST", "/v1/adapters", json=body)
        assert 400 <= r.status_code < 500, f"{body}: HTTP {r.status_code} {r.text[:500]}"
        return assert_openai_error(r, r.status_code)["message"]
    assert "DoRA" in refused({"name": "dora", "path": lf.adapter("smollm2-dora")})
    # A tiny Llama's adapter: other shapes and another base name; either is the reason to give.
    message = refused({"name": "wrong-shape", "path": lf.adapter("llama-all7")})
    assert "shape" in message or "base model" in message, message
    refused({"name": "missing", "path": str(lora_server.root / "no-such-adapter")})
    refused({"name": "a", "path": lf.adapter("smollm2-attn")})  # the name is taken
    assert sorted(e["name"] for e in lora_server.adapters()["data"]) == ["a", "b", "c"]
    assert lora_server.answer("a", PROMPTS[0]) == lora_server.alone("a", PROMPTS[0])


def test_hot_load_use_and_unload_while_other_requests_run(lora_server):
    srv = lora_server
    background = [("a", PROMPTS[1]), ("b", PROMPTS[2]), (MODEL_ID, PROMPTS[3]), ("c", PROMPTS[4])]
    want = {job: srv.alone(*job) for job in background}
    stop, failures, counts = threading.Event(), [], {job: 0 for job in background}

    def keep_asking(job):
        while not stop.is_set():
            try:
                got = srv.answer(*job)
                if got != want[job]:
                    failures.append(f"{job}: {got!r} != alone {want[job]!r}")
            except Exception as e:  # noqa: BLE001  (any failure is the finding)
                failures.append(f"{job}: {e}")
            counts[job] += 1

    threads = [threading.Thread(target=keep_asking, args=(job,)) for job in background]
    for t in threads:
        t.start()
    try:
        path = lf.adapter("smollm2-attn")
        r = srv.admin("POST", "/v1/adapters", json={"name": "d", "path": path, "scale": 1.0})
        assert r.status_code in (200, 201), r.text
        assert r.json().get("name") == "d", r.text
        entry = {e["name"]: e for e in srv.adapters()["data"]}["d"]
        assert entry["parent"] == MODEL_ID and entry["path"] == path and entry["scale"] == 1.0, entry
        models = {m["id"]: m for m in http.get(srv.url + "/v1/models", headers={"Authorization": f"Bearer {API_KEY}"}).json()["data"]}
        assert models["d"]["parent"] == MODEL_ID

        short = srv.answer("d", PROMPTS[0])
        assert short != srv.alone(MODEL_ID, PROMPTS[0]), "the hot-loaded adapter answers as the bare base"
        long_body = {"model": "d", "messages": [{"role": "user", "content": PROMPTS[5]}], "max_tokens": 300,
                     "temperature": 0, "logit_bias": EOS_BIAS}
        r = http.post(srv.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {API_KEY}"}, json=long_body, timeout=600)
        assert r.status_code == 200, r.text
        long_text = r.json()["choices"][0]["message"]["content"]

        for job in background + [("a", PROMPTS[0]), ("b", PROMPTS[0]), ("c", PROMPTS[0]), ("d", PROMPTS[0])]:
            srv.answer(*job[:2], max_tokens=1)  # every adapter used: all resident before measuring
        before = srv.adapters()
        d = {e["name"]: e for e in before["data"]}["d"]
        assert d["resident"], d

        # A request already generating on d when d is unloaded finishes normally, on d.
        with http.stream("POST", srv.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {API_KEY}"},
                         json=dict(long_body, stream=True), timeout=600) as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()
            received = []
            for line in lines:
                if line.startswith("data:"):
                    received.append(line[5:].strip())
                    if len(received) == 3:
                        break
            r = srv.admin("DELETE", "/v1/adapters/d")
            assert r.status_code == 200, r.text
            after_delete = 0
            for line in lines:
                if line.startswith("data:"):
                    received.append(line[5:].strip())
                    after_delete += 1
        assert received[-1] == "[DONE]", received[-3:]
        chunks = [json.loads(e) for e in received[:-1]]
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
        assert after_delete > 10, f"the stream had (nearly) finished before the DELETE: {after_delete} events after it"
        assert finish == ["length"] and text == long_text, f"the in-flight request on d changed after DELETE: {finish} {text[:200]!r}"

        r = srv.chat("d", PROMPTS[0])
        assert_openai_error(r, 404, code="model_not_found")
        after = srv.adapters()
        assert "d" not in {e["name"] for e in after["data"]}
        assert after["resident_bytes"] == before["resident_bytes"] - d["bytes"], (before, after)
        models = {m["id"] for m in http.get(srv.url + "/v1/models", headers={"Authorization": f"Bearer {API_KEY}"}).json()["data"]}
        assert "d" not in models

        # vLLM's spelling: load the same file under another name, use it, unload it.
        r = srv.admin("POST", "/v1/load_lora_adapter", json={"lora_name": "e", "lora_path": path})
        assert r.status_code in (200, 201), r.text
        assert srv.answer("e", PROMPTS[0]) == short, "the same adapter file answers differently under another name"
        assert {e["name"]: e for e in srv.adapters()["data"]}["e"]["digest"] == d["digest"]
        r = srv.admin("POST", "/v1/unload_lora_adapter", json={"lora_name": "e"})
        assert r.status_code == 200, r.text
        assert_openai_error(srv.chat("e", PROMPTS[0]), 404, code="model_not_found")
        r = srv.admin("DELETE", "/v1/adapters/e")
        assert 400 <= r.status_code < 500 and r.status_code != 401, r.text
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=600)
    assert not failures, "requests on other models failed or changed during hot load/unload:\n" + "\n".join(failures[:10])
    assert all(n >= 1 for n in counts.values()), counts


def test_admin_key_file_is_made_owner_only_and_kept(tmp_path):
    data = tmp_path / "data"
    flags = ["--data-dir", data, "--lora", f"a={lf.adapter('smollm2-all7')}"]
    server = VerityServer(flags, tmp_path / "first.log")
    try:
        key_file = data / "admin.key"
        assert key_file.is_file(), "serve without --admin-key must create DATA/admin.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600, oct(key_file.stat().st_mode)
        key = key_file.read_text().strip()
        assert len(key) >= 20 and key != API_KEY
        r = http.get(server.base_url + "/v1/adapters", headers={"Authorization": f"Bearer {key}"}, timeout=60)
        assert r.status_code == 200 and [e["name"] for e in r.json()["data"]] == ["a"], r.text
        assert_openai_error(http.get(server.base_url + "/v1/adapters", headers={"Authorization": f"Bearer {API_KEY}"}), 403)
    finally:
        assert server.stop() == 0
    server = VerityServer(flags, tmp_path / "second.log")
    try:
        assert (data / "admin.key").read_text().strip() == key, "the admin key changed on restart"
        r = http.get(server.base_url + "/v1/adapters", headers={"Authorization": f"Bearer {key}"}, timeout=60)
        assert r.status_code == 200, r.text
    finally:
        assert server.stop() == 0


def test_max_adapters_1_swaps_adapters_transparently(lora_server, start_server):
    want = {(m, p): lora_server.alone(m, p) for m in ("a", "b") for p in PROMPTS[:3]}
    server, stop = start_server("lora-lru", ["--max-sequences", "8", "--admin-key", ADMIN_KEY, "--max-adapters", "1",
                                             *adapter_flags()[:6]])
    try:
        def adapters():
            r = http.get(server.base_url + "/v1/adapters", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=60)
            assert r.status_code == 200, r.text
            check_adapter_list(r.json())
            return r.json()

        for round_ in range(2):
            for p in PROMPTS[:3]:
                for m in ("a", "b"):
                    r = http.post(server.base_url + "/v1/chat/completions", headers={"Authorization": f"Bearer {API_KEY}"},
                                  timeout=300, json={"model": m, "messages": [{"role": "user", "content": p}],
                                                     "max_tokens": 24, "temperature": 0, "logit_bias": EOS_BIAS})
                    assert r.status_code == 200, r.text
                    got = r.json()["choices"][0]["message"]["content"]
                    assert got == want[(m, p)], f"round {round_}, {m} on {p!r}: {got!r} != {want[(m, p)]!r}"
                    listed = adapters()
                    resident = [e["name"] for e in listed["data"] if e["resident"]]
                    assert len(resident) <= 1, f"--max-adapters 1 but resident: {resident}"
                    assert resident in ([m], []), f"just used {m}, resident: {resident}"
        # Both adapters answering at once with room for one: both still answer as alone.
        with ThreadPoolExecutor(4) as pool:
            jobs = [("a", PROMPTS[0]), ("b", PROMPTS[0]), ("a", PROMPTS[1]), ("b", PROMPTS[1])]
            got = list(pool.map(lambda j: http.post(server.base_url + "/v1/chat/completions", timeout=600,
                                                    headers={"Authorization": f"Bearer {API_KEY}"},
                                                    json={"model": j[0], "messages": [{"role": "user", "content": j[1]}],
                                                          "max_tokens": 24, "temperature": 0, "logit_bias": EOS_BIAS}), jobs))
        for job, r in zip(jobs, got):
            assert r.status_code == 200, r.text
            assert r.json()["choices"][0]["message"]["content"] == want[job], job
    finally:
        stop()


# ---------------------------------------------------------------------------------------------
# 8. `verity lora merge`: a merged Hugging Face folder.

def safetensors_dtypes(folder):
    from safetensors import safe_open
    out = {}
    for f in sorted(os.listdir(folder)):
        if f.endswith(".safetensors"):
            with safe_open(os.path.join(folder, f), "np") as st:
                for k in st.keys():
                    out[k] = str(st.get_slice(k).get_dtype())
    return out


def check_merged_folder(base, merged):
    files = {f for f in os.listdir(base) if not f.startswith(".") and not f.endswith(".safetensors")
             and f != "model.safetensors.index.json"}
    for f in files:
        assert (merged / f).is_file(), f"the merged folder lacks {f}"
        if f == "config.json":
            assert json.loads((merged / f).read_text()) == json.loads(open(os.path.join(base, f)).read()), "config.json changed"
        else:
            assert (merged / f).read_bytes() == open(os.path.join(base, f), "rb").read(), f"{f} changed"
    assert safetensors_dtypes(merged) == safetensors_dtypes(base), "the merged tensors' names or dtypes differ from the base's"


@pytest.mark.parametrize("name,scale", [("llama-all7", 1.0), ("llama-all7", 0.5), ("phi3-fused", 1.0),
                                        ("qwen2-lm-head", 1.0), ("mistral-patterns", 1.0), ("qwen3-rslora-r16", 1.0)])
def test_merge_matches_peft_merge_and_unload(name, scale, tmp_path):
    base = lf.base_path(name)
    merged = tmp_path / "merged"
    flags = ["--scale", f"{scale:g}"] if scale != 1.0 else []
    cli("lora", "merge", base, lf.adapter(name), "--out", merged, *flags, timeout=600)
    check_merged_folder(base, merged)
    sequences = tiny_sequences()[:1]
    want = lf.merged_logits(name, sequences, scale=scale)
    assert max_abs(want, lf.base_logits(name, sequences)) > 0.1, "fixture: the merge changes nothing"
    got = hf_fixtures.transformers_logits(str(merged), sequences)
    err = max_abs(got, want)
    assert err <= 1e-4, f"transformers on the merged folder vs peft merge_and_unload(): max |Δ| = {err}"
    extra = ["--lora-scale", f"a={scale:g}"] if scale != 1.0 else []
    on_the_fly = lora_logits(name, sequences, tmp_path, *extra)
    from_merged = verity_logits(str(merged), sequences, tmp_path, "--precision", "f32")
    err = max_abs(from_merged, on_the_fly)
    assert err <= 1e-4, f"verity on the merged folder vs verity base + adapter: max |Δ| = {err}"


def test_merge_keeps_a_bf16_base_bf16(tmp_path):
    """A BF16 base merges to BF16 (not widened): each merged weight is W + ΔW rounded once or
    twice to BF16 (peft rounds ΔW, then the sum), so within 2⁻⁷ of it, relative."""
    name = "llama-bf16-base"
    base = lf.base_path(name)
    merged = tmp_path / "merged"
    cli("lora", "merge", base, lf.adapter(name), "--out", merged, timeout=600)
    check_merged_folder(base, merged)
    assert set(safetensors_dtypes(merged).values()) == {"BF16"}, safetensors_dtypes(merged)
    from safetensors.torch import load_file
    got = {k: v.float() for f in os.listdir(merged) if f.endswith(".safetensors") for k, v in load_file(merged / f).items()}
    _, want = lf.peft_merged(name)
    base_weights = {k: v.float() for k, v in load_file(os.path.join(base, "model.safetensors")).items()}
    changed = 0
    for key, value in got.items():
        reference = torch.from_numpy(want[key])
        bound = reference.abs() * 2.0 ** -7 + 1e-30
        assert bool(((value - reference).abs() <= bound).all()), \
            f"{key}: merged BF16 weight off W + ΔW by {float((value - reference).abs().max())}"
        changed += int(not torch.equal(value, base_weights[key]))
    assert changed == 2 * 7, f"{changed} tensors changed; the adapter touches 7 projections in each of 2 layers"
