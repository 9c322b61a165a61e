"""bitsandbytes 4-bit checkpoints for the tests, made by the real libraries on CPU: transformers
5.25's `from_pretrained(..., quantization_config=BitsAndBytesConfig(load_in_4bit=True, ...))` then
`save_pretrained`, with bitsandbytes 0.50.2 (its CPU backend quantizes), from hf_fixtures' models:

- tiny random models (llama, qwen2, qwen3, gemma3, phi3) in NF4 and FP4, with and without double
  quantization, stored from BF16, F16 and F32 weights; one in Unsloth's dynamic 4-bit style
  (llm_int8_skip_modules keeps lm_head, one layer's MLP and another's attention in 16 bits), and
  one with bnb_4bit_quant_storage=bfloat16 (the packed bytes saved as a BF16 tensor);
- a tiny llama of odd sizes (hidden 72, intermediate 139): scale blocks that span rows, and an odd
  last dimension (bitsandbytes dequantizes those through its PyTorch fallback, not its C kernel);
- the real-weight SmolLM2-135M, NF4 with double quantization from BF16 (Unsloth's `-bnb-4bit`
  recipe) and FP4 from F16;
- an 8-bit (LLM.int8) checkpoint, which Verity must refuse.

The reference for each is bitsandbytes itself: `QuantState.from_dict` + `dequantize_4bit` on each
weight (what Params4bit.from_prequantized and transformers' dequantize do), and for logits a
float32 transformers model holding those dequantized weights (transformers runs a 4-bit model only
in its compute dtype, and refuses `.float()` on it; the weights are the same).

Each lands in $VERITY_CACHE_DIR/hf-fixtures/NAME once; a marker file written last says it is
complete. `python3 bnb_fixtures.py` builds them all.
"""
import glob
import json
import os
import shutil

import hf_fixtures
from hf_fixtures import cache_dir

BNB_FIXTURE_VERSION = "1"

# name: (base model, quant type, double quantization, weight dtype, llm_int8_skip_modules[, storage])
TINY = {
    "llama-nf4-dq-bf16": ("llama", "nf4", True, "bfloat16", None),
    "llama-fp4-f16": ("llama", "fp4", False, "float16", None),
    "llama-nf4-f32": ("llama", "nf4", False, "float32", None),
    "llama-fp4-dq-f32": ("llama", "fp4", True, "float32", None),
    "qwen2-nf4-dq-f16": ("qwen2", "nf4", True, "float16", None),
    "qwen3-fp4-dq-bf16": ("qwen3", "fp4", True, "bfloat16", None),
    "gemma3-nf4-dq-bf16": ("gemma3", "nf4", True, "bfloat16", None),
    "phi3-fp4-bf16": ("phi3", "fp4", False, "bfloat16", None),
    # Unsloth's dynamic 4-bit: some modules stay 16-bit, named in llm_int8_skip_modules.
    "qwen2-unsloth-dynamic": ("qwen2", "nf4", True, "bfloat16", ["lm_head", "model.layers.1.mlp", "model.layers.0.self_attn.o_proj"]),
    "odd-nf4-dq-bf16": ("odd", "nf4", True, "bfloat16", None),
    "odd-fp4-f32": ("odd", "fp4", False, "float32", None),
    "odd-fp4-dq-f16": ("odd", "fp4", True, "float16", None),
    # bnb_4bit_quant_storage=bfloat16 (for FSDP): the packed bytes saved as a BF16 tensor.
    "llama-nf4-dq-bf16-storage": ("llama", "nf4", True, "bfloat16", None, "bfloat16"),
}

REAL = {
    "smollm2-nf4-dq-bf16": ("bf16", "nf4", True, "bfloat16", None),
    "smollm2-fp4-f16": ("f32", "fp4", False, "float16", None),
}


def _done(path):
    return os.path.exists(os.path.join(path, ".verity-bnb-fixture-" + BNB_FIXTURE_VERSION))


def _mark(path):
    with open(os.path.join(path, ".verity-bnb-fixture-" + BNB_FIXTURE_VERSION), "w") as f:
        f.write("complete\n")


def _copy_tokenizer(src, dst):
    for f in os.listdir(src):
        if f.startswith(".") or f.endswith(".safetensors") or f in ("config.json", "generation_config.json", "model.safetensors.index.json"):
            continue
        shutil.copy(os.path.join(src, f), dst)


def odd_checkpoint():
    """A tiny random llama whose sizes are not multiples of the block size: hidden 72 (head_dim 18),
    intermediate 139 (down_proj's rows are odd)."""
    out = os.path.join(cache_dir(), "tiny-llama-odd")
    if _done(out):
        return out
    import torch
    import transformers
    torch.manual_seed(4321)
    config = transformers.LlamaConfig(vocab_size=49152, hidden_size=72, intermediate_size=139, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                      rms_norm_eps=1e-6, tie_word_embeddings=True)
    model = transformers.LlamaForCausalLM(config).to(torch.float32)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.config.architectures = ["LlamaForCausalLM"]
    shutil.rmtree(out, ignore_errors=True)
    model.save_pretrained(out, safe_serialization=True)
    _copy_tokenizer(hf_fixtures.tokenizer_dir(), out)
    _mark(out)
    return out


def quantize(src, out, quant_type, double_quant, dtype, skip=None, storage="uint8"):
    """transformers' 4-bit quantization of the checkpoint `src` (loaded in `dtype`), saved to `out`."""
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig
    torch_dtype = getattr(torch, dtype)
    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=quant_type, bnb_4bit_use_double_quant=double_quant,
                                bnb_4bit_compute_dtype=torch_dtype, llm_int8_skip_modules=skip,
                                bnb_4bit_quant_storage=getattr(torch, storage))
    model = AutoModelForCausalLM.from_pretrained(src, quantization_config=config, dtype=torch_dtype, device_map="cpu")
    shutil.rmtree(out, ignore_errors=True)
    model.save_pretrained(out, safe_serialization=True)
    _copy_tokenizer(src, out)
    del model


def tiny_bnb(name):
    out = os.path.join(cache_dir(), f"bnb-tiny-{name}")
    if not _done(out):
        base, quant_type, double_quant, dtype, skip, *storage = TINY[name]
        src = odd_checkpoint() if base == "odd" else hf_fixtures.tiny_checkpoint(base)
        quantize(src, out, quant_type, double_quant, dtype, skip, *storage)
        _mark(out)
    return out


def real_bnb(name):
    out = os.path.join(cache_dir(), f"bnb-{name}")
    if not _done(out):
        source_dtype, quant_type, double_quant, dtype, skip = REAL[name]
        quantize(hf_fixtures.real_checkpoint("smollm2", source_dtype), out, quant_type, double_quant, dtype, skip)
        _mark(out)
    return out


def int8_checkpoint():
    """tiny-llama saved by transformers with BitsAndBytesConfig(load_in_8bit=True)."""
    out = os.path.join(cache_dir(), "bnb-tiny-llama-int8")
    if _done(out):
        return out
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig
    src = hf_fixtures.tiny_checkpoint("llama")
    model = AutoModelForCausalLM.from_pretrained(src, quantization_config=BitsAndBytesConfig(load_in_8bit=True),
                                                 dtype=torch.float16, device_map="cpu")
    shutil.rmtree(out, ignore_errors=True)
    model.save_pretrained(out, safe_serialization=True)
    _copy_tokenizer(src, out)
    _mark(out)
    return out


# ---------------------------------------------------------------------------------------------
# The reference: bitsandbytes' own dequantization.

def load_tensors(path):
    """Every tensor of the folder's safetensors files, by name (torch, CPU)."""
    from safetensors.torch import load_file
    tensors = {}
    for f in sorted(glob.glob(os.path.join(path, "*.safetensors"))):
        tensors.update(load_file(f))
    return tensors


def quant_states(tensors):
    """Packed weight name → bitsandbytes QuantState, as Params4bit.from_prequantized builds it."""
    from bitsandbytes.functional import QuantState
    states = {}
    for key in tensors:
        if ".quant_state.bitsandbytes__" not in key:
            continue
        base = key.split(".quant_state.")[0]
        parts = {k[len(base) + 1:]: v for k, v in tensors.items() if k.startswith(base + ".")}
        states[base] = QuantState.from_dict(parts, device="cpu")
    return states


def dequantize(tensors, states, name):
    """bitsandbytes.functional.dequantize_4bit of weight `name` (its quant state's dtype)."""
    import bitsandbytes.functional as F
    return F.dequantize_4bit(tensors[name], states[name])


def companion(name):
    return any(s in name for s in (".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map", ".quant_state."))


def dequantized_f32(path):
    """The checkpoint at `path` as a float32 transformers folder: every 4-bit weight through
    dequantize_4bit, every 16-bit tensor widened (exact), saved beside it as PATH-dequantized-f32."""
    out = path.rstrip("/") + "-dequantized-f32"
    if _done(out):
        return out
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    tensors = load_tensors(path)
    states = quant_states(tensors)
    state = {}
    for name, t in tensors.items():
        if companion(name):
            continue
        state[name] = (dequantize(tensors, states, name) if name in states else t).to(torch.float32)
    config = AutoConfig.from_pretrained(path)
    del config.quantization_config
    config.dtype = "float32"
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    assert all(m == "lm_head.weight" for m in missing), missing
    model.tie_weights()
    shutil.rmtree(out, ignore_errors=True)
    model.save_pretrained(out, safe_serialization=True)
    _copy_tokenizer(path, out)
    _mark(out)
    return out


if __name__ == "__main__":
    for n in TINY:
        print(tiny_bnb(n))
    for n in REAL:
        print(real_bnb(n))
    print(int8_checkpoint())
