"""Durability under real faults (issue #27): a data directory on a small tmpfs filled to the last
byte, `kill -9` with eight answers streaming, thousands of idle and slowloris connections against
a lowered descriptor limit; and, with no fault at all, no ledger failure reported. Each test runs
real `verity serve` processes on a real file system and checks what an operator would: what
clients got, what the ledger holds afterwards (decrypted with the operator's account), `/health`,
`/metrics`, the log, and `verity ledger verify`.

The rule under test: a client either gets a 503 `ledger_unavailable` before any token, or what it
saw is in the ledger once storage takes writes again (completed; or `interrupted` with the part
that was durable). A completion whose record cannot be stored is never acknowledged: a stream
ends with an error event and no `[DONE]`, a non-streaming request gets a 500.

Requests go over raw sockets (`RawExchange`): a stream cut short by the server must be seen as
cut short, byte for byte, where an HTTP library would raise."""
import json, os, re, resource, shutil, signal, socket, statistics, subprocess, threading, time
from concurrent.futures import ThreadPoolExecutor

import pytest

import support
from support import API_KEY, EOS_BIAS, MODEL_ID, VerityServer, cli, metric_sum, parse_prometheus, raw_request

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
ERROR_LINE = re.compile(r"^\S+ error \S+ \[\w+\] ledger: .*", re.M)


# ---------------------------------------------------------------------------------------------
# Helpers: a request read as it arrives, a small disk, polling


def _dechunk(data):
    """(body so far, whether the terminating zero-length chunk arrived) of a chunked body."""
    out, pos = bytearray(), 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return bytes(out), False
        size = int(data[pos:end].split(b";")[0] or b"0", 16)
        if size == 0:
            return bytes(out), True
        out += data[end + 2:end + 2 + size]
        if len(data) < end + 2 + size + 2:
            return bytes(out), False
        pos = end + 2 + size + 2


class RawExchange:
    """One POST over a raw socket, read on its own thread as it arrives: the status, headers, body
    and, for an event stream, each event with the time it arrived. `ended_properly` says whether
    the HTTP response was complete (its last chunk or its Content-Length) rather than cut off by
    the connection closing."""

    def __init__(self, port, path, body, key=API_KEY, timeout=120):
        self.path, self.request_body = path, body
        self.status, self.headers, self.body = None, {}, b""
        self.events = []  # (monotonic time, payload)
        self.ended_properly = False
        self.transport_error = None
        self._raw = bytearray()
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.sock.sendall(support.raw_request_bytes("POST", path, port, headers, json.dumps(body)))
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            while True:
                part = self.sock.recv(65536)
                if not part:
                    break
                with self.lock:
                    self._raw += part
                    self._parse(time.monotonic())
        except OSError as e:
            self.transport_error = e
        finally:
            self.sock.close()
            self.done.set()

    def _parse(self, now):
        head, sep, rest = bytes(self._raw).partition(b"\r\n\r\n")
        if not sep:
            return
        if self.status is None:
            lines = head.decode("latin-1").split("\r\n")
            self.status = int(lines[0].split()[1])
            for line in lines[1:]:
                k, _, v = line.partition(":")
                self.headers[k.strip().lower()] = v.strip()
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            self.body, self.ended_properly = _dechunk(rest)
        elif "content-length" in self.headers:
            n = int(self.headers["content-length"])
            self.body, self.ended_properly = rest[:n], len(rest) >= n
        else:
            self.body = rest
        if self.headers.get("content-type", "").startswith("text/event-stream"):
            blocks = self.body.decode("utf-8", "replace").split("\n\n")[:-1]
            for block in blocks[len(self.events):]:
                payload = "\n".join(l[5:].lstrip(" ") for l in block.split("\n") if l.startswith("data:"))
                self.events.append((now, payload))

    def wait(self, timeout=120):
        assert self.done.wait(timeout), f"POST {self.path}: no end within {timeout} s"
        self.thread.join()
        return self

    # What arrived

    @property
    def is_stream(self):
        return self.headers.get("content-type", "").startswith("text/event-stream")

    def chunks(self):
        with self.lock:
            events = list(self.events)
        out = []
        for t, payload in events:
            try:
                value = json.loads(payload)
            except ValueError:
                continue
            out.append((t, value))
        return out

    def tokens(self):
        """(arrival time, text) of every chunk that carried text."""
        out = []
        for t, chunk in self.chunks():
            for choice in chunk.get("choices") or []:
                text = (choice.get("delta") or {}).get("content") if "delta" in choice else choice.get("text")
                if text:
                    out.append((t, text))
        return out

    def text(self):
        return "".join(t for _, t in self.tokens())

    def record_id(self):
        if self.is_stream:
            chunks = self.chunks()
            return chunks[0][1].get("id") if chunks else None
        return self.headers.get("x-verity-record")

    def has_done(self):
        with self.lock:
            return any(p == "[DONE]" for _, p in self.events)

    def error_events(self):
        return [c["error"] for _, c in self.chunks() if isinstance(c, dict) and "error" in c]

    def json(self):
        return json.loads(self.body)

    def describe(self):
        return (f"POST {self.path} stream={self.request_body.get('stream', False)} -> {self.status} "
                f"{self.headers.get('content-type', '')}; {len(self.tokens())} tokens, last events "
                f"{[p[:160] for _, p in self.events[-3:]]!r}, body {self.body[:300]!r}")


def wait_for(predicate, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(interval)
    return value


class SmallDisk:
    """A tmpfs of `size` mounted at `path`: the data directory's whole file system, which the test
    fills to the last byte with a filler file and empties again."""

    def __init__(self, path, size):
        self.path = path
        self.filler = path / "filler"
        path.mkdir()
        if shutil.which("mount") is None:
            pytest.skip("no mount command: the disk-full tests need a tmpfs")
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                           capture_output=True, text=True)
        if p.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs for the disk-full tests (as uid {os.geteuid()}): {p.stderr.strip()}")

    def free_bytes(self):
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self):
        """Writes the filler until the file system refuses even one more byte."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
                block = b"\0" * size
                while True:
                    try:
                        os.write(fd, block)
                    except OSError:
                        break
        finally:
            os.close(fd)
        assert self.free_bytes() < 4096, f"the disk still has {self.free_bytes()} bytes free after filling"

    def empty(self):
        self.filler.unlink()

    def unmount(self):
        if subprocess.run(["umount", str(self.path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


@pytest.fixture
def disk(tmp_path):
    """A 24 MiB tmpfs: room for the ledger and its WAL, and small enough to fill in milliseconds."""
    d = SmallDisk(tmp_path / "disk", "24m")
    try:
        yield d
    finally:
        d.unmount()


def health(server):
    r = raw_request(server.port, "GET", "/health", timeout=10)
    return r.status_code, r.json()


def metrics(server):
    r = raw_request(server.port, "GET", "/metrics", timeout=10)
    assert r.status_code == 200, r.text
    return parse_prometheus(r.text)


def wait_healthy(server, timeout):
    """Polls /health (and nothing else, so that no request repairs the state under test) until it
    answers 200; returns the last answer."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        last = health(server)
        if last[0] == 200:
            return last
        time.sleep(0.1)
    return last


def decrypt(server, data, record_id):
    """A record made with --api-key, so sealed to the data directory's operator account."""
    return json.loads(cli("ledger", "decrypt", record_id, "--account", data / "operator.json",
                          "--url", server.base_url).stdout)


def wait_recorded(server, record_id, timeout=15):
    wait_for(lambda: raw_request(server.port, "GET", f"/v1/ledger/records/{record_id}").status_code == 200,
             timeout, f"record {record_id} in the ledger")


def verify_offline(data):
    """`verity ledger verify` on a data directory no server holds: ok, and no write-ahead rows left."""
    p = cli("ledger", "verify", "--data-dir", data, check=False)
    assert p.returncode == 0 and p.stdout.startswith("ok: "), f"ledger verify exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    assert "written ahead" not in p.stdout, f"write-ahead rows are left after a clean stop: {p.stdout}"
    return p.stdout


def stop(server):
    rc = server.stop(timeout=20)
    assert rc == 0, f"verity serve should exit 0 on SIGTERM; got {rc}. Log:\n{server.log_tail()}"


def kill9(server):
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    server.log_file.close()


def chat(prompt, max_tokens, stream, **kw):
    return {"model": MODEL_ID, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": 0, "stream": stream, **kw}


def completion(prompt, max_tokens, stream, **kw):
    return {"model": MODEL_ID, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": stream, **kw}


FOUR_KINDS = [(CHAT, chat, False), (CHAT, chat, True), (COMPLETIONS, completion, False), (COMPLETIONS, completion, True)]


def refused_or_recorded(exchanges):
    """Each exchange made while the disk was full: a 503 `ledger_unavailable` with Retry-After and
    not one token, or else an answer whose record must be found once there is space. Returns the
    latter."""
    must_be_recorded = []
    for ex in exchanges:
        if ex.status == 503:
            assert not ex.is_stream and not ex.tokens(), f"a 503 after tokens were sent: {ex.describe()}"
            err = ex.json()["error"]
            assert err["code"] == "ledger_unavailable", ex.describe()
            assert int(ex.headers.get("retry-after", "0")) > 0, f"503 without a positive Retry-After: {ex.headers}"
        else:
            must_be_recorded.append(ex)
    return must_be_recorded


def tree_size(server):
    return raw_request(server.port, "GET", "/v1/ledger/head").json()["tree_size"]


def records_since(server, data, start):
    """The records appended at or after leaf `start`, decrypted, oldest first."""
    size = tree_size(server)
    if size <= start:
        return []
    entries = raw_request(server.port, "GET", f"/v1/ledger/entries?start={start}&limit={size - start}").json()["entries"]
    return [decrypt(server, data, e["record_id"]) for e in entries]


def prompt_of(ex):
    body = ex.request_body
    return body["messages"][-1]["content"] if "messages" in body else body["prompt"]


def text_of(ex):
    """What the client got of the answer: the streamed text, or a non-streaming answer's text."""
    if ex.is_stream:
        return ex.text()
    if ex.status != 200:
        return ""
    choice = ex.json()["choices"][0]
    return (choice.get("message") or {}).get("content") or choice.get("text") or ""


def assert_recorded(server, data, ex, since=0):
    """An answer a client got (or part of it) is in the ledger: completed, beginning with what the
    client got, or interrupted with a durable part that the client's text begins with. A response
    that names no record id (a 500) is found by its prompt among the records since leaf `since`."""
    rid = ex.record_id()
    if rid:
        wait_recorded(server, rid)
        record = decrypt(server, data, rid)
    else:
        found = wait_for(lambda: [r for r in records_since(server, data, since) if r["prompt"] == prompt_of(ex)],
                         15, f"a record with the prompt of {ex.describe()}")
        assert len(found) == 1, found
        record = found[0]
    assert record["prompt"] == prompt_of(ex)
    got = text_of(ex)
    if record["finish_reason"] == "interrupted":
        assert got.startswith(record["response"]), (record["response"], got)
    else:
        assert record["response"].startswith(got), (record, got)
    return record


def error_lines(server, pattern):
    return [l for l in ERROR_LINE.findall(server.log_tail(2_000_000)) if re.search(pattern, l)]


# ---------------------------------------------------------------------------------------------
# 1. A full disk


def test_full_disk_refuses_before_any_token_and_health_recovers_when_space_returns(disk, tmp_path):
    """--ledger-min-free 1M on a 24 MiB disk filled to the brim: every kind of completion is a 503
    `ledger_unavailable` before any token; /health is 503 `degraded`; the refusals are counted and
    logged at error level; once the filler is deleted /health is 200 again without any other
    request (a load balancer that follows /health sends none), a completion works, and the
    ledger verifies."""
    data = disk.path / "data"
    server = VerityServer(["--data-dir", data, "--ledger-min-free", "1M", "--seal-interval", "0.5"], tmp_path / "serve.log")
    try:
        before = RawExchange(server.port, CHAT, chat("Say hi.", 3, False)).wait()
        assert before.status == 200, before.describe()
        failures0 = metric_sum(metrics(server), "verity_ledger_write_failures_total")

        disk.fill()
        status, body = health(server)
        assert status == 503 and body.get("status") == "degraded" and body.get("reason"), (status, body)
        exchanges = [RawExchange(server.port, path, make(f"Disk full, request {i}.", 16, stream)).wait(60)
                     for i, (path, make, stream) in enumerate(FOUR_KINDS)]
        answered = refused_or_recorded(exchanges)
        status, body = health(server)
        assert status == 503 and body["status"] == "degraded", (status, body)
        samples = metrics(server)
        assert metric_sum(samples, "verity_ledger_healthy") == 0
        refusals = sum(1 for ex in exchanges if ex.status == 503)
        assert metric_sum(samples, "verity_ledger_write_failures_total") >= failures0 + refusals, samples
        if refusals:
            assert error_lines(server, r"bytes are free|disk is full|space"), \
                f"no error-level ledger line naming the lack of space:\n{server.log_tail()}"

        disk.empty()
        recovered = wait_healthy(server, 6)  # nothing but /health until it says ok
        for ex in answered:
            assert_recorded(server, data, ex)
        after = RawExchange(server.port, COMPLETIONS, completion("After the disk was freed:", 3, True)).wait()
        assert after.status == 200 and after.has_done() and after.tokens(), after.describe()
        assert wait_healthy(server, 5)[0] == 200
    finally:
        stop(server)
    verify_offline(data)
    assert recovered[0] == 200, (
        f"/health should be 200 once the disk has space again and nothing is spooled; 6 s after the filler was "
        f"deleted it still answered {recovered} (it recovered only after a completion succeeded, so a load "
        f"balancer that routes by /health would never send this node traffic again)")


def test_stream_and_request_failing_mid_answer_are_not_acknowledged_and_are_written_later(disk, tmp_path):
    """The disk fills while a chat streams and a non-streaming completion generates: the stream
    ends with an error event, no [DONE] and no proper end; the other request is a 500. Both
    completed records are spooled (metrics, /health, error lines) and written once the filler
    is deleted: completed, with what the stream's client saw; then /health is 200 again and the
    ledger verifies with no write-ahead rows left."""
    data = disk.path / "data"
    server = VerityServer(["--data-dir", data, "--ledger-min-free", "1M", "--seal-interval", "0.5"], tmp_path / "serve.log")
    try:
        failures0 = metric_sum(metrics(server), "verity_ledger_write_failures_total")
        size0 = tree_size(server)
        stream = RawExchange(server.port, CHAT, chat("Tell me a long story about a lighthouse.", 400, True, logit_bias=EOS_BIAS))
        whole = RawExchange(server.port, COMPLETIONS, completion("The history of the lighthouse", 400, False, logit_bias=EOS_BIAS))
        wait_for(lambda: len(stream.tokens()) >= 5, 60, "the stream's first tokens")
        disk.fill()
        at_fill = len(stream.tokens())
        stream.wait(180)
        whole.wait(180)

        assert stream.status == 200 and len(stream.tokens()) > at_fill, \
            f"the stream should go on generating after the disk filled: {stream.describe()}"
        assert stream.error_events(), f"a stream whose record could not be stored must end with an error event: {stream.describe()}"
        assert not stream.has_done(), f"[DONE] acknowledges an answer that was not recorded: {stream.describe()}"
        assert not stream.ended_properly, "the connection should end with the stream (no terminating chunk)"
        assert not any("verity" in c for _, c in stream.chunks()), "a receipt stub for an unrecorded answer"
        assert whole.status == 500, f"a non-streaming answer that could not be recorded must be a 500: {whole.describe()}"
        assert whole.json()["error"]["message"] and "choices" not in whole.json()

        status, body = health(server)
        assert status == 503 and body["status"] == "degraded" and "wait in memory" in body["reason"], (status, body)
        samples = metrics(server)
        assert metric_sum(samples, "verity_ledger_spooled_records") >= 2, samples
        assert metric_sum(samples, "verity_ledger_healthy") == 0
        assert metric_sum(samples, "verity_ledger_write_failures_total") >= failures0 + 2
        lines = error_lines(server, r"spooled")
        assert len(lines) >= 2 and all("full" in l for l in lines), \
            f"expected an error line per spooled record, naming the cause:\n{server.log_tail()}"

        disk.empty()
        status, body = wait_healthy(server, 10)
        assert status == 200 and body == {"status": "ok"}, f"/health after the spool should have drained: {body}"
        samples = metrics(server)
        assert metric_sum(samples, "verity_ledger_spooled_records") == 0 and metric_sum(samples, "verity_ledger_healthy") == 1
        record = assert_recorded(server, data, stream)
        assert record["finish_reason"] == "length" and record["completion_tokens"] == 400, \
            {k: record[k] for k in ("finish_reason", "completion_tokens")}
        other = assert_recorded(server, data, whole, since=size0)
        assert other["finish_reason"] == "length" and other["completion_tokens"] == 400, other
        assert len(records_since(server, data, size0)) == 2
    finally:
        stop(server)
    verify_offline(data)


def test_write_ahead_failure_is_a_503_and_kill_9_while_spooled_recovers_interrupted(disk, tmp_path):
    """--ledger-min-free 0, so the free-space check passes and the write-ahead write itself fails:
    each kind of request on the full disk is a 503 before any token. A stream whose disk filled
    after 1.5 s of tokens ends without [DONE]; the server is killed (-9) while its completed
    record is only in memory; after freeing space the next start recovers the write-ahead record
    as `interrupted`, with its prompt and the durable part of the answer."""
    data = disk.path / "data"
    server = VerityServer(["--data-dir", data, "--ledger-min-free", "0", "--seal-interval", "0.5"], tmp_path / "serve-1.log")
    killed = False
    try:
        prompt = "Tell me a long story about a lighthouse keeper."
        stream = RawExchange(server.port, CHAT, chat(prompt, 400, True, logit_bias=EOS_BIAS))
        first = wait_for(lambda: stream.tokens()[:1], 60, "the stream's first token")[0][0]
        wait_for(lambda: stream.tokens()[-1][0] - first >= 1.5, 60, "1.5 s of the stream's tokens")
        disk.fill()
        stream.wait(180)
        assert stream.error_events() and not stream.has_done(), stream.describe()

        exchanges = [RawExchange(server.port, path, make(f"Disk full, request {i}.", 16, stream_)).wait(60)
                     for i, (path, make, stream_) in enumerate(FOUR_KINDS)]
        answered = refused_or_recorded(exchanges)
        status, body = health(server)
        assert status == 503 and body["status"] == "degraded", (status, body)
        assert metric_sum(metrics(server), "verity_ledger_write_failures_total") >= 1 + sum(ex.status == 503 for ex in exchanges)
        assert error_lines(server, r"could not write ahead .*full"), \
            f"no error line for the failed write-ahead writes:\n{server.log_tail()}"
        kill9(server)
        killed = True
    finally:
        if not killed:
            stop(server)

    disk.empty()
    server = VerityServer(["--data-dir", data, "--ledger-min-free", "1M", "--seal-interval", "0.5"], tmp_path / "serve-2.log")
    try:
        assert "recovered 1 interrupted records" in server.log_tail(), server.log_tail()
        record = decrypt(server, data, stream.record_id())
        assert record["finish_reason"] == "interrupted" and record["prompt"] == prompt, record
        assert record["response"] and stream.text().startswith(record["response"]), \
            (record["response"], stream.text())
        assert 0 < record["completion_tokens"] < len(stream.tokens())
        for ex in answered:
            assert_recorded(server, data, ex)
    finally:
        stop(server)
    verify_offline(data)


# ---------------------------------------------------------------------------------------------
# 2. kill -9 with eight streams in flight


STORY_PROMPTS = [f"Tell me a long story about {topic}." for topic in (
    "a lighthouse", "a dragon", "a submarine", "a baker", "a comet", "a violin", "a desert", "a robot")]


def test_kill_9_with_eight_streams_recovers_them_as_interrupted(tmp_path):
    """Two short requests complete; eight long streams each get 3 s of tokens; kill -9. The next
    start recovers exactly eight write-ahead records: the eight streams, `interrupted`, each with
    its prompt and a durable part of what its client saw that covers at least everything it had
    received 2 s before the kill (refreshed about every second); the two completed records keep
    their finish reasons and texts; the ledger verifies."""
    data = tmp_path / "data"
    server = VerityServer(["--data-dir", data, "--max-sequences", "8"], tmp_path / "serve-1.log")
    killed = False
    try:
        short = [RawExchange(server.port, CHAT, chat("Name a colour.", 4, False)).wait(),
                 RawExchange(server.port, COMPLETIONS, completion("One, two,", 3, True)).wait()]
        for ex in short:
            assert ex.status == 200 and (not ex.is_stream or ex.has_done()), ex.describe()
        streams = [RawExchange(server.port, CHAT, chat(p, 300, True, logit_bias=EOS_BIAS)) for p in STORY_PROMPTS]

        def ready(s):
            tokens = s.tokens()
            return len(tokens) >= 3 and tokens[-1][0] - tokens[0][0] >= 3
        wait_for(lambda: all(ready(s) for s in streams), 90, "3 s of tokens on every stream")
        assert not any(s.done.is_set() for s in streams), [s.describe() for s in streams if s.done.is_set()]
        killed_at = time.monotonic()
        kill9(server)
        killed = True
    finally:
        if not killed:
            stop(server)
    for s in streams:
        s.wait(30)
        assert not s.has_done(), s.describe()

    server = VerityServer(["--data-dir", data], tmp_path / "serve-2.log")
    try:
        assert "recovered 8 interrupted records" in server.log_tail(), server.log_tail()
        size = raw_request(server.port, "GET", "/v1/ledger/head").json()["tree_size"]
        entries = raw_request(server.port, "GET", f"/v1/ledger/entries?start={size - 8}&limit=8").json()["entries"]
        newest = {e["record_id"] for e in entries}
        assert newest == {s.record_id() for s in streams}, "the 8 newest records should be the 8 streams"
        for s in streams:
            record = decrypt(server, data, s.record_id())
            assert record["finish_reason"] == "interrupted", record
            assert record["prompt"] == s.request_body["messages"][0]["content"]
            assert record["response"], f"no durable part of the answer after 3 s of tokens: {record}"
            assert s.text().startswith(record["response"]) or record["response"].startswith(s.text()), \
                (record["response"], s.text())
            # Refreshed about every second: what the client had 2 s before the kill is durable.
            early = "".join(text for t, text in s.tokens() if t <= killed_at - 2)
            assert early and record["response"].startswith(early), \
                f"the write-ahead record lags more than 2 s behind the stream: {record['response']!r} vs {early!r}"
            assert record["completion_tokens"] > 0
        for ex in short:
            rid = ex.record_id()
            record = decrypt(server, data, rid)
            if ex.is_stream:
                finish = [c["choices"][0]["finish_reason"] for _, c in ex.chunks() if c.get("choices")][-1]
            else:
                finish = ex.json()["choices"][0]["finish_reason"]
            assert record["finish_reason"] == finish and record["finish_reason"] != "interrupted", (record, finish)
            assert record["response"] == (ex.text() if ex.is_stream else ex.json()["choices"][0]["message"]["content"])
    finally:
        stop(server)
    verify_offline(data)


def test_answers_that_waited_in_the_queue_record_no_spurious_ledger_failures(tmp_path):
    """Healthy storage, no fault: one sequence at a time, so one-token answers wait over a second
    in the queue and their single token is due a write-ahead refresh just as the answer ends.
    That refresh must not be refused as a duplicate of the completed record and counted,
    logged, and reported by /health as a failed ledger write. Three rounds of 60."""
    data = tmp_path / "data"
    server = VerityServer(["--data-dir", data, "--max-sequences", "1"], tmp_path / "serve.log")
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}

    def ask(prompt, max_tokens):
        body = json.dumps(completion(prompt, max_tokens, False, logit_bias=EOS_BIAS))
        return raw_request(server.port, "POST", COMPLETIONS, headers, body, timeout=120)

    try:
        for round_ in range(3):
            with ThreadPoolExecutor(61) as pool:
                long = pool.submit(ask, f"Round {round_}: a long story", 100)
                time.sleep(0.2)
                short = [pool.submit(ask, f"Round {round_}, question {i}:", 1) for i in range(60)]
                answers = [f.result() for f in [long] + short]
            assert all(r.status_code == 200 for r in answers), [r.text for r in answers if r.status_code != 200][:3]
        failures = metric_sum(metrics(server), "verity_ledger_write_failures_total")
        lines = ERROR_LINE.findall(server.log_tail(2_000_000))
        now = health(server)
        assert failures == 0 and not lines, (
            f"{failures:.0f} ledger write failures counted on a healthy disk (/health now: {now}); "
            f"{len(lines)} error lines, e.g.:\n  " + "\n  ".join(lines[:3]))
        assert now == (200, {"status": "ok"})
    finally:
        stop(server)
    verify_offline(data)


# ---------------------------------------------------------------------------------------------
# 3. Descriptors and slow clients


IDLE, SLOWLORIS = 4000, 1000


@pytest.fixture
def many_descriptors():
    """Lets this process open the 5,000 sockets the flood needs."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = IDLE + SLOWLORIS + 1000
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), max(hard, want)))
    except (ValueError, OSError) as e:
        pytest.skip(f"cannot raise this process's descriptor limit to {want} (soft {soft}, hard {hard}): {e}")
    yield hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


def closed_by_server(sock):
    """Whether the server closed (or reset) this connection; never waits."""
    sock.setblocking(False)
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


@pytest.mark.parametrize("server_hard", ["inherited", 1024], ids=["soft-1024-raised", "hard-1024"])
def test_idle_and_slowloris_flood_leaves_the_server_responsive(tmp_path, many_descriptors, server_hard):
    """Started with a soft descriptor limit of 1024 (and the hard limit this machine has, which
    the server raises to; or a hard limit of 1024 too, which it cannot), the server takes 4,000
    idle connections and 1,000 that send half a request head, then answers a first /health
    within 3 s (it waits in the kernel behind the flood) and the next in under 100 ms (median of
    20, none over 1 s), and a chat; it logs the limit and the evictions, which
    closed the oldest idle connections first, and counts them in /metrics."""
    hard = many_descriptors if server_hard == "inherited" else server_hard
    server = VerityServer(["--data-dir", tmp_path / "data"], tmp_path / "serve.log",
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard)))
    socks = []
    try:
        m = re.search(r"descriptors: limit (\d+) \(hard (\d+)\); up to (\d+) connections", server.log_tail(100_000))
        assert m, f"the server should log its descriptor limit:\n{server.log_tail()}"
        soft_seen, hard_seen, cap = map(int, m.groups())
        assert hard_seen == hard and soft_seen == hard, f"soft limit should be raised to the hard {hard}: {m.group(0)}"
        assert cap <= min(2048, soft_seen - 64), m.group(0)

        started = time.monotonic()
        for i in range(IDLE + SLOWLORIS):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            if i >= IDLE:
                s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n")
            socks.append(s)
        last_opened = time.monotonic()
        opened = last_opened - started

        # The first request queues in the kernel behind the 5,000 connections opened before it
        # (accept is first come, first served): it measures how fast the server drains the flood
        # (0.7-1.3 s on a 2-core machine, the same before and after the fleet work). The next 20
        # measure how it answers while holding it.
        t = time.perf_counter()
        r = raw_request(server.port, "GET", "/health", timeout=10)
        drained = time.perf_counter() - t
        assert r.status_code == 200 and drained < 3.0, f"the first /health behind the flood took {drained:.2f} s: {r.text}"
        times = []
        for _ in range(20):
            t = time.perf_counter()
            r = raw_request(server.port, "GET", "/health", timeout=10)
            times.append(time.perf_counter() - t)
            assert r.status_code == 200, r.text
        assert statistics.median(times) < 0.1 and max(times) < 1.0, \
            f"/health under the flood: median {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms"
        r = raw_request(server.port, "POST", CHAT, {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
                        json.dumps(chat("Say hi.", 2, False)), timeout=60)
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] is not None, r.text

        time.sleep(0.5)
        closed = [closed_by_server(s) for s in socks]
        assert all(closed[:1000]), f"the oldest idle connections should be the ones closed: {closed[:1000].count(False)} of the first 1000 still open"
        if time.monotonic() - last_opened < 8:  # before the 10 s head timeout closes the slowloris ones anyway
            newest = min(400, cap // 2)
            assert not any(closed[-newest:]), f"{sum(closed[-newest:])} of the newest {newest} connections were closed, not the oldest"
        assert sum(closed) >= IDLE + SLOWLORIS - cap, f"only {sum(closed)} of {IDLE + SLOWLORIS} closed with a cap of {cap}"

        samples = metrics(server)
        assert metric_sum(samples, "verity_connections_evicted_total") >= IDLE + SLOWLORIS - cap, samples
        assert metric_sum(samples, "verity_open_connections") <= cap
        assert re.search(r"connections: \d+ open \(cap %d\); closed \d+ idle ones" % cap, server.log_tail(2_000_000)), \
            f"no log line about the evictions:\n{server.log_tail()}"
        print(f"\n{IDLE + SLOWLORIS} connections opened in {opened:.1f} s; first /health {drained * 1000:.0f} ms; "
              f"then median {statistics.median(times) * 1000:.1f} ms, "
              f"max {max(times) * 1000:.1f} ms; cap {cap}; {sum(closed)} closed")
    finally:
        for s in socks:
            s.close()
        stop(server)


def test_a_connection_that_sends_no_whole_request_head_is_closed_after_10_s(tmp_path):
    """A slowloris connection (half a head) and a silent one are closed within 10 s (and not
    much earlier), while the cap is far away."""
    server = VerityServer(["--data-dir", tmp_path / "data"], tmp_path / "serve.log")
    try:
        silent = socket.create_connection(("127.0.0.1", server.port), timeout=20)
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=20)
        slow.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        ends = {}
        for name, s in (("silent", silent), ("slowloris", slow)):
            try:
                while s.recv(4096):
                    pass
            except OSError:
                pass
            ends[name] = time.monotonic() - started
            s.close()
        for name, t in ends.items():
            assert 8 <= t <= 13, f"the {name} connection was closed after {t:.1f} s, expected about 10 s"
    finally:
        stop(server)
