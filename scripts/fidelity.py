#!/usr/bin/env python3
"""Fidelity of Verity's engine against llama.cpp (the PyPI package llama-cpp-python) on one GGUF.

Two checks, as issue #2 defines them:
  1. Teacher-forced: the same token sequences (chat prompts rendered through the model's own
     template with Python jinja2 plus llama.cpp's greedy continuation, and >= 2,000 tokens of
     ordinary text) go through both engines; at every position the full next-token distributions
     are compared: mean KL(llama.cpp || other) and top-1 agreement. The yardstick is llama.cpp
     with flash attention on against itself with it off.
  2. Free-running greedy: for each chat prompt, 64 greedy tokens from both; they must be identical
     up to the first position where llama.cpp's top two logits are within 0.5 (a near-tie).

It also writes the committed fixture Tests/EngineTests/Fixtures/smollm2-llamacpp.json (token
sequences, llama.cpp's top-k log-probabilities per position, greedy continuations and their
top-2 margins) that the Swift test suite checks Verity against without llama.cpp installed.

Usage: scripts/fidelity.py [--model PATH] [--verity PATH] [--write-fixture]
Needs: pip install llama-cpp-python==0.3.36 jinja2 numpy (builds llama.cpp, ~10 min once).
"""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("VERITY_CACHE_DIR", Path.home() / ".cache/verity"))
DEFAULT_MODEL = CACHE / "models/SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_FIXTURE = ROOT / "Tests/EngineTests/Fixtures/smollm2-llamacpp.json"
TOP_K = 16
GREEDY_TOKENS = 64
NEAR_TIE = 0.5

CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "user", "content": "Write a haiku about the sea."}],
    [{"role": "system", "content": "You are a concise assistant."}, {"role": "user", "content": "Explain photosynthesis in two sentences."}],
    [{"role": "user", "content": "List three prime numbers greater than 10."}],
    [{"role": "user", "content": "Translate 'good morning' into Spanish and German."}],
    [{"role": "system", "content": "You answer like a pirate."}, {"role": "user", "content": "How do I boil an egg?"}],
    [{"role": "user", "content": "Write a Python function that reverses a string."}],
    [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello! How can I help you today?"}, {"role": "user", "content": "Tell me a fun fact about octopuses."}],
    [{"role": "user", "content": "What is 17 times 23?"}],
    [{"role": "user", "content": "Give me a short motivational quote."}],
    [{"role": "system", "content": "You are a helpful travel agent."}, {"role": "user", "content": "Suggest a weekend trip from London."}],
    [{"role": "user", "content": "Summarize the plot of Romeo and Juliet in one paragraph."}],
]

# Prompts for base models without a chat template (Gemma 3 270M): fed raw, BOS per the vocabulary.
RAW_PROMPTS = [
    "The capital of France is", "Once upon a time, in a small village,", "def fibonacci(n):",
    "The three primary colors are", "Water boils at a temperature of", "In 1969, the first humans",
    "The quick brown fox", "To make a cup of tea, first", "The largest planet in our solar system",
    "Photosynthesis is the process by which", "import numpy as np\n", "My favourite book is",
]

TEXT_FILES = ["/usr/share/common-licenses/GPL-3", "/usr/share/common-licenses/Apache-2.0"]
TEXT_TOKENS = 2048
TEXT_CHUNK = 512


def log_softmax(x):
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


class Divergence:
    """Running KL(ref || other) and top-1 agreement over positions (sequences one at a time, so a
    262k-token vocabulary never needs every position's logits in memory at once)."""

    def __init__(self):
        self.kl_sum, self.kl_max, self.agree, self.n = 0.0, 0.0, 0, 0

    def add(self, ref_logits, other_logits):
        lp, lq = log_softmax(ref_logits), log_softmax(other_logits)
        kl = (np.exp(lp) * (lp - lq)).sum(axis=-1)
        self.kl_sum += float(kl.sum())
        self.kl_max = max(self.kl_max, float(kl.max()))
        self.agree += int((ref_logits.argmax(-1) == other_logits.argmax(-1)).sum())
        self.n += len(kl)

    def result(self):
        return self.kl_sum / self.n, self.kl_max, self.agree / self.n


def render(template_src, messages, bos, eos):
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template_src).render(messages=messages, add_generation_prompt=True, bos_token=bos, eos_token=eos)


def llama_logits(llm, tokens):
    llm.reset()
    llm.eval(tokens)
    return np.array(llm.scores[: len(tokens)], dtype=np.float32)


EOG_TEXTS = ["<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "</s>"]


def eog_ids(llm):
    """llama.cpp's end-of-generation set: EOS plus the usual end-of-turn tokens of the vocabulary."""
    ids = {llm.token_eos()}
    for t in EOG_TEXTS:
        toks = llm.tokenize(t.encode(), add_bos=False, special=True)
        if len(toks) == 1:
            ids.add(toks[0])
    return ids


def llama_greedy(llm, prompt):
    """Greedy continuation with llama.cpp, and the top-2 logit margin at each step."""
    llm.reset()
    llm.eval(prompt)
    out, margins = [], []
    for _ in range(GREEDY_TOKENS):
        logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        top2 = np.sort(logits)[-2:]
        margins.append(float(top2[1] - top2[0]))
        tok = int(logits.argmax())
        out.append(tok)
        if tok in eog_ids(llm):
            break
        llm.eval([tok])
    return out, margins


def verity_logits(verity, model, sequences):
    with tempfile.TemporaryDirectory() as d:
        inp, out = Path(d) / "in.json", Path(d) / "out.bin"
        inp.write_text(json.dumps(sequences))
        subprocess.run([verity, "logits", "--model", str(model), "--input", str(inp), "--output", str(out)], check=True)
        flat = np.fromfile(out, dtype="<f4")
    result, offset = [], 0
    vocab = flat.size // sum(len(s) for s in sequences)
    for s in sequences:
        n = len(s) * vocab
        result.append(flat[offset: offset + n].reshape(len(s), vocab))
        offset += n
    return result


def verity_greedy(verity, model, text):
    r = subprocess.run([verity, "run", "--model", str(model), "--raw", "--prompt", text, "--temperature", "0", "--top-k", "1",
                        "--max-tokens", str(GREEDY_TOKENS), "--json"], check=True, capture_output=True, text=True)
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--verity", default=str(ROOT / ".build/release/verity"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fixture", default=str(DEFAULT_FIXTURE), help="where --write-fixture writes")
    ap.add_argument("--write-fixture", action="store_true")
    args = ap.parse_args()

    import llama_cpp
    import jinja2
    print(f"llama-cpp-python {llama_cpp.__version__}, jinja2 {jinja2.__version__}, model {args.model}")

    # swa_full: a full-size cache for sliding-window layers, the reference setting for Gemma 3.
    common = dict(model_path=args.model, n_ctx=2048, n_batch=512, logits_all=True, n_threads=args.threads,
                  verbose=False, seed=0, swa_full=True)
    ref = llama_cpp.Llama(flash_attn=False, **common)
    template = ref.metadata.get("tokenizer.chat_template")
    bos = ref.detokenize([ref.token_bos()], special=True).decode() if ref.token_bos() >= 0 else ""
    eos = ref.detokenize([ref.token_eos()], special=True).decode() if ref.token_eos() >= 0 else ""

    # Sequences: each prompt + llama.cpp's greedy continuation; then ordinary text chunks.
    prompts, chats = [], []
    if template:
        cases = [(conv, render(template, conv, bos, eos)) for conv in CONVERSATIONS]
    else:
        print("no chat template: raw prompts")
        cases = [(None, text) for text in RAW_PROMPTS]
    for conv, text in cases:
        # Chat text already holds what the template wrote (BOS included where it writes one);
        # raw prompts get BOS per the vocabulary, as `verity run --raw` does.
        toks = ref.tokenize(text.encode(), add_bos=conv is None and ref.metadata.get("tokenizer.ggml.add_bos_token", "false") == "true", special=True)
        cont, margins = llama_greedy(ref, toks)
        prompts.append({"messages": conv, "text": text, "tokens": toks, "greedy": cont, "margins": margins})
        chats.append(toks + cont)
    text = "\n\n".join(Path(f).read_text() for f in TEXT_FILES if Path(f).exists())
    text_tokens = ref.tokenize(text.encode(), add_bos=False, special=False)[:TEXT_TOKENS]
    assert len(text_tokens) >= TEXT_TOKENS, "not enough ordinary text"
    texts = [text_tokens[i: i + TEXT_CHUNK] for i in range(0, TEXT_TOKENS, TEXT_CHUNK)]
    sequences = chats + texts
    print(f"{len(chats)} prompt sequences + {len(texts)} text chunks = {sum(map(len, sequences))} positions")

    fa = llama_cpp.Llama(flash_attn=True, **common)
    fa_div, v_div, fixture_sequences = Divergence(), Divergence(), []
    t_verity = 0.0
    for s in sequences:
        r = llama_logits(ref, s)
        fa_div.add(r, llama_logits(fa, s))
        t0 = time.time()
        v_div.add(r, verity_logits(args.verity, args.model, [s])[0])
        t_verity += time.time() - t0
        lp = log_softmax(r)
        idx = np.argsort(-r, axis=-1, kind="stable")[:, :TOP_K]
        fixture_sequences.append({"tokens": s, "top_ids": idx.tolist(),
                                  "top_logprobs": np.round(np.take_along_axis(lp, idx, -1), 5).tolist()})
    del fa
    print(f"verity logits: {t_verity:.1f} s")

    fa_kl, fa_max, fa_top1 = fa_div.result()
    v_kl, v_max, v_top1 = v_div.result()
    print("\nTeacher-forced, against llama.cpp (flash attention off):")
    print(f"  llama.cpp flash attention on : mean KL {fa_kl:.6f}  max KL {fa_max:.4f}  top-1 {fa_top1 * 100:.2f}%")
    print(f"  Verity                       : mean KL {v_kl:.6f}  max KL {v_max:.4f}  top-1 {v_top1 * 100:.2f}%")
    ok_tf = v_kl <= fa_kl and v_top1 >= fa_top1
    print(f"  {'PASS' if ok_tf else 'FAIL'}: Verity no farther than flash-attention-on")

    print(f"\nFree-running greedy, {GREEDY_TOKENS} tokens, identical up to the first near-tie (top-2 within {NEAR_TIE}):")
    ok_greedy = True
    for i, p in enumerate(prompts):
        got = verity_greedy(args.verity, args.model, p["text"])
        v = got["completion_tokens"]
        assert got["prompt_tokens"] == p["tokens"], f"prompt {i}: tokenization differs"
        ref_g = p["greedy"]
        match = 0
        while match < min(len(v), len(ref_g)) and v[match] == ref_g[match]:
            match += 1
        ties = [j for j, m in enumerate(p["margins"]) if m < NEAR_TIE]
        first_tie = ties[0] if ties else None
        full = match == len(ref_g) and len(v) == len(ref_g)
        ok = full or (first_tie is not None and match >= first_tie)
        ok_greedy &= ok
        print(f"  prompt {i:2d}: {match}/{len(ref_g)} tokens match; near-ties at {ties[:5]}{'…' if len(ties) > 5 else ''} -> {'ok' if ok else 'MISMATCH'}")

    if args.write_fixture:
        fixture = {
            "generator": "scripts/fidelity.py",
            "llama_cpp_python": llama_cpp.__version__,
            "jinja2": jinja2.__version__,
            "model": Path(args.model).name,
            "top_k": TOP_K,
            "near_tie": NEAR_TIE,
            "flash_attention_yardstick": {"mean_kl": fa_kl, "top1": fa_top1},
            "prompts": prompts,
            "sequences": fixture_sequences,
        }
        out = Path(args.fixture)
        out.write_text(json.dumps(fixture, separators=(",", ":")))
        print(f"\nwrote {out} ({out.stat().st_size // 1024} KiB)")

    sys.exit(0 if ok_tf and ok_greedy else 1)


if __name__ == "__main__":
    main()
