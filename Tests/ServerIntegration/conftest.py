"""Fixtures: one `verity serve` for the whole session (the model loads once), an OpenAI SDK client and
a raw HTTP client against it, and schema validation of every response a test received."""
import pytest
from openai import OpenAI

import support
from support import API_KEY, Recorder, VerityServer, check_exchange


def _start(tmp_path_factory, name, extra, **kw):
    log = tmp_path_factory.mktemp(name) / "verity-serve.log"
    return VerityServer(extra, log, **kw)


def _stop(server, session=None):
    rc = server.stop(timeout=20)
    if session is not None and session.testsfailed:
        # Stopped early (-x): an assertion here would bury the real failure under a teardown traceback.
        if rc != 0:
            print(f"\nnote: verity serve exit status after SIGTERM: {rc} (not checked, tests already failed)")
        return
    assert rc == 0, (f"verity serve should exit 0 within 20 s of SIGTERM; "
                     f"{'it had to be killed' if rc is None else f'exit status {rc}'}. Log:\n{server.log_tail()}")


@pytest.fixture(scope="session")
def server(tmp_path_factory, request):
    """`verity serve --api-key test-key --max-sequences 8 --ctx 1024 --threads 2`, default model.
    Started once for the session; SIGTERM at the end must make it exit 0 within 20 s."""
    s = _start(tmp_path_factory, "main", ["--max-sequences", "8"])
    yield s
    _stop(s, request.session)


@pytest.fixture(scope="session")
def start_server(tmp_path_factory, request):
    """Factory for extra servers with their own flags (e.g. a tiny queue); stopped by the caller via
    the returned stop function, or at session end. `start(name, extra, api_key=None)` starts one
    that requires no key."""
    started = []

    def start(name, extra, **kw):
        s = _start(tmp_path_factory, name, extra, **kw)
        started.append(s)
        return s, lambda: (started.remove(s), _stop(s, request.session))

    yield start
    for s in started:
        s.stop()


@pytest.fixture(scope="session")
def recorder():
    return Recorder()


@pytest.fixture(autouse=True)
def recorded(recorder):
    """After each test, every response it received on /v1/* must match OpenAI's schema for that
    endpoint (chat/completions bodies and each streamed chunk, models, errors)."""
    recorder.take()
    yield recorder
    problems = []
    for ex in recorder.take():
        problems += check_exchange(ex)
    assert not problems, "responses violating OpenAI's published schema:\n  " + "\n  ".join(problems[:40])


@pytest.fixture(scope="session")
def raw(server, recorder):
    """Raw HTTP client (the SDK's httpx flavour) with the API key, responses recorded."""
    with recorder.client(server.base_url, headers={"Authorization": f"Bearer {API_KEY}"}) as c:
        yield c


@pytest.fixture(scope="session")
def anon(server, recorder):
    """Raw HTTP client without credentials."""
    with recorder.client(server.base_url) as c:
        yield c


@pytest.fixture(scope="session")
def client(server, recorder):
    """The official OpenAI SDK pointed at the server; no retries, so a 429/5xx is seen as is."""
    http_client = recorder.client(server.base_url)
    c = OpenAI(base_url=server.base_url + "/v1", api_key=API_KEY, max_retries=0, timeout=120,
               http_client=http_client)
    yield c
    http_client.close()


@pytest.fixture(scope="session")
def model_id():
    return support.MODEL_ID


@pytest.fixture(scope="session")
def tokenize(raw, model_id):
    def tok(**body):
        r = raw.post("/v1/tokenize", json={"model": model_id, **body})
        assert r.status_code == 200, r.text
        return r.json()
    return tok
