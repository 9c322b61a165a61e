"""Model export through the API (issue 16, "Through the API"): POST /v1/exports runs an export as a
background job, GET /v1/exports/{id} shows it, GET /v1/exports/{id}/file and /files/{name} download
it (streamed, with ranges and its SHA-256 in a header), and the export's ledger record is found by
`verity ledger provenance` on the downloaded file, with a receipt that verifies offline.

One server on SmolLM2 (Q4_1) served twice: as itself, which `--exportable` lets accounts export, and
as `other` (a symlink), which only the admin key may export. Two accounts (alice, bob), the admin
key and a static `--api-key`. Exports are Q8_0 (quick even in a debug build).

1. An account exports Q8_0: 202, polled to success; downloaded whole and in ranges (206, 416,
   multi-range ignored, If-Range); the file is a Q8_0 GGUF with Verity's provenance keys; the
   ledger finds its record and the receipt verifies offline.
2. Who sees what: another account or key gets 404 for the job and its files; the admin sees all.
3. Refusals: 403 for a model not marked exportable, 404 for an unknown one, 400 naming each bad
   field; nothing is left in the data directory by a refused request.
4. Hostile file names (../, %2F, absolute, dot files, the job's own record) are never served.
5. The queue: one runs, one waits, the next is 429; cancelling a queued and a running job; a split
   GGUF served file by file; deleting a finished job removes its files but not its record.
6. Finished jobs survive a restart; a job interrupted by one is failed with its files removed.
7. The web chat: the Export dialog starts an export, shows its progress, verifies the record's
   receipt, and downloads the file checked against its SHA-256; a refusal is explained.

Interface under test: `verity serve --exportable ID --max-queued-exports N --admin-key K`,
/v1/exports*, `verity ledger provenance FILE --data-dir D --json`, `verity ledger verify-receipt`."""
import base64
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest

import hf_fixtures
import support
from support import API_KEY, MODEL_ID, VerityServer, assert_openai_error, cli, http, raw_request

ADMIN_KEY = "vk_admin-export-key-0123456789"
OTHER = "other"
TIMEOUT = 900  # a debug build quantizes slowly


def model_path():
    return Path(os.environ.get("VERITY_TEST_MODEL", Path(hf_fixtures.models_dir()) / "SmolLM2-135M-Instruct.Q4_1.gguf"))


class Env:
    def __init__(self, root):
        self.root = root
        self.data = root / "data"
        self.keys = {}
        for name in ("alice", "bob"):
            account = root / f"{name}.json"
            cli("account", "create", "--out", account)
            self.keys[name] = json.loads(cli("keys", "create", "--data-dir", self.data, "--account-file", account,
                                             "--json").stdout)["key"]
        self.keys["admin"] = ADMIN_KEY
        self.keys["static"] = API_KEY
        # The same weights under a second id, which no --exportable names.
        (root / "models").mkdir()
        self.other = root / "models" / f"{OTHER}.gguf"
        os.symlink(model_path(), self.other)
        self.start()

    def start(self):
        self.server = VerityServer(["--data-dir", self.data, "--admin-key", ADMIN_KEY, "--model", model_path(),
                                    "--model", self.other, "--exportable", MODEL_ID, "--max-queued-exports", "1",
                                    "--seal-interval", "0.2", "--max-sequences", "2"],
                                   self.root / f"verity-serve-{time.time_ns()}.log", ready_timeout=300)
        self.url = self.server.base_url

    def stop(self):
        rc = self.server.stop(timeout=30)
        assert rc == 0, f"verity serve exited {rc}:\n{self.server.log_tail()}"

    def call(self, method, path, who="alice", **kw):
        headers = kw.pop("headers", {})
        if who is not None:
            headers["Authorization"] = f"Bearer {self.keys[who]}"
        return http.request(method, self.url + path, headers=headers, timeout=kw.pop("timeout", 120), **kw)

    def export(self, who="alice", **body):
        return self.call("POST", "/v1/exports", who, json=body)

    def wait(self, job_id, who="alice", timeout=TIMEOUT, until=("succeeded", "failed", "cancelled")):
        deadline = time.time() + timeout
        seen = []
        while time.time() < deadline:
            r = self.call("GET", f"/v1/exports/{job_id}", who)
            assert r.status_code == 200, r.text
            job = r.json()
            if not seen or seen[-1] != job["status"]:
                seen.append(job["status"])
            if job["status"] in until:
                return job
            time.sleep(0.5)
        raise AssertionError(f"export {job_id} not done within {timeout}s (statuses {seen}); log:\n{self.server.log_tail()}")

    def exports_dir(self):
        return self.data / "exports"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    e = Env(tmp_path_factory.mktemp("exports"))
    yield e
    e.stop()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(env, path, dest, who="alice", headers=None):
    """Streams a download to `dest`; returns the response (its body consumed)."""
    h = {"Authorization": f"Bearer {env.keys[who]}", **(headers or {})}
    with http.stream("GET", env.url + path, headers=h, timeout=300) as r:
        with open(dest, "wb") as f:
            for chunk in r.iter_bytes():
                f.write(chunk)
    return r


@pytest.fixture(scope="module")
def q8(env, tmp_path_factory):
    """alice's Q8_0 export of the served SmolLM2, finished, and its file downloaded."""
    started = time.time()
    r = env.export(model=MODEL_ID, format="gguf", type="Q8_0")
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["object"] == "export" and job["id"].startswith("exp_")
    assert r.headers["location"] == f"/v1/exports/{job['id']}"
    assert job["status"] in ("queued", "running") and job["model"] == MODEL_ID and job["format"] == "gguf"
    assert job["type"] == "Q8_0" and job["files"] == [] and job["record_id"] is None
    done = env.wait(job["id"])
    assert done["status"] == "succeeded", done
    print(f"\nQ8_0 export through the API: {time.time() - started:.1f} s")
    dest = tmp_path_factory.mktemp("download") / done["files"][0]["name"]
    r = download(env, f"/v1/exports/{job['id']}/file", dest)
    assert r.status_code == 200, dest.read_bytes()[:500]
    return done, dest, r


# ---------------------------------------------------------------------------------------------
# 1. The export, downloaded and proven


def test_an_account_exports_q8_0_and_the_job_says_what_it_wrote(env, q8):
    job, dest, _ = q8
    assert job["progress"]["stage"] == "done"
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]
    [file] = job["files"]
    assert file["name"] == "smollm2-135M-8k-lc100k-mix1-ep2-Q8_0.gguf", file["name"]
    assert file["sha256"].startswith("sha256:") and len(file["sha256"]) == 71
    assert file["bytes"] == dest.stat().st_size > 100_000_000
    assert file["url"] == f"/v1/exports/{job['id']}/files/{file['name']}"
    assert job["download_url"] == f"/v1/exports/{job['id']}/file"
    assert job["record_id"].startswith("export-" + file["sha256"][7:31]), job["record_id"]
    assert job["receipt"]["recordID"] == job["record_id"]
    assert job["error"] is None
    # The source is quantized (Q4_1): the export says it was dequantized and quantized again.
    assert any("quantized" in n for n in job["notes"]), job["notes"]
    # Kept in the data directory.
    assert (env.exports_dir() / job["id"] / file["name"]).is_file()
    assert json.loads((env.exports_dir() / f"{job['id']}.json").read_text())["status"] == "succeeded"


def test_the_download_is_the_file_with_its_digest_in_headers(env, q8):
    job, dest, r = q8
    [file] = job["files"]
    hexdigest = file["sha256"][7:]
    assert sha256_file(dest) == hexdigest
    assert r.headers["x-content-sha256"] == hexdigest
    assert r.headers["digest"] == "sha-256=" + base64.b64encode(bytes.fromhex(hexdigest)).decode()
    assert r.headers["content-length"] == str(file["bytes"])
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["content-disposition"].startswith(f'attachment; filename="{file["name"]}"')
    assert r.headers["etag"] == f'"{hexdigest}"'
    # The same bytes by name.
    h = env.call("HEAD", file["url"])
    assert h.status_code == 200 and h.headers["content-length"] == str(file["bytes"]), h.headers
    assert h.headers["x-content-sha256"] == hexdigest
    # A GGUF file of type Q8_0 (llama.cpp's file type 7) with Verity's provenance keys.
    gguf = pytest.importorskip("gguf")
    reader = gguf.GGUFReader(str(dest))
    fields = {name: reader.fields[name] for name in reader.fields}

    def value(name):
        f = fields[name]
        return f.parts[f.data[0]].tobytes().decode() if f.types[0] == gguf.GGUFValueType.STRING else int(f.parts[f.data[0]][0])

    assert value("general.file_type") == 7
    assert value("verity.export.source_digest").startswith("sha256:")
    assert value("verity.export.tool").startswith("verity/")


def test_ranges_resume_a_download(env, q8, tmp_path):
    job, dest, _ = q8
    whole = dest.read_bytes()
    size = len(whole)
    url = job["download_url"]
    etag = f'"{job["files"][0]["sha256"][7:]}"'
    cases = [("bytes=0-99", 0, 99), ("bytes=-10", size - 10, size - 1), (f"bytes={size - 50}-", size - 50, size - 1),
             (f"bytes=1000-{size + 5000}", 1000, size - 1), ("bytes=1000-1000", 1000, 1000)]
    for spec, first, last in cases[:2] + cases[2:3] + cases[4:]:
        r = env.call("GET", url, headers={"Range": spec})
        assert r.status_code == 206, (spec, r.status_code, r.text[:200])
        assert r.headers["content-range"] == f"bytes {first}-{last}/{size}", (spec, r.headers["content-range"])
        assert r.content == whole[first:last + 1], spec
        assert r.headers["content-length"] == str(last - first + 1)
        assert r.headers["x-content-sha256"] == job["files"][0]["sha256"][7:]
    # A range running past the end is cut at the end (checked without reading ~145 MB again).
    r = env.call("HEAD", url, headers={"Range": cases[3][0]})
    assert r.status_code == 206 and r.headers["content-range"] == f"bytes 1000-{size - 1}/{size}"
    # Resuming a cut download gives the same bytes.
    part = tmp_path / "part"
    part.write_bytes(whole[:size // 3])
    r = env.call("GET", url, headers={"Range": f"bytes={size // 3}-", "If-Range": etag})
    assert r.status_code == 206
    assert hashlib.sha256(part.read_bytes() + r.content).hexdigest() == sha256_file(dest)
    # Past the end: 416 with the size.
    for spec in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}", "bytes=-0", "bytes=99999999999999999999999-"):
        r = env.call("GET", url, headers={"Range": spec})
        assert r.status_code == 416, (spec, r.status_code)
        assert r.headers["content-range"] == f"bytes */{size}"
    # Several ranges, a malformed header, or an If-Range of another version: the whole file.
    for headers in ({"Range": "bytes=0-1,5-6"}, {"Range": "bytes=5-1"}, {"Range": "lines=1-2"},
                    {"Range": "bytes=0-99", "If-Range": '"0000"'}):
        r = env.call("HEAD", url, headers=headers)
        assert r.status_code == 200 and r.headers["content-length"] == str(size), (headers, r.status_code)


def test_provenance_finds_the_record_and_the_receipt_verifies_offline(env, q8, tmp_path):
    job, dest, _ = q8
    # The server holds the data directory; provenance only reads it.
    out = json.loads(cli("ledger", "provenance", dest, "--data-dir", env.data, "--json").stdout)
    assert out["found"] is True and out["record_id"] == job["record_id"], out
    assert out["sha256"] == job["files"][0]["sha256"]
    assert out["format"] == "gguf" and out["type"] == "Q8_0" and out["name"] == job["files"][0]["name"]
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps(out["receipt"]))
    node_key = cli("ledger", "node-key", "--data-dir", env.data).stdout.strip()
    verified = cli("ledger", "verify-receipt", receipt, "--node-key", node_key).stdout
    assert verified.startswith("ok: record " + job["record_id"]), verified
    # The receipt the job shows is the same record's, and verifies too.
    receipt.write_text(json.dumps(job["receipt"]))
    assert cli("ledger", "verify-receipt", receipt, "--node-key", node_key).stdout.startswith("ok: record " + job["record_id"])
    # A file that no export wrote is not found.
    stranger = tmp_path / "stranger.gguf"
    stranger.write_bytes(dest.read_bytes()[:4096])
    p = cli("ledger", "provenance", stranger, "--data-dir", env.data, "--json", check=False)
    assert p.returncode == 1 and json.loads(p.stdout)["found"] is False


def test_the_record_names_the_account_that_exported(env, q8):
    job, _, _ = q8
    # alice's record is sealed to her: it is listed among her records, not bob's.
    mine = env.call("GET", "/v1/ledger/records", "alice").json()
    theirs = env.call("GET", "/v1/ledger/records", "bob").json()
    assert job["record_id"] in {r["record_id"] for r in mine["data"]}, mine
    assert job["record_id"] not in {r["record_id"] for r in theirs["data"]}


# ---------------------------------------------------------------------------------------------
# 2. Who sees what


def test_only_the_creator_and_the_admin_see_a_job(env, q8):
    job, _, _ = q8
    jid, name = job["id"], job["files"][0]["name"]
    for who in ("bob", "static"):
        for method, path in (("GET", f"/v1/exports/{jid}"), ("GET", f"/v1/exports/{jid}/file"),
                             ("GET", f"/v1/exports/{jid}/files/{name}"), ("DELETE", f"/v1/exports/{jid}")):
            assert_openai_error(env.call(method, path, who), 404)
        listed = env.call("GET", "/v1/exports", who).json()
        assert listed["object"] == "list" and jid not in [j["id"] for j in listed["data"]]
    assert jid in [j["id"] for j in env.call("GET", "/v1/exports", "alice").json()["data"]]
    assert jid in [j["id"] for j in env.call("GET", "/v1/exports", "admin").json()["data"]]
    assert env.call("GET", f"/v1/exports/{jid}", "admin").json()["status"] == "succeeded"
    # Without a key, or with a wrong one: 401, as on the other /v1 routes.
    assert_openai_error(env.call("GET", f"/v1/exports/{jid}", None), 401)
    assert_openai_error(env.call("GET", "/v1/exports", None, headers={"Authorization": "Bearer nope"}), 401)
    assert_openai_error(env.export(None, model=MODEL_ID, type="Q8_0"), 401)


# ---------------------------------------------------------------------------------------------
# 3. Refusals


def test_a_model_not_marked_exportable_is_403_except_for_the_admin(env):
    before = sorted(os.listdir(env.exports_dir()))
    for who in ("alice", "static"):
        err = assert_openai_error(env.export(who, model=OTHER, format="gguf", type="Q8_0"), 403, code="model_not_exportable")
        assert "--exportable" in err["message"], err
    # The check comes before the options: a bad type on a model one may not export is still 403.
    assert_openai_error(env.export("alice", model=OTHER, type="Q9_9"), 403)
    assert sorted(os.listdir(env.exports_dir())) == before


def test_unknown_model_is_404(env):
    assert_openai_error(env.export(model="no-such-model", type="Q8_0"), 404, code="model_not_found", param="model")
    assert_openai_error(env.export(model=MODEL_ID, adapter="no-such-adapter", merge=True), 404, param="adapter")


@pytest.mark.parametrize("body,param", [
    ({"model": MODEL_ID, "type": "Q9_9"}, "type"),
    ({"model": MODEL_ID, "format": "safetensors", "type": "Q4_K_M"}, "type"),
    ({"model": MODEL_ID, "format": "zip"}, "format"),
    ({"model": MODEL_ID, "format": 3}, "format"),
    ({"model": MODEL_ID, "merge": "yes"}, "merge"),
    ({"model": MODEL_ID, "merge": True}, "adapter"),
    ({"model": MODEL_ID, "format": "lora"}, "adapter"),
    ({"model": MODEL_ID, "format": "safetensors", "split_max_size": "1G"}, "split_max_size"),
    ({"model": MODEL_ID, "split_max_size": "lots"}, "split_max_size"),
    ({"model": MODEL_ID, "split_max_size": "10K"}, "split_max_size"),
    ({"model": MODEL_ID, "typo": "Q8_0"}, "typo"),
    ({"format": "gguf"}, "model"),
    ({"model": ""}, "model"),
])
def test_bad_options_are_400_naming_the_field(env, body, param):
    before = sorted(os.listdir(env.exports_dir()))
    assert_openai_error(env.call("POST", "/v1/exports", "alice", json=body), 400, param=param)
    assert sorted(os.listdir(env.exports_dir())) == before, "a refused export left files behind"


def test_a_body_that_is_not_json_is_400(env):
    r = env.call("POST", "/v1/exports", "alice", content=b"{not json", headers={"Content-Type": "application/json"})
    assert_openai_error(r, 400, code="invalid_json")
    assert_openai_error(env.call("POST", "/v1/exports", "alice", json=["a"]), 400)


# ---------------------------------------------------------------------------------------------
# 4. Hostile file names


def test_hostile_file_names_are_never_served(env, q8):
    job, _, _ = q8
    jid = job["id"]
    secret = (env.data / "node.key").read_bytes()
    targets = [
        f"/v1/exports/{jid}/files/..%2F..%2Fnode.key", f"/v1/exports/{jid}/files/%2E%2E%2F%2E%2E%2Fnode.key",
        f"/v1/exports/{jid}/files/..%2f{jid}.json", f"/v1/exports/{jid}/files/%2Fetc%2Fpasswd",
        f"/v1/exports/{jid}/files/../../node.key", f"/v1/exports/{jid}/files/..", f"/v1/exports/{jid}/files/.",
        f"/v1/exports/{jid}/files/.hidden", f"/v1/exports/{jid}/files/{jid}.json", f"/v1/exports/{jid}/files/x%00.gguf",
        f"/v1/exports/{jid}/files/%5C..%5Cnode.key", f"/v1/exports/{jid}/files/nothing.gguf",
        f"/v1/exports/..%2Fnode.key/file", f"/v1/exports/{jid}%2F..%2F..%2Fnode.key/file",
        f"/v1/exports/{jid}/files//etc/passwd",
    ]
    for target in targets:
        r = raw_request(env.server.port, "GET", target, headers={"Authorization": f"Bearer {env.keys['alice']}"})
        assert r.status_code in (400, 404), (target, r.status_code, r.content[:200])
        assert secret not in r.content and b"root:" not in r.content, target
        if r.status_code == 400:
            assert r.json()["error"]["param"] == "name", (target, r.content)
    # Percent-encoding a real name is still that name.
    name = job["files"][0]["name"]
    encoded = "".join(f"%{ord(c):02X}" if c in "S.-" else c for c in name)
    r = raw_request(env.server.port, "HEAD", f"/v1/exports/{jid}/files/{encoded}", headers={"Authorization": f"Bearer {env.keys['alice']}"})
    assert r.status_code == 200, (encoded, r.status_code, r.content[:200])


# ---------------------------------------------------------------------------------------------
# 5. The queue, cancelling, split files, deleting


def test_queue_cancel_split_and_delete(env, q8, tmp_path):
    # One runs (an F32 export: the slowest to write), one waits, the next is refused.
    running = env.export("admin", model=OTHER, format="gguf", type="F32")
    assert running.status_code == 202, running.text
    waiting = env.export("admin", model=MODEL_ID, format="gguf", type="Q8_0")
    assert waiting.status_code == 202, waiting.text
    refused = env.export("alice", model=MODEL_ID, format="gguf", type="Q8_0")
    err = assert_openai_error(refused, 429, code="queue_full")
    assert refused.headers.get("retry-after"), refused.headers
    running, waiting = running.json(), waiting.json()
    got = env.call("GET", f"/v1/exports/{waiting['id']}", "admin").json()
    assert got["status"] == "queued" and got["queue_position"] == 1, got

    # Cancelling the queued job: at once, nothing left.
    r = env.call("DELETE", f"/v1/exports/{waiting['id']}", "admin")
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    assert not (env.exports_dir() / waiting["id"]).exists()
    # Cancelling the running one: it stops within a tensor; its partial files are removed.
    assert env.wait(running["id"], "admin", timeout=120, until=("running", "succeeded", "failed"))["status"] == "running"
    r = env.call("DELETE", f"/v1/exports/{running['id']}", "admin")
    assert r.status_code == 200, r.text
    stopped = env.wait(running["id"], "admin", timeout=60)
    assert stopped["status"] == "cancelled" and stopped["files"] == [] and stopped["record_id"] is None, stopped
    assert not (env.exports_dir() / running["id"]).exists()

    # A split GGUF: served file by file, each one traced to the same record.
    r = env.export("admin", model=MODEL_ID, format="gguf", type="Q8_0", split_max_size="100M")
    assert r.status_code == 202, r.text
    split = env.wait(r.json()["id"], "admin")
    assert split["status"] == "succeeded", split
    names = [f["name"] for f in split["files"]]
    assert names == ["smollm2-135M-8k-lc100k-mix1-ep2-Q8_0-00001-of-00002.gguf", "smollm2-135M-8k-lc100k-mix1-ep2-Q8_0-00002-of-00002.gguf"], names
    assert split["download_url"] is None
    assert_openai_error(env.call("GET", f"/v1/exports/{split['id']}/file", "admin"), 404)
    for f in split["files"]:
        dest = tmp_path / f["name"]
        r = download(env, f["url"], dest, "admin")
        assert r.status_code == 200 and sha256_file(dest) == f["sha256"][7:] == r.headers["x-content-sha256"]
        out = json.loads(cli("ledger", "provenance", dest, "--data-dir", env.data, "--json").stdout)
        assert out["record_id"] == split["record_id"] and out["name"] == f["name"]
    # alice cannot see the admin's jobs.
    assert_openai_error(env.call("GET", f"/v1/exports/{split['id']}", "alice"), 404)

    # Deleting a finished job removes its files and the job; its ledger record stays.
    r = env.call("DELETE", f"/v1/exports/{split['id']}", "admin")
    assert r.status_code == 200 and r.json() == {"id": split["id"], "object": "export", "deleted": True}, r.text
    assert not (env.exports_dir() / split["id"]).exists() and not (env.exports_dir() / f"{split['id']}.json").exists()
    assert_openai_error(env.call("GET", f"/v1/exports/{split['id']}", "admin"), 404)
    out = json.loads(cli("ledger", "provenance", tmp_path / names[0], "--data-dir", env.data, "--json").stdout)
    assert out["record_id"] == split["record_id"]


# ---------------------------------------------------------------------------------------------
# 6. Restarts


def test_finished_jobs_survive_a_restart_and_an_interrupted_one_fails(env, q8):
    job, dest, _ = q8
    r = env.export("admin", model=OTHER, format="gguf", type="F32")
    assert r.status_code == 202, r.text
    interrupted = r.json()["id"]
    assert env.wait(interrupted, "admin", timeout=120, until=("running", "succeeded", "failed"))["status"] == "running"
    env.stop()  # SIGTERM: the running export is cancelled; the server still exits 0 in time
    env.start()
    again = env.call("GET", f"/v1/exports/{job['id']}", "alice").json()
    assert again["status"] == "succeeded" and again["record_id"] == job["record_id"] and again["files"] == job["files"]
    r = env.call("GET", job["download_url"], "alice", headers={"Range": "bytes=0-3"})
    assert r.status_code == 206 and r.content == b"GGUF"
    failed = env.call("GET", f"/v1/exports/{interrupted}", "admin").json()
    assert failed["status"] == "failed" and failed["error"]["code"] == "interrupted" and failed["files"] == [], failed
    assert not (env.exports_dir() / interrupted).exists()


# ---------------------------------------------------------------------------------------------
# 7. The web chat


def test_the_web_chat_exports_the_selected_model(env, tmp_path):
    pytest.importorskip("selenium", reason="run.sh installs selenium")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    from test_07_webchat import chrome, js, wait

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    d = chrome(downloads)
    try:
        d.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        d.get(env.url + "/")
        wait(d, lambda d: js(d, "return document.documentElement.dataset.ready") == "true", 15, "the page loads")
        js(d, "localStorage.setItem('verity.settings.v1', JSON.stringify({apiKey: arguments[0]}))", env.keys["alice"])
        d.get_log("browser")  # drains the first load's 401 (no key yet): only errors after the key count
        d.refresh()
        wait(d, lambda d: MODEL_ID in [o.get_attribute("value") for o in d.find_elements(By.CSS_SELECTOR, "#model option")],
             30, "the models are listed")

        # A model alice may not export: the dialog says why.
        Select(d.find_element(By.ID, "model")).select_by_value(OTHER)
        d.find_element(By.ID, "export-model").click()
        wait(d, lambda d: d.find_element(By.ID, "export-dialog").is_displayed(), 5, "the export dialog opens")
        assert "other" in d.find_element(By.ID, "export-source").text
        Select(d.find_element(By.ID, "export-type")).select_by_value("Q8_0")
        d.find_element(By.ID, "export-start").click()
        error = wait(d, lambda d: d.find_element(By.ID, "export-error").text, 15, "the refusal is shown")
        assert "403" in error and "exportable" in error, error
        d.find_element(By.ID, "export-close").click()

        # The exportable model: progress, the record's receipt, and the download.
        Select(d.find_element(By.ID, "model")).select_by_value(MODEL_ID)
        d.find_element(By.ID, "export-model").click()
        wait(d, lambda d: d.find_element(By.ID, "export-dialog").is_displayed(), 5, "the export dialog opens")
        assert d.find_element(By.ID, "export-merge-row").is_displayed() is False  # a base model: nothing to merge
        Select(d.find_element(By.ID, "export-format")).select_by_value("gguf")
        Select(d.find_element(By.ID, "export-type")).select_by_value("Q8_0")
        d.find_element(By.ID, "export-start").click()
        wait(d, lambda d: d.find_element(By.ID, "export-job").is_displayed(), 15, "the job is shown")
        wait(d, lambda d: js(d, "return document.getElementById('export-form').dataset.status") in ("succeeded", "failed"),
             TIMEOUT, "the export finishes")
        assert js(d, "return document.getElementById('export-form').dataset.status") == "succeeded", \
            d.find_element(By.ID, "export-error").text
        assert js(d, "return document.getElementById('export-progress').value") == 1
        facts = wait(d, lambda d: "receipt verified" in d.find_element(By.ID, "export-facts").text and
                     d.find_element(By.ID, "export-facts").text, 30, "the export's receipt is verified in the browser")
        assert "export-" in facts
        files = d.find_elements(By.CSS_SELECTOR, "#export-files li.export-file")
        assert len(files) == 1 and "smollm2-135M-8k-lc100k-mix1-ep2-Q8_0.gguf" in files[0].text
        digest = files[0].find_element(By.CSS_SELECTOR, ".export-file-digest").text
        files[0].find_element(By.CSS_SELECTOR, "button[data-action='download']").click()
        state = wait(d, lambda d: (t := d.find_element(By.CSS_SELECTOR, ".export-file-state").text) and
                     ("✓" in t or "✗" in t or "failed" in t) and t, 120, "the download is checked")
        assert "SHA-256 checked ✓" in state, state

        def downloaded(_):
            f = downloads / "smollm2-135M-8k-lc100k-mix1-ep2-Q8_0.gguf"
            return f if f.exists() and sha256_file(f) == digest[7:] else None
        path = wait(d, downloaded, 60, "the file is saved, whole")
        out = json.loads(cli("ledger", "provenance", path, "--data-dir", env.data, "--json").stdout)
        assert out["found"] and out["record_id"] in facts
        errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE" and "/v1/exports" not in e["message"]]
        assert not errors, errors
    finally:
        d.quit()
