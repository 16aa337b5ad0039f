"""The log formatter: JSON or readable lines, the context's ids on stdlib records, secrets redacted."""

from __future__ import annotations

import json
import logging

import pytest
from structlog.contextvars import bound_contextvars

from api.observability.logs import REDACTED, job_context, make_formatter, redact_text

KEY = "sk-ant-api03-canaryCANARY0123456789"
TOKEN = "hab_" + "Q" * 43
SHARE = "shr_" + "z" * 43


def _record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError(f"failed with {TOKEN}")
        except RuntimeError:
            import sys

            exc_info = sys.exc_info()
    return logging.LogRecord("hab.test", logging.WARNING, __file__, 1, message, args, exc_info)


@pytest.mark.parametrize(
    "text",
    [
        f"headers: {{'x-api-key': '{KEY}', 'accept': 'json'}}",
        f"Authorization: Bearer {TOKEN}",
        f"X-Anthropic-API-Key={KEY}",
        f"opened share link {SHARE}",
        f"a key anywhere {KEY} in text",
        f"'authorization': 'Bearer {TOKEN}'",
    ],
)
def test_secrets_in_text_are_redacted(text: str) -> None:
    cleaned = redact_text(text)
    assert REDACTED in cleaned
    for secret in (KEY, TOKEN, SHARE):
        assert secret not in cleaned


def test_plain_text_is_left_alone() -> None:
    assert redact_text("job 12 finished: succeeded in 1.0 s") == "job 12 finished: succeeded in 1.0 s"


def test_json_lines_carry_the_context_and_no_secret() -> None:
    formatter = make_formatter("json")
    with bound_contextvars(request_id="req-1"), job_context(42, "score"):
        line = formatter.format(_record("calling with %s", {"X-Anthropic-API-Key": KEY, "n": 1}, exc=True))
    event = json.loads(line)
    assert event["request_id"] == "req-1" and event["job_id"] == 42 and event["job_kind"] == "score"
    assert event["level"] == "warning" and event["logger"] == "hab.test" and "timestamp" in event
    assert "RuntimeError" in event["exception"]
    assert KEY not in line and TOKEN not in line


def test_console_lines_are_readable_and_redacted() -> None:
    formatter = make_formatter("console")
    with bound_contextvars(request_id="req-2"):
        line = formatter.format(_record("token %s refused", TOKEN))
    assert not line.startswith("{")
    assert "request_id=req-2" in line and "refused" in line
    assert TOKEN not in line


def test_the_request_id_of_the_http_middleware_is_on_every_line() -> None:
    from api.observability.logs import REQUEST_ID

    formatter = make_formatter("json")
    bound = REQUEST_ID.set("req-3")  # what api/observability/http.py binds for each request
    try:
        inside = json.loads(formatter.format(_record("while handling")))
    finally:
        REQUEST_ID.reset(bound)
    outside = json.loads(formatter.format(_record("after the request")))
    assert inside["request_id"] == "req-3"
    assert "request_id" not in outside
