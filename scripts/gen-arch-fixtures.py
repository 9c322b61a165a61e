#!/usr/bin/env python3
"""Reference logits from llama.cpp for tiny random-weight models of each architecture Verity runs.

For each architecture this writes a spec (metadata and tensor list, weights defined by a seeded
64-bit LCG that the Swift test reproduces exactly), builds the GGUF with the PyPI `gguf` package,
runs llama-cpp-python on a fixed token sequence with logits for every position, and stores the
spec plus llama.cpp's logits in Tests/ModelsTests/Fixtures/tiny-architectures.json. The Swift
test (TinyArchitectureTests) rebuilds each model from the spec with Verity's GGUF writer and
compares Verity's logits with llama.cpp's.

Usage: scripts/gen-arch-fixtures.py   (needs llama-cpp-python==0.3.36, gguf, numpy)
"""
import json, os, tempfile
from pathlib import Path

import numpy as np
import gguf
import llama_cpp

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests/ModelsTests/Fixtures/tiny-architectures.json"
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


def build(arch, path, spec):
    w = gguf.GGUFWriter(path, arch)
    for key, kind, value in spec["metadata"]:
        if key == "general.architecture":
            continue
        getattr(w, "add_" + kind)(key, value)
    # A small byte-level vocabulary so llama.cpp accepts the file; the tests feed token ids.
    tokens = [chr(0x41 + i) if i < 26 else chr(0x61 + i - 26) if i < 52 else f"<t{i}>" for i in range(VOCAB)]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([1] * VOCAB)
    w.add_token_merges(["A B"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
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
            llm = llama_cpp.Llama(model_path=path, n_ctx=64, n_batch=64, logits_all=True, verbose=False,
                                  n_threads=1, flash_attn=False, swa_full=True)
            llm.eval(TOKENS)
            logits = np.array(llm.scores[: len(TOKENS)], dtype=np.float32)
            del llm
        spec["logits"] = [[float(f"{v:.6g}") for v in row] for row in logits]
        result["architectures"].append(spec)
        print(f"{arch}: logits range {logits.min():.3f}..{logits.max():.3f}")
    OUT.write_text(json.dumps(result))
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
