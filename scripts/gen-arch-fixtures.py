#!/usr/bin/env python3
"""Reference logits from llama.cpp for tiny random-weight models of each architecture Verity runs,
and for a tiny llama model per quantized tensor type.

For each architecture this writes a spec (metadata and tensor list, weights defined by a seeded
64-bit LCG that the Swift test reproduces exactly), builds the GGUF with the PyPI `gguf` package,
runs llama-cpp-python on a fixed token sequence with logits for every position, and stores the
spec plus llama.cpp's logits in Tests/ModelsTests/Fixtures/tiny-architectures.json. The Swift
test (TinyArchitectureTests) rebuilds each model from the spec with Verity's GGUF writer and
compares Verity's logits with llama.cpp's.

The quantized models (Tests/ModelsTests/Fixtures/tiny-quantized.json, TinyQuantizedTests) hold
every layer matrix in one type, as random blocks: bytes from the same LCG, with each fp16 scale
field set to a random value in [2^p, 2^(p+1)) so the weights stay in a realistic range. Prompts
of 16 tokens take llama.cpp's batched kernels (tiled, repacked), whose float operation order
Verity follows, so the results must agree bit for bit. Besides the logits the fixture keeps the
residual stream after the layer (llama.cpp's `l_out-0` node, read through its eval callback): the
logits alone would hide a kernel rounding differently, since the output projection quantizes its
input to 8 bits and that absorbs last-bit differences.

Usage: scripts/gen-arch-fixtures.py   (needs llama-cpp-python==0.3.36, gguf, numpy)
"""
import json, os, tempfile
from pathlib import Path

import importlib.util
import numpy as np
import gguf
import llama_cpp

_dump = importlib.util.spec_from_file_location("graph_dump", Path(__file__).resolve().parent / "llamacpp-graph-dump.py")
graph_dump = importlib.util.module_from_spec(_dump)
_dump.loader.exec_module(graph_dump)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests/ModelsTests/Fixtures/tiny-architectures.json"
QUANT_OUT = ROOT / "Tests/ModelsTests/Fixtures/tiny-quantized.json"
TOKENS = [1, 7, 33, 2, 60, 13, 13, 5, 42, 19, 8, 27, 50, 3, 11, 38]
VOCAB, EMBD, HEADS, KV, HD, FF, LAYERS = 64, 64, 4, 2, 16, 128, 2
MASK = (1 << 64) - 1


def lcg_values(seed, count, scale):
    """The weight generator, reproduced exactly by TinyArchitectureTests.swift."""
    state = seed & MASK
    out = np.empty(count, dtype=np.float32)
    for i in range(count):
        state = (state * 6364136223846793005 + 1442695040888963407) & MASK
        out[i] = np.float32(((state >> 11) / 9007199254740992.0 * 2.0 - 1.0) * scale)
    return out


def tensors_for(arch):
    qd, kd = HEADS * HD, KV * HD
    t = [("token_embd.weight", [EMBD, VOCAB], 1.0), ("output_norm.weight", [EMBD], "norm")]
    if arch == "qwen2":
        t.append(("output.weight", [EMBD, VOCAB], 0.125))
    for i in range(LAYERS):
        p = f"blk.{i}."
        t.append((p + "attn_norm.weight", [EMBD], "norm"))
        if arch == "phi3":
            t.append((p + "attn_qkv.weight", [EMBD, qd + 2 * kd], 0.125))
        else:
            t += [(p + "attn_q.weight", [EMBD, qd], 0.125), (p + "attn_k.weight", [EMBD, kd], 0.125),
                  (p + "attn_v.weight", [EMBD, kd], 0.125)]
        if arch == "qwen2":
            t += [(p + "attn_q.bias", [qd], 0.1), (p + "attn_k.bias", [kd], 0.1), (p + "attn_v.bias", [kd], 0.1)]
        if arch in ("qwen3", "gemma3"):
            t += [(p + "attn_q_norm.weight", [HD], "norm"), (p + "attn_k_norm.weight", [HD], "norm")]
        t.append((p + "attn_output.weight", [qd, EMBD], 0.125))
        if arch == "gemma3":
            t.append((p + "post_attention_norm.weight", [EMBD], "norm"))
        t.append((p + "ffn_norm.weight", [EMBD], "norm"))
        if arch == "phi3":
            t.append((p + "ffn_up.weight", [EMBD, 2 * FF], 0.125))
        else:
            t += [(p + "ffn_gate.weight", [EMBD, FF], 0.125), (p + "ffn_up.weight", [EMBD, FF], 0.125)]
        t.append((p + "ffn_down.weight", [FF, EMBD], 0.09))
        if arch == "gemma3":
            t.append((p + "post_ffw_norm.weight", [EMBD], "norm"))
    return t


# Quantized tiny llama: block size, bytes per block, and its fp16 fields as (byte offset, p, sign):
# each gets a random value of that sign in [2^p, 2^(p+1)) (p picked so |weights| stay below ~0.5).
QUANT_TYPES = {
    "Q4_0": (32, 18, [(0, -7, 0)]),
    "Q4_1": (32, 20, [(0, -7, 0), (2, -4, 1)]),
    "Q5_0": (32, 22, [(0, -8, 0)]),
    "Q5_1": (32, 24, [(0, -8, 0), (2, -4, 1)]),
    "Q8_0": (32, 34, [(0, -11, 0)]),
    "IQ4_NL": (32, 18, [(0, -11, 0)]),
    "Q2_K": (256, 84, [(80, -8, 0), (82, -8, 0)]),
    "Q3_K": (256, 110, [(108, -11, 0)]),
    "Q4_K": (256, 144, [(0, -12, 0), (2, -12, 0)]),
    "Q5_K": (256, 176, [(0, -13, 0), (2, -12, 0)]),
    "Q6_K": (256, 210, [(208, -14, 0)]),
    "IQ4_XS": (256, 136, [(0, -14, 0)]),
}
Q_EMBD, Q_HEADS, Q_KV, Q_HD, Q_FF = 256, 4, 2, 64, 512


def lcg_bytes(seed, count):
    """Random bytes (the top byte of each LCG step), reproduced exactly by TinyQuantizedTests.swift."""
    state = seed & MASK
    out = bytearray(count)
    for i in range(count):
        state = (state * 6364136223846793005 + 1442695040888963407) & MASK
        out[i] = state >> 56
    return out


def quant_blocks(type_name, seed, rows, cols):
    """Random blocks of one type; every fp16 field rewritten from its own two random bytes."""
    block, size, halves = QUANT_TYPES[type_name]
    data = lcg_bytes(seed, rows * cols // block * size)
    for b in range(0, len(data), size):
        for off, p, sign in halves:
            mantissa = (data[b + off] | data[b + off + 1] << 8) & 0x3FF
            bits = sign << 15 | (p + 15) << 10 | mantissa
            data[b + off], data[b + off + 1] = bits & 0xFF, bits >> 8
    return np.frombuffer(bytes(data), dtype=np.uint8).reshape(rows, cols // block * size)


def quant_spec(type_name):
    qd, kd = Q_HEADS * Q_HD, Q_KV * Q_HD
    meta = [("general.architecture", "string", "llama"), ("llama.block_count", "uint32", 1),
            ("llama.context_length", "uint32", 256), ("llama.embedding_length", "uint32", Q_EMBD),
            ("llama.feed_forward_length", "uint32", Q_FF), ("llama.attention.head_count", "uint32", Q_HEADS),
            ("llama.attention.head_count_kv", "uint32", Q_KV),
            ("llama.attention.layer_norm_rms_epsilon", "float32", 1e-5), ("llama.rope.freq_base", "float32", 10000.0)]
    # (name, dims, type): norms in F32, the tied embedding in Q8_0 (as SmolLM2's), the rest in the type.
    t = [("token_embd.weight", [Q_EMBD, VOCAB], "Q8_0"), ("output_norm.weight", [Q_EMBD], "F32"),
         ("blk.0.attn_norm.weight", [Q_EMBD], "F32"), ("blk.0.attn_q.weight", [Q_EMBD, qd], type_name),
         ("blk.0.attn_k.weight", [Q_EMBD, kd], type_name), ("blk.0.attn_v.weight", [Q_EMBD, kd], type_name),
         ("blk.0.attn_output.weight", [qd, Q_EMBD], type_name), ("blk.0.ffn_norm.weight", [Q_EMBD], "F32"),
         ("blk.0.ffn_gate.weight", [Q_EMBD, Q_FF], type_name), ("blk.0.ffn_up.weight", [Q_EMBD, Q_FF], type_name),
         ("blk.0.ffn_down.weight", [Q_FF, Q_EMBD], type_name)]
    tensors = [{"name": n, "dims": d, "type": ty, "seed": 5000 + 101 * i + 7 * len(type_name)} for i, (n, d, ty) in enumerate(t)]
    return {"name": type_name, "metadata": meta, "tensors": tensors,
            "fp16_fields": {k: [list(h) for h in v[2]] for k, v in QUANT_TYPES.items() if k in (type_name, "Q8_0")}}


def build_quantized(path, spec):
    w = gguf.GGUFWriter(path, "llama")
    for key, kind, value in spec["metadata"][1:]:
        getattr(w, "add_" + kind)(key, value)
    add_vocabulary(w)
    for t in spec["tensors"]:
        cols, rows = t["dims"][0], int(np.prod(t["dims"][1:]))
        if t["type"] == "F32":
            w.add_tensor(t["name"], (lcg_values(t["seed"], cols, 0.2) + np.float32(1.0)).astype(np.float32))
        else:
            w.add_tensor(t["name"], quant_blocks(t["type"], t["seed"], rows, cols),
                         raw_dtype=gguf.GGMLQuantizationType[t["type"]])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def llama_cpp_logits(path, n_batch):
    llm = llama_cpp.Llama(model_path=path, n_ctx=64, n_batch=n_batch, logits_all=True, verbose=False,
                          n_threads=1, flash_attn=False, swa_full=True)
    llm.eval(TOKENS)
    logits = np.array(llm.scores[: len(TOKENS)], dtype=np.float32)
    del llm
    return logits


def metadata_for(arch):
    m = [("general.architecture", "string", arch),
         (f"{arch}.block_count", "uint32", LAYERS), (f"{arch}.context_length", "uint32", 256),
         (f"{arch}.embedding_length", "uint32", EMBD), (f"{arch}.feed_forward_length", "uint32", FF),
         (f"{arch}.attention.head_count", "uint32", HEADS), (f"{arch}.attention.head_count_kv", "uint32", KV),
         (f"{arch}.attention.layer_norm_rms_epsilon", "float32", 1e-6),
         (f"{arch}.rope.freq_base", "float32", 10000.0 if arch != "gemma3" else 1000000.0)]
    if arch in ("qwen3", "gemma3"):
        m += [(f"{arch}.attention.key_length", "uint32", HD), (f"{arch}.attention.value_length", "uint32", HD)]
    if arch == "phi3":
        m += [(f"{arch}.rope.dimension_count", "uint32", HD)]
    if arch == "gemma3":
        m += [(f"{arch}.attention.sliding_window", "uint32", 4), (f"{arch}.attention.sliding_window_pattern", "uint32", 2)]
    return m


def add_vocabulary(w):
    """A small byte-level vocabulary so llama.cpp accepts the file; the tests feed token ids."""
    tokens = [chr(0x41 + i) if i < 26 else chr(0x61 + i - 26) if i < 52 else f"<t{i}>" for i in range(VOCAB)]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([1] * VOCAB)
    w.add_token_merges(["A B"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)


def build(arch, path, spec):
    w = gguf.GGUFWriter(path, arch)
    for key, kind, value in spec["metadata"]:
        if key == "general.architecture":
            continue
        getattr(w, "add_" + kind)(key, value)
    add_vocabulary(w)
    for t in spec["tensors"]:
        data = lcg_values(t["seed"], int(np.prod(t["dims"])), t["scale"])
        if t["norm"]:
            data = (data + np.float32(1.0)).astype(np.float32)
        w.add_tensor(t["name"], data.reshape(list(reversed(t["dims"]))))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    result = {"generator": "scripts/gen-arch-fixtures.py", "llama_cpp_python": llama_cpp.__version__,
              "gguf": getattr(gguf, "__version__", "?"), "tokens": TOKENS, "architectures": []}
    for arch in ["llama", "qwen2", "qwen3", "phi3", "gemma3"]:
        spec = {"name": arch, "metadata": metadata_for(arch), "tensors": []}
        for i, (name, dims, scale) in enumerate(tensors_for(arch)):
            norm = scale == "norm"
            spec["tensors"].append({"name": name, "dims": dims, "seed": 1000 + i + 7919 * len(arch),
                                    "scale": 0.2 if norm else scale, "norm": norm})
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, f"tiny-{arch}.gguf")
            build(arch, path, spec)
            logits = llama_cpp_logits(path, 64)
        spec["logits"] = [[float(f"{v:.6g}") for v in row] for row in logits]
        result["architectures"].append(spec)
        print(f"{arch}: logits range {logits.min():.3f}..{logits.max():.3f}")
    OUT.write_text(json.dumps(result))
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB)")

    # Logits as float32 bit patterns: the comparison is exact.
    quant = {"generator": "scripts/gen-arch-fixtures.py", "llama_cpp_python": llama_cpp.__version__,
             "tokens": TOKENS, "types": []}
    for type_name in QUANT_TYPES:
        spec = quant_spec(type_name)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, f"tiny-{type_name}.gguf")
            build_quantized(path, spec)
            nodes = graph_dump.graph_tensors(path, TOKENS, threads=1, all_logits=True)
        residual = next(v for k, v in nodes.items() if k.endswith(":l_out-0:ADD")).astype(np.float32)
        logits = next(v for k, v in nodes.items() if k.endswith(":result_output:MUL_MAT")).astype(np.float32)
        assert logits.shape == (len(TOKENS), VOCAB) and residual.shape == (len(TOKENS), Q_EMBD), type_name
        assert np.all(np.isfinite(logits)), type_name
        spec["residual_bits"] = [[int(v) for v in row.view(np.uint32)] for row in residual]
        spec["logit_bits"] = [[int(v) for v in row.view(np.uint32)] for row in logits]
        quant["types"].append(spec)
        print(f"{type_name}: logits range {logits.min():.3f}..{logits.max():.3f}")
    QUANT_OUT.write_text(json.dumps(quant))
    print(f"wrote {QUANT_OUT} ({QUANT_OUT.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
