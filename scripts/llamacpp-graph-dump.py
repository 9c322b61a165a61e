#!/usr/bin/env python3
"""Dump every float tensor llama.cpp computes for one token sequence, in graph order, to an .npz.

How issue 3 found where Verity's numerics differed from llama.cpp's: llama-cpp-python exposes
llama.cpp's eval callback (`cb_eval`), which sees each graph node after it is computed. The keys are
`NNNN:name:OP` (e.g. `0004:Qcur-0:MUL_MAT`, `0022:kq_soft_max-0:SOFT_MAX`), the arrays in numpy's
order (the last ggml dimension first). Compare them with the same points of Verity's forward pass
to find the first op whose bits differ.

Usage: scripts/llamacpp-graph-dump.py MODEL.gguf TOKENS.json OUT.npz [--flash-attn] [--threads N] [--all-logits]
  TOKENS.json: a JSON list of token ids (e.g. one sequence of a fidelity fixture).
Needs: pip install llama-cpp-python==0.3.36 numpy (the version the fixtures were made with).
Settings as scripts/fidelity.py's reference: n_ctx 2048, one batch of up to 512 tokens, the full
sliding-window cache (swa_full), flash attention off unless asked.
"""
import argparse, ctypes, json
from pathlib import Path

import numpy as np


def graph_tensors(model_path, tokens, threads=2, flash_attn=False, all_logits=False):
    """Every float32 node llama.cpp computes for one batch of `tokens`: {"NNNN:name:OP": array}."""
    import llama_cpp
    from llama_cpp import llama_cpp as L

    base = ctypes.CDLL(str(Path(llama_cpp.__file__).parent / "lib" / "libggml-base.so"))
    for name, res in [("ggml_get_name", ctypes.c_char_p), ("ggml_get_data", ctypes.c_void_p),
                      ("ggml_is_contiguous", ctypes.c_bool), ("ggml_op_desc", ctypes.c_char_p)]:
        getattr(base, name).restype = res
        getattr(base, name).argtypes = [ctypes.c_void_p]

    saved = {}

    def on_tensor(t, ask, _user):
        if ask:
            return True  # yes, show us every node once it is computed
        # struct ggml_tensor: enum type (int32, padded to 8), buffer pointer, int64 ne[4], ...
        ttype = ctypes.c_int32.from_address(t).value
        ne = [ctypes.c_int64.from_address(t + 16 + 8 * i).value for i in range(4)]
        data = base.ggml_get_data(t)
        if ttype != 0 or data is None or not base.ggml_is_contiguous(t):  # float32, contiguous only
            return True
        n = int(np.prod(ne))
        values = np.ctypeslib.as_array((ctypes.c_float * n).from_address(data)).copy()
        key = f"{len(saved):04d}:{base.ggml_get_name(t).decode()}:{base.ggml_op_desc(t).decode()}"
        saved[key.replace("/", "_")] = values.reshape(ne[::-1]).squeeze()
        return True

    callback = L.ggml_backend_sched_eval_callback(on_tensor)
    L.llama_backend_init()
    model = L.llama_model_load_from_file(str(model_path).encode(), L.llama_model_default_params())
    if not model:
        raise SystemExit(f"llama.cpp could not load {model_path}")
    cp = L.llama_context_default_params()
    cp.n_ctx, cp.n_batch, cp.n_ubatch = 2048, 512, 512
    cp.n_threads = cp.n_threads_batch = threads
    cp.flash_attn_type = 1 if flash_attn else 0
    cp.swa_full = True
    cp.cb_eval = callback
    ctx = L.llama_init_from_model(model, cp)
    ids = (L.llama_token * len(tokens))(*tokens)
    batch = L.llama_batch_get_one(ids, len(tokens))
    if all_logits:
        batch = L.llama_batch_init(len(tokens), 0, 1)
        batch.n_tokens = len(tokens)
        for i, token in enumerate(tokens):
            batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = token, i, 1, 1
            batch.seq_id[i][0] = 0
    if L.llama_decode(ctx, batch) != 0:
        raise SystemExit("llama_decode failed")
    if all_logits:
        L.llama_batch_free(batch)
    L.llama_free(ctx)
    L.llama_model_free(model)
    return saved


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("tokens")
    ap.add_argument("out")
    ap.add_argument("--flash-attn", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--all-logits", action="store_true",
                    help="compute the output for every position (as the fidelity reference does), not only the last")
    args = ap.parse_args()

    tokens = json.loads(Path(args.tokens).read_text())
    if not (isinstance(tokens, list) and tokens and all(isinstance(t, int) for t in tokens)) or len(tokens) > 512:
        raise SystemExit("TOKENS.json must be a list of 1 to 512 token ids")
    saved = graph_tensors(args.model, tokens, args.threads, args.flash_attn, args.all_logits)
    np.savez(args.out, **saved)
    print(f"{len(saved)} tensors from {len(tokens)} tokens -> {args.out}")


if __name__ == "__main__":
    main()
