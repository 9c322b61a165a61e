#!/usr/bin/env python3
"""Writes quantize_ref.json: weight rows and the bytes llama.cpp's quantizers make of them.

The reference is the real llama.cpp: libggml-base from the PyPI package llama-cpp-python (0.3.36 when
this was generated), called through ctypes exactly as llama-quantize calls it without an importance
matrix: ggml_quantize_chunk(type, src, dst, 0, nrows, n_per_row, imatrix=NULL).

The inputs are deterministic (Python's random.Random with fixed seeds) and chosen for the branches of
ggml's scale searches: gaussian rows at several magnitudes, rows rounded to bf16 / f16 as checkpoints
store them, all-zero rows, a row with huge outliers, tiny magnitudes (~1e-8, and groups below
GROUP_MAX_EPS = 1e-15), negative-only and positive-only rows, constant rows, values on a grid (exact
rounding ties), sparse and heavy-tailed rows, and subnormal (~1e-39) and huge (~1e25) rows, where
reciprocal scales and squared weights overflow and ggml's NaN / infinity paths decide the bytes.

Format (JSON): {"generator", "llama_cpp_python", "ggml_version", "ggml_commit", "cases": [{"name",
"rows", "columns", "input": base64 of rows*columns little-endian f32, "expected": {TYPE: base64 of
the quantized bytes}}]}. Run: python3 make_quantize_fixtures.py (writes next to itself).
"""
import base64
import ctypes
import json
import math
import os
import random
import struct

import llama_cpp

TYPES = {  # ggml type ids
    "F16": 1, "BF16": 30, "Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8,
    "Q2_K": 10, "Q3_K": 11, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14, "IQ4_NL": 20, "IQ4_XS": 23,
}


def f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


def bf16(v):
    (u,) = struct.unpack("<I", struct.pack("<f", v))
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return struct.unpack("<f", struct.pack("<I", u & 0xFFFFFFFF))[0]


def f16(v):
    return struct.unpack("<e", struct.pack("<e", v))[0]


def rows_512():
    """(name, values) rows of 512."""
    n = 512
    r = random.Random(20240601)
    g = lambda s=1.0: r.gauss(0.0, s)
    rows = [
        ("gaussian", [g() for _ in range(n)]),
        ("gaussian bf16 0.02", [bf16(g(0.02)) for _ in range(n)]),
        ("gaussian f16 0.02", [f16(g(0.02)) for _ in range(n)]),
        ("uniform", [r.uniform(-1, 1) for _ in range(n)]),
        ("zeros", [0.0] * n),
    ]
    outlier = [g(0.05) for _ in range(n)]
    outlier[77] = 1000.0
    outlier[300] = -3.0e4
    rows.append(("outliers", outlier))
    rows.append(("tiny 1e-8", [g(1e-8) for _ in range(n)]))
    rows.append(("negative only", [-abs(g(0.1)) for _ in range(n)]))
    rows.append(("positive only", [abs(g(0.1)) for _ in range(n)]))
    rows.append(("constant 0.5", [0.5] * n))
    rows.append(("constant -0.125", [-0.125] * n))
    # Per 16 elements: zero, gaussian, below GROUP_MAX_EPS, constant, gaussian (cycling).
    mixed = []
    for i in range(n):
        k = (i // 16) % 5
        mixed.append([0.0, g(0.3), g(1e-20), 0.75, g(0.01)][k])
    rows.append(("mixed groups", mixed))
    rows.append(("grid quarters", [float(max(-8, min(8, round(g(3))))) / 4 for _ in range(n)]))
    rows.append(("heavy tails", [g(0.05) / (abs(g()) + 0.05) for _ in range(n)]))
    rows.append(("sparse", [0.0 if r.random() < 0.7 else g(1e-3) for _ in range(n)]))
    rows.append(("large", [g(100.0) for _ in range(n)]))
    rows.append(("one per block", [g(0.5) if i % 32 == 5 else 0.0 for i in range(n)]))
    alt = abs(g(0.2)) + 0.01
    rows.append(("alternating", [alt if i % 2 else -alt for i in range(n)]))
    # Scales whose reciprocal overflows, and squares that overflow: the NaN / infinity paths.
    rows.append(("subnormal 1e-39", [g(1e-39) for _ in range(n)]))
    rows.append(("huge 1e25", [g(1e25) for _ in range(n)]))
    return rows


def rows_256():
    n = 256
    r = random.Random(7)
    g = lambda s=1.0: r.gauss(0.0, s)
    rows = [
        ("gaussian", [g(0.7) for _ in range(n)]),
        ("zeros", [0.0] * n),
        ("constant 1", [1.0] * n),
        ("negative only", [-abs(g(2.0)) for _ in range(n)]),
        ("tiny 1e-6", [g(1e-6) for _ in range(n)]),
    ]
    outlier = [bf16(g(0.01)) for _ in range(n)]
    outlier[200] = 64.0
    rows.append(("outlier bf16", outlier))
    return rows


def main():
    lib_dir = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")
    ggml = ctypes.CDLL(os.path.join(lib_dir, "libggml-base.so"))
    ggml.ggml_quantize_chunk.restype = ctypes.c_size_t
    ggml.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_float), ctypes.c_void_p,
                                         ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.POINTER(ctypes.c_float)]
    ggml.ggml_row_size.restype = ctypes.c_size_t
    ggml.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
    ggml.ggml_quantize_init.argtypes = [ctypes.c_int]
    ggml.ggml_version.restype = ctypes.c_char_p
    ggml.ggml_commit.restype = ctypes.c_char_p

    cases = []
    for name, columns, rows in (("512 columns", 512, rows_512()), ("256 columns", 256, rows_256())):
        values = [f32(v) for _, row in rows for v in row]
        assert all(math.isfinite(v) for v in values) and all(len(row) == columns for _, row in rows)
        src = (ctypes.c_float * len(values))(*values)
        expected = {}
        for tname, tid in TYPES.items():
            ggml.ggml_quantize_init(tid)
            size = ggml.ggml_row_size(tid, columns) * len(rows)
            dst = ctypes.create_string_buffer(size)
            written = ggml.ggml_quantize_chunk(tid, src, dst, 0, len(rows), columns, None)
            assert written == size, (tname, written, size)
            expected[tname] = base64.b64encode(dst.raw).decode()
        cases.append({
            "name": name,
            "row_names": [n for n, _ in rows],
            "rows": len(rows),
            "columns": columns,
            "input": base64.b64encode(struct.pack("<%df" % len(values), *values)).decode(),
            "expected": expected,
        })

    out = {
        "generator": "Tests/KernelsTests/Fixtures/make_quantize_fixtures.py (ggml_quantize_chunk, imatrix NULL)",
        "llama_cpp_python": llama_cpp.__version__,
        "ggml_version": ggml.ggml_version().decode(),
        "ggml_commit": ggml.ggml_commit().decode(),
        "cases": cases,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "quantize_ref.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
