"""POST /api/predict/eclo answered ahead of Litestar (api/lanes.py, api/predictions/lane.py): the same answers
as the route, every refusal handed to the route with nothing stored, its own request id, timing and metrics."""

from __future__ import annotations

import json
import secrets

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from api.users.services import UserService
from tests.integration.test_predictions_api import FEATURES, HANGUL, prediction_count

PATH = "/api/predict/eclo"


@pytest.fixture
async def carol(resources) -> dict[str, str]:
    """A member whose token no request has used yet (so no principal of it is cached)."""
    async with resources.sessions() as session:
        _, token = await UserService(session).create(f"carol-{secrets.token_hex(3)}", admin=False)
        await session.commit()
    return {"Authorization": f"Bearer {token}"}


def lane_counts(app, path: str = PATH) -> tuple[int, int]:
    return app.lanes.answered[path], app.lanes.handed_over[path]


async def lane_requests(client, status: int, path: str = PATH) -> float:
    """hab_http_requests_total of the route with this status."""
    families = text_string_to_metric_families((await client.get("/metrics")).text)
    samples = [s for f in families if f.name == "hab_http_requests" for s in f.samples]
    return sum(
        s.value
        for s in samples
        if s.name.endswith("_total") and s.labels["route"] == path and s.labels["status"] == str(status)
    )


async def test_the_lane_answers_as_the_route_does(client, app, resources, carol, versions):
    before_rows = await prediction_count(resources)
    answered, handed_over = lane_counts(app)
    first = await client.post(PATH, json=FEATURES, headers=carol)  # the principal is not cached yet
    assert lane_counts(app) == (answered, handed_over + 1)
    ok_before = await lane_requests(client, 200)
    second = await client.post(PATH, json=FEATURES, headers={**carol, "X-Request-ID": "lane-trace-1"})
    assert lane_counts(app) == (answered + 1, handed_over + 1)
    assert await lane_requests(client, 200) == ok_before + 1

    assert first.status_code == second.status_code == 200, (first.text, second.text)
    by_route, by_lane = first.json(), second.json()
    assert by_lane.keys() == by_route.keys()
    assert by_lane["prediction_id"] != by_route["prediction_id"]
    assert {k: v for k, v in by_lane.items() if k != "prediction_id"} == {
        k: v for k, v in by_route.items() if k != "prediction_id"
    }
    assert set(second.headers) == set(first.headers), (second.headers, first.headers)
    assert second.headers["content-type"] == first.headers["content-type"] == "application/json"
    assert second.headers["x-request-id"] == "lane-trace-1"
    assert second.headers["server-timing"].startswith("app;dur=")
    assert await prediction_count(resources) == before_rows + 2
    explained = await client.post(PATH, json={**FEATURES, "explain": True}, headers=carol)
    assert lane_counts(app)[0] == answered + 2 and set(FEATURES) <= set(explained.json()["contributions"])


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (json.dumps({**FEATURES, "기상상태": "폭풍"}).encode(), 422, "invalid_input"),
        ('{"기상상태": '.encode(), 400, "bad_request"),
        (b"[1, 2]", 400, "invalid_input"),
        (b"", 400, "invalid_input"),
        (b'{"a": "\xff"}', 400, "bad_json"),
        (b'{"a":' * 2000 + b"1" + b"}" * 2000, 400, "bad_json"),
        (b'{"x": "' + b"a" * (1024 * 1024 + 10) + b'"}', 413, "payload_too_large"),
    ],
    ids=["bad-feature", "malformed", "not-an-object", "empty", "not-utf8", "too-deep", "too-large"],
)
async def test_refusals_are_answered_by_the_route_and_store_nothing(
    client, app, resources, alice, versions, body, status, code
):
    await client.post(PATH, json=FEATURES, headers=alice.headers)  # alice's principal is cached
    before_rows = await prediction_count(resources)
    answered, handed_over = lane_counts(app)
    response = await client.post(PATH, content=body, headers={**alice.headers, "Content-Type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and HANGUL.search(error["message"])
    assert response.headers["x-request-id"]
    assert lane_counts(app) == (answered, handed_over + 1)
    assert await prediction_count(resources) == before_rows


async def test_no_token_and_a_wrong_token_are_refused_by_the_route(client, app, resources, versions):
    before_rows = await prediction_count(resources)
    answered, _ = lane_counts(app)
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}):
        response = await client.post(PATH, json=FEATURES, headers=headers)
        assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    assert lane_counts(app)[0] == answered
    assert await prediction_count(resources) == before_rows


async def test_a_refused_store_is_answered_by_the_lane_in_korean(client, app, resources, alice, versions):
    """A real refusal by PostgreSQL (a CHECK the row breaks), on the kept connection: 503, nothing stored."""
    await client.post(PATH, json=FEATURES, headers=alice.headers)
    before_rows = await prediction_count(resources)
    unavailable_before = await lane_requests(client, 503)
    async with resources.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE predictions ADD CONSTRAINT lane_test_refuses CHECK (eclo < 0) NOT VALID"))
    try:
        answered, handed_over = lane_counts(app)
        response = await client.post(PATH, json=FEATURES, headers={**alice.headers, "X-Request-ID": "lane-503"})
    finally:
        async with resources.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE predictions DROP CONSTRAINT lane_test_refuses"))
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "service_unavailable" and error["message"].startswith("예측 결과를 저장하지 못했습니다")
    assert error["detail"] == {"reason": "CheckViolationError"}
    assert response.headers["x-request-id"] == "lane-503" and response.headers["content-type"] == "application/json"
    assert lane_counts(app) == (answered + 1, handed_over)
    assert await lane_requests(client, 503) == unavailable_before + 1
    assert await prediction_count(resources) == before_rows
    again = await client.post(PATH, json=FEATURES, headers=alice.headers)  # the writer is fine afterwards
    assert again.status_code == 200 and await prediction_count(resources) == before_rows + 1


async def test_a_host_header_litestar_may_refuse_is_handed_to_it(client, app, resources, alice, versions):
    await client.post(PATH, json=FEATURES, headers=alice.headers)  # alice's principal is cached
    before_rows = await prediction_count(resources)
    answered, handed_over = lane_counts(app)
    response = await client.post(PATH, json=FEATURES, headers={**alice.headers, "Host": 'evil/"x'})
    assert response.status_code == 400, response.text
    assert lane_counts(app) == (answered, handed_over + 1)
    assert await prediction_count(resources) == before_rows
