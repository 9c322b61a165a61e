"""Hugging Face checkpoints (safetensors + tokenizer.json) against transformers and the tokenizers
library, the reference implementations, run in this process (torch CPU, float32):

- tiny random models of every architecture Verity loads from safetensors: logits within 1e-4;
- real weights (SmolLM2-135M and Gemma 3 270M, F32 and BF16): top-1 agreement, KL, greedy text;
- tokenizer.json: ids equal to the tokenizers library's on 260 texts per tokenizer;
- serving a folder: /v1/models names its source and digest; load-time quantization;
- bad checkpoints: clear errors that name what is wrong.

The checkpoints are made from the provisioned GGUF models by hf_fixtures.py (cached)."""
import json
import math
import os
import random
import shutil
import struct
import subprocess

import numpy as np
import pytest

import hf_fixtures
import support
from support import API_KEY, cli, http
from tokenizer_corpus import corpus
from test_11_hub import home, hub, hub_repos  # noqa: F401  (fixtures: the test hub and its repos)

import torch  # the reference (CPU build), installed by run.sh


def verity_logits(path, sequences, tmp_path, *extra):
    inp, out = tmp_path / "seq.json", tmp_path / "logits.f32"
    inp.write_text(json.dumps(sequences))
    cli("logits", "--model", path, "--input", inp, "--output", out, "--threads", "2", *extra, timeout=900)
    flat = np.fromfile(out, dtype=np.float32)
    result, offset = [], 0
    vocab = flat.size // sum(len(s) for s in sequences)
    for s in sequences:
        result.append(flat[offset:offset + len(s) * vocab].reshape(len(s), vocab))
        offset += len(s) * vocab
    return result


# ---------------------------------------------------------------------------------------------
# Tiny random models: every architecture, F32, logits within 1e-4 over 80 positions.

@pytest.mark.parametrize("name", sorted(hf_fixtures.TINY))
def test_tiny_model_logits_match_transformers(name, tmp_path):
    path = hf_fixtures.tiny_checkpoint(name)
    rng = random.Random(7)
    sequences = [[rng.randrange(49152) for _ in range(80)]]
    want = hf_fixtures.transformers_logits(path, sequences)[0]
    got = verity_logits(path, sequences, tmp_path)[0]
    assert got.shape == want.shape
    err = float(np.abs(got - want).max())
    assert err <= 1e-4, f"{name}: max |verity - transformers| = {err} over {want.shape[0]} positions"
    assert (got.argmax(-1) == want.argmax(-1)).all()


def test_transformers_4_config_spelling_loads_the_same(tmp_path):
    """Hub configs written by transformers 4 say rope_theta / rope_scaling, not rope_parameters."""
    new = hf_fixtures.tiny_checkpoint("llama3-rope")
    old = tmp_path / "old"
    shutil.copytree(new, old)
    config = json.loads((old / "config.json").read_text())
    parameters = config.pop("rope_parameters")
    config["rope_theta"] = parameters.pop("rope_theta")
    config["rope_scaling"] = parameters
    (old / "config.json").write_text(json.dumps(config))
    sequences = [list(range(100, 180))]
    a = verity_logits(new, sequences, tmp_path)[0]
    b = verity_logits(old, sequences, tmp_path)[0]
    assert np.array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# tokenizer.json: the tokenizers library's ids, text by text.

TOKENIZERS = ["smollm2-gpt2", "smollm", "llama3", "qwen2", "gemma3", "hub-trained"]


def tokenizer_folder(name, hub_repos=None):
    if name == "hub-trained":
        # test_11's tiny checkpoint: a 320-token byte-level BPE trained by the tokenizers library.
        from test_11_hub import ST_REPO
        return str(hub_repos / ST_REPO)
    if name == "smollm2-gpt2":
        return hf_fixtures.tiny_checkpoint("llama")
    if name == "gemma3":
        return hf_fixtures.real_checkpoint("gemma3", "bf16")
    return hf_fixtures.tokenizer_variant(name)


@pytest.mark.parametrize("name", TOKENIZERS)
def test_tokenizer_json_ids_match_tokenizers_library(name, tmp_path, request):
    from tokenizers import Tokenizer
    folder = tokenizer_folder(name, request.getfixturevalue("hub_repos") if name == "hub-trained" else None)
    texts = corpus()
    assert len(texts) >= 200
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    got = json.loads(cli("tokenize", "--model", folder, "--input", tmp_path / "texts.json", timeout=300).stdout)
    reference = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    mismatches = []
    for text, ids in zip(texts, got):
        want = reference.encode(text, add_special_tokens=True).ids
        if ids != want:
            mismatches.append(f"{text!r:.60}: want {want[:12]}… got {ids[:12]}…")
    assert not mismatches, f"{len(mismatches)} of {len(texts)} texts differ ({name}):\n" + "\n".join(mismatches[:10])


# ---------------------------------------------------------------------------------------------
# Real weights: teacher-forced agreement over 2,048 positions, and greedy text.

def reference_text():
    for path in ("/usr/share/common-licenses/GPL-3", "/usr/share/common-licenses/Apache-2.0"):
        if os.path.exists(path):
            return open(path, encoding="utf-8").read()
    import sys
    return open(os.path.join(sys.prefix, "lib", "python3", "LICENSE.txt"), encoding="utf-8").read()


def kl_and_top1(got, want, chunk=64):
    """Mean KL(transformers ‖ verity) and top-1 agreement, a few positions at a time (Gemma's
    262,144-token vocabulary in float64 would not fit otherwise)."""
    kl_sum = 0.0
    for i in range(0, want.shape[0], chunk):
        lp_w = torch.log_softmax(torch.from_numpy(want[i:i + chunk]).double(), -1)
        lp_g = torch.log_softmax(torch.from_numpy(got[i:i + chunk]).double(), -1)
        kl_sum += float((lp_w.exp() * (lp_w - lp_g)).sum())
        del lp_w, lp_g
    return kl_sum / want.shape[0], float((got.argmax(-1) == want.argmax(-1)).mean())


@pytest.mark.parametrize("which,dtype", [("smollm2", "f32"), ("smollm2", "bf16"), ("gemma3", "f32"), ("gemma3", "bf16")])
def test_real_checkpoint_agrees_with_transformers(which, dtype, tmp_path):
    from tokenizers import Tokenizer
    path = hf_fixtures.real_checkpoint(which, dtype)
    tok = Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
    ids = tok.encode(reference_text(), add_special_tokens=False).ids
    sequences = [ids[i * 512:(i + 1) * 512] for i in range(4)]
    assert sum(map(len, sequences)) >= 2000
    # The reference: transformers in float32 (a BF16 checkpoint's weights widened exactly).
    want = hf_fixtures.transformers_logits(path, sequences)
    got = verity_logits(path, sequences, tmp_path)
    results = [kl_and_top1(g, w) for g, w in zip(got, want)]
    del want, got
    kl = sum(k * 512 for k, _ in results) / (512 * len(results))
    top1 = sum(t * 512 for _, t in results) / (512 * len(results))
    print(f"{which} {dtype}: mean KL {kl:.2e}, top-1 agreement {top1:.4%} over {sum(map(len, sequences))} positions")
    assert top1 >= 0.995, f"top-1 agreement {top1:.4%} < 99.5%"
    assert kl <= 1e-3, f"mean KL {kl} > 1e-3"


@pytest.mark.parametrize("which", ["smollm2", "gemma3"])
def test_greedy_text_equals_transformers_up_to_a_near_tie(which, tmp_path):
    from transformers import AutoModelForCausalLM
    path = hf_fixtures.real_checkpoint(which, "f32")
    prompt = "The capital of France is"
    out = json.loads(cli("tokenize", "--model", path, "--text", prompt).stdout)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    with torch.no_grad():
        gen = model.generate(torch.tensor([out]), max_new_tokens=40, do_sample=False, output_scores=True,
                             return_dict_in_generate=True)
    ref_tokens = gen.sequences[0, len(out):].tolist()
    # Where transformers' top-2 margin drops below 0.5, the two engines may rightly part ways.
    stop = len(ref_tokens)
    for i, scores in enumerate(gen.scores):
        top = torch.topk(scores[0].float(), 2).values
        if float(top[0] - top[1]) < 0.5:
            stop = i
            break
    got = verity_logits(path, [out + ref_tokens], tmp_path)[0]
    verity_greedy = got[len(out) - 1:len(out) - 1 + stop].argmax(-1).tolist()
    assert verity_greedy == ref_tokens[:stop], f"greedy tokens differ before the first near-tie (at {stop})"
    # And Verity's own generation (not teacher-forced) gives the same tokens up to there.
    if stop > 0:
        run = json.loads(cli("run", "--model", path, "--prompt", prompt, "--raw", "--json", "--max-tokens", stop,
                             "--temperature", "0", "--threads", "2", timeout=600).stdout)
        assert run["prompt_tokens"] == out
        assert run["completion_tokens"][:stop] == ref_tokens[:stop], \
            f"verity run {run['completion_tokens']} vs transformers {ref_tokens[:stop]} ({tok_decode(path, ref_tokens[:stop])!r})"


def tok_decode(path, ids):
    from tokenizers import Tokenizer
    return Tokenizer.from_file(os.path.join(path, "tokenizer.json")).decode(ids)


# ---------------------------------------------------------------------------------------------
# Load-time quantization and serving a folder.

def test_quantize_at_load_keeps_the_model(tmp_path):
    path = hf_fixtures.real_checkpoint("smollm2", "f32")
    from tokenizers import Tokenizer
    ids = Tokenizer.from_file(os.path.join(path, "tokenizer.json")).encode(reference_text()[:6000]).ids[:512]
    want = hf_fixtures.transformers_logits(path, [ids])[0]
    # Measured on SmolLM2-135M over 1,024 positions: q8_0 KL 4.9e-3, top-1 95.5%; q4_k (Q5_0 for its
    # 576-wide rows, Q4_K for the 1,536-wide, Q8_0 output) KL 8.2e-2, top-1 85.6% (README). The
    # bounds leave room for the text, not for a broken quantizer (KL > 1).
    for quant, max_kl, min_top1 in (("q8_0", 0.01, 0.93), ("q4_k", 0.15, 0.80)):
        got = verity_logits(path, [ids], tmp_path, "--quantize", quant)[0]
        kl, top1 = kl_and_top1(got, want)
        print(f"--quantize {quant}: mean KL {kl:.3e}, top-1 {top1:.2%}")
        assert kl <= max_kl and top1 >= min_top1, f"--quantize {quant}: mean KL {kl:.3e}, top-1 agreement {top1:.2%}"
    bad = cli("logits", "--model", path, "--input", tmp_path / "seq.json", "--output", tmp_path / "x", "--quantize", "q9_z", check=False)
    assert bad.returncode != 0 and "q9_z" in bad.stderr and "q8_0" in bad.stderr


def test_serve_a_folder_names_its_source_and_digest(start_server):
    path = hf_fixtures.real_checkpoint("smollm2", "bf16")
    server, stop = start_server("hf-folder", ["--model", path])
    try:
        r = http.get(server.base_url + "/v1/models", headers={"Authorization": f"Bearer {API_KEY}"})
        assert r.status_code == 200
        [model] = r.json()["data"]
        assert model["id"] == os.path.basename(path)
        assert model["source"] == path
        assert model["digest"].startswith("sha256:") and len(model["digest"]) == 71
        r = http.post(server.base_url + "/v1/chat/completions", headers={"Authorization": f"Bearer {API_KEY}"},
                      json={"model": model["id"], "messages": [{"role": "user", "content": "What is 2+2?"}],
                            "max_tokens": 8, "temperature": 0}, timeout=120)
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"]
    finally:
        stop()


# ---------------------------------------------------------------------------------------------
# Bad checkpoints: errors that name the problem, and nothing crashes.

def broken_copy(tmp_path, name, edit):
    src = hf_fixtures.tiny_checkpoint("llama")
    dst = tmp_path / name
    shutil.copytree(src, dst)
    edit(dst)
    return dst


def rewrite_config(dst, **changes):
    config = json.loads((dst / "config.json").read_text())
    config.update(changes)
    (dst / "config.json").write_text(json.dumps(config))


def rewrite_safetensors(dst, transform):
    raw = (dst / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    header, data = transform(header, raw[8 + n:])
    blob = json.dumps(header).encode()
    (dst / "model.safetensors").write_bytes(struct.pack("<Q", len(blob)) + blob + data)


def drop_tensor(name):
    def transform(header, data):
        del header[name]
        return header, data
    return transform


def retype_tensor(name, dtype):
    def transform(header, data):
        header[name]["dtype"] = dtype
        return header, data
    return transform


@pytest.mark.parametrize("case,edit,expected", [
    ("unknown-architecture", lambda d: rewrite_config(d, architectures=["FalconForCausalLM"]), "FalconForCausalLM"),
    ("no-architectures", lambda d: rewrite_config(d, architectures=None), "architectures"),
    ("missing-tensor", lambda d: rewrite_safetensors(d, drop_tensor("model.layers.1.mlp.down_proj.weight")),
     "model.layers.1.mlp.down_proj.weight"),
    ("int8-tensor", lambda d: rewrite_safetensors(d, retype_tensor("model.norm.weight", "I32")), "model.norm.weight"),
    ("truncated-weights", lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:100000]),
     "model.safetensors"),
    ("garbage-header", lambda d: (d / "model.safetensors").write_bytes(b"\xff" * 64), "safetensors"),
    ("no-weights", lambda d: (d / "model.safetensors").unlink(), "model.safetensors"),
    ("no-tokenizer", lambda d: (d / "tokenizer.json").unlink(), "tokenizer.json"),
    ("bad-config-json", lambda d: (d / "config.json").write_text("{not json"), "config.json"),
    ("yarn-rope", lambda d: rewrite_config(d, rope_parameters={"rope_type": "yarn", "factor": 4.0, "rope_theta": 1e4}), "yarn"),
    ("yarn-rope-old-config", lambda d: rewrite_config(d, rope_parameters=None, rope_theta=1e4,
                                                      rope_scaling={"type": "yarn", "factor": 4.0}), "yarn"),
])
def test_bad_checkpoint_is_a_clear_error(case, edit, expected, tmp_path):
    folder = broken_copy(tmp_path, case, edit)
    p = cli("tokenize", "--model", folder, "--text", "hi", check=False)
    assert p.returncode != 0, f"{case}: loaded a broken checkpoint"
    assert expected in p.stderr, f"{case}: the error does not name {expected!r}:\n{p.stderr}"
    assert "Fatal error" not in p.stderr and "Trace" not in p.stderr


# ---------------------------------------------------------------------------------------------
# A newcomer's first run: `verity serve --model hf:ORG/NAME` against the test hub, then offline.

def hub_root_with(tmp_path, repos):
    """ROOT/{org}/{name}/ for each repo → source folder (files copied; the hub serves plain files)."""
    root = tmp_path / "hub"
    for repo, source in repos.items():
        dst = root / repo
        dst.mkdir(parents=True)
        for f in os.listdir(source):
            if not f.startswith("."):
                shutil.copy(os.path.join(source, f), dst / f)
    return root


def test_serve_hf_repo_downloads_with_progress_serves_and_then_serves_offline(tmp_path, monkeypatch):
    from test_11_hub import start_hub
    repo = "test-org/smollm2-bf16"
    hub = start_hub(hub_root_with(tmp_path, {repo: hf_fixtures.real_checkpoint("smollm2", "bf16")}))
    home = tmp_path / "hf-home"
    for key in ("HF_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "HF_HUB_CACHE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    commit = hub.commit(repo)
    try:
        server = support.VerityServer(["--model", f"hf:{repo}"], tmp_path / "online.log", api_key=None, ready_timeout=300)
        try:
            log = server.log_tail(20000)
            # Not a terminal: one line per downloaded file.
            assert "model.safetensors" in log and "tokenizer.json" in log, log
            models = http.get(server.base_url + "/v1/models").json()["data"]
            assert [m["id"] for m in models] == [repo]
            assert models[0]["source"] == f"hf:{repo}@{commit}"
            digest = models[0]["digest"]
            r = http.post(server.base_url + "/v1/chat/completions", timeout=120,
                          json={"model": repo, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 6})
            assert r.status_code == 200, r.text
            record_id = r.json()["id"]
            operator = tmp_path / "data" / "operator.json"
            record = json.loads(cli("ledger", "decrypt", record_id, "--account", operator, "--url", server.base_url).stdout)
            assert record["model_digest"] == digest
            assert json.dumps(record).count(f"hf:{repo}@{commit}") >= 1, record
        finally:
            assert server.stop() == 0
        snapshot = home / "hub" / f"models--{repo.replace('/', '--')}" / "snapshots" / commit
        assert (snapshot / "model.safetensors").is_symlink()
    finally:
        hub.stop()
    # Offline, with the hub gone: the cached copy serves, with the same digest.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    server = support.VerityServer(["--model", f"hf:{repo}", "--data-dir", tmp_path / "data2"], tmp_path / "offline.log",
                                  api_key=None, ready_timeout=120)
    try:
        models = http.get(server.base_url + "/v1/models").json()["data"]
        assert models[0]["digest"] == digest and models[0]["source"] == f"hf:{repo}@{commit}"
    finally:
        assert server.stop() == 0


def test_pull_on_a_terminal_draws_a_progress_bar(tmp_path):
    """On a TTY the download shows a redrawn bar with bytes, rate and ETA."""
    import pty, select
    from test_11_hub import start_hub
    repo = "test-org/smollm2-f32"
    hub = start_hub(hub_root_with(tmp_path, {repo: hf_fixtures.real_checkpoint("smollm2", "f32")}))
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        env.update(HF_HOME=str(tmp_path / "home"), HF_ENDPOINT=hub.url, COLUMNS="100")
        master, slave = pty.openpty()
        proc = subprocess.Popen([str(support.verity_binary()), "pull", repo], stdin=slave, stdout=subprocess.PIPE,
                                stderr=slave, env=env)
        os.close(slave)
        out = b""
        while True:
            ready, _, _ = select.select([master], [], [], 120)
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        stdout = proc.stdout.read().decode()
        assert proc.wait(60) == 0, out.decode(errors="replace")
        text = out.decode(errors="replace")
        assert "\r" in text, f"no redrawn bar: {text[:500]!r}"
        assert "MB" in text or "MiB" in text, text[-500:]
        assert stdout.strip().endswith(hub.commit(repo))
    finally:
        hub.stop()


def run_with_env(env, *args, timeout=600):
    p = subprocess.run([str(support.verity_binary()), *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout)
    assert p.returncode == 0, f"verity {' '.join(map(str, args))} exited {p.returncode}:\n{p.stderr[-3000:]}"
    return p


def test_hub_models_load_as_one_model_split_gguf_and_sharded_safetensors(hub, home, tmp_path):
    """hf:ORG/NAME for a GGUF split in three shards gives the single file's logits bit for bit; a
    safetensors checkpoint sharded by its index matches transformers."""
    from test_11_hub import SMOL, SPLIT_REPO, ST_REPO, hf_env
    env = hf_env(hub, home)
    seq = tmp_path / "seq.json"
    seq.write_text(json.dumps([list(range(1, 40))]))
    run_with_env(env, "logits", "--model", f"hf:{SPLIT_REPO}", "--input", seq, "--output", tmp_path / "split.f32")
    cli("logits", "--model", SMOL, "--input", seq, "--output", tmp_path / "single.f32")
    assert (tmp_path / "split.f32").read_bytes() == (tmp_path / "single.f32").read_bytes()

    run_with_env(env, "logits", "--model", f"hf:{ST_REPO}", "--input", seq, "--output", tmp_path / "st.f32")
    snapshot = run_with_env(env, "pull", ST_REPO).stdout.strip()
    assert os.path.exists(os.path.join(snapshot, "model.safetensors.index.json"))
    want = hf_fixtures.transformers_logits(snapshot, [list(range(1, 40))])[0]
    got = np.fromfile(tmp_path / "st.f32", dtype=np.float32).reshape(want.shape)
    assert float(np.abs(got - want).max()) <= 1e-4


def test_the_models_generation_config_sets_unset_sampling_fields(tmp_path, start_server):
    """generation_config.json's do_sample=false / top_p / top_k are the server's defaults for this
    model: /v1/models says so, and a request without temperature answers greedily (the same text as
    temperature 0), while one that sets temperature keeps it."""
    folder = tmp_path / "model"
    shutil.copytree(hf_fixtures.real_checkpoint("smollm2", "bf16"), folder)
    generation = json.loads((folder / "generation_config.json").read_text())
    generation.update(do_sample=False, temperature=0.6, top_p=0.9, top_k=20)
    (folder / "generation_config.json").write_text(json.dumps(generation))
    server, stop = start_server("hf-sampling", ["--model", folder], api_key=None)
    try:
        [model] = http.get(server.base_url + "/v1/models").json()["data"]
        assert model["sampling_defaults"] == {"temperature": 0.0, "top_p": 0.9, "top_k": 20, "source": "generation_config.json"}

        def ask(**extra):
            r = http.post(server.base_url + "/v1/completions", timeout=120,
                          json={"model": model["id"], "prompt": "Once upon a time", "max_tokens": 12, **extra})
            assert r.status_code == 200, r.text
            return r.json()["choices"][0]["text"]
        greedy = ask(temperature=0)
        assert ask() == greedy and ask() == greedy
        hot = {ask(temperature=1.5, top_p=1, top_k=0, seed=s) for s in range(4)}
        assert len(hot) > 1, "a request's own temperature must win over the model's default"
    finally:
        stop()
