"""The error mapper's limits on what an error body echoes (api/errors.py)."""

from __future__ import annotations

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


def test_errors_outside_litestar_are_answered_by_the_same_rules(caplog):
    refusal = ServiceUnavailable("잠시 후 다시", detail={"reason": "x" * 500}, headers={"Retry-After": "5"})
    status, body, headers = answer_outside_litestar(refusal, "POST", "/api/predict/eclo")
    routed = handle_domain_error(None, refusal)  # type: ignore[arg-type]
    assert (status, headers) == (routed.status_code, {"Retry-After": "5"})
    assert msgspec.json.encode(body) == msgspec.json.encode(routed.content)
    assert len(body.error.detail["reason"]) < 500  # echoed text is cut as on every route

    with caplog.at_level("ERROR", logger="hab.errors"):
        status, body, headers = answer_outside_litestar(RuntimeError("a bug's text"), "POST", "/api/predict/eclo")
    assert status == 500 and headers == {}
    assert body.error.code == "internal_error" and "a bug's text" not in msgspec.json.encode(body).decode()
    assert "RuntimeError on POST /api/predict/eclo" in caplog.text
