#!/usr/bin/env python3
"""Golden fixtures for the K-quant / IQ4 dequantizers: Tests/KernelsTests/Fixtures/kquants.json.

gguf-py (PyPI `gguf`, the reference numpy port maintained in llama.cpp) can dequantize Q2_K, Q3_K,
Q4_K, Q5_K, Q6_K, IQ4_NL and IQ4_XS but not quantize them (quantize raises NotImplementedError for
all of these, and it has neither direction for Q8_K). So the blocks are deterministic random bytes
with sane fp16 super-block scales (every bit pattern of the packed quants and sub-scales is a valid
block), and the expected floats are gguf-py's dequantization of them. Verity's dequantizers must
reproduce them bit for bit.

Each entry: type name, element count, block bytes as hex, expected float32s as hex (little-endian).

Usage: python3 scripts/gen-kquant-fixtures.py   (needs numpy and gguf; deterministic output)
"""
import json
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGML_QUANT_SIZES, quants

OUT = Path(__file__).resolve().parent.parent / "Tests" / "KernelsTests" / "Fixtures" / "kquants.json"

# (type, offsets of fp16 scales within a block, blocks)
TYPES = [
    (T.Q2_K, [80, 82], 6),   # scales[16], qs[64], d, dmin
    (T.Q3_K, [108], 6),      # hmask[32], qs[64], scales[12], d
    (T.Q4_K, [0, 2], 6),     # d, dmin, scales[12], qs[128]
    (T.Q5_K, [0, 2], 6),     # d, dmin, scales[12], qh[32], qs[128]
    (T.Q6_K, [208], 6),      # ql[128], qh[64], scales[16], d
    (T.IQ4_NL, [0], 24),     # d, qs[16]
    (T.IQ4_XS, [0], 6),      # d, scales_h, scales_l[4], qs[128]
]


def main() -> None:
    rng = np.random.default_rng(20240611)
    cases = []
    for qtype, scale_offsets, n_blocks in TYPES:
        block_size, type_size = GGML_QUANT_SIZES[qtype]
        raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
        for b in range(n_blocks):
            for k, off in enumerate(scale_offsets):
                # Positive and negative, tiny and large scales (fp16 rounding happens here).
                mag = float(rng.choice([1e-4, 3e-3, 0.02, 0.5, 7.0]))
                val = np.float16(mag * rng.uniform(0.5, 1.0) * (1 if rng.random() < 0.8 else -1))
                raw[b, off:off + 2] = np.frombuffer(val.tobytes(), dtype=np.uint8)
        if qtype in (T.Q4_K, T.Q5_K):
            # One block with all-ones scale bytes (every 6-bit scale and min at its maximum).
            raw[0, 4:16] = 0xFF
        data = raw.reshape(-1)
        expected = quants.dequantize(data, qtype).astype("<f4")
        assert expected.size == n_blocks * block_size
        cases.append({
            "type": qtype.name,
            "count": int(expected.size),
            "blocks": data.tobytes().hex(),
            "expected": expected.tobytes().hex(),
        })
    doc = {
        "generator": "scripts/gen-kquant-fixtures.py (gguf-py dequantize_blocks of random blocks)",
        "cases": cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(cases)} types)")


if __name__ == "__main__":
    main()
