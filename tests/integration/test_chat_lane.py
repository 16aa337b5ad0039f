"""POST /api/chat/message on its lane (api/lanes.py, api/chat/lane.py): a cache hit is stored and answered
there as the route answers it; a miss, a refused hit and anything the route would refuse or coerce are
handed to the route, with nothing stored by the lane."""

from __future__ import annotations

import pytest

from tests.integration.test_chat_hits import (
    KEY,
    ask_until_cached,
    edit_by_hand,
    key_headers,
    stored_rows,
    team_dataset,  # noqa: F401 (a fixture)
    unique,
)
from tests.integration.test_prediction_lane import lane_counts, lane_requests

PATH = "/api/chat/message"


async def test_a_hit_is_answered_by_the_lane_as_the_route_answers_it(
    client, app, alice, resources, fake_anthropic, chat_datasets
):
    fake_anthropic.reply("차선에서 온 답입니다.")
    ask = {"dataset_ids": [chat_datasets["train"]["id"]], "message": unique("차선")}
    answered, handed_over = lane_counts(app, PATH)
    miss = await client.post(PATH, json=ask, headers=key_headers(alice))
    assert miss.status_code == 200 and miss.json()["cache_hit"] is False
    assert lane_counts(app, PATH) == (answered, handed_over + 1)  # a miss runs the LLM on the route
    rows_before, calls_before = await stored_rows(resources), fake_anthropic.call_count
    ok_before = await lane_requests(client, 200, PATH)

    hit = await client.post(PATH, json=ask, headers={**key_headers(alice), "X-Request-ID": "chat-lane-1"})

    assert hit.status_code == 200, hit.text
    assert lane_counts(app, PATH) == (answered + 1, handed_over + 1)
    assert await lane_requests(client, 200, PATH) == ok_before + 1
    assert fake_anthropic.call_count == calls_before
    assert await stored_rows(resources) == (rows_before[0] + 1, rows_before[1] + 2)
    by_route, by_lane = miss.json(), hit.json()
    assert by_lane.keys() == by_route.keys() and by_lane["cache_hit"] is True
    assert by_lane["response"] == by_route["response"] and by_lane["conversation_id"] != by_route["conversation_id"]
    assert set(hit.headers) == set(miss.headers)
    assert hit.headers["x-request-id"] == "chat-lane-1" and hit.headers["content-type"] == "application/json"
    assert KEY not in hit.text


def _refusals(alice, ids):
    plain = {"dataset_ids": ids, "message": unique("거절")}
    return [
        # (headers, body, expected status)
        (alice.headers, plain, 400),  # no Anthropic key: the route's Korean 400
        ({**alice.headers, "X-Anthropic-API-Key": "sk ant with spaces"}, plain, 400),
        ({**alice.headers, "X-Anthropic-API-Key": "x" * 600}, plain, 400),
        (key_headers(alice), {**plain, "message": "   "}, 400),
        (key_headers(alice), {**plain, "dataset_ids": [987654321]}, 404),
        (key_headers(alice), {**plain, "dataset_ids": [ids[0], *range(900_000_001, 900_000_006)]}, 422),
        (key_headers(alice), {**plain, "dataset_ids": "전부"}, 400),
    ]


@pytest.mark.parametrize("case", range(7))
async def test_what_the_route_refuses_is_handed_to_it_and_stores_nothing(
    client, app, alice, resources, fake_anthropic, chat_datasets, case
):
    ids = [chat_datasets["train"]["id"]]
    await client.get("/api/chat/models", headers=alice.headers)  # alice's principal is cached
    headers, body, status = _refusals(alice, ids)[case]
    answered, handed_over = lane_counts(app, PATH)
    rows_before, calls_before = await stored_rows(resources), fake_anthropic.call_count

    response = await client.post(PATH, json=body, headers=headers)

    assert response.status_code == status, response.text
    assert response.json()["error"]["message"] and response.headers["x-request-id"]
    assert lane_counts(app, PATH) == (answered, handed_over + 1)
    assert await stored_rows(resources) == rows_before and fake_anthropic.call_count == calls_before


async def test_a_body_the_route_would_coerce_is_handed_to_it(client, app, alice, fake_anthropic, chat_datasets):
    """The lane decodes strictly: a dataset id sent as a string is the route's to accept or refuse."""
    fake_anthropic.reply("문자열 ID의 답")
    ask = {"dataset_ids": [chat_datasets["train"]["id"]], "message": unique("문자열 ID")}
    await ask_until_cached(client, alice, ask)
    answered, handed_over = lane_counts(app, PATH)
    response = await client.post(
        PATH, json={**ask, "dataset_ids": [str(chat_datasets["train"]["id"])]}, headers=key_headers(alice)
    )
    assert lane_counts(app, PATH) == (answered, handed_over + 1)
    assert response.status_code == 200 and response.json()["cache_hit"] is True, response.text  # the route coerces


async def test_a_repeated_key_header_is_the_routes_to_judge(client, app, alice, fake_anthropic, chat_datasets):
    fake_anthropic.reply("키 두 개의 답")
    ask = {"dataset_ids": [chat_datasets["train"]["id"]], "message": unique("키 두 개")}
    await ask_until_cached(client, alice, ask)
    answered, handed_over = lane_counts(app, PATH)
    headers = [*alice.headers.items(), ("X-Anthropic-API-Key", KEY), ("X-Anthropic-API-Key", KEY + "2")]
    response = await client.post(PATH, json=ask, headers=headers)
    assert lane_counts(app, PATH) == (answered, handed_over + 1)
    assert response.status_code == 200 and response.json()["cache_hit"] is True, response.text  # as Litestar reads it


async def test_a_hit_refused_by_the_store_re_check_is_handed_over(
    client,
    app,
    alice,
    resources,
    fake_anthropic,
    team_dataset,  # noqa: F811
):
    fake_anthropic.reply("이름이 바뀔 데이터셋의 답")
    ask = {"dataset_ids": [team_dataset["id"]], "message": unique("이름 변경")}
    await ask_until_cached(client, alice, ask)
    await edit_by_hand(resources, team_dataset["id"], name=unique("새 이름"))
    answered, handed_over = lane_counts(app, PATH)
    rows_before = await stored_rows(resources)
    fake_anthropic.reply("새 이름으로 다시 묻은 답")

    response = await client.post(PATH, json=ask, headers=key_headers(alice))

    assert response.status_code == 200 and response.json()["cache_hit"] is False  # a new key: an LLM run
    assert lane_counts(app, PATH) == (answered, handed_over + 1)
    assert await stored_rows(resources) == (rows_before[0] + 1, rows_before[1] + 2)  # stored once, by the route
