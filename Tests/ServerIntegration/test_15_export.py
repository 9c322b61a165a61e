"""`verity export` (issue 16) against the tools people take their models to:

1. Bytes against llama.cpp: from the same F16 GGUF (made by llama.cpp's convert_hf_to_gguf.py),
   every tensor of Verity's GGUF export has the type and the bytes of llama.cpp's
   `llama_model_quantize` (what llama-quantize runs), on SmolLM2, Gemma 3 and a tiny model of each
   architecture; the metadata llama.cpp writes is all there, unchanged; the default file name is
   llama.cpp's naming convention.
2. llama.cpp loads every exported type and gives Verity's greedy text on the same file, up to the
   first near-tie; a split export loads as one model.
3. GGUF → safetensors → GGUF at F32 is lossless; transformers loads an exported folder (model and
   tokenizer), with logits within 1e-4 of Verity's on the source and the chat template rendered
   byte for byte as Verity renders it.
4. A merged LoRA export equals transformers + peft's merge_and_unload() within 1e-4; the adapter
   alone exports as a PEFT folder and as a GGUF LoRA that llama.cpp's converter would write.
5. Provenance: `verity ledger provenance FILE` finds the export's record, with a receipt that
   verifies offline; a changed file is not found.
6. Bad input is refused clearly and leaves nothing behind.

References are built once (export_fixtures) in $VERITY_CACHE_DIR/hf-fixtures/export."""
import json
import os
import random
import shutil
import subprocess

import numpy as np
import pytest

import export_fixtures as ef
import hf_fixtures
import lora_fixtures as lf
from support import cli

# What the byte comparison covers: the quantized types on the real models, the mixes and the
# fallbacks (64-wide rows take Q5_0 / Q5_1 / Q8_0 instead of K-quants) on the tiny ones.
SMOL_TYPES = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M",
              "Q5_K_S", "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS", "F16", "BF16", "F32"]
GEMMA_TYPES = ["Q8_0", "Q4_0", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K"]
TINY_TYPES = ["Q8_0", "Q4_K_M", "Q5_K_M", "Q2_K"]
FULL_BYTE_CASES = ([("smollm2", t) for t in SMOL_TYPES] + [("gemma3", t) for t in GEMMA_TYPES]
                   + [(m, t) for m in ef.TINY_MODELS for t in TINY_TYPES])
# CI runs a subset that covers the K-quant mixes (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K blocks), Q8_0, Q4_0
# and the fallbacks (about 4 minutes); VERITY_EXPORT_FULL=1 runs all of the above (about 15 minutes on 2 cores).
CI_BYTE_CASES = ([("smollm2", t) for t in ["Q8_0", "Q4_0", "Q2_K", "Q4_K_M", "Q5_K_M", "Q6_K"]]
                 + [("gemma3", "Q4_K_M")] + [(m, "Q4_K_M") for m in ef.TINY_MODELS])
BYTE_CASES = FULL_BYTE_CASES if os.environ.get("VERITY_EXPORT_FULL") else CI_BYTE_CASES

# Where llama.cpp's best two logits are closer than this, two correct engines may part ways: as in
# scripts/fidelity.py. (Verity's numbers are the same on every CPU tier; llama.cpp's depend on the
# kernels its build picked, e.g. AVX2-only builds round differently from AVX-512 ones.)
NEAR_TIE = 0.5
GREEDY_PROMPT = "The capital of France is"
GREEDY_TOKENS = 16

_exports = {}


def export(source, *args, out, timeout=1800):
    """`verity export SOURCE ARGS --out OUT --json` (no ledger); returns its JSON."""
    p = cli("export", source, *args, "--out", out, "--json", "--no-record", "--threads", "2", timeout=timeout)
    return json.loads(p.stdout)


def verity_gguf(name, qtype):
    """Verity's export of converted_gguf(name) (F16) to `qtype`, made once per session."""
    key = (name, qtype)
    if key not in _exports:
        folder = os.path.join(ef.export_dir(), "verity-session")
        os.makedirs(folder, exist_ok=True)
        out = os.path.join(folder, f"{name}-{qtype}.gguf")
        if os.path.exists(out):
            os.unlink(out)
        export(ef.converted_gguf(name), "--to", "gguf", "--type", qtype, out=out)
        _exports[key] = out
    return _exports[key]


def verity_run(model, prompt, max_tokens):
    out = cli("run", "--model", model, "--raw", "--prompt", prompt, "--temperature", "0", "--max-tokens", max_tokens,
              "--json", "--threads", "2", timeout=900).stdout
    return json.loads(out)


def verity_logits(path, sequences, tmp_path):
    inp, out = tmp_path / "seq.json", tmp_path / "logits.f32"
    inp.write_text(json.dumps(sequences))
    cli("logits", "--model", path, "--input", inp, "--output", out, "--threads", "2", timeout=900)
    flat = np.fromfile(out, dtype=np.float32)
    return flat.reshape(len(sequences[0]), -1)


# ---------------------------------------------------------------------------------------------
# 1. Bytes and types against llama-quantize.

@pytest.mark.parametrize("name,qtype", BYTE_CASES, ids=[f"{m}-{t}" for m, t in BYTE_CASES])
def test_tensors_are_byte_identical_to_llama_quantize(name, qtype):
    want = ef.llama_quantized(name, qtype)
    got = verity_gguf(name, qtype)
    problems = ef.compare_tensors(want, got)
    assert not problems, f"{name} {qtype}:\n" + "\n".join(problems)

    ref, ours = ef.open_gguf(want).metadata(), ef.open_gguf(got).metadata()
    changed = {k: (v, ours.get(k)) for k, v in ref.items() if ours.get(k) != v}
    assert not changed, f"{name} {qtype}: metadata llama.cpp writes that Verity's file lacks or changes: " + \
        "; ".join(f"{k}: llama.cpp {str(a)[:80]}, verity {str(b)[:80]}" for k, (a, b) in list(changed.items())[:10])
    assert ours["general.quantization_version"] == 2
    assert ours["verity.export.source_digest"].startswith("sha256:"), ours["verity.export.source_digest"]
    assert ours["verity.export.tool"].startswith("verity/")


def test_default_file_name_is_llama_cpp_naming_convention(tmp_path):
    src = ef.converted_gguf("smollm2")
    info = export(src, "--to", "gguf", "--type", "Q8_0", out=tmp_path)  # a folder: the default name inside it
    meta = ef.open_gguf(info["output"]).metadata()
    assert os.path.basename(info["output"]) == ef.default_gguf_name(meta, "Q8_0"), info["output"]
    assert os.path.dirname(info["output"]) == str(tmp_path)
    for key in ("general.name", "general.size_label", "general.file_type", "general.quantization_version"):
        assert key in meta, key
    assert meta["general.file_type"] == 7
    # The tokenizer and chat template travel whole.
    src_meta = ef.open_gguf(src).metadata()
    for key in [k for k in src_meta if k.startswith("tokenizer.")]:
        assert meta.get(key) == src_meta[key], key


# ---------------------------------------------------------------------------------------------
# 2. llama.cpp loads what Verity writes and agrees with Verity on it.

@pytest.mark.parametrize("qtype", SMOL_TYPES)
def test_llama_cpp_loads_every_type_with_verity_greedy_text(qtype):
    path = verity_gguf("smollm2", qtype)
    ref = ef.llama_cpp_greedy(path, GREEDY_PROMPT, GREEDY_TOKENS)
    stop = ef.first_near_tie(ref["margins"], NEAR_TIE)
    run = verity_run(path, GREEDY_PROMPT, GREEDY_TOKENS)
    assert run["prompt_tokens"] == ref["prompt"], f"prompt tokens: verity {run['prompt_tokens']}, llama.cpp {ref['prompt']}"
    assert run["completion_tokens"][:stop] == ref["tokens"][:stop], \
        f"{qtype}: verity {run['completion_tokens']} vs llama.cpp {ref['tokens']} (first near-tie at {stop}; {ref['text']!r})"
    if qtype in ("Q8_0", "F16", "F32", "Q6_K", "Q5_K_M", "Q4_K_M"):
        assert stop >= 4, f"{qtype}: llama.cpp's greedy path meets a near-tie at token {stop}: {ref['margins']}"


def test_split_export_loads_in_llama_cpp_as_one_model(tmp_path):
    src = ef.converted_gguf("smollm2")
    info = export(src, "--to", "gguf", "--type", "Q8_0", "--split-max-size", "60M", out=tmp_path / "smol-q8.gguf")
    files = [f["path"] for f in info["files"]]
    assert len(files) >= 3, files
    assert [os.path.basename(f) for f in files] == [f"smol-q8-{i:05d}-of-{len(files):05d}.gguf" for i in range(1, len(files) + 1)]
    for f in files:
        assert os.path.getsize(f) <= 60_000_000 + 16 << 20, f  # a shard's tensors fit, plus its header
    whole = verity_gguf("smollm2", "Q8_0")
    assert not ef.compare_tensors(whole, files[0]), "the shards' tensors differ from the single file's"
    ref = ef.llama_cpp_greedy(files[0], GREEDY_PROMPT, GREEDY_TOKENS)
    single = ef.llama_cpp_greedy(whole, GREEDY_PROMPT, GREEDY_TOKENS)
    assert ref["tokens"] == single["tokens"]
    run = verity_run(files[0], GREEDY_PROMPT, GREEDY_TOKENS)
    stop = ef.first_near_tie(ref["margins"], NEAR_TIE)
    assert run["completion_tokens"][:stop] == ref["tokens"][:stop]


# ---------------------------------------------------------------------------------------------
# 3. Safetensors: lossless round trip, transformers loads it.

@pytest.mark.parametrize("name", ["smollm2"] + ef.TINY_MODELS)
def test_f32_round_trip_gguf_safetensors_gguf_is_lossless(name, tmp_path):
    src = ef.converted_gguf(name, "f32")
    folder = tmp_path / "hf"
    export(src, "--to", "safetensors", "--type", "F32", out=folder)
    back = tmp_path / "back.gguf"
    export(str(folder), "--to", "gguf", "--type", "F32", out=back)
    a, b = ef.open_gguf(src), ef.open_gguf(back)
    assert set(a.tensors) == set(b.tensors), (sorted(set(a.tensors) ^ set(b.tensors)))
    for t in a.tensors:
        assert a.shape(t) == b.shape(t), t
        assert np.array_equal(a.values(t), b.values(t)), f"{name}: {t} changed in the round trip"
    ma, mb = a.metadata(), b.metadata()
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type", "tokenizer.chat_template",
                "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"):
        if key in ma:
            assert mb.get(key) == ma[key], f"{name}: {key} changed in the round trip"


def _chat_messages():
    return [{"role": "system", "content": "You answer briefly."},
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "4."},
            {"role": "user", "content": "And 3+3? Ünïcödé ✓"}]


@pytest.mark.parametrize("name", ef.TINY_MODELS)
def test_transformers_loads_the_folder_with_verity_logits(name, tmp_path):
    """Two sources of the same tiny checkpoint, each exported as an F32 folder:
    - the Hugging Face folder itself: transformers on the export is within 1e-4 of Verity on the
      source;
    - llama.cpp's F32 GGUF of it (config.json and the tokenizer rebuilt from GGUF metadata, Q/K rows
      and norms transformed back): transformers on the export gives the original checkpoint's logits
      exactly, and Verity on the export is within 1e-4 of transformers on it. (Verity on the GGUF
      itself follows llama.cpp's arithmetic, which is not transformers'.)"""
    checkpoint = MODELS_BY_NAME[name]()
    rng = random.Random(7)
    seq = [[rng.randrange(49152) for _ in range(48)]]
    original = hf_fixtures.transformers_logits(checkpoint, seq)[0]

    from_folder = tmp_path / "from-folder"
    export(checkpoint, "--to", "safetensors", "--type", "F32", out=from_folder)
    want = hf_fixtures.transformers_logits(str(from_folder), seq)[0]
    got = verity_logits(checkpoint, seq, tmp_path)
    err = float(np.abs(got - want).max())
    assert err <= 1e-4, f"{name}: max |verity(source folder) - transformers(export)| = {err}"

    folder = tmp_path / "from-gguf"
    export(ef.converted_gguf(name, "f32"), "--to", "safetensors", "--type", "F32", out=folder)
    for f in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
              "README.md"):
        assert (folder / f).exists(), f
    # One shard is model.safetensors, as transformers writes it; more come with their index.
    shards = sorted(p.name for p in folder.glob("*.safetensors"))
    assert shards == ["model.safetensors"] or (folder / "model.safetensors.index.json").exists(), shards
    want = hf_fixtures.transformers_logits(str(folder), seq)[0]
    assert float(np.abs(want - original).max()) <= 1e-5, f"{name}: the GGUF's export is not the original checkpoint"
    got = verity_logits(str(folder), seq, tmp_path)
    err = float(np.abs(got - want).max())
    assert err <= 1e-4, f"{name}: max |verity - transformers| on the export of the GGUF = {err}"


MODELS_BY_NAME = ef.MODELS


@pytest.mark.parametrize("which", ["smollm2", "gemma3"])
def test_quantized_gguf_exports_a_folder_transformers_and_tokenizers_load(which, tmp_path):
    """The provisioned quantized GGUF → F32 folder: the weights are its dequantized values, the
    tokenizer encodes as Verity does, the chat template renders byte-identically."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    src = ef.smollm2_q4_1() if which == "smollm2" else ef.gemma3_q4_k_m()
    folder = tmp_path / "hf"
    info = export(src, "--to", "safetensors", out=folder)
    assert info["type"] == "F32"
    card = (folder / "README.md").read_text()
    assert "dequantiz" in card.lower() and info["source"]["digest"].split(":")[-1] in card, card[:800]

    tok = AutoTokenizer.from_pretrained(str(folder))
    text = "Hello world! Ünïcödé, numbers 12345 and   spaces.\n\tTabs."
    want_ids = json.loads(cli("tokenize", "--model", src, "--text", text).stdout)
    assert tok(text)["input_ids"] == want_ids, "AutoTokenizer on the export encodes differently from Verity on the source"

    # The chat template: transformers' apply_chat_template on the folder vs Verity's own rendering
    # (Gemma 3 270M is a base model: its GGUF has no template, and neither has the folder).
    if "tokenizer.chat_template" in ef.open_gguf(src).metadata():
        rendered = tok.apply_chat_template(_chat_messages(), tokenize=False, add_generation_prompt=True)
        from support import VerityServer, http, API_KEY
        server = VerityServer(["--model", src], tmp_path / "serve.log")
        try:
            headers = {"Authorization": f"Bearer {API_KEY}"}
            model_id = http.get(server.base_url + "/v1/models", headers=headers, timeout=30).json()["data"][0]["id"]
            r = http.post(server.base_url + "/v1/chat/template", headers=headers,
                          json={"model": model_id, "messages": _chat_messages(), "add_generation_prompt": True}, timeout=60)
            assert r.status_code == 200, r.text
            assert r.json()["prompt"] == rendered
        finally:
            server.stop()
    else:
        assert "chat_template" not in json.loads((folder / "tokenizer_config.json").read_text())

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    ids = want_ids[:24]
    with torch.no_grad():
        want = model(torch.tensor([ids])).logits[0].float().numpy()
    got = verity_logits(str(folder), [ids], tmp_path)
    err = float(np.abs(got - want).max())
    assert err <= 1e-3 * max(1.0, float(np.abs(want).max())) and (got.argmax(-1) == want.argmax(-1)).all(), \
        f"{which}: max |verity - transformers| on the exported folder = {err}"


# ---------------------------------------------------------------------------------------------
# 4. LoRA: merged and alone.

def test_merged_lora_equals_peft_merge_and_unload(tmp_path):
    name = "smollm2-all7"
    base = lf.base_path(name)
    out = tmp_path / "merged"
    info = export(base, "--to", "safetensors", "--type", "F32", "--lora", lf.adapter(name), "--merge", out=out)
    assert info["merged"] is True and info["adapter"]["digest"]
    want = ef.peft_merged_weights(name)
    got = ef.safetensors_weights(str(out))
    assert set(got) >= set(want) - {"lm_head.weight"}, sorted(set(want) - set(got))[:10]
    worst = max(float(np.abs(got[k] - want[k]).max()) for k in want if k in got)
    assert worst <= 1e-4, f"merged weights differ from peft's merge_and_unload by up to {worst}"
    base_w = ef.safetensors_weights(base)
    changed = [k for k in want if k in base_w and not np.array_equal(base_w[k], want[k])]
    assert changed, "fixture: the adapter changes no weight"

    # The same merge written as GGUF F32 equals llama.cpp's conversion of peft's merged folder.
    gg = tmp_path / "merged.gguf"
    export(base, "--to", "gguf", "--type", "F32", "--lora", lf.adapter(name), "--merge", out=gg)
    a, b = ef.open_gguf(ef.peft_merged_gguf(name)), ef.open_gguf(gg)
    assert set(a.tensors) == set(b.tensors)
    worst = max(float(np.abs(a.values(t) - b.values(t)).max()) for t in a.tensors)
    assert worst <= 1e-4, f"merged GGUF differs from llama.cpp's conversion of peft's merge by up to {worst}"
    meta = b.metadata()
    assert meta.get("verity.export.adapter_digest"), sorted(k for k in meta if k.startswith("verity."))


def test_merge_onto_a_4bit_base_uses_its_dequantized_weights(tmp_path):
    """A bitsandbytes NF4 base: the adapter is folded into the dequantized weights (never the 4-bit
    ones), which is peft's merge_and_unload on the dequantized F32 checkpoint."""
    import bnb_fixtures
    name = "llama-all7"
    base4 = bnb_fixtures.tiny_bnb("llama-nf4-f32")
    want = ef.peft_merged_weights(name, base=bnb_fixtures.dequantized_f32(base4))
    out = tmp_path / "merged"
    info = export(base4, "--to", "safetensors", "--type", "F32", "--lora", lf.adapter(name), "--merge", out=out)
    assert any("dequantiz" in n for n in info["notes"]), info["notes"]
    got = ef.safetensors_weights(str(out))
    assert set(got) >= set(want) - {"lm_head.weight"}, sorted(set(want) - set(got))[:10]
    worst = max(float(np.abs(got[k] - want[k]).max()) for k in want if k in got)
    assert worst <= 1e-4, f"merged 4-bit base differs from peft on the dequantized base by up to {worst}"
    assert "quantization_config" not in json.loads((out / "config.json").read_text())


def test_adapter_alone_as_peft_and_as_gguf_lora(tmp_path):
    name = "smollm2-all7"
    base = lf.base_path(name)
    peft_out = tmp_path / "peft"
    export(base, "--to", "lora", "--type", "peft", "--lora", lf.adapter(name), out=peft_out)
    cfg = json.loads((peft_out / "adapter_config.json").read_text())
    src_cfg = json.loads((os.path.join(lf.adapter(name), "adapter_config.json") and
                          open(os.path.join(lf.adapter(name), "adapter_config.json")).read()))
    assert cfg["r"] == src_cfg["r"] and cfg["lora_alpha"] == src_cfg["lora_alpha"]
    a, b = ef.safetensors_weights(lf.adapter(name)), ef.safetensors_weights(str(peft_out))
    assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)

    gg = tmp_path / "adapter.gguf"
    export(base, "--to", "lora", "--type", "gguf", "--lora", lf.adapter(name), out=gg)
    ref, got = ef.open_gguf(lf.gguf_adapter(name)), ef.open_gguf(gg)
    assert set(ref.tensors) == set(got.tensors), sorted(set(ref.tensors) ^ set(got.tensors))[:10]
    worst = max(float(np.abs(ref.values(t) - got.values(t)).max()) for t in ref.tensors)
    assert worst <= 1e-6, f"GGUF LoRA differs from llama.cpp's convert_lora_to_gguf by {worst}"
    mr, mg = ref.metadata(), got.metadata()
    assert mg["general.type"] == "adapter" and mg["adapter.type"] == "lora"
    assert abs(float(mg["adapter.lora.alpha"]) - float(mr["adapter.lora.alpha"])) < 1e-6
    # llama.cpp applies it and agrees with Verity on the result.
    lora_ref = ef.llama_cpp_greedy(ef.smollm2_q4_1(), GREEDY_PROMPT, GREEDY_TOKENS, lora=str(gg))
    run = json.loads(cli("run", "--model", ef.smollm2_q4_1(), "--lora", f"a={gg}", "--raw", "--prompt", GREEDY_PROMPT,
                         "--temperature", "0", "--max-tokens", GREEDY_TOKENS, "--json", "--threads", "2", timeout=600).stdout)
    stop = ef.first_near_tie(lora_ref["margins"], NEAR_TIE)
    assert run["completion_tokens"][:stop] == lora_ref["tokens"][:stop]


# ---------------------------------------------------------------------------------------------
# 5. Provenance.

def test_provenance_finds_the_record_with_a_receipt_that_verifies(tmp_path):
    data = tmp_path / "data"
    out = tmp_path / "smol-q8.gguf"
    p = cli("export", ef.converted_gguf("smollm2"), "--to", "gguf", "--type", "Q8_0", "--out", out,
            "--json", "--data-dir", data, "--threads", "2", timeout=900)
    info = json.loads(p.stdout)
    assert info["record_id"] and info["receipt"], info
    prov = json.loads(cli("ledger", "provenance", out, "--data-dir", data, "--json").stdout)
    assert prov["found"] and prov["record_id"] == info["record_id"]
    assert prov["sha256"] == "sha256:" + ef.sha256_file(out)
    assert prov["format"] == "gguf" and prov["type"] == "Q8_0"
    (tmp_path / "receipt.json").write_text(json.dumps(prov["receipt"]))
    node_key = cli("ledger", "node-key", "--data-dir", data).stdout.strip()
    ok = cli("ledger", "verify-receipt", tmp_path / "receipt.json", "--node-key", node_key)
    assert "ok: record " + info["record_id"] in ok.stdout
    # The whole ledger still verifies with the export in it.
    cli("ledger", "verify", "--data-dir", data)

    # A file that differs by one byte was not exported.
    other = tmp_path / "changed.gguf"
    shutil.copy(out, other)
    with open(other, "r+b") as f:
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    miss = cli("ledger", "provenance", other, "--data-dir", data, "--json", check=False)
    assert miss.returncode == 1 and json.loads(miss.stdout)["found"] is False


# ---------------------------------------------------------------------------------------------
# 6. Refusals.

@pytest.mark.parametrize("args,expected", [
    (["--to", "gguf", "--type", "Q9_9"], "unknown GGUF file type 'Q9_9'"),
    (["--to", "gguf", "--type", "IQ2_XXS"], "importance matrix"),
    (["--to", "safetensors", "--type", "Q4_K_M"], "F32, F16 or BF16"),
    (["--to", "lora"], "--lora"),
    (["--to", "gguf", "--merge"], "--lora"),
    (["--to", "gguf", "--split-max-size", "12Q"], "split-max-size"),
])
def test_bad_options_are_clear_errors_and_write_nothing(args, expected, tmp_path):
    out = tmp_path / "out"
    p = cli("export", ef.smollm2_q4_1(), *args, "--out", out, "--no-record", check=False)
    assert p.returncode != 0
    assert expected in p.stderr, p.stderr
    assert not out.exists() and os.listdir(tmp_path) == []


def test_existing_output_is_never_overwritten_and_missing_source_is_clear(tmp_path):
    out = tmp_path / "x.gguf"
    out.write_bytes(b"keep me")
    p = cli("export", ef.smollm2_q4_1(), "--to", "gguf", "--type", "Q8_0", "--out", out, "--no-record",
            check=False)
    assert p.returncode != 0 and out.read_bytes() == b"keep me"
    p = cli("export", tmp_path / "nope.gguf", "--to", "gguf", "--out", tmp_path / "y.gguf", "--no-record", check=False)
    assert p.returncode != 0 and "nope.gguf" in p.stderr
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(open(ef.smollm2_q4_1(), "rb").read(1 << 16))
    p = cli("export", corrupt, "--to", "gguf", "--type", "F16", "--out", tmp_path / "z.gguf", "--no-record", check=False)
    assert p.returncode != 0 and "corrupt.gguf" in p.stderr + p.stdout
    assert sorted(os.listdir(tmp_path)) == ["corrupt.gguf", "x.gguf"]


def test_a_quantized_source_is_requantized_and_says_so(tmp_path):
    """llama-quantize needs --allow-requantize for a quantized input; Verity does it and says so. The
    tensors are what llama.cpp makes with allow_requantize from the same file."""
    out = tmp_path / "a.gguf"
    info = export(ef.smollm2_q4_1(), "--to", "gguf", "--type", "Q8_0", out=out)
    assert any("quantized again" in n for n in info["notes"]), info["notes"]
    ref = ef.open_gguf(out)
    assert ref.type_name("blk.0.ffn_down.weight") == "Q8_0"
