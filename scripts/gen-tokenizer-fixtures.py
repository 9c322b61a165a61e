#!/usr/bin/env python3
"""Generate reference tokenizations for Verity's Tokenizers tests using llama.cpp.

Loads SmolLM2-135M-Instruct (vocab only) through llama-cpp-python and writes
Tests/TokenizersTests/Fixtures/smollm2-tokens.json:

    {
      "llama_cpp_version": "...",
      "model": "SmolLM2-135M-Instruct.Q4_1.gguf",
      "cases": [
        {"text": ..., "add_special": bool, "parse_special": bool, "ids": [...],
         "detokenized": ...,          # llama_detokenize(ids, remove_special=False, unparse_special=True)
         "detokenized_skip": ...},    # llama_detokenize(ids, remove_special=False, unparse_special=False)
        ...
      ],
      "pieces": {"<id>": "<hex of llama_token_to_piece(id, special=True)>", ...}
    }

It also writes Tests/TokenizersTests/Fixtures/bpe-vocabs-tokens.json: for every byte-level BPE
vocabulary in ${VERITY_CACHE_DIR:-~/.cache/verity}/vocab (llama.cpp's ggml-vocab-*.gguf test files),
reference ids and detokenized text for a set of tricky strings (Unicode whitespace, CJK, emoji,
the vocabulary's own special tokens with parse_special on and off, clean-up-spaces cases):

    {"llama_cpp_version": ..., "vocabs": {"ggml-vocab-NAME.gguf": [case, ...], ...},
     "info": {"ggml-vocab-NAME.gguf": {"bos", "eos", "eot" (-1 = none), "add_bos", "add_eos",
                                      "eog": [ids for which llama_vocab_is_eog]}, ...}}

Tests/TokenizersTests/Fixtures/spm-vocabs-tokens.json is the same for every SentencePiece
(tokenizer.ggml.model = llama) vocabulary there (llama-spm, phi-3, baichuan).

Tests/TokenizersTests/Fixtures/gemma3-tokens.json has the smollm2 layout for Gemma 3's vocabulary
(${VERITY_CACHE_DIR:-~/.cache/verity}/models/gemma-3-270m-Q4_K_M.gguf; skipped when absent), with
Gemma's turn markers and whitespace runs, parse_special and add_special on and off.

Usage: python3 scripts/gen-tokenizer-fixtures.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf]
(default: ${VERITY_CACHE_DIR:-~/.cache/verity}/models/SmolLM2-135M-Instruct.Q4_1.gguf)
"""

import ctypes
import json
import os
import sys

import llama_cpp

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "Tests", "TokenizersTests", "Fixtures")
OUT = os.path.join(FIXTURES, "smollm2-tokens.json")
OUT_VOCABS = os.path.join(FIXTURES, "bpe-vocabs-tokens.json")
OUT_SPM_VOCABS = os.path.join(FIXTURES, "spm-vocabs-tokens.json")
OUT_GEMMA3 = os.path.join(FIXTURES, "gemma3-tokens.json")
GEMMA3_MODEL = "gemma-3-270m-Q4_K_M.gguf"

# Strings run through every BPE test vocabulary.
VOCAB_TEXTS = [
    "Hello world",
    "Hello , world . Isn ' t it ? We 're here ! I 'm ok , you 've won , it 's his",
    "ideographic\u3000space\u3000\u3000and nbsp\u00a0\u00a0x\u2028line sep",
    "你好，世界！ 中文　测试 한국어 日本語です",
    "emoji 😀👨‍👩‍👧‍👦🇺🇸 and 1️⃣",
    "digits 1 12 123 1234 12345 ٣٤٥ ５６",
    "  two\n\n   three    \t\t tabs\r\n crlf  ",
    "        eight spaces then text",
    "code: if (x >= 10) { return y->z[i] ?? $a | ~b ^ c; }",
    "Ümlaut naïve e\u0301 Zalgo Z\u0351\u036b\u0343 ok",
    "'s 'T 'Re 'vE 'm 'LL 'd",
    "$$$ +++ <<<>>> ~~~ ``` ||| ^^^",
    "µ Àÿ ǅ ʯ Ͱ ℂ Ⅻ ａｂｃ 𐐀",
    "！＂＃（）＊，。、“”‘’",
    "text with trailing whitespace   ",
]


TEXTS = [
    # plain English and contractions
    "Hello world",
    "Hello, world! How are you today?",
    "I'm sure you'll see they're right, and we've done what we'd said; it's John's.",
    "DON'T SHOUT, IT'S LOUD",
    "The quick brown fox jumps over the lazy dog.",
    " leading space",
    "trailing space ",
    "",
    " ",
    "a",
    # whitespace runs, tabs, newlines
    "two  spaces   three    four",
    "\t\ttabs\tand\ttabs",
    "line one\nline two\n\nline four\r\nwindows line",
    "\n\n\n",
    "   \n   \n",
    "word\u00a0nbsp\u2003emspace\u3000ideographic",
    "mixed \t \n whitespace \t\n",
    # digits
    "0",
    "12",
    "123",
    "1234",
    "12345678901234567890",
    "3.14159 and 2,718,281 and 1e-10",
    "Phone: +1 (555) 123-4567",
    "٣٤٥ Arabic-Indic digits and ५६७ Devanagari digits",
    "Version 1.2.3-beta.4 released 2024-05-17",
    # non-Latin scripts
    "你好，世界！这是一个测试。",
    "日本語のテキストとカタカナ、ひらがな。",
    "한국어 텍스트입니다",
    "مرحبا بالعالم، هذا اختبار.",
    "नमस्ते दुनिया, यह एक परीक्षण है।",
    "Привет, мир! Ёжик в тумане.",
    "Ελληνικά γράμματα: αβγδε",
    "עברית: שלום עולם",
    "ภาษาไทยไม่มีช่องว่าง",
    # combining marks and normalization-sensitive text
    "e\u0301cole vs \u00e9cole",
    "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dA\u036b\u0357\u0334\u0362\u0335\u031c\u0330\u0354L\u0368\u0367\u0369\u0358\u0320G\u0311\u0357\u030e\u0305\u035b\u0341\u0334\u033b\u0348\u034d\u0354\u0339O\u0342\u030c\u030c\u0358\u0328\u0335\u0339\u033b\u031d\u0333",
    "na\u00efve cafe\u0301 r\u00e9sum\u00e9 \u00c5ngstr\u00f6m",
    # emoji: simple, skin tones, ZWJ sequences, flags, keycaps
    "I love emoji 😀😃😄",
    "👍🏽 thumbs up with skin tone",
    "family: 👨‍👩‍👧‍👦 and 👩‍💻 technologist",
    "flags 🇺🇸🇯🇵🇫🇷 and 🏴‍☠️",
    "keycap 1️⃣ #️⃣ and ❤️ heart",
    "🦀🐍🦊 animals",
    # code
    "def add(a, b):\n    return a + b\n",
    "for (int i = 0; i < n; ++i) { sum += arr[i]; }",
    "let x: [String: Int] = [\"a\": 1, \"b\": 2]",
    "if x == 3 && y != 4 || !z { print(\"ok\") }",
    "    indented\n        more indented\n\tand a tab",
    "<div class=\"container\"><p>Hello &amp; goodbye</p></div>",
    "SELECT * FROM users WHERE id = 42;",
    # URLs, paths, emails
    "https://example.com/path/to/page?query=1&other=two#section",
    "Email me at someone@example.org or visit www.test.co.uk",
    "/usr/local/bin/swift --version && echo $HOME",
    "C:\\Windows\\System32\\drivers\\etc\\hosts",
    # punctuation and symbols
    "Wow!!! Really??? Yes... (maybe) [sure] {ok} <tag>",
    "€100 £50 ¥1000 $20 ₹500 ₿0.5",
    "math: ∑ x² ≤ ∞ ± √2 ≠ π",
    "quotes “curly” ‘single’ «guillemets» — em dash – en dash",
    "~!@#$%^&*()_+-=`{}|[]\\:\";'<>?,./",
    "'s 't 're 've 'm 'll 'd 'S 'T 'RE",
    # special tokens (plain text unless parse_special)
    "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>",
    "text before<|endoftext|>text after",
    "<|im_start|><|im_end|><|im_start|>",
    "not special: <|im_start |> <im_start> <|im_end",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>",
    "<fim_prefix>def f():<fim_suffix>\n<fim_middle>",
    # long mixed
    "Mixed: English, 中文, العربية, हिन्दी, 😀, 123456, and code `x += 1`.",
]

CASES = [(t, False, False) for t in TEXTS] + [(t, False, True) for t in TEXTS] + \
        [(t, True, True) for t in TEXTS if "<|" in t or t in ("", "Hello world")]


def tokenize(vocab, text: bytes, add_special: bool, parse_special: bool):
    n = len(text) + 16
    buf = (llama_cpp.llama_token * n)()
    got = llama_cpp.llama_tokenize(vocab, text, len(text), buf, n, add_special, parse_special)
    if got < 0:
        raise RuntimeError(f"tokenize failed for {text!r}")
    return list(buf[:got])


def detokenize(vocab, ids, unparse_special: bool) -> bytes:
    arr = (llama_cpp.llama_token * max(1, len(ids)))(*ids)
    size = 64 + 64 * len(ids)
    buf = ctypes.create_string_buffer(size)
    got = llama_cpp.llama_detokenize(vocab, arr, len(ids), buf, size, False, unparse_special)
    if got < 0:
        raise RuntimeError("detokenize failed")
    return buf.raw[:got]


def piece(vocab, token: int) -> bytes:
    buf = ctypes.create_string_buffer(256)
    got = llama_cpp.llama_token_to_piece(vocab, token, buf, 256, 0, True)
    if got < 0:
        raise RuntimeError("token_to_piece failed")
    return buf.raw[:got]


LLAMA_TOKEN_ATTR_UNKNOWN = 1 << 0
LLAMA_TOKEN_ATTR_CONTROL = 1 << 3
LLAMA_TOKEN_ATTR_USER_DEFINED = 1 << 4


def vocab_info(vocab):
    """Special ids and flags as llama.cpp resolves them."""
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    return {
        "bos": llama_cpp.llama_vocab_bos(vocab),
        "eos": llama_cpp.llama_vocab_eos(vocab),
        "eot": llama_cpp.llama_vocab_eot(vocab),
        "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(vocab)),
        "add_eos": bool(llama_cpp.llama_vocab_get_add_eos(vocab)),
        "eog": [t for t in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, t)],
    }


def vocab_cases(path):
    """Reference cases and special-token info for one vocabulary file."""
    llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    control, user = [], []
    for t in range(n_vocab):
        attr = llama_cpp.llama_vocab_get_attr(vocab, t)
        text = llama_cpp.llama_vocab_get_text(vocab, t).decode("utf-8", "replace")
        if attr & (LLAMA_TOKEN_ATTR_CONTROL | LLAMA_TOKEN_ATTR_UNKNOWN):
            control.append(text)
        elif attr & LLAMA_TOKEN_ATTR_USER_DEFINED:
            user.append(text)
    texts = list(VOCAB_TEXTS)
    specials = control[:2] + control[-2:] + user[:2] + user[-2:]
    if specials:
        texts.append("start " + " mid ".join(specials) + " end")
        texts.append("".join(specials) + "x" + specials[0] + specials[0])
    cases = []
    for text in texts:
        for parse_special in (False, True):
            ids = tokenize(vocab, text.encode("utf-8"), False, parse_special)
            cases.append({
                "text": text,
                "add_special": False,
                "parse_special": parse_special,
                "ids": ids,
                "detokenized": detokenize(vocab, ids, True).decode("utf-8", "replace"),
                "detokenized_skip": detokenize(vocab, ids, False).decode("utf-8", "replace"),
            })
    ids = tokenize(vocab, b"Hello world", True, False)
    cases.append({"text": "Hello world", "add_special": True, "parse_special": False, "ids": ids,
                  "detokenized": detokenize(vocab, ids, True).decode("utf-8", "replace"),
                  "detokenized_skip": detokenize(vocab, ids, False).decode("utf-8", "replace")})
    info = vocab_info(vocab)
    del llm
    return cases, info


def write_vocab_fixture(cache, model="gpt2", out_path=OUT_VOCABS):
    vocab_dir = os.path.join(cache, "vocab")
    if not os.path.isdir(vocab_dir):
        print(f"no {vocab_dir}; skipping {os.path.basename(out_path)}")
        return
    import gguf
    vocabs = {}
    infos = {}
    for name in sorted(os.listdir(vocab_dir)):
        if not (name.startswith("ggml-vocab-") and name.endswith(".gguf")):
            continue
        path = os.path.join(vocab_dir, name)
        reader = gguf.GGUFReader(path)
        field = reader.fields.get("tokenizer.ggml.model")
        if field is None or field.contents() != model:
            continue
        vocabs[name], infos[name] = vocab_cases(path)
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"llama_cpp_version": llama_cpp.__version__, "vocabs": vocabs, "info": infos}, f, ensure_ascii=False, indent=0)
        f.write("\n")
    print(f"wrote {sum(len(v) for v in vocabs.values())} cases for {len(vocabs)} vocabularies to {os.path.normpath(out_path)}")


# Gemma 3 specific strings, on top of TEXTS: turn markers, BOS/EOS written in the text, Gemma's
# whitespace-run user-defined tokens, byte-fallback characters, HTML tags it has as tokens.
GEMMA_TEXTS = [
    "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n",
    "<bos><start_of_turn>user\nHi<end_of_turn>",
    "<bos>",
    "<eos>",
    "text<eos>more",
    "<start_of_turn> spaced <end_of_turn> ",
    "<start_of_turn><end_of_turn><start_of_turn>",
    "not special: <start_of_turn <end_of_turn> <bos",
    "<pad><unk><mask>[multimodal]",
    "<unused0> and <unused99>",
    "  two leading spaces",
    "trailing spaces   ",
    "a  b   c    d     e      f       g        h",
    "                                          forty-two spaces",
    "\n\n\n\n\n\n\n\nmany newlines\n\n\n",
    "\t\t\ttabs\t\t\t",
    "\r\n\r\n crlf \r",
    " \n \n ",
    "<table><tr><td>cell</td></tr></table>",
    "<div><span>html</span></div> <h1>x</h1>",
    "rare: \u2fd5 \U0001d11e \U00010348 \U0002a6d6 \U000e0041",
    "control \x01\x02\x7f bytes",
    "▁literal▁sentencepiece▁marks",
    "zero\u200bwidth\u200cjoiner\u200d here",
    "\ufeffBOM at start",
]

GEMMA_CASES = [(t, False, False) for t in TEXTS + GEMMA_TEXTS] + \
    [(t, False, True) for t in TEXTS + GEMMA_TEXTS] + \
    [(t, True, False) for t in GEMMA_TEXTS[:8] + ["", "Hello world", " leading space"]] + \
    [(t, True, True) for t in GEMMA_TEXTS[:8] + ["", "Hello world", " leading space"]]


def write_cases_fixture(path, cases_spec, out_path):
    """Cases and pieces for one model file, in the smollm2-tokens.json layout."""
    llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    cases = []
    used = set()
    for text, add_special, parse_special in cases_spec:
        ids = tokenize(vocab, text.encode("utf-8"), add_special, parse_special)
        used.update(ids)
        cases.append({
            "text": text,
            "add_special": add_special,
            "parse_special": parse_special,
            "ids": ids,
            "detokenized": detokenize(vocab, ids, True).decode("utf-8", "replace"),
            "detokenized_skip": detokenize(vocab, ids, False).decode("utf-8", "replace"),
        })
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    # Pieces of every token used above plus the first 300 and the last 50 ids.
    for t in list(range(min(300, n_vocab))) + list(range(max(0, n_vocab - 50), n_vocab)):
        used.add(t)
    pieces = {str(t): piece(vocab, t).hex() for t in sorted(used)}
    doc = {
        "llama_cpp_version": llama_cpp.__version__,
        "model": os.path.basename(path),
        "cases": cases,
        "pieces": pieces,
    }
    del llm
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases, {len(pieces)} pieces to {os.path.normpath(out_path)}")


def main():
    cache = os.environ.get("VERITY_CACHE_DIR") or os.path.expanduser("~/.cache/verity")
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(cache, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
    llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)

    cases = []
    used = set()
    for text, add_special, parse_special in CASES:
        ids = tokenize(vocab, text.encode("utf-8"), add_special, parse_special)
        used.update(ids)
        cases.append({
            "text": text,
            "add_special": add_special,
            "parse_special": parse_special,
            "ids": ids,
            "detokenized": detokenize(vocab, ids, True).decode("utf-8"),
            "detokenized_skip": detokenize(vocab, ids, False).decode("utf-8"),
        })
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    # Pieces of every token used above plus the first 300 and the last 50 ids.
    for t in list(range(300)) + list(range(n_vocab - 50, n_vocab)):
        used.add(t)
    pieces = {str(t): piece(vocab, t).hex() for t in sorted(used)}

    doc = {
        "llama_cpp_version": llama_cpp.__version__,
        "model": os.path.basename(path),
        "cases": cases,
        "pieces": pieces,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases, {len(pieces)} pieces to {os.path.normpath(OUT)}")
    write_vocab_fixture(cache)
    write_vocab_fixture(cache, model="llama", out_path=OUT_SPM_VOCABS)
    gemma = os.path.join(cache, "models", GEMMA3_MODEL)
    if os.path.exists(gemma):
        write_cases_fixture(gemma, GEMMA_CASES, OUT_GEMMA3)
    else:
        print(f"no {gemma}; skipping {os.path.basename(OUT_GEMMA3)}")


if __name__ == "__main__":
    main()
