"""Fixtures and references for the export tests (test_15_export.py), made by llama.cpp's own tools and
the real libraries:

- F16 (and F32) GGUFs of hf_fixtures' checkpoints (SmolLM2-135M, Gemma 3 270M and the tiny random
  models of each architecture), converted by llama.cpp's convert_hf_to_gguf.py from the
  llama-cpp-python 0.3.36 source distribution (lora_fixtures.converter_dir(); its vendored gguf-py);
- llama.cpp's quantizations of them: `llama_model_quantize` from llama-cpp-python 0.3.36 (the library
  function the llama-quantize CLI calls), default parameters but the file type;
- peft's merge_and_unload() of a SmolLM2 adapter, saved as an F32 folder and converted to GGUF F32
  by the same converter (the reference for a merged GGUF export).

Everything lands in $VERITY_CACHE_DIR/hf-fixtures/export (default ~/.cache/verity) once; a marker
file written last says a fixture is complete, so an interrupted run is redone.

llama.cpp runs in a child process (`python3 export_fixtures.py quantize|greedy ...`): a GGUF that
trips one of its asserts aborts that process, not the test session.

Also here: reading GGUF files with the gguf package (GGUFReader) and comparing two of them tensor by
tensor, byte for byte; the file naming llama.cpp uses; llama.cpp's greedy text on a GGUF.

`python3 export_fixtures.py` builds every fixture."""
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import bnb_fixtures
import hf_fixtures
import lora_fixtures
from hf_fixtures import cache_dir, models_dir

EXPORT_FIXTURE_VERSION = "1"
LLAMA_CPP_PYTHON_VERSION = lora_fixtures.LLAMA_CPP_PYTHON_VERSION
HERE = os.path.dirname(os.path.abspath(__file__))

# The GGUF types `verity export --to gguf --type` takes (llama-quantize's spellings), and the
# llama_ftype each is in llama.cpp (llama_cpp.LLAMA_FTYPE_<name>).
GGUF_TYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L",
              "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS"]
FTYPES = {t: ("ALL_F32" if t == "F32" else "MOSTLY_" + t) for t in GGUF_TYPES}

# Source models: name -> the function that makes (or finds) its Hugging Face folder.
MODELS = {
    "smollm2": lambda: hf_fixtures.real_checkpoint("smollm2", "bf16"),
    "gemma3": lambda: hf_fixtures.real_checkpoint("gemma3", "bf16"),
    "tiny-llama": lambda: hf_fixtures.tiny_checkpoint("llama"),
    "tiny-qwen2": lambda: hf_fixtures.tiny_checkpoint("qwen2"),
    "tiny-qwen3": lambda: hf_fixtures.tiny_checkpoint("qwen3"),
    "tiny-gemma3": lambda: hf_fixtures.tiny_checkpoint("gemma3"),
    "tiny-phi3": lambda: hf_fixtures.tiny_checkpoint("phi3"),
    "tiny-llama-odd": bnb_fixtures.odd_checkpoint,
}
TINY_MODELS = [m for m in MODELS if m.startswith("tiny-")]


def export_dir():
    return os.path.join(cache_dir(), "export")


def _done(path):
    return os.path.exists(os.path.join(path, ".verity-fixture-export-" + EXPORT_FIXTURE_VERSION))


def _mark(path):
    with open(os.path.join(path, ".verity-fixture-export-" + EXPORT_FIXTURE_VERSION), "w") as f:
        f.write("complete\n")


def _check_llama_cpp():
    import llama_cpp
    assert llama_cpp.__version__ == LLAMA_CPP_PYTHON_VERSION, \
        f"the llama.cpp reference is llama-cpp-python {LLAMA_CPP_PYTHON_VERSION} (run.sh installs it); " \
        f"found {llama_cpp.__version__}"


def smollm2_q4_1():
    """The provisioned SmolLM2-135M-Instruct Q4_1 GGUF (the default model)."""
    return lora_fixtures.smollm2_gguf()


def gemma3_q4_k_m():
    path = os.path.join(models_dir(), hf_fixtures.GEMMA_GGUF)
    assert os.path.exists(path), f"{path} is missing: run scripts/fetch-models"
    return path


# ---------------------------------------------------------------------------------------------
# llama.cpp's converter and quantizer


# The converter needs two kinds of help with these fixtures' vocabularies; it runs through the driver
# below, whose patches touch the vocabulary step only (the tensors are converted untouched):
# - The tiny models carry SmolLM2's tokenizer (hf_fixtures), which the converter knows as "smollm"
#   under a Llama config but not under others: transformers 5 loads it as Qwen2Tokenizer under a
#   Qwen 2 config (another pre-tokenizer hash), and the Phi-3 converter wants a SentencePiece
#   tokenizer.model. An unrecognized BPE pre-tokenizer is taken as SmolLM2's, and Phi-3 takes the
#   BPE vocabulary as it does for Phi-4's GPT2Tokenizer.
# - Gemma 3's folder has the tokenizer.json that transformers wrote from the provisioned GGUF's
#   SentencePiece vocabulary; the converter would write it as a BPE vocabulary whose pre-tokenizer
#   hash happens to match another model's. The GGUF gets the provisioned Gemma 3 GGUF's own
#   tokenizer.* keys instead (the vocabulary the weights came with).
_CONVERT_DRIVER = r"""
import os, sys
sys.path.insert(0, ".")
import convert_hf_to_gguf as cli
import gguf
from conversion import base, phi
_pre = base.TextModel.get_vocab_base_pre
def get_vocab_base_pre(self, tokenizer):
    try:
        return _pre(self, tokenizer)
    except NotImplementedError:
        return "smollm"
VOCAB_FROM = os.environ.get("VERITY_VOCAB_FROM")
def copy_vocab(self):
    reader = gguf.GGUFReader(VOCAB_FROM)
    for key, field in reader.fields.items():
        if key.startswith("tokenizer."):
            sub = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
            self.gguf_writer.add_key_value(key, field.contents(), field.types[0], sub_type=sub)
_prepare = base.TextModel.prepare_metadata
def prepare_metadata(self, vocab_only):
    if VOCAB_FROM:
        self.set_vocab = lambda: copy_vocab(self)
    return _prepare(self, vocab_only)
if os.environ.get("VERITY_SMOLLM_VOCAB"):
    base.TextModel.get_vocab_base_pre = get_vocab_base_pre
    phi.Phi3MiniModel.set_vocab = base.TextModel._set_vocab_gpt2
base.TextModel.prepare_metadata = prepare_metadata
sys.argv = ["convert_hf_to_gguf.py"] + sys.argv[1:]
cli.main()
"""


def convert_hf(folder, outfile, outtype="f16", smollm_vocab=False, vocab_from=None, timeout=1800):
    """llama.cpp's convert_hf_to_gguf.py (its own gguf-py) on a Hugging Face folder; smollm_vocab
    (the tiny models) and vocab_from (a GGUF whose tokenizer.* keys to write): the patches above."""
    tools = lora_fixtures.converter_dir()
    env = dict(os.environ, PYTHONPATH=os.path.join(tools, "gguf-py"))
    if smollm_vocab:
        env["VERITY_SMOLLM_VOCAB"] = "1"
    if vocab_from:
        env["VERITY_VOCAB_FROM"] = vocab_from
    script = ["-c", _CONVERT_DRIVER] if smollm_vocab or vocab_from else [os.path.join(tools, "convert_hf_to_gguf.py")]
    p = subprocess.run([sys.executable, *script, "--outtype", outtype, "--outfile", outfile, folder],
                       capture_output=True, text=True, env=env, cwd=tools, timeout=timeout)
    assert p.returncode == 0 and os.path.exists(outfile), \
        f"convert_hf_to_gguf.py --outtype {outtype} failed on {folder}:\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}"


def converted_gguf(name, outtype="f16"):
    """The GGUF that llama.cpp's converter makes of model `name` (see MODELS) at `outtype`."""
    folder = os.path.join(export_dir(), f"{name}-{outtype}")
    path = os.path.join(folder, f"{name}-{outtype.upper()}.gguf")
    if _done(folder):
        return path
    source = MODELS[name]()
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    convert_hf(source, path, outtype, smollm_vocab=name in TINY_MODELS,
               vocab_from=gemma3_q4_k_m() if name == "gemma3" else None)
    _mark(folder)
    return path


def llama_quantize(src, dst, qtype, threads=2, timeout=1800):
    """llama_model_quantize(src → dst) with default parameters but ftype (and nthread), in a child
    process. Returns the seconds the call itself took."""
    assert os.path.abspath(src) != os.path.abspath(dst), "llama_model_quantize would overwrite its input"
    p = subprocess.run([sys.executable, os.path.abspath(__file__), "quantize", src, dst, qtype, str(threads)],
                       capture_output=True, text=True, timeout=timeout, cwd=HERE)
    assert p.returncode == 0 and os.path.exists(dst), \
        f"llama_model_quantize {src} → {qtype} failed (exit {p.returncode}):\n{p.stdout[-1500:]}\n{p.stderr[-3000:]}"
    return json.loads(p.stdout.strip().splitlines()[-1])["seconds"]


def _quantize_main(src, dst, qtype, threads):
    import ctypes
    import time
    import llama_cpp
    _check_llama_cpp()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, "LLAMA_FTYPE_" + FTYPES[qtype.upper()])
    params.nthread = int(threads)
    start = time.perf_counter()
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
    seconds = time.perf_counter() - start
    if rc != 0:
        print(f"llama_model_quantize returned {rc}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"seconds": seconds}))


def llama_quantized(name, qtype):
    """llama.cpp's quantization of converted_gguf(name) (F16) to `qtype`: the byte reference."""
    qtype = qtype.upper()
    folder = os.path.join(export_dir(), f"llama.cpp-{LLAMA_CPP_PYTHON_VERSION}", f"{name}-{qtype}")
    path = os.path.join(folder, f"{name}-{qtype}.gguf")
    if _done(folder):
        return path
    src = converted_gguf(name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    llama_quantize(src, path, qtype)
    _mark(folder)
    return path


# ---------------------------------------------------------------------------------------------
# peft's merge as the reference of a merged export


def peft_merged_folder(name, base=None):
    """transformers + peft merge_and_unload() of adapter `name` (lora_fixtures) on its base, or on
    the F32 folder `base` when given, saved as an F32 Hugging Face folder with the base's tokenizer."""
    tag = name if base is None else f"{name}-on-{os.path.basename(base.rstrip('/'))}"
    out = os.path.join(export_dir(), f"peft-merged-{tag}")
    if _done(out):
        return out
    import torch
    import transformers
    from peft import PeftModel
    lora_fixtures._check_peft()
    base = base or lora_fixtures.base_path(name)
    model = transformers.AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, lora_fixtures.adapter(name)).merge_and_unload().eval()
    shutil.rmtree(out, ignore_errors=True)
    merged.config.dtype = "float32"
    merged.save_pretrained(out, safe_serialization=True)
    for f in os.listdir(base):
        if not f.startswith(".") and not f.endswith(".safetensors") and f not in (
                "config.json", "generation_config.json", "model.safetensors.index.json"):
            shutil.copy(os.path.join(base, f), out)
    _mark(out)
    return out


def peft_merged_weights(name, base=None):
    """{tensor name: float32 numpy} of peft_merged_folder(name, base)."""
    return safetensors_weights(peft_merged_folder(name, base))


def peft_merged_gguf(name):
    """peft_merged_folder(name) converted to GGUF F32 by llama.cpp's converter."""
    folder = os.path.join(export_dir(), f"peft-merged-{name}-gguf")
    path = os.path.join(folder, f"{name}-merged-F32.gguf")
    if _done(folder):
        return path
    source = peft_merged_folder(name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    convert_hf(source, path, "f32")
    _mark(folder)
    return path


def safetensors_weights(folder):
    """Every tensor of a folder's *.safetensors files as float32 numpy arrays, by name."""
    import numpy as np
    from safetensors import safe_open
    out = {}
    for f in sorted(glob.glob(os.path.join(folder, "*.safetensors"))):
        with safe_open(f, "pt") as st:
            for k in st.keys():
                out[k] = st.get_tensor(k).float().numpy().astype(np.float32, copy=False)
    return out


def safetensors_dtypes(folder):
    from safetensors import safe_open
    out = {}
    for f in sorted(glob.glob(os.path.join(folder, "*.safetensors"))):
        with safe_open(f, "np") as st:
            for k in st.keys():
                out[k] = str(st.get_slice(k).get_dtype())
    return out


# ---------------------------------------------------------------------------------------------
# Reading and comparing GGUF files (the gguf package's GGUFReader)


def gguf_shards(path):
    """The shard files of a GGUF: [path] for a single file, every NAME-0000k-of-0000N.gguf for the
    first shard of a split one (gguf-split's layout)."""
    import re
    m = re.match(r"^(.*)-(\d{5})-of-(\d{5})\.gguf$", str(path))
    if not m:
        return [str(path)]
    n = int(m.group(3))
    return [f"{m.group(1)}-{i:05d}-of-{n:05d}.gguf" for i in range(1, n + 1)]


class Gguf:
    """One GGUF (all its shards): metadata of the first shard, tensors of all."""

    def __init__(self, path):
        from gguf import GGUFReader
        self.path = str(path)
        self.readers = [GGUFReader(p) for p in gguf_shards(path)]
        self.tensors = {}
        for reader in self.readers:
            for t in reader.tensors:
                assert t.name not in self.tensors, f"{path}: tensor {t.name} appears twice"
                self.tensors[t.name] = (reader, t)

    def metadata(self, shard=0):
        """{key: value} (arrays as lists, strings as str) of one shard, without the GGUF. header fields."""
        out = {}
        for key, field in self.readers[shard].fields.items():
            if key.startswith("GGUF."):
                continue
            value = field.contents()
            out[key] = value
        return out

    def type_name(self, name):
        from gguf import GGMLQuantizationType
        return GGMLQuantizationType(self.tensors[name][1].tensor_type).name

    def shape(self, name):
        return tuple(int(x) for x in self.tensors[name][1].shape)

    def raw(self, name):
        """The tensor's bytes in the file (a uint8 numpy view)."""
        reader, t = self.tensors[name]
        return reader.data[t.data_offset:t.data_offset + t.n_bytes]

    def values(self, name):
        """The tensor as float32 numpy in GGUF order reversed (rows × columns), dequantized by gguf-py."""
        import numpy as np
        from gguf.quants import dequantize
        reader, t = self.tensors[name]
        shape = tuple(reversed([int(x) for x in t.shape]))
        return np.asarray(dequantize(self.raw(name), t.tensor_type), dtype=np.float32).reshape(shape)


_opened = {}


def open_gguf(path):
    """Gguf(path), kept while the file is unchanged (gguf-py parses a 49k-token vocabulary slowly)."""
    st = os.stat(path)
    key = (os.path.abspath(str(path)), st.st_mtime_ns, st.st_size, st.st_ino)
    if key not in _opened:
        if len(_opened) > 16:
            _opened.clear()
        _opened[key] = Gguf(path)
    return _opened[key]


def compare_tensors(reference, candidate, ref_label="llama.cpp", label="verity", limit=40):
    """Every difference between two GGUFs' tensors (names, types, shapes, bytes); an empty list when
    each tensor has the same type, shape and bytes. A byte difference names the first differing
    byte (offset within the tensor), its block and row, how many blocks differ, and both blocks."""
    import gguf
    import numpy as np
    ref, got = open_gguf(reference), open_gguf(candidate)
    problems = []
    missing = sorted(set(ref.tensors) - set(got.tensors))
    extra = sorted(set(got.tensors) - set(ref.tensors))
    if missing:
        problems.append(f"{len(missing)} tensors of {ref_label}'s file missing from {label}'s: {missing[:10]}")
    if extra:
        problems.append(f"{len(extra)} tensors in {label}'s file that {ref_label}'s lacks: {extra[:10]}")
    type_diffs = []
    for name in sorted(set(ref.tensors) & set(got.tensors)):
        rt, gt = ref.type_name(name), got.type_name(name)
        if rt != gt:
            type_diffs.append(f"{name} {list(ref.shape(name))}: {ref_label} {rt}, {label} {gt}")
            continue
        if ref.shape(name) != got.shape(name):
            problems.append(f"{name}: shape {ref_label} {ref.shape(name)}, {label} {got.shape(name)}")
            continue
        a, b = ref.raw(name), got.raw(name)
        if a.shape != b.shape:
            problems.append(f"{name} ({rt}): {ref_label} {a.size} bytes, {label} {b.size} bytes")
            continue
        if np.array_equal(a, b):
            continue
        block_elems, block_bytes = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[rt]]
        diff = np.flatnonzero(a != b)
        first = int(diff[0])
        block = first // block_bytes
        row_bytes = ref.shape(name)[0] // block_elems * block_bytes
        blocks = np.unique(diff // block_bytes)
        n_blocks = a.size // block_bytes
        start = block * block_bytes
        problems.append(
            f"{name} ({rt}, {list(ref.shape(name))}): bytes differ from offset {first} (block {block} of {n_blocks}, "
            f"row {first // row_bytes}, byte {first - start} of its {block_bytes}); {len(blocks)} of {n_blocks} blocks "
            f"differ ({len(diff)} bytes). First differing block: {ref_label} {bytes(a[start:start + block_bytes]).hex()} "
            f"{label} {bytes(b[start:start + block_bytes]).hex()}")
    if type_diffs:
        problems.insert(0, f"{len(type_diffs)} tensors of other types: " + "; ".join(type_diffs[:limit]))
    return problems[:limit]


# llama.cpp's default output file name: gguf-py's naming_convention (as convert_hf_to_gguf.py and
# the gguf spec's naming convention) from the file's general.* keys and the type.
def default_gguf_name(metadata, qtype):
    from gguf.utility import naming_convention
    return naming_convention(metadata.get("general.name"), metadata.get("general.basename"),
                             metadata.get("general.finetune"), metadata.get("general.version"),
                             metadata.get("general.size_label"), qtype) + ".gguf"


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 22)
            if not chunk:
                break
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# llama.cpp's greedy text


def llama_cpp_greedy(model, prompt, max_tokens, lora=None, n_ctx=256, timeout=900):
    """llama.cpp's greedy continuation of `prompt` (plain text, special tokens parsed, BOS as the
    vocabulary says) on the GGUF `model` (a split GGUF: its first shard), with the GGUF LoRA `lora`
    or none, in a child process. Stops after max_tokens or at an end-of-generation token (not
    included). Returns {"prompt": ids, "tokens": ids, "margins": top-2 logit margin per generated
    token, "finish": "length"|"stop", "text": the decoded tokens}."""
    args = [sys.executable, os.path.abspath(__file__), "greedy", str(model), prompt, str(max_tokens), str(n_ctx)]
    if lora:
        args.append(str(lora))
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=HERE)
    assert p.returncode == 0, (f"llama.cpp could not load or run {model}{' with LoRA ' + str(lora) if lora else ''} "
                               f"(exit {p.returncode}):\n{p.stdout[-1500:]}\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def _greedy_main(model, prompt, max_tokens, n_ctx, lora=None):
    import numpy as np
    import llama_cpp
    _check_llama_cpp()
    kw = {"lora_path": lora} if lora else {}
    llm = llama_cpp.Llama(model_path=model, n_ctx=int(n_ctx), n_threads=2, n_batch=int(n_ctx), seed=0,
                          logits_all=False, verbose=False, **kw)
    try:
        ids = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        llm.eval(ids)
        n_vocab = llm.n_vocab()
        tokens, margins, finish = [], [], "length"
        for _ in range(int(max_tokens)):
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(n_vocab,))
            logits = np.array(logits, dtype=np.float32)
            top2 = np.partition(logits, -2)[-2:]
            token = int(logits.argmax())
            if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
                finish = "stop"
                break
            tokens.append(token)
            margins.append(float(top2[1] - top2[0]))
            llm.eval([token])
        text = llm.detokenize(tokens).decode("utf-8", "replace")
        print(json.dumps({"prompt": ids, "tokens": tokens, "margins": margins, "finish": finish, "text": text}))
    finally:
        llm.close()


def first_near_tie(margins, threshold):
    return next((i for i, m in enumerate(margins) if m < threshold), len(margins))


# ---------------------------------------------------------------------------------------------


def build_all():
    for name in MODELS:
        print(converted_gguf(name))
    import test_15_export as t  # the lists of (model, type) pairs the tests compare
    for name, qtype in t.BYTE_CASES:
        print(llama_quantized(name, qtype))
    print(peft_merged_gguf("smollm2-all7"))


def swift_test_fixtures():
    """The Hugging Face folders Tests/ExportTests reads (scripts/test builds them before `swift
    test`): the tiny model of each architecture, the odd-shaped one, a bitsandbytes NF4 one and
    SmolLM2's BF16 checkpoint."""
    for name in hf_fixtures.TINY:
        print(hf_fixtures.tiny_checkpoint(name))
    print(bnb_fixtures.odd_checkpoint())
    print(bnb_fixtures.tiny_bnb("llama-nf4-f32"))
    print(hf_fixtures.real_checkpoint("smollm2", "bf16"))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "swift":
        swift_test_fixtures()
    elif len(sys.argv) > 1 and sys.argv[1] == "quantize":
        _quantize_main(*sys.argv[2:6])
    elif len(sys.argv) > 1 and sys.argv[1] == "greedy":
        _greedy_main(*sys.argv[2:])
    else:
        build_all()
