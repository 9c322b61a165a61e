"""schemathesis over OpenAI's published OpenAPI document (issue #20): for every operation the server
answers (chat and text completions, models, the Responses API), property-based requests generated
from the document's own request schemas, valid and not, must get no 5xx and a response that conforms
to the document. The document is openai-openapi-served.json (scripts/extract-openai-schemas.py cuts
it from OpenAI's openapi.yaml to these operations).

Two places where the document and OpenAI's real API disagree are checked our way instead:
- a streamed answer: schemathesis reads the document's `text/event-stream` schema as describing the
  SSE envelope (`{"event", "data"}`), while OpenAI's describes each event's data; the events are
  checked here with the suite's own chunk validation (support.check_exchange);
- a 404 for an unknown stored response: the document gives the bare error object, while OpenAI
  answers (as every other error) `{"error": {...}}`, which is what the SDK reads; it is checked
  against ErrorResponse."""
from hypothesis import HealthCheck, settings
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from support import API_KEY, HERE, check_exchange, schema_errors

schema = schemathesis.openapi.from_path(str(HERE / "openai-openapi-served.json"))


class _Exchange:
    """A schemathesis response in the shape support.check_exchange reads."""
    def __init__(self, case, response):
        self.method = case.method.upper()
        self.path = "/v1" + case.formatted_path
        self.status = response.status_code
        self.headers = {k.lower(): (v[0] if isinstance(v, list) else v) for k, v in response.headers.items()}
        self.complete = True
        self._body = response.content

    @property
    def is_sse(self):
        return self.headers.get("content-type", "").startswith("text/event-stream")

    def decoded_body(self):
        return self._body


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_openai_spec(case, server):
    response = case.call(base_url=server.base_url + "/v1", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120)
    exchange = _Exchange(case, response)
    checks = [not_a_server_error]
    stored_404 = response.status_code == 404 and "{response_id}" in case.path
    if not exchange.is_sse and not stored_404:
        checks.append(response_schema_conformance)
    case.validate_response(response, checks=checks)
    if exchange.is_sse:
        problems = check_exchange(exchange)
        assert not problems, "\n".join(problems[:20])
    if stored_404:
        assert not schema_errors("ErrorResponse", response.json()), response.text
