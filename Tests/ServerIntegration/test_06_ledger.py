"""The ledger end to end: accounts and keys made with the CLI, every completion recorded encrypted
before its response, receipts verified offline, decryption by the sender only, nothing in clear on
disk, 200 concurrent requests in one tree, kill -9 losing nothing acknowledged, tampering found."""
import base64, hashlib, json, os, shutil, sqlite3, subprocess, threading, time, uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
from openai import OpenAI

import support
from support import API_KEY, EOS_BIAS, MODEL_ID, VerityServer, http, sse_events


def cli(*args, check=True):
    """Runs `verity ARGS`; returns the completed process (stdout, stderr as text)."""
    p = subprocess.run([str(support.verity_binary()), *map(str, args)], capture_output=True, text=True, timeout=120)
    if check:
        assert p.returncode == 0, f"verity {' '.join(map(str, args))} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p


def model_path():
    cache = os.environ.get("VERITY_CACHE_DIR")
    base = Path(cache) / "models" if cache else Path.home() / ".cache" / "verity" / "models"
    return base / (MODEL_ID + ".gguf")


# ---------------------------------------------------------------------------------------------
# RFC 6962 inclusion proofs, independently of the Swift code (RFC 9162 §2.1.3.2)

def _node(l, r):
    return hashlib.sha256(b"\x01" + l + r).digest()


def verify_inclusion(index, size, leaf_hash, proof, root):
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def checkpoint(note):
    """(origin, size, root) of a block's signed note."""
    lines = note.split("\n")
    return lines[0], int(lines[1]), base64.b64decode(lines[2])


# ---------------------------------------------------------------------------------------------
# Fixtures: a data directory with two accounts and their keys, and a server on it


class Ledger:
    def __init__(self, root):
        self.root = root
        self.data = root / "data"
        self.accounts = {}
        self.keys = {}
        for name in ("alice", "bob"):
            path = root / f"{name}.json"
            address = cli("account", "create", "--out", path).stdout.strip()
            assert (path.stat().st_mode & 0o777) == 0o600, f"{path} must be owner-only"
            self.accounts[name] = (path, address)
            out = json.loads(cli("keys", "create", "--data-dir", self.data, "--account-file", path, "--json").stdout)
            assert out["address"] == address
            self.keys[name] = out["key"]
        self.auditor = root / "auditor.json"
        cli("account", "create", "--out", self.auditor)
        self.server = VerityServer(["--data-dir", self.data, "--max-sequences", "8", "--max-queue", "256",
                                    "--seal-interval", "0.2", "--provider", "testcloud", "--price-per-hour", "1.25",
                                    "--auditor-key", self.auditor],
                                   root / "verity-serve.log")
        self.url = self.server.base_url

    def client(self, name):
        return OpenAI(base_url=self.url + "/v1", api_key=self.keys[name], max_retries=0, timeout=120)

    def get(self, path, key=None, **kw):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return http.get(self.url + path, headers=headers, timeout=120, **kw)

    def node_key(self):
        return self.get("/v1/ledger/node-key").json()["verifier_key"]

    def receipt(self, record_id):
        r = self.get(f"/v1/ledger/records/{record_id}/receipt", params={"wait": "true"})
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    env = Ledger(tmp_path_factory.mktemp("ledger"))
    yield env
    assert env.server.stop(timeout=20) == 0, env.server.log_tail()


# ---------------------------------------------------------------------------------------------
# End to end


def test_chat_completion_receipt_verifies_offline_and_decrypts_exactly(ledger, tmp_path):
    alice_file, alice = ledger.accounts["alice"]
    system, prompt = "You are terse.", f"Say hello to Ada. {uuid.uuid4()}"
    raw = ledger.client("alice").chat.completions.with_raw_response.create(
        model=MODEL_ID, messages=[{"role": "system", "content": system}, {"role": "user", "content": prompt}],
        max_tokens=8, temperature=0.7, top_p=0.9, seed=42, stop=["\n\n"])
    completion = raw.parse()
    verity = completion.model_extra["verity"]
    assert verity["record_id"] == completion.id == raw.headers["x-verity-record"]
    assert len(base64.b64decode(verity["leaf_hash"])) == 32

    receipt = ledger.receipt(completion.id)
    assert receipt["recordID"] == completion.id and receipt["leafHash"] == verity["leaf_hash"]
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt))
    node_key = ledger.node_key()
    assert cli("ledger", "node-key", "--data-dir", ledger.data).stdout.strip() == node_key
    out = cli("ledger", "verify-receipt", path, "--node-key", node_key).stdout
    assert out.startswith("ok: record " + completion.id), out
    # The receipt carries the record's envelope: its leaf, whose public header (VLE2: magic, record
    # id, time, node id, all length-prefixed big-endian) proves the time and node printed.
    envelope = base64.b64decode(receipt["envelope"])
    assert hashlib.sha256(b"\x00" + envelope).digest() == base64.b64decode(receipt["leafHash"])
    assert envelope[:4] == b"VLE2"
    n = int.from_bytes(envelope[4:8], "big")
    assert envelope[8:8 + n].decode() == completion.id
    ms = int.from_bytes(envelope[8 + n:16 + n], "big", signed=True)
    m = int.from_bytes(envelope[16 + n:20 + n], "big")
    node_id = envelope[20 + n:20 + n + m].decode()
    recorded = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"
    assert f"recorded at {recorded} by node {node_id}" in out, out
    assert node_id == node_key.split("+")[0]
    # The same proof, checked by this file's own RFC 6962 code.
    origin, size, root = checkpoint(receipt["block"])
    assert verify_inclusion(receipt["leafIndex"], size, base64.b64decode(receipt["leafHash"]),
                            [base64.b64decode(p) for p in receipt["inclusionProof"]], root)

    # A receipt with any part changed does not verify, nor one without its envelope (its record id
    # would be unproven); another record's id or envelope is refused too.
    other = ledger.client("alice").completions.create(model=MODEL_ID, prompt="Another record", max_tokens=2)
    other_receipt = ledger.receipt(other.id)
    flipped = bytearray(envelope)
    flipped[len(flipped) // 2] ^= 0x01
    for mutate in (lambda r: r.update(recordID=other.id),
                   lambda r: r.update(envelope=other_receipt["envelope"]),
                   lambda r: r.update(envelope=other_receipt["envelope"], leafHash=other_receipt["leafHash"]),
                   lambda r: r.update(envelope=base64.b64encode(bytes(flipped)).decode()),
                   lambda r: r.pop("envelope"),
                   lambda r: r.update(leafIndex=r["leafIndex"] ^ 1),
                   lambda r: r.update(leafHash=base64.b64encode(bytes(32)).decode()),
                   lambda r: r.update(block=r["block"].replace(f"\n{size}\n", f"\n{size + 1}\n")),
                   lambda r: r.update(block=r["block"][:-10] + ("A" if r["block"][-10] != "A" else "B") + r["block"][-9:])):
        bad = dict(receipt)
        mutate(bad)
        path.write_text(json.dumps(bad))
        p = cli("ledger", "verify-receipt", path, "--node-key", node_key, check=False)
        assert p.returncode != 0 and "Error" in p.stderr, (bad, p.stdout, p.stderr)
        verdict = http.post(ledger.url + "/v1/ledger/verify-receipt", json=bad, timeout=30)
        assert verdict.status_code == 200 and verdict.json()["valid"] is False and verdict.json()["reason"], verdict.text

    # The sender (from the server or the data directory) and the auditor read the same record.
    for account, source in ((alice_file, ["--url", ledger.url]), (alice_file, ["--data-dir", ledger.data]),
                            (ledger.auditor, ["--url", ledger.url])):
        record = json.loads(cli("ledger", "decrypt", completion.id, "--account", account, *source).stdout)
        assert record["prompt"] == prompt and record["system_prompt"] == system
        assert record["response"] == completion.choices[0].message.content
        params = record["parameters"]
        assert (params["temperature"], params["top_p"], params["max_tokens"], params["seed"]) == (0.7, 0.9, 8, "42")
        assert params["stop"] == '["\\n\\n"]'
        assert record["sender_address"] == alice and record["record_id"] == completion.id
        assert record["model"] == MODEL_ID
        assert (record["gpu_provider"], record["gpu_price_per_hour"], record["currency"]) == ("testcloud", 1.25, "USD")
        assert record["gpu"], "the GPU (or CPU model) must be recorded"
        assert record["prompt_tokens"] == completion.usage.prompt_tokens
        assert record["completion_tokens"] == completion.usage.completion_tokens
        assert record["finish_reason"] == completion.choices[0].finish_reason
        assert record["chat_template_hash"].startswith("sha256:")
    digest = hashlib.sha256(model_path().read_bytes()).hexdigest()
    assert record["model_digest"] == "sha256:" + digest


def test_streamed_completion_carries_its_record_in_the_last_chunk(ledger):
    key = ledger.keys["alice"]
    r = http.post(ledger.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, timeout=120,
                  json={"model": MODEL_ID, "messages": [{"role": "user", "content": "Count to three."}],
                        "max_tokens": 6, "stream": True, "stream_options": {"include_usage": True}})
    assert r.status_code == 200
    events = sse_events(r.content)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert "verity" in chunks[-1] and all("verity" not in c for c in chunks[:-1])
    record_id = chunks[-1]["verity"]["record_id"]
    assert record_id == chunks[0]["id"]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    record = json.loads(cli("ledger", "decrypt", record_id, "--account", ledger.accounts["alice"][0], "--url", ledger.url).stdout)
    assert record["response"] == text and record["parameters"]["stream"] == "true"


def test_structured_requests_record_their_schema_and_grammar(ledger):
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "flag", "schema": schema, "strict": True}}
    c = ledger.client("alice").chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Is it ok?"}],
                                                       response_format=fmt, max_tokens=20, temperature=0)
    assert json.loads(c.choices[0].message.content)["ok"] in (True, False)
    alice = ledger.accounts["alice"][0]
    record = json.loads(cli("ledger", "decrypt", c.id, "--account", alice, "--url", ledger.url).stdout)
    assert json.loads(record["parameters"]["response_format"]) == fmt and record["response"] == c.choices[0].message.content
    grammar = 'root ::= "yes" | "no"'
    t = ledger.client("alice").completions.create(model=MODEL_ID, prompt="Ok?", max_tokens=4, extra_body={"verity": {"grammar": grammar}})
    record = json.loads(cli("ledger", "decrypt", t.id, "--account", alice, "--url", ledger.url).stdout)
    assert record["parameters"]["grammar"] == grammar and record["response"] in ("yes", "no")


def test_responses_and_messages_are_recorded_and_stored_for_their_sender_only(ledger):
    import anthropic
    alice_file, alice = ledger.accounts["alice"]
    r = ledger.client("alice").responses.create(model=MODEL_ID, instructions="Be terse.", input="Say hi to Ada.", max_output_tokens=6)
    record = json.loads(cli("ledger", "decrypt", r.id, "--account", alice_file, "--url", ledger.url).stdout)
    assert record["parameters"]["api"] == "responses" and record["response"] == r.output_text
    assert record["system_prompt"] == "Be terse." and record["prompt"] == "Say hi to Ada." and record["sender_address"] == alice
    # Bob's key neither sees nor continues Alice's stored response.
    bob = ledger.client("bob")
    with pytest.raises(openai.NotFoundError):
        bob.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        bob.responses.create(model=MODEL_ID, previous_response_id=r.id, input="And?", max_output_tokens=2)
    assert ledger.client("alice").responses.retrieve(r.id).output_text == r.output_text
    # Anthropic's SDK sends the key as x-api-key: the record is Alice's all the same.
    claude = anthropic.Anthropic(base_url=ledger.url, api_key=ledger.keys["alice"], max_retries=0)
    m = claude.messages.create(model=MODEL_ID, max_tokens=6, system="Be terse.", messages=[{"role": "user", "content": "Say hi to Bo."}])
    record = json.loads(cli("ledger", "decrypt", m.id, "--account", alice_file, "--url", ledger.url).stdout)
    assert record["parameters"]["api"] == "messages" and record["response"] == m.content[0].text
    assert record["sender_address"] == alice and record["prompt"] == "Say hi to Bo."


def test_n_choices_are_one_record_holding_every_choice(ledger):
    alice_file, _ = ledger.accounts["alice"]
    c = ledger.client("alice").chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Name a fruit."}],
                                                       n=2, max_tokens=6, temperature=1, seed=3)
    record = json.loads(cli("ledger", "decrypt", c.id, "--account", alice_file, "--url", ledger.url).stdout)
    assert json.loads(record["response"]) == [ch.message.content for ch in c.choices]
    assert record["parameters"]["n"] == "2"
    assert json.loads(record["parameters"]["finish_reasons"]) == [ch.finish_reason for ch in c.choices]
    assert record["completion_tokens"] == c.usage.completion_tokens and record["prompt_tokens"] == c.usage.prompt_tokens


def test_a_stream_the_client_leaves_is_recorded_as_cancelled(ledger):
    key = ledger.keys["alice"]
    with http.stream("POST", ledger.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, timeout=120,
                     json={"model": MODEL_ID, "messages": [{"role": "user", "content": "Tell me a long story."}],
                           "max_tokens": 500, "logit_bias": EOS_BIAS, "stream": True}) as r:
        first = next(r.iter_lines())
    record_id = json.loads(first[len("data: "):])["id"]
    deadline = time.time() + 30
    while time.time() < deadline and ledger.get(f"/v1/ledger/records/{record_id}").status_code == 404:
        time.sleep(0.1)
    record = json.loads(cli("ledger", "decrypt", record_id, "--account", ledger.accounts["alice"][0], "--url", ledger.url).stdout)
    assert record["finish_reason"] == "cancelled" and record["completion_tokens"] < 500


def test_records_are_private_to_their_sender(ledger):
    alice_file, _ = ledger.accounts["alice"]
    bob_file, _ = ledger.accounts["bob"]
    marker = f"MARKER-{uuid.uuid4().hex}"
    mine = ledger.client("alice").completions.create(model=MODEL_ID, prompt=f"{marker} once upon a time", max_tokens=4)
    theirs = ledger.client("bob").completions.create(model=MODEL_ID, prompt="The sky is", max_tokens=2)
    anonymous = http.post(ledger.url + "/v1/completions", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120,
                          json={"model": MODEL_ID, "prompt": f"{marker} anonymous", "max_tokens": 2}).json()

    p = cli("ledger", "decrypt", mine.id, "--account", bob_file, "--url", ledger.url, check=False)
    assert p.returncode != 0 and "not encrypted to" in p.stderr, p.stderr
    assert json.loads(cli("ledger", "decrypt", mine.id, "--account", alice_file, "--url", ledger.url).stdout)["prompt"].startswith(marker)
    # Anonymous requests are sealed to the operator account in the data directory.
    operator = ledger.data / "operator.json"
    assert (operator.stat().st_mode & 0o777) == 0o600
    record = json.loads(cli("ledger", "decrypt", anonymous["id"], "--account", operator, "--url", ledger.url).stdout)
    assert record["sender_address"] == "anonymous" and record["prompt"] == f"{marker} anonymous"
    assert cli("ledger", "decrypt", anonymous["id"], "--account", alice_file, "--url", ledger.url, check=False).returncode != 0

    def listed(key):
        r = ledger.get("/v1/ledger/records", key=key)
        assert r.status_code == 200, r.text
        return {d["record_id"] for d in r.json()["data"]}
    alice_ids, bob_ids = listed(ledger.keys["alice"]), listed(ledger.keys["bob"])
    assert mine.id in alice_ids and mine.id not in bob_ids
    assert theirs.id in bob_ids and theirs.id not in alice_ids
    assert anonymous["id"] not in alice_ids | bob_ids

    # The public envelope names no recipient: it gives the recipient count, and neither Alice's
    # key id (SHA-256 of her X25519 key, first 8 bytes; what version-1 envelopes listed) nor her
    # key is in its bytes. The auditor makes two recipients.
    public = ledger.get(f"/v1/ledger/records/{mine.id}").json()
    assert public["recipients"] == 2 and public["version"] == 2, public
    shown = json.loads(cli("account", "show", alice_file, "--json").stdout)
    alice_key = base64.b64decode(shown["encryption_key"])
    envelope = base64.b64decode(public["envelope"])
    assert hashlib.sha256(alice_key).digest()[:8] not in envelope and alice_key not in envelope
    for key in (None, API_KEY, "vk_wrong"):
        r = ledger.get("/v1/ledger/records", key=key)
        assert r.status_code == 401, (key, r.text)
        support.assert_openai_error(r, 401)

    ledger.receipt(mine.id)  # sealed into a block, so the marker has been through every write path
    files = [f for f in ledger.data.rglob("*") if f.is_file()]
    assert {"ledger.sqlite", "ledger.sqlite-wal", "accounts.sqlite"} <= {f.name for f in files}
    for f in files:
        assert marker.encode() not in f.read_bytes(), f"{f.name} holds the prompt in clear"


def test_public_ledger_reads_and_errors(ledger):
    head = ledger.get("/v1/ledger/head").json()
    assert head["tree_size"] >= 1 and head["origin"] == ledger.node_key().split("+")[0]
    block = ledger.get("/v1/ledger/blocks/0").json()
    assert block["height"] == 0 and base64.b64decode(block["previous_hash"]) == bytes(32)
    r = ledger.get("/v1/ledger/blocks/999999")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = ledger.get("/v1/ledger/records/chatcmpl-nope")
    assert r.status_code == 404 and "chatcmpl-nope" in r.json()["error"]["message"]
    assert ledger.get("/v1/ledger/records/chatcmpl-nope/receipt").status_code == 404
    assert ledger.get("/v1/ledger/consistency", params={"from": 2, "to": 1}).status_code == 400
    assert ledger.get("/v1/ledger/consistency", params={"from": 0, "to": 10**9}).status_code == 400
    assert ledger.get("/v1/ledger/consistency", params={"from": "x", "to": 1}).status_code == 400
    size = head["tree_size"]
    proof = ledger.get("/v1/ledger/consistency", params={"from": 1, "to": size}).json()
    assert proof["from"] == 1 and proof["to"] == size and isinstance(proof["proof"], list)
    envelope = ledger.get("/v1/ledger/entries", params={"start": 0, "limit": 1}).json()["entries"][0]
    assert hashlib.sha256(b"\x00" + base64.b64decode(envelope["envelope"])).digest() == base64.b64decode(envelope["leaf_hash"])


def test_200_concurrent_requests_are_200_leaves_of_one_tree(ledger):
    client = ledger.client("bob")
    barrier = threading.Barrier(200)

    def ask(i):
        barrier.wait()
        r = client.completions.create(model=MODEL_ID, prompt=f"Request {i}:", max_tokens=2, temperature=0)
        return r.id, r.model_extra["verity"]

    with ThreadPoolExecutor(200) as pool:
        results = list(pool.map(ask, range(200)))
    ids = {rid for rid, _ in results}
    leaves = {v["leaf_index"] for _, v in results}
    hashes = {v["leaf_hash"] for _, v in results}
    assert len(ids) == len(leaves) == len(hashes) == 200
    # Every receipt proves inclusion in the tree of the one block that covers them all.
    last = max(results, key=lambda r: r[1]["leaf_index"])[0]
    ledger.receipt(last)
    head = ledger.get("/v1/ledger/head").json()
    _, size, root = checkpoint(head["block"]["note"])
    for rid, v in results:
        receipt = ledger.get(f"/v1/ledger/records/{rid}/receipt").json()
        _, rsize, rroot = checkpoint(receipt["block"])
        assert receipt["leafIndex"] == v["leaf_index"]
        assert verify_inclusion(receipt["leafIndex"], rsize, base64.b64decode(receipt["leafHash"]),
                                [base64.b64decode(p) for p in receipt["inclusionProof"]], rroot), rid
        assert rsize <= size
    out = cli("ledger", "verify", "--url", ledger.url, "--node-key", ledger.node_key()).stdout
    assert out.startswith("ok: "), out


# ---------------------------------------------------------------------------------------------
# Crash and tampering


def _stream(url, max_tokens, done):
    """One streamed completion; returns its record id if the response completed ([DONE] and the
    verity object), else None."""
    try:
        with http.stream("POST", url + "/v1/completions", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120,
                         json={"model": MODEL_ID, "prompt": "Once upon a time", "max_tokens": max_tokens,
                               "logit_bias": EOS_BIAS, "stream": True}) as r:
            body = b"".join(r.iter_bytes())
    except http.TransportError:
        return None
    finally:
        done.release()
    events = sse_events(body)
    if not events or events[-1] != "[DONE]":
        return None
    return json.loads(events[-2])["verity"]["record_id"]


def test_kill_9_loses_no_acknowledged_record_and_tampering_is_named(tmp_path):
    data = tmp_path / "data"
    server = VerityServer(["--data-dir", data, "--max-sequences", "16"], tmp_path / "serve-1.log")
    done = threading.Semaphore(0)
    # Half finish fast, half are still generating when the server is killed.
    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(_stream, server.base_url, 3 if i % 2 else 600, done) for i in range(16)]
        for _ in range(8):
            assert done.acquire(timeout=120)
        server.proc.kill()
        server.proc.wait()
        completed = [f.result() for f in futures]
    server.log_file.close()
    acknowledged = [rid for rid in completed if rid]
    assert 8 <= len(acknowledged) < 16, f"expected the short streams complete and the long ones cut off: {completed}"

    restarted = VerityServer(["--data-dir", data], tmp_path / "serve-2.log")
    try:
        for rid in acknowledged:
            r = http.get(f"{restarted.base_url}/v1/ledger/records/{rid}/receipt", params={"wait": "true"}, timeout=60)
            assert r.status_code == 200, f"acknowledged record {rid} lost after kill -9: {r.text}"
        out = cli("ledger", "verify", "--data-dir", data).stdout
        assert out.startswith("ok: "), out
    finally:
        assert restarted.stop(timeout=20) == 0, restarted.log_tail()
    assert cli("ledger", "verify", "--data-dir", data).stdout.startswith("ok: ")

    # Tampering with a copy of the database, as someone with the file could.
    def tampered(*statements):
        copy = tmp_path / f"tamper-{uuid.uuid4().hex[:8]}"
        shutil.copytree(data, copy, ignore=shutil.ignore_patterns("serve.lock"))
        db = sqlite3.connect(copy / "ledger.sqlite")
        for trigger in ("leaves_no_update", "leaves_no_delete", "blocks_no_update", "blocks_no_delete"):
            db.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        for sql, *args in statements:
            db.execute(sql, args)
        db.commit()
        db.close()
        p = cli("ledger", "verify", "--data-dir", copy, check=False)
        assert p.returncode == 1, (statements, p.stdout, p.stderr)
        assert p.stdout.startswith("FAILED: "), p.stdout
        return p.stdout

    db = sqlite3.connect(data / "ledger.sqlite")
    rows = db.execute("SELECT idx, record_id, envelope FROM leaves ORDER BY idx").fetchall()
    db.close()
    idx, rid, envelope = rows[1]
    flipped = bytearray(envelope)
    flipped[len(flipped) // 2] ^= 0x01
    out = tampered(("UPDATE leaves SET envelope = ? WHERE idx = ?", bytes(flipped), idx))
    assert f"record {rid} (leaf {idx})" in out, out
    out = tampered(("DELETE FROM leaves WHERE idx = ?", 2))
    assert "(leaf 2)" in out and "deleted or reordered" in out, out
    # Swap two rows' positions: each still carries its own hash, so the signed root names them.
    out = tampered(("UPDATE leaves SET idx = -1 WHERE idx = 0",), ("UPDATE leaves SET idx = 0 WHERE idx = 3",),
                   ("UPDATE leaves SET idx = 3 WHERE idx = -1",))
    assert "a record in leaves 0..<" in out, out
    out = tampered(("UPDATE blocks SET note = replace(note, 'block 0', 'block 7') WHERE height = 0",))
    assert "block 0" in out, out
