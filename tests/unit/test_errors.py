"""The error mapper's limits on what an error body echoes (api/errors.py)."""

from __future__ import annotations

import asyncpg
import msgspec

from api.errors import (
    ECHO_CHARS,
    ECHO_ITEMS,
    MESSAGE_CHARS,
    ServiceUnavailable,
    answer_outside_litestar,
    bounded,
    error_response,
    handle_domain_error,
)


def test_long_text_is_cut_to_a_prefix_everywhere_in_the_detail():
    huge = "가" * 1_000_000
    detail = bounded({"value": huge, "nested": {"list": [huge] * 3}, huge: 1, "raw": b"x" * 10})
    value = detail["value"]
    assert value.startswith("가" * ECHO_CHARS) and len(value) == ECHO_CHARS + 1
    assert all(len(v) == ECHO_CHARS + 1 for v in detail["nested"]["list"])
    assert max(len(k) for k in detail) <= ECHO_CHARS + 1
    assert detail["raw"] == "<10 bytes>"


def test_long_lists_and_deep_nesting_are_cut():
    assert len(bounded({"items": list(range(10_000))})["items"]) == ECHO_ITEMS + 1
    deep: object = 1
    for _ in range(100):
        deep = [deep]
    cut = bounded({"deep": deep})
    depth, node = 0, cut["deep"]
    while isinstance(node, list):
        depth, node = depth + 1, node[0]
    assert depth < 10
    assert bounded({"n": 3, "ok": None, "f": 1.5}) == {"n": 3, "ok": None, "f": 1.5}


def test_the_response_cuts_the_message_and_the_detail():
    huge = "값" * 500_000
    response = error_response(422, "invalid_input", f"잘못된 값: {huge}", {"value": huge})
    info = response.content.error
    assert len(info.message) == MESSAGE_CHARS + 1 and len(info.detail["value"]) == ECHO_CHARS + 1


SCOPE = {"type": "http", "method": "POST", "path": "/api/predict/eclo", "headers": [], "query_string": b""}


def test_errors_outside_litestar_get_the_handler_litestar_would_pick(caplog):
    refusal = ServiceUnavailable("잠시 후 다시", detail={"reason": "x" * 500}, headers={"Retry-After": "5"})
    answer = answer_outside_litestar(refusal, SCOPE)
    routed = handle_domain_error(None, refusal)  # type: ignore[arg-type]
    assert (answer.status_code, answer.headers) == (routed.status_code, {"Retry-After": "5"})
    assert msgspec.json.encode(answer.content) == msgspec.json.encode(routed.content)
    assert len(answer.content.error.detail["reason"]) < 500  # echoed text is cut as on every route

    refused_value = asyncpg.CharacterNotInRepertoireError("invalid byte sequence")  # SQLSTATE 22021
    assert answer_outside_litestar(refused_value, SCOPE).content.error.code == "invalid_value"

    with caplog.at_level("ERROR", logger="hab.errors"):
        answer = answer_outside_litestar(RuntimeError("a bug's text"), SCOPE)
    assert answer.status_code == 500 and answer.content.error.code == "internal_error"
    assert "a bug's text" not in msgspec.json.encode(answer.content).decode()
    assert "RuntimeError on POST /api/predict/eclo" in caplog.text


def test_the_handler_picked_outside_litestar_is_the_one_litestar_picks():
    from litestar.exceptions import NotAuthorizedException, ValidationException
    from litestar.middleware._internal.exceptions.middleware import get_exception_handler
    from sqlalchemy.exc import DataError

    from api.errors import EXCEPTION_HANDLERS, InvalidInput, _handler_for

    raised = [
        InvalidInput("x"),
        ServiceUnavailable(),
        NotAuthorizedException(),
        ValidationException(),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"),
        RecursionError(),
        DataError("s", {}, Exception()),
        asyncpg.CharacterNotInRepertoireError("x"),
        asyncpg.PostgresError("x"),
        RuntimeError("x"),
        KeyError("x"),
    ]
    for exc in raised:
        assert _handler_for(exc) is get_exception_handler(EXCEPTION_HANDLERS, exc), type(exc).__name__
