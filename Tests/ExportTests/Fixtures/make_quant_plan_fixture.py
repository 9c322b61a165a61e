#!/usr/bin/env python3
"""Generates quant_plan.json: the tensor type llama.cpp's quantizer (llama-cpp-python 0.3.36,
`llama_model_quantize`, the function behind llama-quantize) picks for every tensor of a set of
models, for every file type Verity supports, so QuantizationPlanTests can check the Swift port
(Sources/Export/QuantizationPlan.swift) without model files or llama.cpp.

Inputs:
  * F16 (and some F32/BF16) GGUFs converted by llama.cpp's own convert_hf_to_gguf.py from the tiny
    Hugging Face fixtures under ~/.cache/verity/hf-fixtures and the real smollm2-bf16 and
    gemma3-bf16 folders;
  * the provisioned SmolLM2-135M-Instruct.Q4_1.gguf (already quantized: allow_requantize on/off);
  * synthetic GGUFs written here with gguf-py (random weights): many layers, 256-wide rows (so the
    K-quant rules run without the fallback), GQA 1/4/8, 80 layers (llama.cpp's "70B" rule),
    8 experts, falcon, and tensors that probe the "is it quantized at all" predicate.

Each run quantizes for real (nthread=2) into a temp file, in a forked child (llama.cpp aborts
the process on some inputs: those runs are recorded as errors), and reads the output's tensor
types back with gguf.GGUFReader.

Run:  python3 Tests/ExportTests/Fixtures/make_quant_plan_fixture.py [--out PATH] [--only NAME,...]
Needs: llama_cpp (llama-cpp-python 0.3.36), gguf, numpy, and for the conversions torch and
~/.cache/verity/hf-fixtures/llama.cpp-convert-0.3.36 (see Tests/ServerIntegration/lora_fixtures.py).
"""

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import gguf
import llama_cpp

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
CACHE = os.path.expanduser("~/.cache/verity")
HF = os.path.join(CACHE, "hf-fixtures")
CONVERTER = os.path.join(HF, f"llama.cpp-convert-{LLAMA_CPP_PYTHON_VERSION}")

# (llama-quantize name, LLAMA_FTYPE value from llama.h)
FILE_TYPES = [
    ("F32", 0), ("F16", 1), ("BF16", 32), ("Q8_0", 7),
    ("Q4_0", 2), ("Q4_1", 3), ("Q5_0", 8), ("Q5_1", 9),
    ("Q2_K", 10), ("Q3_K_S", 11), ("Q3_K_M", 12), ("Q3_K_L", 13),
    ("Q4_K_S", 14), ("Q4_K_M", 15), ("Q5_K_S", 16), ("Q5_K_M", 17), ("Q6_K", 18),
    ("IQ4_NL", 25), ("IQ4_XS", 30),
]
FTYPE = dict(FILE_TYPES)

# Runs with non-default llama_model_quantize_params, on a few inputs and file types.
OPTION_FTYPES = ["Q4_K_M", "Q2_K", "Q3_K_M", "Q8_0", "Q4_0", "F16", "IQ4_XS"]
OPTION_SETS = [
    {"pure": True},
    {"output_type": "Q8_0"},
    {"output_type": "Q4_K"},
    {"output_type": "F16", "token_embedding_type": "Q6_K"},
    {"token_embedding_type": "Q8_0"},
    {"token_embedding_type": "Q4_K"},
    {"quantize_output_tensor": False},
    {"pure": True, "output_type": "Q5_0"},
]

GGML_TYPE = {t.name: int(t.value) for t in gguf.GGMLQuantizationType}


# ---------------------------------------------------------------------------------------------
# Inputs


# The tiny models carry SmolLM2's tokenizer, which the converter knows under a Llama config only;
# as Tests/ServerIntegration/export_fixtures.py does, its vocabulary step is patched (an unknown
# BPE pre-tokenizer is SmolLM2's; Phi-3 takes the BPE vocabulary). Tensors are converted untouched.
_SMOLLM_VOCAB_DRIVER = r"""
import sys
sys.path.insert(0, ".")
import convert_hf_to_gguf as cli
from conversion import base, phi
_pre = base.TextModel.get_vocab_base_pre
def get_vocab_base_pre(self, tokenizer):
    try:
        return _pre(self, tokenizer)
    except NotImplementedError:
        return "smollm"
base.TextModel.get_vocab_base_pre = get_vocab_base_pre
phi.Phi3MiniModel.set_vocab = base.TextModel._set_vocab_gpt2
sys.argv = ["convert_hf_to_gguf.py"] + sys.argv[1:]
cli.main()
"""


def convert(folder, outtype, out):
    if os.path.exists(out):
        return out
    env = dict(os.environ, PYTHONPATH=os.path.join(CONVERTER, "gguf-py"))
    p = subprocess.run([sys.executable, "-c", _SMOLLM_VOCAB_DRIVER, os.path.join(HF, folder),
                        "--outtype", outtype, "--outfile", out + ".tmp"],
                       capture_output=True, text=True, env=env, cwd=CONVERTER, timeout=1800)
    assert p.returncode == 0, f"convert_hf_to_gguf.py {folder} failed:\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}"
    os.rename(out + ".tmp", out)
    return out


def synthetic(path, arch, n_layer, n_embd, n_ff, n_head, n_head_kv, n_vocab=512, tied=True, dtype=np.float16,
              extra=(), experts=0, qkv=False, gate_up=False, kv=None, seed=0):
    """A GGUF with llama.cpp's tensor names and random weights. `extra`: (name, ggml-order dims)."""
    if os.path.exists(path):
        return path
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(path + ".tmp", arch)
    w.add_block_count(n_layer)
    w.add_context_length(2048)
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_layer_norm_eps(1e-5)
    w.add_vocab_size(n_vocab)
    if experts:
        w.add_expert_count(experts)
        w.add_expert_used_count(2)
    for k, v in (kv or {}).items():
        w.add_uint32(k, v)

    def add(name, ne):  # ne: ggml order (row length first)
        shape = tuple(reversed(ne))
        if len(ne) == 1 or name.endswith("norm.weight"):
            data = np.ones(shape, dtype=np.float32)
        else:
            data = (rng.standard_normal(shape) * 0.02).astype(dtype)
        w.add_tensor(name, data)

    head_dim = n_embd // n_head
    add("token_embd.weight", [n_embd, n_vocab])
    add("output_norm.weight", [n_embd])
    if not tied:
        add("output.weight", [n_embd, n_vocab])
    for i in range(n_layer):
        p = f"blk.{i}."
        add(p + "attn_norm.weight", [n_embd])
        if qkv:
            add(p + "attn_qkv.weight", [n_embd, n_embd + 2 * head_dim * n_head_kv])
        else:
            add(p + "attn_q.weight", [n_embd, n_embd])
            add(p + "attn_k.weight", [n_embd, head_dim * n_head_kv])
            add(p + "attn_v.weight", [n_embd, head_dim * n_head_kv])
        add(p + "attn_output.weight", [n_embd, n_embd])
        add(p + "ffn_norm.weight", [n_embd])
        if experts:
            add(p + "ffn_gate_inp.weight", [n_embd, experts])
            add(p + "ffn_gate_exps.weight", [n_embd, 32, experts])
            add(p + "ffn_up_exps.weight", [n_embd, 32, experts])
            add(p + "ffn_down_exps.weight", [32, n_embd, experts])
        elif gate_up:
            add(p + "ffn_up.weight", [n_embd, 2 * n_ff])
            add(p + "ffn_down.weight", [n_ff, n_embd])
        else:
            if arch != "falcon":
                add(p + "ffn_gate.weight", [n_embd, n_ff])
            add(p + "ffn_up.weight", [n_embd, n_ff])
            add(p + "ffn_down.weight", [n_ff, n_embd])
    for name, ne in extra:
        add(name, ne)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.rename(path + ".tmp", path)
    return path


# Tensors that probe the "quantize at all?" predicate and the counters (llama.cpp's sorted order).
PROBES = [
    ("rope_freqs.weight", [16]),                       # 1-D
    ("position_embd.weight", [256, 8]),                # position embeddings: never quantized
    ("token_types.weight", [256, 2]),                  # BERT token types: never
    ("blk.0.ffn_gate_inp.weight", [256, 8]),           # expert router: never
    ("blk.0.extra_norm.weight", [256, 4]),             # 2-D norm: never
    ("blk.0.flat.weight", [256, 1]),                   # ggml_n_dims == 1: never
    ("blk.0.proj.bias", [256, 4]),                     # not "...weight": never
    ("abcde", [256, 4]),                               # 5 characters: llama.cpp's rfind quirk says "weight"
    ("blk.0.odd.weight", [96, 4]),                     # 96 % 256 != 0: fallback to a 32-block type
    ("blk.0.odder.weight", [40, 4]),                   # 40 % 32 != 0: fallback to F16
    ("blk.3.ffn_down_shexp.weight", [256, 256]),       # a second ffn_down in layer 3: shifts i_ffn_down
    ("blk.5.attn_v.weight_b", [256, 32]),              # contains attn_v.weight: counted as attn_v, not quantized
    ("blk.7.ffn_down.lora", [256, 32]),                # contains ffn_down but not quantized
]


def inputs(tmp):
    """[(name, path, extra run options)]"""
    conv = lambda folder, t: convert(folder, t, os.path.join(tmp, f"{folder}-{t}.gguf"))
    syn = lambda name, **kw: synthetic(os.path.join(tmp, name + ".gguf"), **kw)
    q41 = os.path.join(CACHE, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
    return [
        ("tiny-llama-f16", lambda: conv("tiny-llama", "f16"), {}),
        ("tiny-llama-f32", lambda: conv("tiny-llama", "f32"), {}),
        ("tiny-qwen2-f16", lambda: conv("tiny-qwen2", "f16"), {}),
        ("tiny-qwen3-f16", lambda: conv("tiny-qwen3", "f16"), {}),
        ("tiny-qwen3-bf16", lambda: conv("tiny-qwen3", "bf16"), {}),
        ("tiny-gemma3-f16", lambda: conv("tiny-gemma3", "f16"), {}),
        ("tiny-gemma3-f32", lambda: conv("tiny-gemma3", "f32"), {}),
        ("tiny-phi3-f16", lambda: conv("tiny-phi3", "f16"), {}),
        ("tiny-llama-odd-f16", lambda: conv("tiny-llama-odd", "f16"), {}),
        ("smollm2-f16", lambda: conv("smollm2-bf16", "f16"), {}),
        ("gemma3-270m-f16", lambda: conv("gemma3-bf16", "f16"), {}),
        ("smollm2-q4_1", lambda: q41, {"allow_requantize": True}),
        ("smollm2-q4_1-norequant", lambda: q41, {}),
        ("syn-llama-80L-gqa8", lambda: syn("syn-llama-80L-gqa8", arch="llama", n_layer=80, n_embd=256, n_ff=256,
                                            n_head=8, n_head_kv=1, tied=False, extra=PROBES, seed=1), {}),
        ("syn-llama-80L-mha-f32", lambda: syn("syn-llama-80L-mha-f32", arch="llama", n_layer=80, n_embd=256,
                                               n_ff=256, n_head=8, n_head_kv=8, dtype=np.float32, seed=2), {}),
        ("syn-qwen2-80L", lambda: syn("syn-qwen2-80L", arch="qwen2", n_layer=80, n_embd=256, n_ff=512,
                                      n_head=8, n_head_kv=8, tied=False, seed=3), {}),
        ("syn-qwen2-40L-gqa4", lambda: syn("syn-qwen2-40L-gqa4", arch="qwen2", n_layer=40, n_embd=256, n_ff=512,
                                           n_head=8, n_head_kv=2, seed=4), {}),
        ("syn-qwen3-27L-gqa3", lambda: syn("syn-qwen3-27L-gqa3", arch="qwen3", n_layer=27, n_embd=256, n_ff=768,
                                           n_head=6, n_head_kv=2, tied=False, seed=5), {}),
        ("syn-gemma3-26L", lambda: syn("syn-gemma3-26L", arch="gemma3", n_layer=26, n_embd=256, n_ff=512,
                                       n_head=4, n_head_kv=1, seed=6, kv={"gemma3.attention.sliding_window": 512}), {}),
        ("syn-phi3-24L", lambda: syn("syn-phi3-24L", arch="phi3", n_layer=24, n_embd=256, n_ff=512, n_head=8,
                                     n_head_kv=2, qkv=True, gate_up=True, tied=False, seed=7), {}),
        ("syn-llama-moe8", lambda: syn("syn-llama-moe8", arch="llama", n_layer=32, n_embd=256, n_ff=256, n_head=8,
                                       n_head_kv=8, experts=8, tied=False, seed=8), {}),
        ("syn-falcon-16L", lambda: syn("syn-falcon-16L", arch="falcon", n_layer=16, n_embd=256, n_ff=1024, n_head=8,
                                       n_head_kv=1, qkv=True, tied=False, seed=9), {}),
    ]


OPTION_INPUTS = {"tiny-llama-f16", "tiny-qwen2-f16", "smollm2-f16", "syn-llama-80L-gqa8", "syn-qwen2-40L-gqa4"}


# ---------------------------------------------------------------------------------------------
# Quantizing


def quantize(inp, out, ftype, opts):
    """Runs llama_model_quantize in a forked child; returns (None, log tail) or (error, log tail)."""
    log = out + ".log"
    pid = os.fork()
    if pid == 0:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        rc = 3
        try:
            p = llama_cpp.llama_model_quantize_default_params()
            p.nthread = 2
            p.ftype = ftype
            p.allow_requantize = bool(opts.get("allow_requantize", False))
            p.quantize_output_tensor = bool(opts.get("quantize_output_tensor", True))
            p.pure = bool(opts.get("pure", False))
            if "output_type" in opts:
                p.output_tensor_type = GGML_TYPE[opts["output_type"]]
            if "token_embedding_type" in opts:
                p.token_embedding_type = GGML_TYPE[opts["token_embedding_type"]]
            rc = llama_cpp.llama_model_quantize(inp.encode(), out.encode(), ctypes.byref(p))
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(int(rc) & 0xFF)
    _, status = os.waitpid(pid, 0)
    with open(log, errors="replace") as f:
        lines = [l.rstrip() for l in f if l.strip()]
    os.unlink(log)
    if os.WIFSIGNALED(status):
        tail = [l for l in lines if "GGML_ASSERT" in l or "error" in l.lower()]
        return f"aborted (signal {os.WTERMSIG(status)}): {(tail or lines or [''])[-1]}"
    if os.WEXITSTATUS(status) != 0:
        tail = [l for l in lines if "failed to quantize" in l]
        return (tail or lines or ["exit status %d" % os.WEXITSTATUS(status)])[-1]
    return None


def read_gguf(path):
    """(metadata {key: value} without arrays of more than 64 elements, [(name, ggml-order dims, type name)]):
    a minimal GGUF header reader (gguf.GGUFReader takes seconds on a 262144-token vocabulary)."""
    import struct
    scalar = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
    type_names = {int(t.value): t.name for t in gguf.GGMLQuantizationType}
    with open(path, "rb") as f:
        buf = f.read(64 << 20)
        pos = 0

        def take(fmt):
            nonlocal pos
            v = struct.unpack_from(fmt, buf, pos)
            pos += struct.calcsize(fmt)
            return v[0]

        def string():
            nonlocal pos
            n = take("<Q")
            v = buf[pos:pos + n].decode("utf-8", "replace")
            pos += n
            return v

        def value(t):
            nonlocal pos
            if t == 8:
                return string()
            if t == 9:
                et, n = take("<I"), take("<Q")
                if et in scalar and et != 8:
                    size = struct.calcsize(scalar[et])
                    vals = list(struct.unpack_from("<%d%s" % (n, scalar[et][1]), buf, pos)) if n <= 64 else None
                    pos += size * n
                    return vals
                vals = [value(et) for _ in range(n)]
                return vals if n <= 64 else None
            return take(scalar[t])

        assert buf[:4] == b"GGUF", path
        pos = 4
        take("<I")
        n_tensors, n_kv = take("<Q"), take("<Q")
        meta = {}
        for _ in range(n_kv):
            key = string()
            meta[key] = value(take("<I"))
        tensors = []
        for _ in range(n_tensors):
            name = string()
            nd = take("<I")
            ne = [take("<Q") for _ in range(nd)]
            t = take("<I")
            take("<Q")
            tensors.append((name, ne, type_names[t]))
    return meta, tensors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "quant_plan.json"))
    ap.add_argument("--only", default="")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "verity-quant-plan-fixture"))
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    os.makedirs(args.work, exist_ok=True)
    llama_cpp.llama_backend_init()

    models = []
    for name, make, base_opts in inputs(args.work):
        if only and name not in only:
            continue
        path = make()
        meta, infos = read_gguf(path)
        arch = meta["general.architecture"]
        hp = {k: meta.get(f"{arch}.{k}") for k in ("block_count", "attention.head_count", "attention.head_count_kv",
                                                 "expert_count", "nextn_predict_layers")}
        tensors = [[n, ne, t] for n, ne, t in infos]
        index = {t[0]: i for i, t in enumerate(tensors)}
        runs = []
        order = None
        option_sets = [dict(base_opts)]
        if name in OPTION_INPUTS:
            option_sets += [dict(base_opts, **o) for o in OPTION_SETS]
        for opts in option_sets:
            for ft_name, ft in FILE_TYPES:
                if len(opts) > len(base_opts) and ft_name not in OPTION_FTYPES:
                    continue
                out = os.path.join(args.work, "out.gguf")
                if os.path.exists(out):
                    os.unlink(out)
                err = quantize(path, out, ft, opts)
                run = {"file_type": ft_name}
                if opts:
                    run["options"] = opts
                if err is not None:
                    run["error"] = err
                else:
                    _, out_infos = read_gguf(out)
                    got = {n: t for n, _, t in out_infos}
                    run_order = [index[n] for n, _, _ in out_infos]
                    assert sorted(got) == sorted(index), f"{name} {ft_name}: tensor set changed"
                    if order is None:
                        order = run_order
                    assert order == run_order, f"{name} {ft_name}: output order changed"
                    run["types"] = " ".join(got[t[0]] for t in tensors)
                runs.append(run)
                print(f"{name:28s} {ft_name:7s} {json.dumps(opts) if opts else '':60s} "
                      f"{'ERROR ' + run['error'] if 'error' in run else 'ok'}", flush=True)
        models.append({"name": name, "architecture": arch, "hparams": hp, "tensors": tensors,
                       "output_order": order, "runs": runs})

    doc = {
        "generator": "Tests/ExportTests/Fixtures/make_quant_plan_fixture.py",
        "llama_cpp_python": llama_cpp.__version__,
        "file_types": [{"name": n, "ftype": f} for n, f in FILE_TYPES],
        "models": models,
    }
    with open(args.out, "w") as f:
        # one model / tensor / run per line: small, and diffs stay readable
        f.write("{\n")
        f.write(f'"generator": {json.dumps(doc["generator"])},\n"llama_cpp_python": {json.dumps(doc["llama_cpp_python"])},\n')
        f.write('"file_types": ' + json.dumps(doc["file_types"]) + ',\n"models": [\n')
        for mi, m in enumerate(models):
            f.write("{" + f'"name": {json.dumps(m["name"])}, "architecture": {json.dumps(m["architecture"])}, '
                    f'"hparams": {json.dumps(m["hparams"])},\n"tensors": [\n')
            f.write(",\n".join(json.dumps(t) for t in m["tensors"]))
            f.write(f'],\n"output_order": {json.dumps(m["output_order"])},\n"runs": [\n')
            f.write(",\n".join(json.dumps(r) for r in m["runs"]))
            f.write("]}" + ("," if mi + 1 < len(models) else "") + "\n")
        f.write("]}\n")
    print(f"wrote {args.out}: {len(models)} models, {sum(len(m['runs']) for m in models)} runs")


if __name__ == "__main__":
    main()
