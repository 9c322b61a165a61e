"""CORS (issue #26): `--cors-origin` lets pages on other origins call the API from a browser. A
headless Chromium loads a page from another port that streams a chat through the API; the same
page from an origin that is not allowed is refused by the browser. Preflights are answered only
for allowed origins and the API's own routes (never the admin routes), and never allow
credentials."""
import functools, http.server, socket, threading

import pytest

from support import API_KEY, MODEL_ID, http as httpx
from test_07_webchat import chrome

PAGE = """<!doctype html><meta charset="utf-8"><title>cors</title><pre id="out"></pre>
<script>
async function run(api, key) {
  const out = document.getElementById("out");
  try {
    const r = await fetch(api + "/v1/chat/completions", {method: "POST",
      headers: {"Authorization": "Bearer " + key, "Content-Type": "application/json"},
      body: JSON.stringify({model: "%s", messages: [{role: "user", content: "Say hi"}], max_tokens: 8, stream: true})});
    const reader = r.body.getReader(), decoder = new TextDecoder();
    let text = "", raw = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      raw += decoder.decode(value, {stream: true});
    }
    for (const line of raw.split("\\n")) {
      if (!line.startsWith("data: {")) continue;
      const chunk = JSON.parse(line.slice(6));
      for (const c of chunk.choices || []) text += (c.delta && c.delta.content) || "";
    }
    out.textContent = "OK " + r.status + " " + r.headers.get("X-Verity-Record") + " " + JSON.stringify(text);
  } catch (e) {
    out.textContent = "ERR " + e;
  }
}
</script>""" % MODEL_ID


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """The page, served from two origins: one the server allows, one it does not."""
    root = tmp_path_factory.mktemp("cors-page")
    (root / "index.html").write_text(PAGE)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    servers = []
    for _ in range(2):
        s = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
        threading.Thread(target=s.serve_forever, daemon=True).start()
        servers.append(s)
    yield [f"http://127.0.0.1:{s.server_address[1]}" for s in servers]
    for s in servers:
        s.shutdown()


@pytest.fixture(scope="module")
def api(start_server, pages):
    server, stop = start_server("cors", ["--cors-origin", pages[0]])
    yield server
    stop()


def preflight(server, path, origin, method="POST"):
    return httpx.options(server.base_url + path, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                                           "Access-Control-Request-Headers": "authorization,content-type"}, timeout=30)


def test_preflights_for_allowed_origins_and_api_routes_only(api, pages):
    allowed, other = pages
    r = preflight(api, "/v1/chat/completions", allowed)
    assert r.status_code == 204, r.text
    assert r.headers["access-control-allow-origin"] == allowed
    assert "POST" in r.headers["access-control-allow-methods"]
    assert {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")} >= {"authorization", "content-type"}
    assert "access-control-allow-credentials" not in r.headers and "origin" in r.headers["vary"].lower()
    for path, origin in (("/v1/chat/completions", other), ("/v1/adapters", allowed), ("/v1/exports", allowed), ("/metrics", allowed)):
        r = preflight(api, path, origin)
        assert r.status_code == 403 and "access-control-allow-origin" not in r.headers, (path, origin, r.status_code)
    # A cross-origin POST from an origin not allowed is still refused by the server itself.
    r = httpx.post(api.base_url + "/v1/chat/completions", headers={"Origin": other, "Authorization": f"Bearer {API_KEY}"},
                   json={"model": MODEL_ID, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}, timeout=60)
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    # An error answer to an allowed origin carries CORS headers, so the page can read it.
    r = httpx.post(api.base_url + "/v1/chat/completions", headers={"Origin": allowed}, json={"model": MODEL_ID}, timeout=30)
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == allowed


def test_a_page_on_an_allowed_origin_streams_a_chat_and_another_is_refused(api, pages):
    driver = chrome()
    try:
        results = []
        for origin in pages:
            driver.get(origin + "/index.html")
            driver.execute_async_script("run(arguments[0], arguments[1]).then(arguments[2])", api.base_url, API_KEY)
            results.append(driver.find_element("id", "out").text)
        allowed, refused = results
        assert allowed.startswith("OK 200 chatcmpl-"), allowed
        assert len(allowed.split(" ", 3)[3].strip('"')) > 0, allowed
        assert refused.startswith("ERR TypeError"), refused
    finally:
        driver.quit()


def test_no_cors_unless_configured(server, pages):
    r = preflight(server, "/v1/chat/completions", pages[0])
    assert "access-control-allow-origin" not in r.headers and r.status_code in (404, 405)
