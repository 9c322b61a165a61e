"""Hugging Face checkpoints for the tests, made with transformers (no hub is reachable here):

- tiny random models, one per architecture Verity loads from safetensors, saved with
  save_pretrained in F32, with the provisioned SmolLM2 tokenizer;
- real-weight checkpoints of the provisioned GGUF models: transformers dequantizes the GGUF into
  torch; its weights are copied into a model built from its config (transformers refuses
  save_pretrained on a GGUF-loaded model) and saved in F32 and BF16, with tokenizer.json.

Each lands in $VERITY_CACHE_DIR/hf-fixtures/NAME (default ~/.cache/verity) once; a marker file
written last says it is complete, so an interrupted run is redone.
"""
import json
import os
import shutil

FIXTURE_VERSION = "1"


def cache_dir():
    base = os.environ.get("VERITY_CACHE_DIR") or os.path.expanduser("~/.cache/verity")
    return os.path.join(base, "hf-fixtures")


def models_dir():
    base = os.environ.get("VERITY_CACHE_DIR") or os.path.expanduser("~/.cache/verity")
    return os.path.join(base, "models")


SMOLLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA_GGUF = "gemma-3-270m-Q4_K_M.gguf"


def _done(path):
    return os.path.exists(os.path.join(path, ".verity-fixture-" + FIXTURE_VERSION))


def _mark(path):
    with open(os.path.join(path, ".verity-fixture-" + FIXTURE_VERSION), "w") as f:
        f.write("complete\n")


def tokenizer_dir():
    """SmolLM2's tokenizer (tokenizer.json, tokenizer_config.json, chat_template.jinja)."""
    out = os.path.join(cache_dir(), "tokenizer-smollm2")
    if not _done(out):
        from transformers import AutoTokenizer
        shutil.rmtree(out, ignore_errors=True)
        tok = AutoTokenizer.from_pretrained(models_dir(), gguf_file=SMOLLM_GGUF)
        tok.save_pretrained(out)
        _mark(out)
    return out


def real_checkpoint(which, dtype):
    """'smollm2' or 'gemma3', dtype 'f32' or 'bf16': the GGUF model's weights as safetensors.
    Both dtypes are written from one load of the GGUF (transformers dequantizes it slowly)."""
    out = os.path.join(cache_dir(), f"{which}-{dtype}")
    if _done(out):
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    gguf = SMOLLM_GGUF if which == "smollm2" else GEMMA_GGUF
    loaded = AutoModelForCausalLM.from_pretrained(models_dir(), gguf_file=gguf, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.architectures = [type(loaded).__name__]
    tok = AutoTokenizer.from_pretrained(models_dir(), gguf_file=gguf)
    for kind in ("f32", "bf16"):
        folder = os.path.join(cache_dir(), f"{which}-{kind}")
        if _done(folder):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        fresh.load_state_dict(loaded.state_dict(), strict=False)
        fresh.tie_weights()
        if kind == "bf16":
            fresh = fresh.to(torch.bfloat16)
        fresh.config.dtype = "float32" if kind == "f32" else "bfloat16"
        fresh.save_pretrained(folder, safe_serialization=True)
        tok.save_pretrained(folder)
        _mark(folder)
        del fresh
    return out


TINY = {
    # name: (config class, model class, extra config)
    "llama": ("LlamaConfig", "LlamaForCausalLM", {}),
    "llama3-rope": ("LlamaConfig", "LlamaForCausalLM", {"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64}, "rope_theta": 500000.0}),
    "mistral": ("MistralConfig", "MistralForCausalLM", {"sliding_window": None}),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", {}),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", {"head_dim": 32}),
    "gemma3": ("Gemma3TextConfig", "Gemma3ForCausalLM", {"head_dim": 32, "query_pre_attn_scalar": 32, "sliding_window": 16, "layer_types": None}),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", {"sliding_window": None, "pad_token_id": 0}),
}


def tiny_checkpoint(name):
    """A tiny random model of one architecture (F32, seeded), with SmolLM2's tokenizer."""
    out = os.path.join(cache_dir(), f"tiny-{name}")
    if _done(out):
        return out
    import torch
    import transformers
    config_class, model_class, extra = TINY[name]
    torch.manual_seed(1234)
    layers = 6 if name == "gemma3" else 2
    kwargs = dict(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                  rms_norm_eps=1e-6, tie_word_embeddings=(name != "qwen2"))
    kwargs.update({k: v for k, v in extra.items() if v is not None or k == "sliding_window"})
    if name == "gemma3":
        kwargs.pop("layer_types", None)
    config = getattr(transformers, config_class)(**kwargs)
    model = getattr(transformers, model_class)(config).to(torch.float32)
    with torch.no_grad():
        # Random init is tiny (std 0.02); widen it so the logits differ in a way a bug would show.
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.config.architectures = [model_class]
    shutil.rmtree(out, ignore_errors=True)
    model.save_pretrained(out, safe_serialization=True)
    tok = tokenizer_dir()
    for f in os.listdir(tok):
        if not f.startswith("."):
            shutil.copy(os.path.join(tok, f), out)
    _mark(out)
    return out


def transformers_logits(path, sequences, dtype="float32"):
    """Teacher-forced logits of each token sequence, as float32 numpy arrays [len, vocab]."""
    import torch
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    model.eval()
    out = []
    with torch.no_grad():
        for seq in sequences:
            ids = torch.tensor([seq])
            out.append(model(ids).logits[0].to(torch.float32).numpy())
    return out


if __name__ == "__main__":
    import sys
    for n in TINY:
        print(tiny_checkpoint(n))
    for w in ("smollm2", "gemma3"):
        for d in ("f32", "bf16"):
            print(real_checkpoint(w, d))


# Byte-level pre-tokenizers of real hub models, applied to SmolLM2's vocabulary and merges so that
# each can be checked against the tokenizers library: SmolLM2's own (digits apart, then GPT-2's
# regex), Llama 3's and Qwen 2's split regexes.
LLAMA3_REGEX = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2_REGEX = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
PRE_TOKENIZERS = {
    "smollm": {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
    "llama3": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": LLAMA3_REGEX}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
    "qwen2": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": QWEN2_REGEX}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]},
}


def tokenizer_variant(name):
    """tiny-llama with SmolLM2's vocabulary under another byte-level pre-tokenizer."""
    out = os.path.join(cache_dir(), f"tiny-llama-pre-{name}-2")
    if _done(out):
        return out
    base = tiny_checkpoint("llama")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    for f in os.listdir(base):
        if f.startswith("."):
            continue
        if f == "tokenizer.json":
            with open(os.path.join(base, f)) as fh:
                tj = json.load(fh)
            tj["pre_tokenizer"] = PRE_TOKENIZERS[name]
            if name == "llama3":
                tj["model"]["ignore_merges"] = True
            if name == "qwen2":
                tj["normalizer"] = {"type": "NFC"}  # as Qwen 2's own tokenizer.json
            with open(os.path.join(out, f), "w") as fh:
                json.dump(tj, fh, ensure_ascii=False)
        else:
            os.symlink(os.path.join(base, f), os.path.join(out, f))
    _mark(out)
    return out
