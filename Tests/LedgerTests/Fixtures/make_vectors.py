#!/usr/bin/env python3
"""Generates the known-answer vectors pinned in LedgerTests (RecordEncodingTests,
AccountAddressTests) and NodeTests (WorkerIDTests), from the format descriptions alone,
independently of the Swift code.

Reference tool: CPython 3.11 standard library (struct, hashlib), plus the PyPI package
`cryptography` (48.0.0) for the Ed25519 public key. Run: python3 make_vectors.py
"""
import hashlib, struct

def s(v: str) -> bytes:
    b = v.encode()
    return struct.pack(">I", len(b)) + b

def opt(v, enc) -> bytes:
    return b"\x00" if v is None else b"\x01" + enc(v)

i64 = lambda v: struct.pack(">q", v)
u64 = lambda v: struct.pack(">Q", v)
f64 = lambda v: struct.pack(">d", v)

def record(r) -> bytes:
    fleet = [r.get(k) for k in ("worker", "advert", "usage", "signature", "cost")]
    v2 = any(f is not None for f in fleet)
    out = (b"VLR2" if v2 else b"VLR1") + s(r["recordID"]) + i64(r["ts"]) + s(r["gpu"]) + s(r["provider"]) + i64(r["price"])
    out += s(r["currency"]) + s(r["modelID"]) + s(r["digest"]) + opt(r["template"], s)
    out += opt(r["temperature"], f64) + opt(r["topP"], f64) + opt(r["topK"], i64)
    out += opt(r["maxTokens"], i64) + opt(r["seed"], u64)
    extra = sorted(r["extra"].items(), key=lambda kv: kv[0].encode())
    out += struct.pack(">I", len(extra)) + b"".join(s(k) + s(v) for k, v in extra)
    out += opt(r["system"], s) + s(r["prompt"]) + s(r["response"]) + s(r["sender"])
    out += opt(r["promptTokens"], u64) + opt(r["completionTokens"], u64) + s(r["finish"])
    if v2:
        blob = lambda b: struct.pack(">I", len(b)) + b
        out += opt(fleet[0], s) + opt(fleet[1], lambda h: h) + opt(fleet[2], blob) + opt(fleet[3], blob) + opt(fleet[4], i64)
    return out

full = dict(recordID="req-0001", ts=1767225600123, gpu="NVIDIA H200", provider="lambda", price=3_490_000,
            currency="USD", modelID="llama-3.2-1b-instruct", digest="sha256:" + "ab" * 32,
            template="sha256:" + "cd" * 32, temperature=0.7, topP=0.95, topK=40, maxTokens=256, seed=42,
            extra={"stop": "\n\n", "min_p": "0.05"}, system="You are terse.", prompt="Héllo, wörld?",
            response="Hi.", sender="SENDER", promptTokens=12, completionTokens=3, finish="stop")
minimal = dict(recordID="r", ts=0, gpu="cpu", provider="none", price=0, currency="USD", modelID="m",
               digest="sha256:00", template=None, temperature=None, topP=None, topK=None, maxTokens=None,
               seed=None, extra={}, system=None, prompt="", response="", sender="S", promptTokens=None,
               completionTokens=None, finish="cancelled")

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
def b58(b: bytes) -> str:
    n = int.from_bytes(b, "big"); out = ""
    while n: n, r = divmod(n, 58); out = B58[r] + out
    return "1" * (len(b) - len(b.lstrip(b"\0"))) + out
def b58check(p: bytes) -> str:
    return b58(p + hashlib.sha256(hashlib.sha256(p).digest()).digest()[:4])

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
# RFC 8032 §7.1 TEST 1 secret key.
sk = Ed25519PrivateKey.from_private_bytes(bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
pk = sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
print("rfc8032-test1 public", pk.hex(), "address", b58check(b"\x56" + pk))
print("zero key address", b58check(b"\x56" + bytes(32)), "ff key address", b58check(b"\x56" + b"\xff" * 32))
# Worker ids (Sources/Node/WorkerID.swift): version byte 0x6A.
worker = b58check(b"\x6a" + pk)
print("rfc8032-test1 worker id", worker)

# Record encoding version 2 (LedgerRecord+Encoding.swift): the full record plus every fleet field
# (a usage statement signed by the RFC 8032 TEST 1 key; Ed25519 signatures are deterministic),
# and the minimal record with only a cost.
usage = b'{"request_id":"req-0001","type":"verity.usage.v1"}'
fleet = dict(full, worker=worker, advert=hashlib.sha256(b"advert").digest(), usage=usage,
             signature=sk.sign(usage), cost=2_424)
cost_only = dict(minimal, cost=-1)
for name, r in [("full", full), ("minimal", minimal), ("fleet", fleet), ("cost-only", cost_only)]:
    b = record(r)
    print(name, len(b), b.hex(), hashlib.sha256(b).hexdigest())
print("fleet signature", sk.sign(usage).hex())

# Envelope version 2 (RecordEnvelope+Encoding.swift): the key commitment of a data key, and the
# padded plaintext's bucket for a record of n canonical bytes.
def key_commitment(data_key: bytes) -> bytes:
    return hashlib.sha256(b"verity ledger v2 key commitment" + b"\x00" + data_key).digest()
print("key commitment, zero key", key_commitment(bytes(32)).hex())
print("key commitment, key 00..1f", key_commitment(bytes(range(32))).hex())
def bucket(n: int) -> int:
    b = 1024
    while b < 4 + n: b *= 2
    return b
print("buckets", [(n, bucket(n)) for n in (0, 1020, 1021, 2044, 2045)])
