"""What the fuzzer (tests/e2e/test_fuzz.py) and the hand-made attacks of issue 15 §3 found, one test each.

Every bad request checks the Korean error and that nothing was stored.
"""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import func, select

from api.db.tables import Conversation, Job, Prediction
from api.errors import ECHO_CHARS, MESSAGE_CHARS
from api.schemas import INT32_MAX, INT64_MAX
from tests.integration.conftest import TEST_UPLOAD_LIMIT, stored_counts

HANGUL = range(0xAC00, 0xD7A4)


def has_korean(text: str) -> bool:
    return any(ord(c) in HANGUL for c in text)


async def _counts(resources) -> tuple:
    async with resources.sessions() as session:
        rows = [await session.scalar(select(func.count()).select_from(t)) for t in (Prediction, Job, Conversation)]
    return (await stored_counts(resources), *rows)


@pytest.fixture
async def dataset(client, alice):
    body = "사고일시,요일,기상상태\n2021-01-01 10:00,금요일,맑음\n".encode()
    response = await client.post(
        "/api/datasets/upload/csv",
        params={"name": "강화 테스트"},
        content=body,
        headers={**alice.headers, "Content-Type": "text/csv"},
    )
    assert response.status_code == 201, response.text
    yield response.json()
    await client.delete(f"/api/datasets/{response.json()['id']}", headers=alice.headers)


def assert_korean_error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert has_korean(error["message"]) and error["code"]
    return error


TOO_BIG = str(INT64_MAX + 1)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/api/datasets/{TOO_BIG}"),
        ("DELETE", f"/api/datasets/{TOO_BIG}"),
        ("GET", f"/api/datasets/{TOO_BIG}/rows"),
        ("POST", f"/api/datasets/{TOO_BIG}/share"),
        ("DELETE", f"/api/datasets/1/shares/{TOO_BIG}"),
        ("GET", f"/api/jobs/{TOO_BIG}"),
        ("POST", f"/api/jobs/{TOO_BIG}/cancel"),
        ("GET", f"/api/predict/jobs/{TOO_BIG}/results"),
        ("GET", f"/api/conversations/{TOO_BIG}"),
        ("DELETE", f"/api/conversations/{TOO_BIG}"),
        ("GET", f"/api/models/{INT32_MAX + 1}"),
        ("POST", f"/api/models/{INT32_MAX + 1}/activate"),
        ("GET", f"/api/datasets?offset={TOO_BIG}"),
        ("GET", f"/api/jobs?offset={TOO_BIG}"),
        ("GET", f"/api/predictions?offset={TOO_BIG}"),
        ("GET", f"/api/predictions?model_version={INT32_MAX + 1}"),
        ("GET", f"/api/conversations?offset={TOO_BIG}"),
    ],
)
async def test_ids_and_offsets_beyond_their_column_are_400(client, admin, resources, method, path):
    before = await _counts(resources)
    response = await client.request(method, path, headers=admin.headers)
    error = assert_korean_error(response, 400)
    assert error["code"] == "invalid_input"
    assert await _counts(resources) == before


async def test_ids_in_bodies_beyond_int64_are_400(client, alice, resources, dataset):
    before = await _counts(resources)
    scoring = await client.post("/api/predict/jobs", json={"dataset_id": INT64_MAX + 1}, headers=alice.headers)
    assert_korean_error(scoring, 400)
    chat = await client.post(
        "/api/chat/message",
        json={"dataset_ids": [dataset["id"]], "message": "안녕", "conversation_id": INT64_MAX + 1},
        headers={**alice.headers, "X-Anthropic-API-Key": "sk-test"},
    )
    assert_korean_error(chat, 400)
    assert await _counts(resources) == before


async def test_nul_bytes_in_text_are_400(client, alice, resources, dataset):
    before = await _counts(resources)
    listed = await client.get("/api/datasets", params={"name": "사고\x00"}, headers=alice.headers)
    assert assert_korean_error(listed, 400)["code"] == "invalid_value"
    column = await client.get(f"/api/datasets/{dataset['id']}/columns/a%00b/distribution", headers=alice.headers)
    assert_korean_error(column, 404)
    rows = await client.get(f"/api/datasets/{dataset['id']}/rows", params={"columns": "a\x00"}, headers=alice.headers)
    assert_korean_error(rows, 422)
    assert await _counts(resources) == before


async def test_a_nul_byte_in_a_chat_question_is_400_before_anthropic_is_called(
    client, alice, resources, dataset, fake_anthropic
):
    before = await _counts(resources)
    for path in ("/api/chat/message", "/api/chat/stream", "/api/chat/jobs"):
        response = await client.post(
            path,
            json={"dataset_ids": [dataset["id"]], "message": "사고\x00건수"},
            headers={**alice.headers, "X-Anthropic-API-Key": "sk-test"},
        )
        assert_korean_error(response, 400)
    assert fake_anthropic.call_count == 0
    assert await _counts(resources) == before


DEEP = b"[" * 1000 + b"]" * 1000
NOT_UTF8 = b'{"message": "\xff\xfe\xfa", "dataset_ids": []}'


@pytest.mark.parametrize("body", [DEEP, NOT_UTF8], ids=["nested-1000", "not-utf8"])
@pytest.mark.parametrize(
    "path", ["/api/predict/eclo", "/api/predict/eclo/batch", "/api/predict/jobs", "/api/chat/message"]
)
async def test_undecodable_json_is_400_without_a_traceback(client, alice, resources, caplog, path, body):
    before = await _counts(resources)
    with caplog.at_level(logging.INFO):
        response = await client.post(
            path,
            content=body,
            headers={**alice.headers, "Content-Type": "application/json", "X-Anthropic-API-Key": "sk-test"},
        )
    assert_korean_error(response, 400)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert await _counts(resources) == before


async def test_error_bodies_echo_a_short_prefix_of_a_huge_value(client, alice, resources):
    before = await _counts(resources)
    huge = "가" * 300_000  # 900 KB, under the body limit
    features = await client.post("/api/predict/eclo", json={"기상상태": huge}, headers=alice.headers)
    assert features.status_code in (422, 503), features.text
    unknown = await client.post("/api/datasets/1/share", json={huge: 1}, headers=alice.headers)
    assert_korean_error(unknown, 400)
    for response in (features, unknown):
        error = response.json()["error"]
        assert len(error["message"]) <= MESSAGE_CHARS + 1
        assert len(response.content) < 20 * ECHO_CHARS * 4  # a few short prefixes, far from the 900 KB value
    assert await _counts(resources) == before


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"[1]", "invalid_input"),
        (b"null", "invalid_input"),
        (b'"x"', "invalid_input"),
        (b"", "invalid_input"),
        (b"{bad", "bad_request"),
    ],
)
async def test_a_single_prediction_body_that_is_not_an_object_is_400(client, alice, resources, body, code):
    before = await _counts(resources)
    response = await client.post(
        "/api/predict/eclo", content=body, headers={**alice.headers, "Content-Type": "application/json"}
    )
    assert assert_korean_error(response, 400)["code"] == code
    if code == "invalid_input":
        assert response.json()["error"]["detail"]["errors"][0]["key"] == "data"
    assert await _counts(resources) == before


async def test_a_single_prediction_body_past_its_limit_is_413(client, alice, resources):
    from api.predictions.single_http import MAX_BODY_BYTES

    before = await _counts(resources)
    body = b'{"x": "' + b"a" * MAX_BODY_BYTES + b'"}'
    response = await client.post(
        "/api/predict/eclo", content=body, headers={**alice.headers, "Content-Type": "application/json"}
    )
    assert assert_korean_error(response, 413)["code"] == "payload_too_large"
    assert await _counts(resources) == before


async def _chunks(total: int, size: int = 64 * 1024):
    yield b"a,b\n"
    sent = 0
    while sent < total:
        yield b"1,2\n" * (size // 4)
        sent += size


async def test_a_chunked_upload_past_the_limit_is_413_and_closes_the_connection(client, alice, resources):
    before = await _counts(resources)
    response = await client.post(
        "/api/datasets/upload/csv",
        content=_chunks(TEST_UPLOAD_LIMIT * 2),  # a generator: chunked, no Content-Length
        headers={**alice.headers, "Content-Type": "text/csv"},
    )
    assert assert_korean_error(response, 413)["code"] == "payload_too_large"
    assert response.headers.get("connection") == "close"
    assert await _counts(resources) == before


async def test_a_declared_oversize_upload_is_413_and_closes_the_connection(client, alice, resources):
    before = await _counts(resources)
    response = await client.post(
        "/api/datasets/upload/csv",
        content=b"a,b\n" + b"1,2\n" * (TEST_UPLOAD_LIMIT // 4 + 1),  # Content-Length just over the file limit
        headers={**alice.headers, "Content-Type": "text/csv"},
    )
    error = assert_korean_error(response, 413)
    assert error["detail"]["size_bytes"] > TEST_UPLOAD_LIMIT and response.headers.get("connection") == "close"
    assert await _counts(resources) == before


async def test_an_upload_waits_for_a_slot_and_gets_a_korean_503_when_none_frees(client, alice, app, resources):
    from api.datasets.receive import UploadSlots

    saved = app.state.get("upload_slots")
    app.state["upload_slots"] = slots = UploadSlots(1, wait_seconds=0.05)
    before = await _counts(resources)
    try:
        async with slots.hold():  # another upload holds the only slot
            busy = await client.post(
                "/api/datasets/upload/csv",
                content=b"a,b\n1,2\n",
                headers={**alice.headers, "Content-Type": "text/csv"},
            )
        error = assert_korean_error(busy, 503)
        assert error["detail"]["reason"] == "upload_slots_busy" and busy.headers.get("retry-after")
        assert await _counts(resources) == before
        freed = await client.post(
            "/api/datasets/upload/csv",
            params={"name": "슬롯 테스트"},
            content=b"a,b\n1,2\n",
            headers={**alice.headers, "Content-Type": "text/csv"},
        )
        assert freed.status_code == 201, freed.text
        assert slots.active == 0
    finally:
        app.state["upload_slots"] = saved
    await client.delete(f"/api/datasets/{freed.json()['id']}", headers=alice.headers)


async def test_the_openapi_documents_the_real_error_body(client, alice):
    document = (await client.get("/schema/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert set(schemas["ErrorBody"]["properties"]) == {"error"}
    assert set(schemas["ErrorInfo"]["properties"]) == {"code", "message", "detail"}
    text = json.dumps(document)
    assert '"status_code"' not in text and '"extra"' not in text  # Litestar's own error body is gone
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/ErrorBody", (method, path, status)
            if path.startswith("/api") and "{" in path:
                assert "404" in operation["responses"], (method, path)
    job_id = document["paths"]["/api/jobs/{job_id}"]["get"]["parameters"][0]["schema"]
    assert job_id["maximum"] == INT64_MAX and isinstance(job_id["maximum"], int)  # exact, not a float
    assert schemas["ChatRequest"]["additionalProperties"] is False
    assert schemas["ChatRequest"]["properties"]["dataset_ids"]["items"]["maximum"] == INT64_MAX
    # Every id a request body takes documents the bounds the server enforces (a fuzzer sends what is allowed).
    for name, schema in schemas.items():
        if schema.get("additionalProperties") is not False:
            continue  # not a request body
        for field, prop in schema.get("properties", {}).items():
            if field.endswith("_id"):
                assert (prop.get("minimum"), prop.get("maximum")) == (1, INT64_MAX), (name, field, prop)
    models = schemas["ChatRequest"]["properties"]["model"]["oneOf"][0]["enum"]
    assert models == (await client.get("/api/chat/models", headers=alice.headers)).json()["models"]


async def test_a_map_label_value_matches_one_branch_only(client):
    schemas = (await client.get("/schema/openapi.json")).json()["components"]["schemas"]
    branches = schemas["MapPoint"]["properties"]["label"]["additionalProperties"]["oneOf"]
    types = [b["type"] for b in branches]
    assert sorted(types) == ["null", "number", "string"]  # `0` is a number only (no integer branch beside it)


async def test_options_lists_every_method_of_the_path(client, alice):
    response = await client.options("/api/datasets/1", headers=alice.headers)
    assert response.status_code == 204
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"DELETE", "GET", "OPTIONS"}


async def test_inline_rows_with_an_object_value_are_422_not_500(client, alice, resources):
    before = await _counts(resources)
    response = await client.post("/api/predict/jobs", json={"rows": [{"기상상태": {}}]}, headers=alice.headers)
    assert_korean_error(response, 422)
    assert await _counts(resources) == before


async def test_an_empty_model_name_is_refused_not_replaced(client, alice, fake_anthropic):
    response = await client.post(
        "/api/chat/verify-key", params={"model": ""}, headers={**alice.headers, "X-Anthropic-API-Key": "sk-test"}
    )
    assert assert_korean_error(response, 422)["detail"]["field"] == "model"
    assert fake_anthropic.call_count == 0
