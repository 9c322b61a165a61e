"""LoRA adapters for the tests, made with the real peft library (0.21.2) on hf_fixtures' checkpoints,
and the reference outputs Verity is judged against:

- PEFT adapters (adapter_config.json + adapter_model.safetensors, written by `save_pretrained`) on
  each tiny random F32 model and on the real-weight SmolLM2-135M F32 checkpoint. PEFT starts
  lora_B at zero (an adapter that changes nothing, which would hide an implementation that ignores
  it), so every lora_A and lora_B is filled with seeded random values, and every module in
  modules_to_save is perturbed. The set covers target_modules as a list (all seven projections, a
  subset, Phi-3's fused qkv_proj / gate_up_proj) and as a regex string, rank_pattern and
  alpha_pattern, rsLoRA, modules_to_save (lm_head, embed_tokens; on tied and untied models),
  r = 4, 8 and 16, and a BF16-saved adapter; and three that Verity must refuse: DoRA, one made on a
  model of another hidden size, one whose base_model_name_or_path names another model.
- GGUF LoRA files converted from SmolLM2 PEFT adapters by llama.cpp's own convert_lora_to_gguf.py,
  taken from the llama-cpp-python 0.3.36 source distribution (pip download; its vendored gguf-py).
- References: transformers + peft logits (F32, eval; PeftModel.from_pretrained, as a user loads an
  adapter), peft's merge_and_unload(), and llama.cpp's greedy tokens with a GGUF LoRA
  (llama-cpp-python 0.3.36) with the top-2 logit margin of every step.

Everything lands in $VERITY_CACHE_DIR/hf-fixtures (default ~/.cache/verity) once; a marker file
written last says a fixture is complete, so an interrupted run is redone. `python3
lora_fixtures.py` builds them all and prints how much each tiny-model adapter moves the logits.
"""
import glob
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zlib

import hf_fixtures
from hf_fixtures import cache_dir, models_dir

LORA_FIXTURE_VERSION = "1"
PEFT_VERSION = "0.21.2"
LLAMA_CPP_PYTHON_VERSION = "0.3.36"

ALL7 = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PHI3_ALL = ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]
SMOLLM2_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
OTHER_BASE_NAME = "meta-llama/Llama-3.1-70B"

# The values filled in: lora_A ~ N(0, (strength / sqrt(fan_in))²), so that A·x has entries of about
# `strength` for unit-RMS inputs, and lora_B ~ N(0, (strength / sqrt(r))²). The update scale·B·A·x
# is then about scale·strength² per entry, against about 0.43 for the tiny models' W·x (weights of
# std 0.054 over 64 inputs). Modules in modules_to_save get N(0, 0.05²) added to each weight.
# The tiny models' adapters move logits by about 2 (as large as the logits themselves).
TINY_STRENGTH = 0.3
SAVE_NOISE = 0.05
# SmolLM2's (per adapter, below) were chosen so that each moves max |Δlogit| by 3.5-4.5 over 1,024
# positions of text and changes the top-1 token at about 5 % of them (KL(base ‖ adapter) ≈ 0.007),
# while greedy text stays English: visible, and sane.

# name: the base (a hf_fixtures tiny model name, "smollm2", or "llama-96" for a tiny Llama with
# hidden size 96 that is never saved), LoraConfig arguments, and how it is made.
ADAPTERS = {
    # One per architecture, all projections.
    "llama-all7": dict(base="llama", r=8, lora_alpha=16, target_modules=ALL7),
    "mistral-all7": dict(base="mistral", r=8, lora_alpha=16, target_modules=ALL7),
    "qwen2-all7": dict(base="qwen2", r=8, lora_alpha=16, target_modules=ALL7),
    "qwen3-all7": dict(base="qwen3", r=8, lora_alpha=16, target_modules=ALL7),
    "gemma3-all7": dict(base="gemma3", r=8, lora_alpha=16, target_modules=ALL7),
    "phi3-fused": dict(base="phi3", r=8, lora_alpha=16, target_modules=PHI3_ALL),
    # A subset at r = 4.
    "llama-qv-r4": dict(base="llama", r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
    # A regex (peft: re.fullmatch against the module's name): layer 1's q/k/v, layer 0's up/down.
    "qwen2-regex": dict(base="qwen2", r=8, lora_alpha=8,
                        target_modules=r"model\.layers\.1\.self_attn\.(q|k|v)_proj|model\.layers\.0\.mlp\.(up|down)_proj"),
    # Per-module rank and alpha (peft matches a key as the regex `(.*\.)?KEY$`; none overlap).
    "mistral-patterns": dict(base="mistral", r=8, lora_alpha=16, target_modules=ALL7,
                             rank_pattern={"q_proj": 4, r"layers\.1\.mlp\.down_proj": 16},
                             alpha_pattern={"v_proj": 32, r"layers\.0\.self_attn\.o_proj": 4}),
    # rsLoRA at r = 16: scale alpha/sqrt(r) = 2, where plain LoRA would give alpha/r = 0.5.
    "qwen3-rslora-r16": dict(base="qwen3", r=16, lora_alpha=8, use_rslora=True, target_modules=ALL7),
    # modules_to_save with changed weights, on an untied model (Qwen 2 tiny) and a tied one (Llama
    # tiny: peft then replaces only the named module; the other keeps the base's tensor).
    "qwen2-lm-head": dict(base="qwen2", r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                          modules_to_save=["lm_head"]),
    "qwen2-embed": dict(base="qwen2", r=8, lora_alpha=16, target_modules=["k_proj", "o_proj"],
                        modules_to_save=["embed_tokens"]),
    "llama-tied-lm-head": dict(base="llama", r=8, lora_alpha=16, target_modules=["q_proj", "down_proj"],
                               modules_to_save=["lm_head"]),
    "llama-tied-embed": dict(base="llama", r=8, lora_alpha=16, target_modules=["v_proj", "up_proj"],
                             modules_to_save=["embed_tokens"]),
    # Saved in BF16 (the adapter's tensors; the base stays F32).
    "llama-bf16": dict(base="llama", r=8, lora_alpha=16, target_modules=ALL7, save_dtype="bfloat16"),
    # Made on a BF16 base (tiny Llama rounded to BF16); peft keeps the adapter F32 (autocast_adapter_dtype).
    "llama-bf16-base": dict(base="llama-bf16", r=8, lora_alpha=16, target_modules=ALL7),
    # Real weights.
    "smollm2-all7": dict(base="smollm2", r=8, lora_alpha=16, target_modules=ALL7, strength=0.16),
    "smollm2-qv-rslora": dict(base="smollm2", r=16, lora_alpha=8, use_rslora=True, target_modules=["q_proj", "v_proj"],
                              strength=0.2),
    "smollm2-mlp": dict(base="smollm2", r=16, lora_alpha=16, target_modules=["gate_proj", "up_proj", "down_proj"],
                        strength=0.3),
    "smollm2-attn": dict(base="smollm2", r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                         strength=0.2),
    # To be refused.
    "llama-dora": dict(base="llama", r=8, lora_alpha=16, target_modules=ALL7, use_dora=True),
    "smollm2-dora": dict(base="smollm2", r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], use_dora=True,
                         strength=0.16),
    "llama96-shape": dict(base="llama-96", r=8, lora_alpha=16, target_modules=ALL7),
    "smollm2-other-base": dict(copy_of="smollm2-all7", base_model_name_or_path=OTHER_BASE_NAME),
}

# The tiny-model adapters whose logits Verity must reproduce (every architecture and variant).
FIDELITY = [n for n, s in ADAPTERS.items() if s.get("base") not in ("smollm2", "llama-96")
            and not s.get("use_dora") and "copy_of" not in s]
# SmolLM2 adapters converted to GGUF LoRA by llama.cpp's converter.
GGUF_ADAPTERS = ["smollm2-all7", "smollm2-mlp"]


def lora_dir():
    return os.path.join(cache_dir(), "lora")


def _done(path):
    return os.path.exists(os.path.join(path, ".verity-fixture-lora-" + LORA_FIXTURE_VERSION))


def _mark(path):
    with open(os.path.join(path, ".verity-fixture-lora-" + LORA_FIXTURE_VERSION), "w") as f:
        f.write("complete\n")


def base_path(name):
    """The HF folder of an adapter's base model (built by hf_fixtures if needed)."""
    spec = ADAPTERS[name]
    if "copy_of" in spec:
        return base_path(spec["copy_of"])
    if spec["base"] == "smollm2":
        return hf_fixtures.real_checkpoint("smollm2", "f32")
    if spec["base"] == "llama-96":
        return hf_fixtures.tiny_checkpoint("llama")  # the base it claims (and does not fit)
    if spec["base"] == "llama-bf16":
        return tiny_bf16_llama()
    return hf_fixtures.tiny_checkpoint(spec["base"])


def tiny_bf16_llama():
    """hf_fixtures' tiny Llama with its weights rounded to BF16 and saved as BF16."""
    out = os.path.join(cache_dir(), "tiny-llama-bf16")
    if _done(out):
        return out
    import torch
    import transformers
    source = hf_fixtures.tiny_checkpoint("llama")
    model = transformers.AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).to(torch.bfloat16)
    model.config.dtype = "bfloat16"
    shutil.rmtree(out, ignore_errors=True)
    model.save_pretrained(out, safe_serialization=True)
    for f in os.listdir(source):
        if not f.startswith(".") and not f.endswith(".safetensors") and f != "config.json" and f != "generation_config.json":
            shutil.copy(os.path.join(source, f), out)
    _mark(out)
    return out


def adapter(name):
    """The folder of one PEFT adapter (see ADAPTERS), made once."""
    out = os.path.join(lora_dir(), name)
    if _done(out):
        return out
    spec = ADAPTERS[name]
    shutil.rmtree(out, ignore_errors=True)
    if "copy_of" in spec:
        shutil.copytree(adapter(spec["copy_of"]), out, ignore=shutil.ignore_patterns(".verity-fixture-*"))
        _edit_config(out, base_model_name_or_path=spec["base_model_name_or_path"])
    else:
        _make_peft(name, spec, out)
    _mark(out)
    return out


def _edit_config(folder, **changes):
    path = os.path.join(folder, "adapter_config.json")
    with open(path) as f:
        config = json.load(f)
    config.update(changes)
    with open(path, "w") as f:
        json.dump(config, f, indent=2)


def _seed(name):
    return zlib.crc32(name.encode())


def _check_peft():
    import peft
    assert peft.__version__ == PEFT_VERSION, \
        f"the LoRA fixtures are made with peft {PEFT_VERSION} (run.sh installs it); found {peft.__version__}"


def _make_peft(name, spec, out):
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model
    _check_peft()
    if spec["base"] == "llama-96":
        # A Llama of another width: made in memory; the adapter claims tiny-llama as its base.
        torch.manual_seed(_seed(name))
        config = transformers.LlamaConfig(vocab_size=49152, hidden_size=96, intermediate_size=192, num_hidden_layers=2,
                                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                          rms_norm_eps=1e-6, tie_word_embeddings=True)
        model = transformers.LlamaForCausalLM(config).to(torch.float32)
    elif spec["base"] == "llama-bf16":
        model = transformers.AutoModelForCausalLM.from_pretrained(base_path(name), dtype=torch.bfloat16)
    else:
        model = transformers.AutoModelForCausalLM.from_pretrained(base_path(name), dtype=torch.float32)
    keys = ("r", "lora_alpha", "target_modules", "rank_pattern", "alpha_pattern", "use_rslora", "modules_to_save", "use_dora")
    config = LoraConfig(task_type="CAUSAL_LM", lora_dropout=0.0, **{k: spec[k] for k in keys if k in spec})
    peft_model = get_peft_model(model, config)
    strength = spec.get("strength", TINY_STRENGTH)
    generator = torch.Generator().manual_seed(_seed(name))
    filled = 0
    with torch.no_grad():
        for key, p in peft_model.named_parameters():
            if ".lora_A." in key:
                p.copy_(torch.randn(p.shape, generator=generator) * (strength / math.sqrt(p.shape[1])))
            elif ".lora_B." in key:
                p.copy_(torch.randn(p.shape, generator=generator) * (strength / math.sqrt(p.shape[1])))
            elif ".lora_magnitude_vector." in key:
                p.mul_(1 + 0.1 * torch.randn(p.shape, generator=generator))
            elif ".modules_to_save." in key:
                p.add_(torch.randn(p.shape, generator=generator) * SAVE_NOISE)
            else:
                continue
            filled += 1
    assert filled > 0, f"{name}: peft made no adapter parameters"
    if spec.get("save_dtype"):
        dtype = getattr(torch, spec["save_dtype"])
        for key, p in peft_model.named_parameters():
            if ".lora_" in key:
                p.data = p.data.to(dtype)
    peft_model.save_pretrained(out, safe_serialization=True)
    if spec["base"] == "smollm2":
        # As an adapter trained on the hub's model says (the local path would name nothing).
        _edit_config(out, base_model_name_or_path=SMOLLM2_NAME)
    elif spec["base"] == "llama-96":
        _edit_config(out, base_model_name_or_path=base_path(name))
    readme = os.path.join(out, "README.md")
    if os.path.exists(readme):
        os.remove(readme)  # peft's model-card template: not part of the adapter
    with open(os.path.join(out, "adapter_config.json")) as f:
        saved = json.load(f)
    assert saved["peft_version"] == PEFT_VERSION, saved


# ---------------------------------------------------------------------------------------------
# GGUF LoRA: llama.cpp's converter from the llama-cpp-python source distribution


def converter_dir():
    """llama.cpp's convert_lora_to_gguf.py (with convert_hf_to_gguf.py, conversion/ and gguf-py/,
    which it imports) from the llama-cpp-python source distribution, fetched with pip once."""
    out = os.path.join(cache_dir(), f"llama.cpp-convert-{LLAMA_CPP_PYTHON_VERSION}")
    if _done(out):
        return out
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(cache_dir(), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        # Only llama-cpp-python itself as source: its build tools (cmake, ninja) come as wheels.
        p = subprocess.run([sys.executable, "-m", "pip", "download", f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}",
                            "--no-deps", "--no-binary", "llama-cpp-python", "-d", tmp],
                           capture_output=True, text=True, timeout=1800)
        assert p.returncode == 0, f"pip download llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION} (its sdist holds " \
                                  f"llama.cpp's convert_lora_to_gguf.py) failed:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}"
        [sdist] = glob.glob(os.path.join(tmp, "llama_cpp_python-*.tar.gz"))
        prefix = f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}/vendor/llama.cpp/"
        wanted = ("convert_lora_to_gguf.py", "convert_hf_to_gguf.py", "conversion/", "gguf-py/", "LICENSE")
        staging = os.path.join(tmp, "tree")
        with tarfile.open(sdist) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(prefix)
                       and m.name[len(prefix):].startswith(wanted) and (m.isfile() or m.isdir())]
            try:
                tar.extractall(staging, members=members, filter="data")
            except TypeError:  # Python before 3.11.4: no extraction filters
                tar.extractall(staging, members=members)
        shutil.move(os.path.join(staging, prefix), out)
    _mark(out)
    return out


def gguf_adapter(name):
    """The GGUF LoRA file of a SmolLM2 PEFT adapter, converted (F32) by llama.cpp's converter."""
    out = os.path.join(lora_dir(), f"{name}-gguf")
    path = os.path.join(out, f"{name}-f32.gguf")
    if _done(out):
        return path
    source = adapter(name)
    tools = converter_dir()
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    env = dict(os.environ, PYTHONPATH=os.path.join(tools, "gguf-py"))  # its own gguf-py, not the installed one
    p = subprocess.run([sys.executable, os.path.join(tools, "convert_lora_to_gguf.py"), "--base", base_path(name),
                        "--outtype", "f32", source, "--outfile", path], capture_output=True, text=True, env=env,
                       cwd=tools, timeout=900)
    assert p.returncode == 0 and os.path.exists(path), \
        f"convert_lora_to_gguf.py failed on {source}:\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}"
    _mark(out)
    return path


def smollm2_gguf():
    """The provisioned SmolLM2-135M-Instruct Q4_1 GGUF (the default model; the GGUF LoRA's base)."""
    path = os.path.join(models_dir(), hf_fixtures.SMOLLM_GGUF)
    assert os.path.exists(path), f"{path} is missing: run scripts/fetch-models"
    return path


# ---------------------------------------------------------------------------------------------
# References


def _peft_model(name, scale=1.0, folder=None):
    import torch
    import transformers
    from peft import PeftModel
    _check_peft()
    # F32 throughout: a BF16 base's or adapter's values widened exactly (what --precision f32 does).
    base = transformers.AutoModelForCausalLM.from_pretrained(base_path(name), dtype=torch.float32)
    model = PeftModel.from_pretrained(base, folder or adapter(name)).eval()
    for key, p in model.named_parameters():
        assert p.dtype == torch.float32, f"{key} is {p.dtype}: the reference must compute in float32"
    if scale != 1.0:
        # Verity's --lora-scale multiplies the low-rank update (not modules_to_save).
        with torch.no_grad():
            for key, p in model.named_parameters():
                if ".lora_B." in key:
                    p.mul_(scale)
    return model


def _forward(model, sequences):
    import torch
    out = []
    with torch.no_grad():
        for seq in sequences:
            out.append(model(torch.tensor([seq])).logits[0].to(torch.float32).numpy())
    return out


def peft_logits(name, sequences, scale=1.0):
    """Teacher-forced logits of base + adapter, transformers + peft in float32: numpy [len, vocab]
    per sequence."""
    return _forward(_peft_model(name, scale), sequences)


def peft_logits_of_folder(name, folder, sequences):
    """As peft_logits, for an edited copy of adapter `name` in `folder`."""
    return _forward(_peft_model(name, folder=folder), sequences)


def peft_merged(name, scale=1.0):
    """peft's merge_and_unload() of the adapter into its base: (model, {tensor name: float32 numpy})."""
    model = _peft_model(name, scale).merge_and_unload()
    model.eval()
    return model, {k: v.detach().to("cpu").float().numpy() for k, v in model.state_dict().items()}


def merged_logits(name, sequences, scale=1.0):
    return _forward(peft_merged(name, scale)[0], sequences)


def base_logits(name, sequences):
    return hf_fixtures.transformers_logits(base_path(name), sequences)


def llama_cpp_greedy(prompt, max_tokens, lora=None, n_ctx=512):
    """llama.cpp's greedy continuation of `prompt` (plain text, special tokens parsed) on the Q4_1
    SmolLM2 GGUF, with the GGUF LoRA `lora` (llama-cpp-python's lora_path) or none. Stops after
    max_tokens or at an end-of-generation token (not included). Returns (prompt ids, generated
    ids, top-2 logit margin at each generated step, finish reason)."""
    import numpy as np
    import llama_cpp
    assert llama_cpp.__version__ == LLAMA_CPP_PYTHON_VERSION, \
        f"the llama.cpp reference is llama-cpp-python {LLAMA_CPP_PYTHON_VERSION} (run.sh installs it); found {llama_cpp.__version__}"
    kw = {"lora_path": lora} if lora else {}
    # logits_all: llama-cpp-python keeps each evaluated position's logits only with it.
    llm = llama_cpp.Llama(model_path=smollm2_gguf(), n_ctx=n_ctx, n_threads=2, n_batch=n_ctx, seed=0,
                          logits_all=True, verbose=False, **kw)
    try:
        ids = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        llm.eval(ids)
        generated, margins, reason = [], [], "length"
        for _ in range(max_tokens):
            logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
            top2 = np.partition(logits, -2)[-2:]
            token = int(logits.argmax())
            if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
                reason = "stop"
                break
            generated.append(token)
            margins.append(float(top2[1] - top2[0]))
            llm.eval([token])
        return ids, generated, margins, reason
    finally:
        llm.close()


def effect(a, b):
    """max |a − b| over every logit of every sequence, and the share of positions whose argmax differs."""
    import numpy as np
    diff = max(float(np.abs(x - y).max()) for x, y in zip(a, b))
    flips = sum(int((x.argmax(-1) != y.argmax(-1)).sum()) for x, y in zip(a, b)) / sum(x.shape[0] for x in a)
    return diff, flips


if __name__ == "__main__":
    import random
    import time
    rng = random.Random(7)
    sequences = [[rng.randrange(49152) for _ in range(80)]]
    for name in ADAPTERS:
        t = time.time()
        path = adapter(name)
        print(f"{name}: {path} ({time.time() - t:.1f} s)")
    for name in FIDELITY:
        d, flips = effect(peft_logits(name, sequences), base_logits(name, sequences))
        print(f"{name}: adapter moves logits by max {d:.3g}, argmax changed at {flips:.1%} of positions")
    for name in GGUF_ADAPTERS:
        t = time.time()
        print(f"{gguf_adapter(name)} ({time.time() - t:.1f} s)")
