"""llm-comply (PyPI, someone else's compliance suite) against the server, in its three formats: OpenAI
Chat Completions, Open Responses and Anthropic Messages (issue #20). Every test passes but those
listed in EXPECTED_FAILURES, each with its reason.

Its tests call at the server's default sampling (temperature 1) and check things a 135M model's
sampled answer decides (say, that it ended by itself): a test that fails is run twice more, and
counts as failed only if it fails every time; the retries are printed."""
import json
import subprocess
import sys

import pytest

from support import API_KEY, MODEL_ID

EXPECTED_FAILURES = {
    # The provisioned models read text only: an image is a 400 that names it.
    "chat-image-input": "images need a vision model; the served models are text-only",
    "image-input": "images need a vision model; the served models are text-only",
    "anth-image-input": "images need a vision model; the served models are text-only",
    # It expects a request without `model` to be refused; Verity answers it with its served model,
    # as vLLM does and as issue #26 asks.
    "chat-error-handling": "a request without 'model' is served by the default model (vLLM's behaviour, #26)",
    "error-handling": "a request without 'model' is served by the default model (vLLM's behaviour, #26)",
}

FORMATS = {
    "openai-chat": [],
    "open-responses": [],
    "anthropic": ["--auth-header", "x-api-key", "--no-bearer", "-H", "anthropic-version:2023-06-01"],
}


def run(server, fmt, only=None):
    args = [sys.executable, "-c", "import sys; from llm_comply.cli import main; sys.exit(main())", "--format", fmt, "-u", server.base_url + "/v1", "-k", API_KEY, "-m", MODEL_ID,
            "--timeout", "180", "--json", *FORMATS[fmt]]
    if only:
        args += ["-f", only]
    p = subprocess.run(args, capture_output=True, text=True, timeout=900)
    try:
        return {r["id"]: r for r in json.loads(p.stdout)["results"]}
    except (ValueError, KeyError):
        raise AssertionError(f"llm-comply gave no JSON (exit {p.returncode}): {p.stdout[-2000:]} {p.stderr[-2000:]}")


@pytest.fixture(scope="module")
def roomy(start_server):
    """Its tests ask for max_tokens 1024 beside their prompts: a server whose context holds that
    (the session's, at 1024 positions, rightly answers them 400 context_length_exceeded, as
    Anthropic's API refuses a max_tokens beyond the model's)."""
    server, stop = start_server("llm-comply", ["--ctx", "4096", "--max-sequences", "4"])
    yield server
    stop()


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_llm_comply(roomy, fmt):
    server = roomy
    results = run(server, fmt)
    failed = {i for i, r in results.items() if r["status"] == "failed"}
    unexpected = failed - set(EXPECTED_FAILURES)
    for test in sorted(unexpected):
        for attempt in range(2):
            if run(server, fmt, only=test)[test]["status"] == "passed":
                print(f"{fmt}: {test} passed on retry {attempt + 1} (a sampled answer decides it)")
                unexpected.discard(test)
                break
    assert not unexpected, "\n".join(f"{i}: {json.dumps(results[i])[:1500]}" for i in sorted(unexpected))
    # The expected failures are still failures (if one passes, its entry is stale).
    for test in set(EXPECTED_FAILURES) & set(results):
        assert results[test]["status"] == "failed", f"{test} passes now: drop it from EXPECTED_FAILURES"
