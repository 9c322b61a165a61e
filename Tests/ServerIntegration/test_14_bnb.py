"""bitsandbytes 4-bit checkpoints (NF4/FP4, as transformers saves them and Unsloth publishes them)
against the reference implementations, run in this process on CPU:

- every dequantized weight equals bitsandbytes.functional.dequantize_4bit's, byte for byte;
- logits: tiny models within 1e-4 of transformers (float32, the same dequantized weights), SmolLM2
  top-1 ≥ 99.5% and KL ≤ 1e-3 over 2,048 positions;
- --quantize q8_0 of a 4-bit checkpoint;
- clear errors for an 8-bit checkpoint and for broken companions.

The checkpoints are made by bnb_fixtures.py with transformers + bitsandbytes (cached)."""
import json
import os
import random
import shutil
import struct

import numpy as np
import pytest
import torch  # the reference (CPU build), installed by run.sh

import bnb_fixtures
import hf_fixtures
from support import cli
from test_12_hf_models import kl_and_top1, reference_text, verity_logits


def verity_dequantize(path, tmp_path, names=None):
    """`verity logits dequantize`: name → (dtype, shape, raw bytes) of each tensor."""
    out = tmp_path / "tensors.bin"
    which = ["--all-quantized"] if names is None else [a for n in names for a in ("--tensor", n)]
    entries = json.loads(cli("logits", "dequantize", "--model", path, *which, "--output", out, timeout=300).stdout)
    raw = out.read_bytes()
    return {e["name"]: (e["dtype"], e["shape"], raw[e["offset"]:e["offset"] + e["bytes"]]) for e in entries}


def torch_bytes(t):
    return t.contiguous().view(torch.uint8).numpy().tobytes()


def bitsandbytes_uses_avx512():
    """bitsandbytes' CPU library takes an AVX-512 kernel where the CPU has it (rows of a multiple
    of 16); its FP4 table has +0 where the portable kernel, which Verity follows, has −0."""
    try:
        return "avx512f" in open("/proc/cpuinfo").read()
    except OSError:
        return False


def positive_zeros(raw, dtype):
    bits = np.frombuffer(raw, dtype=np.uint32 if dtype == "F32" else np.uint16).copy()
    sign = bits.dtype.type(1 << (8 * bits.itemsize - 1))
    bits[bits == sign] = 0
    return bits.tobytes()


ALL = [("tiny", n) for n in bnb_fixtures.TINY] + [("real", n) for n in bnb_fixtures.REAL]


def fixture(kind, name):
    return bnb_fixtures.tiny_bnb(name) if kind == "tiny" else bnb_fixtures.real_bnb(name)


# ---------------------------------------------------------------------------------------------
# Dequantization: bytes equal to bitsandbytes'.

@pytest.mark.parametrize("kind,name", ALL)
def test_dequantized_weights_equal_bitsandbytes(kind, name, tmp_path):
    path = fixture(kind, name)
    tensors = bnb_fixtures.load_tensors(path)
    states = bnb_fixtures.quant_states(tensors)
    got = verity_dequantize(path, tmp_path)
    assert sorted(got) == sorted(states), "verity's 4-bit weights are not the checkpoint's"
    assert len(states) >= 8
    avx512 = bitsandbytes_uses_avx512()
    mismatched = []
    for n, state in states.items():
        want = bnb_fixtures.dequantize(tensors, states, n)
        dtype, shape, raw = got[n]
        assert dtype == {torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32"}[want.dtype], n
        assert shape == list(want.shape), n
        if avx512 and state.quant_type == "fp4" and shape[-1] % 16 == 0:
            raw = positive_zeros(raw, dtype)
        if raw != torch_bytes(want):
            mismatched.append(n)
    assert not mismatched, f"{len(mismatched)} of {len(states)} weights differ from bitsandbytes' dequantize_4bit: {mismatched[:5]}"


def test_unsloth_dynamic_keeps_skipped_modules_in_16_bits(tmp_path):
    """llm_int8_skip_modules: those modules are plain BF16 tensors, read as stored."""
    path = bnb_fixtures.tiny_bnb("qwen2-unsloth-dynamic")
    config = json.load(open(os.path.join(path, "config.json")))["quantization_config"]
    assert "model.layers.1.mlp" in config["llm_int8_skip_modules"]
    tensors = bnb_fixtures.load_tensors(path)
    kept = ["lm_head.weight", "model.layers.0.self_attn.o_proj.weight", "model.layers.1.mlp.down_proj.weight",
            "model.layers.1.mlp.gate_proj.weight", "model.layers.1.mlp.up_proj.weight"]
    quantized = set(verity_dequantize(path, tmp_path))
    assert quantized and not quantized & set(kept)
    assert "model.layers.0.mlp.down_proj.weight" in quantized and "model.layers.1.self_attn.o_proj.weight" in quantized
    got = verity_dequantize(path, tmp_path, kept)
    for n in kept:
        assert tensors[n].dtype == torch.bfloat16 and got[n][0] == "BF16" and got[n][2] == torch_bytes(tensors[n]), n


# ---------------------------------------------------------------------------------------------
# Logits against transformers running the same (dequantized) weights in float32.

@pytest.mark.parametrize("name", sorted(bnb_fixtures.TINY))
def test_tiny_bnb_logits_match_transformers(name, tmp_path):
    path = bnb_fixtures.tiny_bnb(name)
    rng = random.Random(11)
    sequences = [[rng.randrange(49152) for _ in range(80)]]
    want = hf_fixtures.transformers_logits(bnb_fixtures.dequantized_f32(path), sequences)[0]
    got = verity_logits(path, sequences, tmp_path, "--precision", "f32")[0]
    assert got.shape == want.shape
    err = float(np.abs(got - want).max())
    print(f"{name}: max |verity - transformers| = {err:.2e}")
    assert err <= 1e-4, f"{name}: max |verity - transformers| = {err} over {want.shape[0]} positions"
    assert (got.argmax(-1) == want.argmax(-1)).all()


def smollm2_sequences(path, n=4, length=512):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
    ids = tok.encode(reference_text(), add_special_tokens=False).ids
    return [ids[i * length:(i + 1) * length] for i in range(n)]


@pytest.mark.parametrize("name", sorted(bnb_fixtures.REAL))
def test_smollm2_bnb_agrees_with_transformers(name, tmp_path):
    path = bnb_fixtures.real_bnb(name)
    sequences = smollm2_sequences(path)
    assert sum(map(len, sequences)) >= 2000
    reference = bnb_fixtures.dequantized_f32(path)
    results = []
    for seq in sequences:  # one sequence at a time: 512 × 49,152 float32 logits each
        want = hf_fixtures.transformers_logits(reference, [seq])[0]
        got = verity_logits(path, [seq], tmp_path)[0]
        results.append(kl_and_top1(got, want))
        del want, got
    kl = sum(k for k, _ in results) / len(results)
    top1 = sum(t for _, t in results) / len(results)
    print(f"{name}: mean KL {kl:.2e}, top-1 agreement {top1:.4%} over {sum(map(len, sequences))} positions")
    assert top1 >= 0.995, f"top-1 agreement {top1:.4%} < 99.5%"
    assert kl <= 1e-3, f"mean KL {kl} > 1e-3"


def test_quantize_q8_0_of_a_bnb_checkpoint(tmp_path):
    """--quantize q8_0 requantizes the dequantized weights: it loads, and stays close (test_12's
    bounds for q8_0 of the F32 checkpoint)."""
    path = bnb_fixtures.real_bnb("smollm2-nf4-dq-bf16")
    [seq] = smollm2_sequences(path, n=1)
    want = hf_fixtures.transformers_logits(bnb_fixtures.dequantized_f32(path), [seq])[0]
    got = verity_logits(path, [seq], tmp_path, "--quantize", "q8_0")[0]
    kl, top1 = kl_and_top1(got, want)
    print(f"--quantize q8_0 of {os.path.basename(path)}: mean KL {kl:.3e}, top-1 {top1:.2%}")
    assert kl <= 0.01 and top1 >= 0.93, f"mean KL {kl:.3e}, top-1 agreement {top1:.2%}"
    tiny = bnb_fixtures.tiny_bnb("llama-fp4-f16")
    small = verity_logits(tiny, [list(range(100, 140))], tmp_path, "--quantize", "q8_0")[0]
    assert np.isfinite(small).all()


# ---------------------------------------------------------------------------------------------
# Refusals and broken checkpoints: errors that name the problem.

def read_safetensors(path):
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    return {k: [v["dtype"], v["shape"], raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]] for k, v in header.items()}


def write_safetensors(path, tensors):
    header, data = {}, b""
    for k, (dtype, shape, raw) in tensors.items():
        header[k] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + data)


W = "model.layers.1.mlp.down_proj.weight"


def edit_tensors(edit):
    def apply(dst):
        tensors = read_safetensors(dst / "model.safetensors")
        edit(tensors)
        write_safetensors(dst / "model.safetensors", tensors)
    return apply


def edit_quant_state(change):
    def edit(tensors):
        key = W + ".quant_state.bitsandbytes__nf4"
        state = json.loads(tensors[key][2])
        change(state)
        blob = json.dumps(state).encode()
        tensors[key] = ["U8", [len(blob)], blob]
    return edit_tensors(edit)


def edit_config(change):
    def apply(dst):
        config = json.loads((dst / "config.json").read_text())
        change(config["quantization_config"])
        (dst / "config.json").write_text(json.dumps(config))
    return apply


def rename(old, new):
    def edit(tensors):
        tensors[new] = tensors.pop(old)
    return edit_tensors(edit)


def truncate(name, keep):
    def edit(tensors):
        dtype, shape, raw = tensors[name]
        tensors[name] = [dtype, [keep] + shape[1:], raw[:keep]]
    return edit_tensors(edit)


@pytest.mark.parametrize("case,edit,expected", [
    ("missing-absmax", edit_tensors(lambda t: t.pop(W + ".absmax")), W + ".absmax"),
    ("missing-nested-absmax", edit_tensors(lambda t: t.pop(W + ".nested_absmax")), W + ".nested_absmax"),
    ("missing-quant-state", edit_tensors(lambda t: t.pop(W + ".quant_state.bitsandbytes__nf4")), "quant state"),
    ("no-companions", edit_tensors(lambda t: [t.pop(k) for k in list(t) if k.startswith(W + ".")]), "quant state"),
    ("garbage-quant-state", edit_tensors(lambda t: t.__setitem__(W + ".quant_state.bitsandbytes__nf4", ["U8", [4], b"\xff{[\x00"])),
     "not a JSON object"),
    ("quant-state-shape", edit_quant_state(lambda s: s.__setitem__("shape", [64, 64])), "[64, 64]"),
    ("quant-state-dtype", edit_quant_state(lambda s: s.__setitem__("dtype", "int8")), "int8"),
    ("unknown-quant-type", rename(W + ".quant_state.bitsandbytes__nf4", W + ".quant_state.bitsandbytes__int4"), "int4"),
    ("truncated-weight", truncate(W, 4000), W),
    ("truncated-absmax", truncate(W + ".absmax", 100), W + ".absmax"),
    ("truncated-file", lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:150000]),
     "model.safetensors"),
    ("config-8-bit", edit_config(lambda q: q.update(load_in_8bit=True, load_in_4bit=False, _load_in_8bit=True, _load_in_4bit=False)),
     "8-bit"),
    ("config-gptq", edit_config(lambda q: q.update(quant_method="gptq")), "gptq"),
    ("config-bad-type", edit_config(lambda q: q.update(bnb_4bit_quant_type="int4")), "int4"),
])
def test_broken_bnb_checkpoint_is_a_clear_error(case, edit, expected, tmp_path):
    dst = tmp_path / case
    shutil.copytree(bnb_fixtures.tiny_bnb("llama-nf4-dq-bf16"), dst)
    edit(dst)
    p = cli("tokenize", "--model", dst, "--text", "hi", check=False)
    assert p.returncode != 0, f"{case}: loaded a broken checkpoint"
    assert expected in p.stderr, f"{case}: the error does not name {expected!r}:\n{p.stderr}"
    assert "Fatal error" not in p.stderr and "Trace" not in p.stderr


def test_8bit_checkpoint_is_refused(tmp_path):
    """A real LLM.int8 checkpoint (transformers + bitsandbytes, load_in_8bit=True)."""
    path = bnb_fixtures.int8_checkpoint()
    for command in (["tokenize", "--model", path, "--text", "hi"],
                    ["logits", "--model", path, "--input", tmp_path / "seq.json", "--output", tmp_path / "out"]):
        (tmp_path / "seq.json").write_text("[[1, 2, 3]]")
        p = cli(*command, check=False)
        assert p.returncode != 0
        assert "8-bit" in p.stderr and "4-bit" in p.stderr, p.stderr
        assert "Fatal error" not in p.stderr
