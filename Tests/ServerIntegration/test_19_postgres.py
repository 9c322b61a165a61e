"""Several gateways, one ledger (issue #18): two `verity serve` processes on one PostgreSQL database
(`--ledger-db`). The database assigns the leaf indices, one gateway at a time leads (integrates the
tiles and seals blocks, elected by an advisory lock), and the other follows. Checked here from the
database's own rows and from each gateway's public log: 200 concurrent requests give 200 leaves,
contiguous, in one tree both gateways serve; killing the leader with SIGKILL mid-load loses no
acknowledged record, and the survivor takes over sealing. The server is Debian's PostgreSQL, in a
throwaway cluster (pg_server.py)."""
import json, os, shutil, signal, subprocess, threading, time
from concurrent.futures import ThreadPoolExecutor

import pytest

from pg_server import PostgresServer
from support import API_KEY, MODEL_ID, VerityServer, cli, http, verity_binary

PER_GATEWAY = 100
HEADERS = {"Authorization": f"Bearer {API_KEY}"}


def gateway_args(data, url):
    return ["--data-dir", str(data), "--ledger-db", url, "--seal-interval", "0.2",
            "--max-sequences", "8", "--max-queue", "1024"]


@pytest.fixture(scope="module")
def pg():
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, pg):
    root = tmp_path_factory.mktemp("postgres")
    url = pg.create_database("verity")
    a = VerityServer(gateway_args(root / "a", url), root / "a.log")
    # The second gateway signs the same log: it holds the first one's node key.
    (root / "b").mkdir(mode=0o700)
    shutil.copy(root / "a" / "node.key", root / "b" / "node.key")
    os.chmod(root / "b" / "node.key", 0o600)
    b = VerityServer(gateway_args(root / "b", url), root / "b.log")
    state = {"root": root, "url": url, "gateways": {"a": a, "b": b}}
    yield state
    for g in state["gateways"].values():
        if g.proc.poll() is None:
            g.stop()


def ask(gateway, max_tokens=2):
    body = {"model": MODEL_ID, "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": max_tokens, "temperature": 0}
    r = http.post(gateway.base_url + "/v1/chat/completions", json=body, headers=HEADERS, timeout=300)
    assert r.status_code == 200, r.text
    return r.json()["id"]


def head(gateway):
    return http.get(gateway.base_url + "/v1/ledger/head", timeout=10).json()


def wait_sealed(gateway, size, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        h = head(gateway)
        if h["sealed_size"] >= size:
            return h
        time.sleep(0.2)
    raise AssertionError(f"{gateway.base_url} did not seal {size} leaves: {head(gateway)}")


def leaves_in_db(pg):
    count, low, high, distinct = pg.psql(
        "SELECT count(*), coalesce(min(idx), -1), coalesce(max(idx), -1), count(DISTINCT record_id) FROM verity_ledger_leaves"
    ).split("|")
    return int(count), int(low), int(high), int(distinct)


def receipt_verifies(source, checker, record_id):
    r = http.get(f"{source.base_url}/v1/ledger/records/{record_id}/receipt", params={"wait": "true"}, timeout=60)
    assert r.status_code == 200, r.text
    v = http.post(checker.base_url + "/v1/ledger/verify-receipt", json=r.json(), timeout=30).json()
    return v["valid"], v


def test_a_gateway_without_the_logs_node_key_is_refused(cluster):
    other = cluster["root"] / "stranger"
    p = subprocess.run([str(verity_binary()), "serve", "--host", "127.0.0.1", "--port", "0", "--api-key", API_KEY,
                        "--data-dir", str(other), "--ledger-db", cluster["url"]],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode != 0
    assert "node.key" in p.stderr + p.stdout, p.stderr[-2000:]


def test_bad_ledger_db_urls_are_clear_errors(cluster, tmp_path):
    for url, words in [("mysql://x/y", "postgres://"), ("postgres://127.0.0.1:1/verity", "cannot connect"),
                       ("postgres://127.0.0.1/", "name the database")]:
        p = subprocess.run([str(verity_binary()), "serve", "--host", "127.0.0.1", "--port", "0", "--api-key", API_KEY,
                            "--data-dir", str(tmp_path / "d"), "--ledger-db", url], capture_output=True, text=True, timeout=300)
        assert p.returncode != 0 and words in p.stderr + p.stdout, (url, p.stderr[-2000:])


def test_two_gateways_append_one_contiguous_tree(cluster, pg):
    a, b = cluster["gateways"]["a"], cluster["gateways"]["b"]
    before = leaves_in_db(pg)[0]
    with ThreadPoolExecutor(2 * PER_GATEWAY) as pool:
        futures = [pool.submit(ask, g) for _ in range(PER_GATEWAY) for g in (a, b)]
        ids = [f.result() for f in futures]
    assert len(set(ids)) == 2 * PER_GATEWAY
    total = before + 2 * PER_GATEWAY
    count, low, high, distinct = leaves_in_db(pg)
    assert (count, low, high, distinct) == (total, 0, total - 1, total)
    # One tree: both gateways publish the same sealed checkpoint once it covers everything.
    ha, hb = wait_sealed(a, total), wait_sealed(b, total)
    deadline = time.time() + 20
    while (ha["block"]["root_hash"], ha["sealed_size"]) != (hb["block"]["root_hash"], hb["sealed_size"]) and time.time() < deadline:
        time.sleep(0.3)
        ha, hb = head(a), head(b)
    assert ha["block"] == hb["block"]
    assert sorted([ha["shared"]["role"], hb["shared"]["role"]]) == ["follower", "leader"]
    assert pg.psql("SELECT size FROM verity_ledger_integrated") == str(total)
    # Every record's receipt, from either gateway, verifies on the other.
    for i, record_id in enumerate(ids[::20]):
        source, checker = (a, b) if i % 2 else (b, a)
        valid, v = receipt_verifies(source, checker, record_id)
        assert valid, v
    # The whole log, audited over HTTP GETs from each gateway, is the same tree.
    outs = [cli("ledger", "verify", "--url", g.base_url).stdout for g in (a, b)]
    assert all(o.startswith("ok: ") for o in outs), outs
    assert outs[0].split(",")[0] == outs[1].split(",")[0] == f"ok: {total} records"


def test_accounts_and_keys_live_in_the_shared_database(cluster, pg, tmp_path):
    a, b = cluster["gateways"]["a"], cluster["gateways"]["b"]
    account = tmp_path / "alice.json"
    cli("account", "create", "--out", account)
    # Issued against the database, from a directory neither gateway uses: both accept the key.
    issued = json.loads(cli("keys", "create", "--data-dir", tmp_path / "admin", "--ledger-db", cluster["url"],
                            "--account-file", account, "--json").stdout)
    assert pg.psql(f"SELECT count(*) FROM api_keys WHERE key_id = '{issued['key_id']}'") == "1"
    key = {"Authorization": f"Bearer {issued['key']}"}
    body = {"model": MODEL_ID, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
    r = http.post(b.base_url + "/v1/chat/completions", json=body, headers=key, timeout=120)
    assert r.status_code == 200, r.text
    made_on_b = r.json()["id"]
    wait_sealed(a, int(pg.psql("SELECT next FROM verity_ledger_sequence")))
    # The account's records, listed by the other gateway (the owner index is in the shared log).
    listed = http.get(a.base_url + "/v1/ledger/records", headers=key, timeout=30)
    assert listed.status_code == 200, listed.text
    assert made_on_b in {d["record_id"] for d in listed.json()["data"]}
    # Revoked once, refused by every gateway at its next request.
    cli("keys", "revoke", issued["key_id"], "--ledger-db", cluster["url"], "--data-dir", tmp_path / "admin")
    for g in (a, b):
        r = http.post(g.base_url + "/v1/chat/completions", json=body, headers=key, timeout=120)
        assert r.status_code == 401, r.text


def test_killing_the_leader_loses_no_acknowledged_record(cluster, pg):
    gateways = cluster["gateways"]
    leader_name = next(n for n, g in gateways.items() if head(g)["shared"]["role"] == "leader")
    survivor_name = "b" if leader_name == "a" else "a"
    leader, survivor = gateways[leader_name], gateways[survivor_name]
    acknowledged, lock = {leader_name: [], survivor_name: []}, threading.Lock()

    def load(name, gateway):
        try:
            record_id = ask(gateway, max_tokens=4)
        except Exception:
            return  # the killed gateway's unanswered requests: never acknowledged
        with lock:
            acknowledged[name].append(record_id)

    with ThreadPoolExecutor(2 * PER_GATEWAY) as pool:
        futures = [pool.submit(load, n, g) for _ in range(PER_GATEWAY) for n, g in gateways.items()]
        deadline = time.time() + 120
        while len(acknowledged[leader_name]) < 20 and time.time() < deadline:
            time.sleep(0.05)
        assert len(acknowledged[leader_name]) >= 20
        leader.proc.send_signal(signal.SIGKILL)
        leader.proc.wait()
        for f in futures:
            f.result()
    assert len(acknowledged[survivor_name]) == PER_GATEWAY
    # The survivor takes the lead and seals everything that was acknowledged, on either gateway.
    deadline = time.time() + 30
    while head(survivor)["shared"]["role"] != "leader" and time.time() < deadline:
        time.sleep(0.2)
    assert head(survivor)["shared"]["role"] == "leader"
    # The answers the dead leader had written ahead and never finished are recovered by the new
    # leader (the dead gateway's lock is free), as interrupted records, without waiting for it.
    deadline = time.time() + 30
    while pg.psql("SELECT count(*) FROM verity_ledger_pending") != "0" and time.time() < deadline:
        time.sleep(0.2)
    assert pg.psql("SELECT count(*) FROM verity_ledger_pending") == "0"
    everything = acknowledged[leader_name] + acknowledged[survivor_name]
    for record_id in everything:
        r = http.get(f"{survivor.base_url}/v1/ledger/records/{record_id}/receipt", params={"wait": "true"}, timeout=60)
        assert r.status_code == 200, (record_id, r.text)
    for record_id in everything[::10]:
        valid, v = receipt_verifies(survivor, survivor, record_id)
        assert valid, v
    # It keeps sealing new records.
    fresh = ask(survivor)
    assert receipt_verifies(survivor, survivor, fresh)[0]
    count, low, high, distinct = leaves_in_db(pg)
    assert (low, high, distinct) == (0, count - 1, count)
    # The killed gateway restarts on its data directory, with nothing left to recover, and follows
    # the new leader.
    restarted = VerityServer(gateway_args(cluster["root"] / leader_name, cluster["url"]),
                             cluster["root"] / f"{leader_name}-2.log")
    gateways[leader_name] = restarted
    assert pg.psql(f"SELECT count(*) FROM verity_ledger_pending") == "0"
    assert head(restarted)["shared"]["role"] in ("follower", "leader")
    count, low, high, distinct = leaves_in_db(pg)
    assert (low, high, distinct) == (0, count - 1, count)
    wait_sealed(survivor, count)
    out = cli("ledger", "verify", "--url", survivor.base_url).stdout
    assert str(count) in out, out
