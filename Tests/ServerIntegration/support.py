"""Helpers for the `verity serve` integration tests: the server process, an HTTP transport that
records every response so its body can be checked against OpenAI's published schemas, SSE and
Prometheus parsing, and the OpenAI error-shape assertion."""
import gzip, json, os, re, select, signal, socket, subprocess, threading, time, zlib
from pathlib import Path

import jsonschema
import openai._base_client as _openai_base_client

# The HTTP library the installed openai SDK is built on: `httpx2` from openai 3.x, `httpx` before.
# Its Client is what `OpenAI(http_client=...)` accepts, so raw calls use the same one.
http = getattr(_openai_base_client, "httpx2", None) or getattr(_openai_base_client, "httpx")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
MODEL_ID = "SmolLM2-135M-Instruct.Q4_1"
API_KEY = "test-key"
CTX = 1024
# SmolLM2's end-of-generation tokens (<|endoftext|> = 0, <|im_end|> = 2, checked against the GGUF
# vocabulary with llama.cpp's tokenizer). A logit_bias of -100 on both forces full-length outputs.
EOS_BIAS = {"0": -100, "2": -100}

# ---------------------------------------------------------------------------------------------
# OpenAI schemas

_SCHEMAS = json.loads((HERE / "openai-schemas.json").read_text(encoding="utf-8"))
_VALIDATORS = {}


def schema_validator(name):
    """A Draft 2020-12 validator for `#/components/schemas/<name>`; the root document carries the
    components, so the schema's internal `#/components/schemas/...` references resolve."""
    if name not in _VALIDATORS:
        if name not in _SCHEMAS["components"]["schemas"]:
            raise KeyError(f"{name} is not in openai-schemas.json (rerun scripts/extract-openai-schemas.py)")
        root = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                "$ref": f"#/components/schemas/{name}", "components": _SCHEMAS["components"]}
        jsonschema.Draft202012Validator.check_schema(root)
        _VALIDATORS[name] = jsonschema.Draft202012Validator(root)
    return _VALIDATORS[name]


def schema_errors(name, instance):
    """Human-readable schema violations (empty list: valid)."""
    out = []
    for e in sorted(schema_validator(name).iter_errors(instance), key=lambda e: list(e.absolute_path)):
        best = jsonschema.exceptions.best_match([e])
        out.append(f"{name} at /{'/'.join(map(str, best.absolute_path))}: {best.message}")
    return out


def assert_schema(name, instance, context=""):
    errors = schema_errors(name, instance)
    assert not errors, (f"{context}: " if context else "") + "response violates OpenAI schema:\n  " + \
        "\n  ".join(errors) + "\nbody: " + json.dumps(instance)[:2000]


# Verity's own endpoints (not in OpenAI's API): the shapes the contract promises.
VERITY_SCHEMAS = {
    "tokenize": {"type": "object", "required": ["tokens", "count", "max_model_len"], "properties": {
        "tokens": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "count": {"type": "integer", "minimum": 0}, "max_model_len": {"type": "integer", "minimum": 1}}},
    "detokenize": {"type": "object", "required": ["prompt"], "properties": {"prompt": {"type": "string"}}},
    "template": {"type": "object", "required": ["prompt"], "properties": {"prompt": {"type": "string"}}},
}

# ---------------------------------------------------------------------------------------------
# Recording transport: every response a test gets (through the SDK or raw) is kept, body included,
# and checked against the schema for its endpoint when the test ends (fixture `recorded`).


class Exchange:
    def __init__(self, request):
        self.method = request.method
        self.path = request.url.path
        self.status = None
        self.headers = {}
        self.body = bytearray()
        self.complete = False  # the whole body was read (not cut short by the client)

    @property
    def is_sse(self):
        return self.headers.get("content-type", "").startswith("text/event-stream")

    def decoded_body(self):
        data = bytes(self.body)
        enc = self.headers.get("content-encoding", "")
        if enc == "gzip":
            data = gzip.decompress(data)
        elif enc == "deflate":
            data = zlib.decompress(data)
        return data


class _TeeStream(http.SyncByteStream):
    def __init__(self, inner, exchange):
        self.inner, self.exchange = inner, exchange

    def __iter__(self):
        for chunk in self.inner:
            self.exchange.body += chunk
            yield chunk
        self.exchange.complete = True

    def close(self):
        self.inner.close()


class RecordingTransport(http.HTTPTransport):
    def __init__(self, log, lock, **kw):
        super().__init__(**kw)
        self.log, self.lock = log, lock

    def handle_request(self, request):
        response = super().handle_request(request)
        ex = Exchange(request)
        ex.status = response.status_code
        ex.headers = {k.lower(): v for k, v in response.headers.items()}
        with self.lock:
            self.log.append(ex)
        return http.Response(status_code=response.status_code, headers=response.headers,
                             stream=_TeeStream(response.stream, ex), extensions=response.extensions,
                             request=request)


class Recorder:
    def __init__(self):
        self.log, self.lock = [], threading.Lock()

    def client(self, base_url, **kw):
        kw.setdefault("timeout", 120)
        return http.Client(base_url=base_url, transport=RecordingTransport(self.log, self.lock), **kw)

    def take(self):
        with self.lock:
            out, self.log[:] = list(self.log), []
        return out


def sse_events(data, complete_only=True):
    """`data:` payloads of an SSE body, in order. A trailing event without its blank-line terminator
    (a stream the client cut short) is dropped."""
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    text = text.replace("\r\n", "\n")
    blocks = text.split("\n\n")
    if complete_only and not text.endswith("\n\n"):
        blocks = blocks[:-1]
    out = []
    for block in blocks:
        lines = [l[5:].lstrip(" ") if l.startswith("data:") else None for l in block.split("\n")]
        payload = [l for l in lines if l is not None]
        if payload:
            out.append("\n".join(payload))
    return out


RESPONSE_SCHEMAS = [
    (re.compile(r"^/v1/chat/completions$"), "CreateChatCompletionResponse", "CreateChatCompletionStreamResponse"),
    (re.compile(r"^/v1/completions$"), "CreateCompletionResponse", "CreateCompletionResponse"),
    (re.compile(r"^/v1/models$"), "ListModelsResponse", None),
    (re.compile(r"^/v1/models/.+$"), "Model", None),
    (re.compile(r"^/v1/responses$"), "Response", "ResponseStreamEvent"),
    (re.compile(r"^/v1/responses/[^/]+$"), "Response", None),
]
# Streams that end on their last event rather than `data: [DONE]` (the Responses API's).
NO_DONE_PATHS = {"/v1/responses"}
VERITY_PATHS = {"/v1/tokenize": "tokenize", "/v1/detokenize": "detokenize", "/v1/chat/template": "template"}


def _completion_chunk_as_response(chunk):
    """OpenAI's schema has no chunk type for the legacy completions stream: it says chunks share
    CreateCompletionResponse, whose finish_reason is a non-null enum, yet OpenAI (and every
    compatible server) sends `"finish_reason": null` on all chunks but the last. Validate such a chunk
    with the null replaced by "length" (any enum member), so only that one known discrepancy is
    excused; a missing finish_reason still fails."""
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        return chunk
    fixed = [dict(c, finish_reason="length") if isinstance(c, dict) and "finish_reason" in c
             and c["finish_reason"] is None else c for c in choices]
    return dict(chunk, choices=fixed)


def check_exchange(ex):
    """Schema violations of one recorded response (empty: fine)."""
    where = f"{ex.method} {ex.path} -> {ex.status}"
    if ex.path == "/v1/messages":
        return check_messages_exchange(ex, where)
    if ex.method == "DELETE":
        return []
    known = ex.path in VERITY_PATHS or any(p.match(ex.path) for p, _, _ in RESPONSE_SCHEMAS)
    if not known:
        return []
    if ex.status != 200:
        if not ex.complete:
            return []
        try:
            body = json.loads(ex.decoded_body())
        except ValueError:
            return [f"{where}: error body is not JSON: {bytes(ex.body)[:300]!r}"]
        return [f"{where}: {e}" for e in schema_errors("ErrorResponse", body)]
    if ex.path in VERITY_PATHS:
        if not ex.complete:
            return []
        try:
            body = json.loads(ex.decoded_body())
        except ValueError:
            return [f"{where}: body is not JSON"]
        v = jsonschema.Draft202012Validator(VERITY_SCHEMAS[VERITY_PATHS[ex.path]])
        return [f"{where}: {e.message}" for e in v.iter_errors(body)]
    for pattern, body_schema, chunk_schema in RESPONSE_SCHEMAS:
        if not pattern.match(ex.path):
            continue
        problems = []
        if ex.is_sse:
            if chunk_schema is None:
                return [f"{where}: unexpected event stream"]
            events = sse_events(ex.decoded_body())
            if ex.path in NO_DONE_PATHS:
                if "[DONE]" in events:
                    problems.append(f"{where}: this stream has no [DONE]")
            elif ex.complete and (not events or events[-1] != "[DONE]"):
                problems.append(f"{where}: stream does not end with 'data: [DONE]'")
            for i, ev in enumerate(events):
                if ev == "[DONE]":
                    if i != len(events) - 1:
                        problems.append(f"{where}: [DONE] before the end of the stream")
                    continue
                try:
                    chunk = json.loads(ev)
                except ValueError:
                    problems.append(f"{where}: event {i} is not JSON: {ev[:200]!r}")
                    continue
                if chunk_schema == "CreateCompletionResponse" and isinstance(chunk, dict):
                    chunk = _completion_chunk_as_response(chunk)
                problems += [f"{where} chunk {i}: {e}" for e in schema_errors(chunk_schema, chunk)]
        elif ex.complete:
            try:
                body = json.loads(ex.decoded_body())
            except ValueError:
                return [f"{where}: body is not JSON: {bytes(ex.body)[:300]!r}"]
            problems += [f"{where}: {e}" for e in schema_errors(body_schema, body)]
        return problems
    return []


def check_messages_exchange(ex, where):
    """Anthropic's Messages API, checked with Anthropic's own SDK types (pydantic, validating): the
    message, each stream event (named by its `event:` line, as the type says), and error bodies."""
    if not ex.complete:
        return []
    import anthropic.types as at
    import pydantic
    data = ex.decoded_body()
    try:
        if ex.status != 200:
            body = json.loads(data)
            pydantic.TypeAdapter(at.ErrorResponse).validate_python(body)
            return [] if body.get("type") == "error" else [f"{where}: error body without type 'error'"]
        if not ex.is_sse:
            pydantic.TypeAdapter(at.Message).validate_python(json.loads(data))
            return []
        problems = []
        text = data.decode("utf-8").replace("\r\n", "\n")
        for i, block in enumerate(b for b in text.split("\n\n") if b.strip()):
            lines = block.split("\n")
            name = next((l[6:].strip() for l in lines if l.startswith("event:")), None)
            payload = json.loads("\n".join(l[5:].lstrip(" ") for l in lines if l.startswith("data:")))
            if name != payload.get("type"):
                problems.append(f"{where} event {i}: named {name!r} but of type {payload.get('type')!r}")
            if name == "error":
                pydantic.TypeAdapter(at.ErrorResponse).validate_python(payload)
            else:
                pydantic.TypeAdapter(at.RawMessageStreamEvent).validate_python(payload)
        return problems
    except (ValueError, pydantic.ValidationError) as e:
        return [f"{where}: {e}"[:2000]]


# ---------------------------------------------------------------------------------------------
# Assertions and parsing


def assert_openai_error(resp, status, *, code=..., param=..., type_=...):
    """`resp` (an http Response) is an OpenAI-shaped error with this status (and code/param/type
    when given). Returns the `error` object."""
    body_text = resp.text
    assert resp.status_code == status, f"expected HTTP {status}, got {resp.status_code}: {body_text[:500]}"
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON: {body_text[:500]!r}")
    assert_schema("ErrorResponse", body, f"HTTP {status} error")
    err = body["error"]
    for key, kind in (("message", str), ("type", str)):
        assert isinstance(err.get(key), kind), f"error.{key} must be a string: {body}"
    for key in ("param", "code"):
        assert key in err and (err[key] is None or isinstance(err[key], str)), f"error.{key} must be string|null: {body}"
    assert err["message"], f"error.message is empty: {body}"
    if code is not ...:
        assert err["code"] == code, f"expected error.code {code!r}, got {err['code']!r}: {body}"
    if param is not ...:
        assert err["param"] == param, f"expected error.param {param!r}, got {err['param']!r}: {body}"
    if type_ is not ...:
        assert err["type"] == type_, f"expected error.type {type_!r}, got {err['type']!r}: {body}"
    return err


_PROM_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)(\s+\S+)?$')
_PROM_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')


def parse_prometheus(text):
    """[(name, {label: value}, float)] of every sample in a Prometheus text exposition."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _PROM_LINE.match(line)
        assert m, f"unparseable Prometheus line: {line!r}"
        labels = dict(_PROM_LABEL.findall(m.group(2) or ""))
        out.append((m.group(1), labels, float(m.group(3))))
    return out


def metric_sum(samples, name):
    return sum(v for n, _, v in samples if n == name)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raw_post_large(port, path, body, headers, chunk=256 * 1024, timeout=30):
    """POST `body` over a plain socket, stopping the upload as soon as the server answers (a
    server that rejects an oversized body early may close the connection mid-upload, and an
    HTTP client that insists on sending everything first would then lose the response).
    Returns (status, headers dict, body bytes)."""
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}",
            "Connection: close"] + [f"{k}: {v}" for k, v in headers.items()]
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sent = 0
        while sent < len(body):
            readable, _, _ = select.select([s], [], [], 0)
            if readable:
                break
            try:
                sent += s.send(body[sent:sent + chunk])
            except (BrokenPipeError, ConnectionResetError):
                break
        data = bytearray()
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                part = s.recv(65536)
            except ConnectionResetError:
                break
            if not part:
                break
            data += part
            if b"\r\n\r\n" in data:
                hdr, _, rest = bytes(data).partition(b"\r\n\r\n")
                m = re.search(rb"(?im)^content-length:\s*(\d+)", hdr)
                if m and len(rest) >= int(m.group(1)):
                    break
    finally:
        s.close()
    assert data, "server sent no response to the oversized request (connection closed or reset with nothing)"
    hdr, _, rest = bytes(data).partition(b"\r\n\r\n")
    lines = hdr.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, rest


class DroppedConnection(AssertionError):
    """The server closed or reset the connection without a complete HTTP response."""


class RawResponse:
    def __init__(self, status, headers, body):
        self.status_code, self.headers, self.content = status, headers, body

    @property
    def text(self):
        return self.content.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content)


def raw_request_bytes(method, target, port, headers=None, body=b""):
    """The exact bytes `raw_request` writes: the request target as given (no normalization, no
    percent-encoding), then Host, Connection: close and Content-Length (when there is a body or
    the method is POST), then `headers`."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _parse_response(data):
    """(status, headers, body) of one complete HTTP/1.1 response in `data`, or None while incomplete."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        n = int(headers["content-length"])
        return (status, headers, rest[:n]) if len(rest) >= n else None
    if headers.get("transfer-encoding", "").lower() == "chunked":
        out, pos = bytearray(), 0
        while True:
            end = rest.find(b"\r\n", pos)
            if end < 0:
                return None
            size = int(rest[pos:end].split(b";")[0], 16)
            if size == 0:
                return status, headers, bytes(out)
            if len(rest) < end + 2 + size + 2:
                return None
            out += rest[end + 2:end + 2 + size]
            pos = end + 2 + size + 2
    if status in (204, 304) or 100 <= status < 200:
        return status, headers, b""
    return None  # body delimited by the connection's end


def raw_request(port, method, target, headers=None, body=b"", timeout=60):
    """One HTTP/1.1 request over a fresh socket with the request target sent byte for byte as
    given (an HTTP library would normalize `//v1/./models` or `%2F`). Returns a RawResponse;
    raises DroppedConnection if the server closes or resets the connection before a complete
    response."""
    data = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw_request_bytes(method, target, port, headers, body))
        while True:
            try:
                part = s.recv(65536)
            except (ConnectionResetError, BrokenPipeError) as e:
                raise DroppedConnection(f"{method} {target!r}: connection reset after {len(data)} bytes ({e})")
            if not part:
                break
            data += part
            parsed = _parse_response(bytes(data))
            if parsed and "content-length" in parsed[1] or parsed and "chunked" in parsed[1].get("transfer-encoding", ""):
                break
    parsed = _parse_response(bytes(data))
    if parsed is None:
        head, sep, rest = bytes(data).partition(b"\r\n\r\n")
        if sep and head.startswith(b"HTTP/1."):  # body up to the connection's end
            parsed = _parse_response(head + b"\r\nContent-Length: " + str(len(rest)).encode() + b"\r\n\r\n" + rest)
    if parsed is None:
        raise DroppedConnection(f"{method} {target!r}: the connection closed after {len(data)} bytes "
                                f"without a complete response: {bytes(data[:200])!r}")
    return RawResponse(*parsed)


# ---------------------------------------------------------------------------------------------
# The server process


def verity_binary():
    path = Path(os.environ.get("VERITY_BIN", ".build/release/verity"))
    if not path.is_absolute():
        path = REPO / path
    if not path.is_file() or not os.access(path, os.X_OK):
        raise AssertionError(
            f"verity binary not found at {path}. Build it first (swift build -c release) or set VERITY_BIN "
            f"to the binary's path (relative paths are relative to the repository root {REPO}).")
    return path


def cli(*args, check=True, timeout=120):
    """Runs `verity ARGS` (the binary under test); returns the completed process (text output)."""
    p = subprocess.run([str(verity_binary()), *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if check:
        assert p.returncode == 0, f"verity {' '.join(map(str, args))} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p


class VerityServer:
    """One `verity serve` process on a free loopback port; stderr goes to a log file."""

    def __init__(self, extra_args, log_path, ready_timeout=120, api_key=API_KEY, preexec_fn=None):
        """`api_key=None` starts a server that requires no key (unless the data directory holds
        account keys). `preexec_fn` runs in the child before the binary starts (e.g. to lower its
        descriptor limit)."""
        self.bin = verity_binary()
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path)
        # Each server gets its own ledger data directory unless the test names one: a data
        # directory is locked by the server using it.
        data_dir = [] if "--data-dir" in extra_args else ["--data-dir", str(self.log_path.parent / "data")]
        key = ["--api-key", api_key] if api_key is not None else []
        self.args = [str(self.bin), "serve", "--host", "127.0.0.1", "--port", str(self.port)] + key + \
            ["--ctx", str(CTX), "--threads", "2"] + data_dir + list(map(str, extra_args))
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=REPO, preexec_fn=preexec_fn)
        self._wait_ready(ready_timeout)

    def log_tail(self, n=4000):
        try:
            return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def _wait_ready(self, timeout):
        deadline, last = time.time() + timeout, None
        saw_loading = False
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"`{' '.join(self.args)}` exited with {self.proc.returncode} before "
                                     f"becoming ready. Log:\n{self.log_tail()}")
            try:
                r = http.get(self.base_url + "/health", timeout=5)
                last = (r.status_code, r.text[:200])
                if r.status_code == 200:
                    self.health_body = r.json()
                    self.saw_loading = saw_loading
                    return
                if r.status_code == 503:
                    saw_loading = True
                    assert r.json() == {"status": "loading"}, f"/health 503 body: {r.text!r}"
            except http.TransportError as e:
                last = repr(e)
            time.sleep(0.1)
        self.proc.kill()
        raise AssertionError(f"verity serve not ready within {timeout}s (last /health: {last}). Log:\n{self.log_tail()}")

    def stop(self, timeout=20):
        """SIGTERM, then wait; returns the exit status (None if it had to be killed)."""
        return stop_process(self.proc, self.log_file, timeout)


def stop_process(proc, log_file, timeout=20):
    """SIGTERM, then wait up to `timeout` s (then SIGKILL); closes the log file. Returns the exit
    status, or None if the process had to be killed."""
    killed = False
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            killed = True
    log_file.close()
    return None if killed else proc.returncode


# Short chat prompts of different lengths, for tests that compare answers alone and batched.
CHAT_PROMPTS = [
    "Name three fruits.",
    "What is the capital of Italy?",
    "Explain what a CPU does in one sentence.",
    "Write a haiku about snow.",
    "Give me a tip for learning to cook.",
    "Why is the sky blue?",
    "List the days of the week.",
    "Describe a cat to someone who has never seen one.",
]
