"""Witnessed ledger blocks (issue #18): three `verity witness` processes (C2SP tlog-witness) and a
node that publishes a block only once 2 of them cosigned it. Cosignatures are checked here from
the spec (tlog-cosignature: Ed25519 over "cosignature/v1\\ntime T\\n" + the checkpoint, key id with
type 0x04); receipts verify with a 2-of-3 policy and fail a 3-of-3 one while a witness is down; a
fork of the node's data directory is refused by the witnesses and never published; the witness's
endpoint answers malformed requests with 4xx under a bounded fuzz."""
import base64, hashlib, json, random, shutil, sqlite3, subprocess, time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from support import API_KEY, MODEL_ID, VerityServer, cli, free_port, http, stop_process, verity_binary

POLICY = 2


class WitnessProcess:
    def __init__(self, root, name, log_key, port=None):
        self.root, self.name, self.log_key = root, name, log_key
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.start()
        self.key = cli("witness", "key", "--data-dir", root).stdout.strip()

    def start(self):
        self.log_file = open(self.root.parent / f"{self.root.name}.log", "ab")
        self.proc = subprocess.Popen([str(verity_binary()), "witness", "serve", "--data-dir", str(self.root), "--name", self.name,
                                      "--log", self.log_key, "--host", "127.0.0.1", "--port", str(self.port)],
                                     stdout=self.log_file, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            assert self.proc.poll() is None, (self.root.parent / f"{self.root.name}.log").read_text()
            try:
                if http.get(self.url + "/", timeout=2).status_code == 200:
                    return
            except http.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("witness did not start")

    def stop(self):
        stop_process(self.proc, self.log_file)


def cosigners(note, witnesses):
    """Names of the witnesses whose cosignature on `note` verifies, checked from the spec."""
    body, _, sigs = note.rpartition("\n\n")
    body += "\n"
    valid = []
    for w in witnesses:
        name, key_id, key_b64 = w.key.split("+", 2)
        raw = base64.b64decode(key_b64)
        assert raw[0] == 0x04 and len(raw) == 33
        assert hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4].hex() == key_id
        for line in sigs.strip("\n").split("\n"):
            if not line.startswith(f"\u2014 {name} "):
                continue
            blob = base64.b64decode(line.split(" ")[2])
            assert blob[:4].hex() == key_id and len(blob) == 4 + 8 + 64
            t = int.from_bytes(blob[4:12], "big")
            assert abs(t - time.time()) < 600
            Ed25519PublicKey.from_public_bytes(raw[1:]).verify(blob[12:], b"cosignature/v1\ntime %d\n" % t + body.encode())
            valid.append(name)
    return valid


def chat(server, text):
    r = http.post(server.base_url + "/v1/chat/completions", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120,
                  json={"model": MODEL_ID, "messages": [{"role": "user", "content": text}], "max_tokens": 2, "temperature": 0})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def receipt(server, rid, tmp_path):
    r = http.get(f"{server.base_url}/v1/ledger/records/{rid}/receipt", params={"wait": "true"}, timeout=60)
    assert r.status_code == 200, r.text
    path = tmp_path / f"{rid}.json"
    path.write_text(r.text)
    return r.json(), path


def node_args(data, witnesses, threshold=POLICY):
    args = ["--data-dir", data, "--seal-interval", "0.2"]
    for w in witnesses:
        args += ["--witness", f"{w.url},{w.key}"]
    return args + ["--witness-threshold", str(threshold)]


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    root = tmp_path_factory.mktemp("witness")
    data = root / "node"
    first = VerityServer(["--data-dir", data], root / "first.log")
    node_key = http.get(first.base_url + "/v1/ledger/node-key", timeout=10).json()["verifier_key"]
    assert first.stop() == 0
    witnesses = [WitnessProcess(root / f"w{i}", f"witness.test/w{i}", node_key) for i in (1, 2, 3)]
    node = VerityServer(node_args(data, witnesses), root / "node.log")
    state = {"root": root, "data": data, "node": node, "node_key": node_key, "witnesses": witnesses}
    yield state
    state["node"].stop()
    for w in witnesses:
        w.stop()


def verify_receipt(net, path, threshold, witnesses=None):
    args = ["ledger", "verify-receipt", path, "--node-key", net["node_key"]]
    for w in witnesses or net["witnesses"]:
        args += ["--witness", w.key]
    return cli(*args, "--witness-threshold", threshold, check=False)


def wait_for(predicate, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_receipts_carry_cosignatures_and_verify_under_a_policy(net, tmp_path):
    node, witnesses = net["node"], net["witnesses"]
    rid = chat(node, "Witness me.")
    body, path = receipt(node, rid, tmp_path)
    assert len(cosigners(body["block"], witnesses)) >= POLICY, body["block"]
    p = verify_receipt(net, path, 2)
    assert p.returncode == 0 and "cosigned by" in p.stdout, p.stdout + p.stderr
    # The block, as /v1/ledger/blocks/{height} serves it, carries them as well.
    height = int(body["block"].split("\n")[3].split(" ")[1])
    served = http.get(f"{node.base_url}/v1/ledger/blocks/{height}", timeout=10).json()["note"]
    assert len(cosigners(served, witnesses)) >= POLICY, served
    # An auditor over HTTP enforces the policy on the checkpoint too.
    keys = [a for w in witnesses for a in ("--witness", w.key)]
    p = cli("ledger", "verify", "--url", node.base_url, *keys, "--witness-threshold", 2, check=False)
    assert p.returncode == 0 and p.stdout.startswith("ok: "), p.stdout + p.stderr
    # The checkpoint served carries them too; soon all three have cosigned.
    assert wait_for(lambda: len(cosigners(http.get(node.base_url + "/v1/ledger/log/checkpoint", timeout=10).text, witnesses)) == 3)
    rid = chat(node, "Witness me again.")
    assert wait_for(lambda: len(cosigners(http.get(node.base_url + "/v1/ledger/log/checkpoint", timeout=10).text, witnesses)) == 3
                    and http.get(node.base_url + "/v1/ledger/head", timeout=10).json()["sealed_size"]
                    == http.get(node.base_url + "/v1/ledger/head", timeout=10).json()["tree_size"])
    time.sleep(0.5)
    _, path = receipt(node, rid, tmp_path)
    # The receipt's block was published at 2 of 3; fetch it again once all three cosigned it.
    p = verify_receipt(net, path, 2)
    assert p.returncode == 0, p.stdout + p.stderr
    # A policy naming a witness the node does not use is not met by these cosignatures.
    stranger = WitnessProcess(net["root"] / "stranger", "witness.test/stranger", net["node_key"])
    try:
        p = verify_receipt(net, path, 2, witnesses=[witnesses[0], stranger])
        assert p.returncode == 1 and "meets no witness policy" in p.stdout, p.stdout
        p = cli("ledger", "verify", "--url", node.base_url, "--witness", witnesses[0].key, "--witness", stranger.key, check=False)
        assert p.returncode == 1 and "meets no witness policy" in p.stdout, p.stdout
    finally:
        stranger.stop()


def test_the_web_chats_check_enforces_the_policy_the_server_publishes(net, tmp_path):
    from test_07_webchat import chrome
    node = net["node"]
    rid = chat(node, "Check me in a browser.")
    body, _ = receipt(node, rid, tmp_path)
    info = http.get(node.base_url + "/v1/ledger/node-key", timeout=10).json()
    assert sorted(info["witnesses"]) == sorted(w.key for w in net["witnesses"]) and info["witness_threshold"] == POLICY
    text, _, sigs = body["block"].rpartition("\n\n")
    node_line = [l for l in sigs.split("\n") if l and not l.startswith("\u2014 witness.test/")]
    one_witness = [l for l in sigs.split("\n") if l.startswith("\u2014 witness.test/w1 ")]
    driver = chrome()
    try:
        driver.get(node.base_url + "/")
        for what, block, expected in (("as served", body["block"], True),
                                      ("one cosignature left", text + "\n\n" + "\n".join(node_line + one_witness) + "\n", False),
                                      ("none left", text + "\n\n" + "\n".join(node_line) + "\n", False)):
            result = driver.execute_async_script("""
                const [receipt, answerID, done] = arguments;
                import('/assets/receipt.js').then(async m => {
                    const api = { get: async path => path.includes('/receipt') ? receipt : (await fetch(path)).json(),
                                  post: async () => { throw new Error('this browser has Ed25519: no server fallback expected'); } };
                    const r = await m.verifyReceipt(api, answerID, undefined);
                    done({ ok: r.ok, checks: r.checks.map(c => `${c.ok ? 'ok' : 'FAILED'} ${c.name}: ${c.detail}`) });
                }).catch(e => done({ error: String(e) }));
            """, dict(body, block=block), rid)
            assert "error" not in result and result["ok"] is expected, (what, result)
            witnesses = [c for c in result["checks"] if " Witnesses: " in c]
            assert len(witnesses) == 1, result
            assert ("cosigned by" in witnesses[0]) if expected else ("meets no witness policy" in witnesses[0]), (what, witnesses)
    finally:
        driver.quit()


def test_a_witness_that_is_down_delays_nothing_and_fails_a_3_of_3_policy(net, tmp_path):
    node, witnesses = net["node"], net["witnesses"]
    witnesses[2].stop()
    try:
        rid = chat(node, "One witness is down.")
        body, path = receipt(node, rid, tmp_path)
        names = cosigners(body["block"], witnesses)
        assert sorted(names) == ["witness.test/w1", "witness.test/w2"], body["block"]
        assert verify_receipt(net, path, 2).returncode == 0
        p = verify_receipt(net, path, 3)
        assert p.returncode == 1 and p.stdout.startswith("FAILED:") and "meets no witness policy" in p.stdout, p.stdout
        # With two down, blocks are sealed but not published: receipts wait, nothing is lost.
        witnesses[1].stop()
        rid2 = chat(node, "Two witnesses are down.")
        r = http.get(f"{node.base_url}/v1/ledger/records/{rid2}/receipt", timeout=10)
        assert r.status_code == 409 and r.json()["error"]["code"] == "not_yet_sealed", r.text
        head = http.get(node.base_url + "/v1/ledger/head", timeout=10).json()
        assert head["sealed_size"] < head["tree_size"]
        witnesses[1].start()
    finally:
        if witnesses[2].proc.poll() is not None:
            witnesses[2].start()
    # Back: the waiting record is published, cosigned by all three (w3 catches up from its old size).
    body, _ = receipt(node, rid2, tmp_path)
    assert len(cosigners(body["block"], witnesses)) >= POLICY
    chat(node, "All back.")
    assert wait_for(lambda: len(cosigners(http.get(node.base_url + "/v1/ledger/log/checkpoint", timeout=10).text, witnesses)) == 3, 30)
    metrics = http.get(node.base_url + "/metrics", timeout=10).text
    assert "verity_ledger_publish_delay_seconds " in metrics and "verity_ledger_unpublished_records " in metrics


def test_the_witness_endpoint_answers_as_the_spec_says(net):
    node, w = net["node"], net["witnesses"][0]
    note = http.get(node.base_url + "/v1/ledger/log/checkpoint", timeout=10).text
    size = int(note.split("\n")[1])
    post = lambda body: http.post(w.url + "/add-checkpoint", content=body, timeout=10)
    # A stale old size: 409 with the size the witness knows.
    r = post(f"old 0\n\n{note}".encode())
    assert r.status_code == 409 and r.headers["content-type"] == "text/x.tlog.size" and int(r.text) >= 1, r.text
    known = int(r.text)
    # Old size above the checkpoint's: 400; another log: 404; a forged signature: 403.
    assert post(f"old {size + 1}\n\n{note}".encode()).status_code == 400
    text, _, sigs = note.rpartition("\n\n")
    assert post(f"old 0\n\nother.example/log\n1\n{base64.b64encode(bytes(32)).decode()}\n\n{sigs}".encode()).status_code == 404
    origin_line = note.split("\n")[0]
    forged = note.replace(note.split("\n")[2], base64.b64encode(hashlib.sha256(b"forged").digest()).decode(), 1)
    assert post(f"old {known}\n\n{forged}".encode()).status_code == 403
    # Bounded fuzz of a well-formed body: never a 5xx, and the witness still cosigns the node's next block.
    good = f"old {known}\n\n{note}"
    rng = random.Random(18)
    for _ in range(300):
        s = list(good)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(s))
            op = rng.randrange(3)
            if op == 0:
                del s[at]
            elif op == 1:
                s.insert(at, rng.choice("old 0123456789\n=+/abcXYZ\u2014 "))
            else:
                s[at] = rng.choice("0123456789\nA")
        r = post("".join(s).encode("utf-8", "surrogatepass"))
        assert r.status_code < 500, (r.status_code, r.text)
    assert post(b"\xff\xfe" * 100).status_code == 400
    assert post(b"x" * (70 << 10)).status_code in (400, 413)
    chat(node, "After the fuzz.")
    assert wait_for(lambda: "witness.test/w1" in cosigners(http.get(node.base_url + "/v1/ledger/log/checkpoint", timeout=10).text,
                                                          net["witnesses"]) and int(http.get(node.base_url + "/v1/ledger/log/checkpoint", timeout=10).text.split("\n")[1]) > size, 30)
    assert origin_line


def test_a_fork_of_the_data_directory_is_refused_and_never_published(net, tmp_path):
    root, data, witnesses = net["root"], net["data"], net["witnesses"]
    assert net["node"].stop() == 0
    fork = root / "fork"
    shutil.copytree(data, fork, ignore=shutil.ignore_patterns("serve.lock"))
    before = sqlite3.connect(fork / "ledger.sqlite").execute("SELECT MAX(height) FROM blocks").fetchone()[0]
    # The original goes on; the witnesses cosign it.
    net["node"] = node = VerityServer(node_args(data, witnesses), root / "node-2.log")
    rid = chat(node, "The honest log goes on.")
    receipt(node, rid, tmp_path)
    # The fork, signed with the same node key, goes another way.
    forked = VerityServer(node_args(fork, witnesses), root / "fork.log")
    try:
        head = http.get(forked.base_url + "/v1/ledger/head", timeout=10).json()
        rids = [chat(forked, f"The fork says otherwise {i}.") for i in range(2)]
        time.sleep(3)
        r = http.get(f"{forked.base_url}/v1/ledger/records/{rids[-1]}/receipt", timeout=10)
        assert r.status_code == 409, r.text
        after = http.get(forked.base_url + "/v1/ledger/head", timeout=10).json()
        assert after["sealed_size"] == head["sealed_size"] < after["tree_size"]
        assert after["latest_block_height"] > before
        metrics = http.get(forked.base_url + "/metrics", timeout=10).text
        failures = [l for l in metrics.splitlines() if l.startswith('verity_ledger_witness_failures{witness="witness.test/w1"}')]
        assert failures and float(failures[0].split()[-1]) >= 1, [l for l in metrics.splitlines() if "witness" in l]
        unpublished = [l for l in metrics.splitlines() if l.startswith("verity_ledger_unpublished_records ")]
        assert unpublished and float(unpublished[0].split()[-1]) >= 2, unpublished
    finally:
        assert forked.stop() == 0
    log = (root / "fork.log").read_text()
    assert "did not cosign" in log and ("409" in log or "422" in log), log[-3000:]
    # No block of the fork past the copy has a single cosignature.
    rows = sqlite3.connect(fork / "ledger.sqlite").execute("SELECT COUNT(*) FROM cosignatures WHERE height > ?", (before,)).fetchone()[0]
    assert rows == 0
