"""The ledger as a tiled transparency log (C2SP tlog-tiles, issue #18), checked from the outside
with code written from the specs: the checkpoint's signed note and key id (c2sp.org/signed-note),
every hash tile and entry bundle of its tree, the tree hashes re-derived from the entries
(RFC 6962), proofs against the tiles, cache headers, strict paths under a bounded fuzz, a restart,
`verity ledger verify --url` over HTTP GETs, and `verity ledger fsck` naming an altered tile."""
import base64, hashlib, random, shutil, sqlite3, subprocess, time
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from support import API_KEY, MODEL_ID, VerityServer, cli, free_port, http, verity_binary

RECORDS = 530  # two full level-0 tiles and a partial one; a partial level-1 tile of width 2
PREFIX = "/v1/ledger/log/"


def leaf_hash(entry):
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(hashes):
    """RFC 6962 §2.1 MTH over leaf hashes."""
    n = len(hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(mth(hashes[:k]), mth(hashes[k:]))


def consistency_proof(m, hashes):
    """RFC 6962 §2.1.2 PROOF(m, D[n])."""
    def subproof(m, d, b):
        n = len(d)
        if m == n:
            return [] if b else [mth(d)]
        k = 1
        while k * 2 < n:
            k *= 2
        if m <= k:
            return subproof(m, d[:k], b) + [mth(d[k:])]
        return subproof(m - k, d[k:], False) + [mth(d[:k])]
    return [] if m in (0, len(hashes)) else subproof(m, hashes, True)


def encode_index(n):
    """tlog-tiles: zero-padded 3-digit elements, all but the last prefixed with x."""
    groups = []
    while True:
        groups.append(f"{n % 1000:03d}")
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    return "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])


def tile_path(level, index, width):
    return f"tile/{level}/{encode_index(index)}" + ("" if width == 256 else f".p/{width}")


def tiles_of(size):
    """Every (level, index, width) of a tree of `size` leaves: the spec's floor(s / 256**l) hashes a level."""
    out, level = [], 0
    while size >> (8 * level):
        nodes = size >> (8 * level)
        for index in range((nodes + 255) // 256):
            out.append((level, index, min(256, nodes - index * 256)))
        level += 1
    return out


def parse_note(text, verifier_key):
    """A checkpoint signed note, verified with the Ed25519 verifier key `name+hex(keyid)+base64(0x01||key)`."""
    name, key_id_hex, key_b64 = verifier_key.split("+", 2)
    raw = base64.b64decode(key_b64)
    assert raw[0] == 1 and len(raw) == 33
    # signed-note: key id = SHA-256(name || "\n" || 0x01 || public key)[:4]
    assert hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4].hex() == key_id_hex
    body, _, sigs = text.rpartition("\n\n")
    body += "\n"
    lines = sigs.rstrip("\n").split("\n")
    ours = [l for l in lines if l.startswith(f"\u2014 {name} ")]
    assert len(ours) == 1, text
    blob = base64.b64decode(ours[0].split(" ")[2])
    assert blob[:4].hex() == key_id_hex
    Ed25519PublicKey.from_public_bytes(raw[1:]).verify(blob[4:], body.encode())
    origin, size, root, *extensions = body.rstrip("\n").split("\n")
    assert origin == name
    return int(size), base64.b64decode(root), extensions


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiles")
    server = VerityServer(["--max-sequences", "8", "--max-queue", "1024", "--seal-interval", "0.2"], root / "serve.log")
    body = {"model": MODEL_ID, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1, "temperature": 0}

    def ask(i):
        r = http.post(server.base_url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120)
        assert r.status_code == 200, r.text
        return r.json()["id"]

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(ask, range(RECORDS)))
    r = http.get(f"{server.base_url}/v1/ledger/records/{ids[-1]}/receipt", params={"wait": "true"}, timeout=60)
    assert r.status_code == 200, r.text
    # Wait for a block that covers every record.
    deadline = time.time() + 30
    while http.get(server.base_url + "/v1/ledger/head", timeout=10).json()["sealed_size"] < RECORDS and time.time() < deadline:
        time.sleep(0.2)
    state = {"server": server, "root": root, "ids": ids}
    yield state
    assert state["server"].stop(timeout=20) == 0, state["server"].log_tail()


def get(server, path, **kw):
    return http.get(server.base_url + path, timeout=30, **kw)


def test_checkpoint_tiles_and_bundles_rederive_from_the_spec(log):
    server, ids = log["server"], log["ids"]
    verifier_key = get(server, "/v1/ledger/node-key").json()["verifier_key"]
    r = get(server, PREFIX + "checkpoint")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    max_age = int(r.headers["cache-control"].split("max-age=")[1].split(",")[0])
    assert max_age <= 5, r.headers["cache-control"]
    size, root, extensions = parse_note(r.text, verifier_key)
    assert size >= RECORDS and extensions[0].startswith("block ")

    tiles = {}
    for level, index, width in tiles_of(size):
        t = get(server, PREFIX + tile_path(level, index, width))
        assert t.status_code == 200, (level, index, width, t.text)
        assert t.headers["content-type"] == "application/octet-stream"
        assert "immutable" in t.headers["cache-control"] or int(t.headers["cache-control"].split("max-age=")[1].split(",")[0]) >= 86400
        assert len(t.content) == 32 * width
        tiles[(level, index)] = [t.content[i:i + 32] for i in range(0, len(t.content), 32)]

    entries = []
    for index in range((size + 255) // 256):
        width = min(256, size - index * 256)
        b = get(server, PREFIX + f"tile/entries/{encode_index(index)}" + ("" if width == 256 else f".p/{width}"))
        assert b.status_code == 200, b.text
        data, at, bundle = b.content, 0, []
        while at < len(data):
            n = int.from_bytes(data[at:at + 2], "big")
            bundle.append(data[at + 2:at + 2 + n])
            at += 2 + n
        assert at == len(data) and len(bundle) == width
        entries += bundle

    hashes = [leaf_hash(e) for e in entries]
    # Level 0 is the leaf hashes; level 1 the MTH of each full level-0 tile (spec: MTH(D[i*256 : (i+1)*256])).
    assert [h for i in range((size + 255) // 256) for h in tiles[(0, i)]] == hashes
    assert tiles[(1, 0)] == [mth(hashes[i * 256:(i + 1) * 256]) for i in range(size // 256)]
    assert mth(hashes) == root
    # Every entry is a record the server answered, in its envelope (VLE2 header: its id).
    first = entries[0]
    n = int.from_bytes(first[4:8], "big")
    assert first[:4] == b"VLE2" and first[8:8 + n].decode() in ids

    # Proofs the API gives are the RFC's, computed here from the tiles' leaves.
    for m in (1, 255, 256, 300, size - 1, size):
        c = get(server, "/v1/ledger/consistency", params={"from": m, "to": size}).json()
        assert [base64.b64decode(p) for p in c["proof"]] == consistency_proof(m, hashes), m


def test_partial_and_missing_tiles(log):
    server = log["server"]
    size = get(server, "/v1/ledger/head").json()["tree_size"]
    full0 = get(server, PREFIX + "tile/0/000").content
    # A partial tile of an earlier tree size is the prefix of the tile, whatever the log grew to.
    for w in (1, 17, 255):
        assert get(server, PREFIX + f"tile/0/000.p/{w}").content == full0[:32 * w]
    last = size // 256
    width = size % 256
    assert get(server, PREFIX + f"tile/0/{last:03d}.p/{width}").status_code == 200
    assert get(server, PREFIX + f"tile/0/{last:03d}.p/{width + 1}").status_code == 404
    assert get(server, PREFIX + f"tile/0/{last:03d}").status_code == 404            # not full yet
    assert get(server, PREFIX + f"tile/0/{last + 1:03d}.p/1").status_code == 404     # beyond the tree
    assert get(server, PREFIX + "tile/1/000").status_code == 404                     # level 1 is partial
    assert get(server, PREFIX + "tile/5/000.p/1").status_code == 404
    assert get(server, PREFIX + f"tile/entries/{last + 1:03d}").status_code == 404


def test_tile_paths_under_a_bounded_fuzz(log):
    """Malformed, non-canonical and hostile spellings: never a 5xx, and the log is unchanged."""
    server = log["server"]
    before = get(server, PREFIX + "checkpoint").text
    rng = random.Random(18)
    good = ["tile/0/000", "tile/0/001.p/5", "tile/entries/000", "tile/1/000.p/2", "tile/entries/002.p/18"]
    alphabet = "0123456789x./p%-+ entriesTILE\u00e9\x00"
    cases = ["tile/00/000", "tile/0/0", "tile/0/x000/000", "tile/0/000.p/0", "tile/0/000.p/256", "tile/0/000.p/05",
             "tile/64/000", "tile/0/x018/x446/x744/x073/x709/x551/616", "tile/0/%2e%2e/000", "tile/0/000/../000",
             "tile/entries/000.p/", "tile//000", "tile/0/000.p/1/2", "tile/-0/000", "tile/0/000%00"]
    for _ in range(300):
        s = list(rng.choice(good))
        for _ in range(rng.randint(1, 3)):
            op, at = rng.randrange(3), rng.randrange(len(s) + 1)
            if op == 0 and s:
                del s[min(at, len(s) - 1)]
            elif op == 1:
                s.insert(at, rng.choice(alphabet))
            elif s:
                s[min(at, len(s) - 1)] = rng.choice(alphabet)
        cases.append("".join(s))
    for case in cases:
        try:
            r = get(server, PREFIX + case)
        except http.InvalidURL:
            continue
        assert r.status_code < 500, (case, r.status_code, r.text[:200])
    assert get(server, PREFIX + "checkpoint").text == before
    assert get(server, "/health").status_code == 200


def test_verify_over_http_and_fsck_and_a_restart(log, tmp_path):
    server, root = log["server"], log["root"]
    out = cli("ledger", "verify", "--url", server.base_url).stdout
    assert out.startswith(f"ok: ") and " hash tiles" in out, out
    node_key = get(server, "/v1/ledger/node-key").json()["verifier_key"]
    out = cli("ledger", "fsck", "--url", server.base_url, "--node-key", node_key).stdout
    assert out.startswith("ok: "), out

    # A restart: the same checkpoint, served again, and receipts still verify.
    data = root / "data"
    before = get(server, PREFIX + "checkpoint").text
    assert server.stop(timeout=20) == 0, server.log_tail()
    assert cli("ledger", "fsck", "--data-dir", data).stdout.startswith("ok: ")
    log["server"] = restarted = VerityServer(["--data-dir", data, "--seal-interval", "0.2"], tmp_path / "serve-2.log")
    assert get(restarted, PREFIX + "checkpoint").text == before
    assert cli("ledger", "verify", "--url", restarted.base_url, "--node-key", node_key).stdout.startswith("ok: ")

    # An altered tile in a copy of the database: fsck and verify name it; the server refuses a
    # tree whose right edge no longer matches its latest block.
    for level, index in ((0, 0), (0, 2)):
        copy = tmp_path / f"tampered-{level}-{index}"
        shutil.copytree(data, copy, ignore=shutil.ignore_patterns("serve.lock"))
        db = sqlite3.connect(copy / "ledger.sqlite")
        db.execute("DROP TRIGGER tiles_only_grow")
        (hashes,) = db.execute("SELECT hashes FROM tiles WHERE level = ? AND idx = ?", (level, index)).fetchone()
        flipped = bytearray(hashes)
        flipped[5] ^= 1
        db.execute("UPDATE tiles SET hashes = ? WHERE level = ? AND idx = ?", (bytes(flipped), level, index))
        db.commit()
        db.close()
        for command in ("fsck", "verify"):
            p = cli("ledger", command, "--data-dir", copy, check=False)
            assert p.returncode == 1 and p.stdout.startswith(f"FAILED: tile {level}/{index:03d}"), (command, p.stdout, p.stderr)
        if index == 2:
            # Tile 0/2 is on the right edge (the tree has 2 full level-0 tiles).
            p = subprocess.run([str(verity_binary()), "serve", "--data-dir", str(copy), "--host", "127.0.0.1", "--port", str(free_port()),
                                "--api-key", API_KEY], capture_output=True, text=True, timeout=120)
            assert p.returncode != 0 and "does not verify" in p.stdout + p.stderr, p.stdout + p.stderr


def test_verify_over_http_catches_a_server_that_serves_an_altered_log(log):
    """`verify --url` streams the served log (bounded memory) and still catches a server that
    serves one altered hash tile, or one altered entry, through a proxy that flips one byte."""
    import http.server, threading, urllib.request
    server = log["server"]
    state = {"target": None}

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            with urllib.request.urlopen(server.base_url + self.path, timeout=30) as r:
                status, body, ctype = r.status, r.read(), r.headers.get("content-type", "application/octet-stream")
            if state["target"] and self.path.startswith(PREFIX + state["target"]):
                body = bytearray(body)
                body[200] ^= 1  # inside the first hash, or the first entry (past its 2-byte length)
                body = bytes(body)
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{proxy.server_address[1]}"
    try:
        assert cli("ledger", "verify", "--url", url).stdout.startswith("ok: ")
        for target, words in (("tile/0/001", "tile 0/001"), ("tile/entries/001", "")):
            state["target"] = target
            p = cli("ledger", "verify", "--url", url, check=False)
            assert p.returncode == 1 and p.stdout.startswith("FAILED"), (target, p.stdout, p.stderr)
            assert words in p.stdout, (target, p.stdout)
    finally:
        proxy.shutdown()
