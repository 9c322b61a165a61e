"""Texts for tokenizer parity: unicode from many scripts, emoji (with ZWJ sequences and skin tones),
whitespace runs, digits, code, contractions, and special tokens inside text. Deterministic."""
import random

FIXED = [
    "", " ", "  ", "\n", "\n\n\n", "\t", " \t \n ", "Hello", " Hello", "Hello world", "Hello  world",
    "hello   world   ", "   leading spaces", "trailing spaces   ", "tabs\tand\tnewlines\nmixed \r\n",
    "The quick brown fox jumps over the lazy dog.", "I'm here, you're there; they'll've gone. DON'T SHOUT",
    "1", "12", "123", "1234", "12345678901234567890", "3.14159", "1,000,000", "-42", "0x1F", "2026-12-07T00:41:38Z",
    "version 1.2.3-beta+build.45", "phone: +44 20 7946 0958", "a1b2c3", "x=1;y=22;z=333",
    "def f(x):\n    return x ** 2\n", "for (int i = 0; i < n; i++) { sum += a[i]; }",
    "if __name__ == \"__main__\":\n\tmain()", "<div class=\"a\">text</div>", "SELECT * FROM t WHERE id=1;",
    "fn main() { println!(\"{}\", 1 + 1); }", "#include <stdio.h>\nint main(void){return 0;}",
    "{\"key\": [1, 2, {\"nested\": null}]}", "https://example.com/path?q=1&r=two#frag", "user@example.org",
    "Grüße aus Köln", "naïve café résumé", "Ελληνικά κείμενα", "Русский текст, ёлки-палки", "עברית מימין לשמאל",
    "العربية النص", "हिन्दी पाठ", "ไทย ภาษา", "日本語のテキストです。", "中文文本，标点符号。", "한국어 텍스트",
    "Tiếng Việt có dấu", "ქართული", "Ꭰ Cherokee", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math 𝟙𝟚𝟛", "emoji 😀😃😄", "👍🏽 thumbs",
    "👨‍👩‍👧‍👦 family", "🏳️‍🌈 flag", "❤️ heart", "🇫🇷🇩🇪 flags", "a\u200bzero\u200bwidth", "combining e\u0301", "cafe\u0301 re\u0301sume\u0301 (decomposed)", "\u212b vs \u00c5 vs A\u030a",
    "\u1e9b\u0323 dot below", "Hangul \u1100\u1161\u11a8 jamo",
    "\u00a0non-breaking\u00a0space", "\u3000ideographic space", "mixed 中文 and English 123",
    "ALLCAPS lowercase MiXeD", "’curly’ “quotes” — dashes – and … ellipsis", "¿Qué? ¡Sí!", "§ ¶ © ® ™ ° ± × ÷",
    "∑∫∂√∞≈≠≤≥", "←→↑↓⇒⇔", "░▒▓█", "\\backslash\\ and /slash/", "~!@#$%^&*()_+`-=[]{}|;':\",./<>?",
    "....", "----", "____", "====", "!!!!", "???", "a" * 50, "ab" * 40, " " * 17 + "x", "\n" * 5 + "y",
    "<|im_start|>user\nhi<|im_end|>", "text <|endoftext|> more", "<bos>not a bos", "<start_of_turn>user",
    "<end_of_turn>\n", "<|im_end|><|im_end|>", "<unk> <pad> <eos>", "<s> </s>", "[INST] hi [/INST]",
]


def corpus(n=260, seed=1234):
    rng = random.Random(seed)
    texts = list(FIXED)
    pieces = [t for t in FIXED if t]
    while len(texts) < n:
        k = rng.randint(2, 5)
        joiners = ["", " ", "\n", "  ", "\t"]
        texts.append(rng.choice(joiners).join(rng.choice(pieces) for _ in range(k)))
    return texts
