"""What v1.2.5 users had or expect (issue 14 §5), through the real app on PostgreSQL and Redis: the English
feature names of v1.2.5's code, the guide's chat request shape, the Korean limit on datasets per question,
the sampled scatter route, the tool list and the demo-model notice."""

from __future__ import annotations

import re
import secrets

import numpy as np
import pytest

from api.analysis import TOOL_NAMES
from api.datasets.sampling import MAX_SAMPLE_ROWS
from api.datasets.services import DatasetService
from api.demo.generate import generate_demo_datasets
from api.registry.repository import ModelVersionRepository
from api.registry.services import RegistryService
from api.registry.training import train_and_register
from api.users.services import Principal
from models.artifact import ModelArtifact
from models.features import LEGACY_ALIASES
from models.loaded import LoadedModel
from models.metadata import SYNTHETIC_NOTE, SYNTHETIC_SOURCE
from tests.integration.conftest import stored_counts
from tests.integration.test_chat_api import chat_counts, chat_job_count, key_headers, unique
from tests.integration.test_predictions_api import FEATURES, prediction_count

HANGUL = re.compile(r"[가-힣]")
# The same accident as FEATURES, under the names v1.2.5's code used.
LEGACY_NAMED = {
    "weather_condition": "맑음",
    "road_condition": "건조",
    "accident_road_type": "교차로 - 교차로안",
    "accident_type": "차대사람",
    "time_period": "심야",
    "sigungu": "대구광역시 중구 대신동",
    "day_of_week": "토요일",
    "accident_year": 2021,
    "accident_month": 7,
    "accident_day": 3,
    "accident_hour": 2,
}


# ---- prediction aliases ----------------------------------------------------------------------------------


async def test_v125_feature_names_predict_like_the_korean_ones(client, alice, resources, versions):
    assert {LEGACY_ALIASES.get(k, k) for k in LEGACY_NAMED} <= set(FEATURES) | {"accident_type"}
    korean = await client.post("/api/predict/eclo", json=FEATURES, headers=alice.headers)
    legacy = await client.post("/api/predict/eclo", json=LEGACY_NAMED, headers=alice.headers)
    assert korean.status_code == legacy.status_code == 200, legacy.text
    assert legacy.json()["eclo"] == korean.json()["eclo"]
    assert legacy.json()["features"] == korean.json()["features"]
    batch = await client.post("/api/predict/eclo/batch", json={"rows": [LEGACY_NAMED]}, headers=alice.headers)
    assert batch.json()["results"][0]["eclo"] == korean.json()["eclo"]

    schema = (await client.get("/api/predict/schema", headers=alice.headers)).json()
    assert schema["aliases"]["time_period"] == "시간대" and schema["aliases"]["day_of_week"] == "요일"
    openapi = (await client.get("/schema/openapi.json")).json()
    described = openapi["paths"]["/api/predict/eclo"]["post"]["description"]
    assert all(f"`{alias}`" in described for alias in LEGACY_ALIASES)


async def test_a_misspelt_legacy_name_is_refused_and_nothing_is_stored(client, alice, resources, versions):
    before = await prediction_count(resources)
    response = await client.post(
        "/api/predict/eclo", json={**LEGACY_NAMED, "time_priod": "심야"}, headers=alice.headers
    )
    assert response.status_code == 422
    assert "time_period" in response.json()["error"]["message"]  # the closest known name is suggested
    assert await prediction_count(resources) == before


# ---- chat: the guide's request shape and the five-dataset limit -------------------------------------------


async def test_chat_accepts_one_dataset_id_as_the_guide_sends_it(client, alice, fake_anthropic, chat_datasets):
    train = chat_datasets["train"]
    fake_anthropic.reply("가이드 형식으로 답합니다.")
    response = await client.post(
        "/api/chat/message",
        json={"dataset_id": train["id"], "message": unique("가이드 형식")},
        headers=key_headers(alice),
    )
    assert response.status_code == 200, response.text
    conversation = (
        await client.get(f"/api/conversations/{response.json()['conversation_id']}", headers=alice.headers)
    ).json()
    assert conversation["dataset_ids"] == [train["id"]]
    assert fake_anthropic.call_count == 1

    openapi = (await client.get("/schema/openapi.json")).json()
    schemas = openapi["components"]["schemas"]
    request = next(v for k, v in schemas.items() if k.endswith("ChatRequest"))
    assert {"dataset_id", "dataset_ids"} <= set(request["properties"])
    assert request["required"] == ["message"]


async def test_more_than_five_datasets_is_explained_in_korean_and_stores_nothing(
    client, alice, resources, fake_anthropic, chat_datasets
):
    own = [chat_datasets["train"]["id"], chat_datasets["cctv"]["id"]]
    for _ in range(4):
        extra = await client.post(
            "/api/datasets/upload/csv",
            content=f"구,값\n중구,{secrets.randbelow(1000)}\n".encode(),
            headers={**alice.headers, "Content-Type": "text/csv"},
        )
        own.append(extra.json()["id"])
    before, jobs = await chat_counts(resources), await chat_job_count(resources)
    both = {"dataset_id": own[0], "dataset_ids": own[:1], "message": "x"}
    for path in ("/api/chat/message", "/api/chat/stream", "/api/chat/jobs"):
        response = await client.post(path, json={"dataset_ids": own, "message": "여섯 개"}, headers=key_headers(alice))
        assert response.status_code == 422, (path, response.text)
        error = response.json()["error"]
        assert "최대 5개" in error["message"] and "6개" in error["message"] and HANGUL.search(error["message"])
        assert error["detail"] == {"field": "dataset_ids", "count": 6, "limit": 5}
        refused = await client.post(path, json=both, headers=key_headers(alice))
        assert refused.status_code == 422 and "하나만" in refused.json()["error"]["message"]
    assert await chat_counts(resources) == before
    assert await chat_job_count(resources) == jobs
    assert fake_anthropic.call_count == 0


# ---- the sampled two-column route --------------------------------------------------------------------------

SAMPLE_ROWS = 12_000


@pytest.fixture(scope="module")
async def numbered(client, alice):
    """x = row number, y = 2x + 1; every 7th row has no y, every 11th no x."""
    lines = ["x,y,label"]
    for i in range(SAMPLE_ROWS):
        x = "" if i % 11 == 0 else str(i)
        y = "" if i % 7 == 0 else str(2 * i + 1)
        lines.append(f"{x},{y},행{i}")
    response = await client.post(
        "/api/datasets/upload/csv",
        params={"name": f"표본 {secrets.token_hex(3)}"},
        content=("\n".join(lines) + "\n").encode(),
        headers={**alice.headers, "Content-Type": "text/csv"},
    )
    assert response.status_code == 201, response.text
    return response.json()


def _eligible() -> set[int]:
    return {i for i in range(SAMPLE_ROWS) if i % 11 and i % 7}


async def test_sample_draws_from_the_whole_dataset_reproducibly(client, alice, numbered):
    path = f"/api/datasets/{numbered['id']}/sample"
    response = await client.get(path, params={"x": "x", "y": "y", "n": 800}, headers=alice.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    eligible = _eligible()
    assert (body["total_rows"], body["eligible"], body["returned"], body["sampled"]) == (
        SAMPLE_ROWS, len(eligible), 800, True
    )  # fmt: skip
    rows = body["row_index"]
    assert rows == sorted(set(rows)) and set(rows) <= eligible
    assert body["xs"] == rows and body["ys"] == [2 * r + 1 for r in rows]  # each pair is one real row
    # Spread over the whole file, not its head: a uniform draw puts about 3/4 of the rows past row 3,000.
    assert max(rows) > 9_000 and sum(r >= 3_000 for r in rows) > 500
    again = (await client.get(path, params={"x": "x", "y": "y", "n": 800}, headers=alice.headers)).json()
    assert again == body
    other = (await client.get(path, params={"x": "x", "y": "y", "n": 800, "seed": 7}, headers=alice.headers)).json()
    assert other["row_index"] != rows and other["seed"] == 7

    everything = (await client.get(path, params={"x": "x", "y": "y", "n": 20_000}, headers=alice.headers)).json()
    assert everything["sampled"] is False and everything["row_index"] == sorted(eligible)
    text_pair = (await client.get(path, params={"x": "label", "y": "x", "n": 5}, headers=alice.headers)).json()
    assert text_pair["xs"] == [f"행{r}" for r in text_pair["row_index"]]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"x": "x", "y": "y", "n": 0}, "n"),
        ({"x": "x", "y": "y", "n": MAX_SAMPLE_ROWS + 1}, "n"),
        ({"x": "x", "y": "y", "seed": -1}, "seed"),
        ({"x": "x", "y": "없는열"}, "unknown_columns"),
    ],
)
async def test_sample_bounds_and_unknown_columns_are_refused(client, alice, resources, numbered, params, field):
    before = await stored_counts(resources)
    response = await client.get(f"/api/datasets/{numbered['id']}/sample", params=params, headers=alice.headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert HANGUL.search(error["message"]) and field in error["detail"]
    assert await stored_counts(resources) == before


async def test_sample_follows_dataset_permissions_and_share_links(client, alice, bob, numbered):
    params = {"x": "x", "y": "y", "n": 50}
    hidden = await client.get(f"/api/datasets/{numbered['id']}/sample", params=params, headers=bob.headers)
    missing = await client.get("/api/datasets/987654321/sample", params=params, headers=bob.headers)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"]["message"] == missing.json()["error"]["message"]
    assert (await client.get(f"/api/datasets/{numbered['id']}/sample", params=params)).status_code == 401

    link = (await client.post(f"/api/datasets/{numbered['id']}/share", headers=alice.headers)).json()
    shared = await client.get(f"/api/shared/{link['token']}/sample", params=params)
    own = await client.get(f"/api/datasets/{numbered['id']}/sample", params=params, headers=alice.headers)
    assert shared.status_code == 200 and shared.json() == own.json()
    await client.delete(f"/api/shared/{link['token']}", headers=alice.headers)
    assert (await client.get(f"/api/shared/{link['token']}/sample", params=params)).status_code == 410


# ---- the tool list and the demo-model notice ---------------------------------------------------------------


async def test_tool_list_names_every_analysis_tool(client, alice):
    body = (await client.get("/api/analysis/tools", headers=alice.headers)).json()
    assert body["count"] == len(body["items"]) == len(TOOL_NAMES) >= 22
    assert [t["name"] for t in body["items"]] == list(TOOL_NAMES)
    assert all(HANGUL.search(t["description"]) for t in body["items"])


async def test_a_model_trained_on_demo_data_says_so_in_every_interpretation(client, resources, alice, versions):
    train = next(d for d in generate_demo_datasets(seed=3, scale=0.05) if d.key == "train")
    async with resources.sessions() as session:
        user = Principal(id=alice.id, name=alice.name, role="member")
        stored = await DatasetService(session, resources).upload(
            user, train.csv_bytes, filename=train.filename, name=f"데모 학습 {secrets.token_hex(3)}", is_demo=True
        )
    info = await train_and_register(resources, dataset_id=stored.id, csv_path=None, name="eclo-demo-test")
    assert info.source == SYNTHETIC_SOURCE and info.status == "inactive"
    async with resources.sessions() as session:
        bundle, sha = await ModelVersionRepository(session=session).bundle(info.version)
    model = LoadedModel(ModelArtifact.from_bundle(bundle, expected_sha256=sha))
    assert model.synthetic
    _, sentence = model.interpret(3.0)
    assert sentence.endswith(SYNTHETIC_NOTE) and "합성" in sentence
    _, sentences, _ = model.describe_many(np.array([1.0, 5.0, 12.0]))
    assert all(s.endswith(SYNTHETIC_NOTE) for s in sentences)

    # Served: the schema and every prediction's `detail` say it plainly while it is active.
    async with resources.sessions() as session:
        await RegistryService(session, resources).activate(info.version)
    try:
        schema = (await client.get("/api/predict/schema", headers=alice.headers)).json()
        assert schema["model_version"] == info.version and schema["synthetic_data"] is True
        assert schema["notice"] == SYNTHETIC_NOTE.strip()
        single = (await client.post("/api/predict/eclo", json=FEATURES, headers=alice.headers)).json()
        batch = (await client.post("/api/predict/eclo/batch", json={"rows": [FEATURES]}, headers=alice.headers)).json()
        assert single["model_version"] == info.version and single["detail"].endswith(SYNTHETIC_NOTE)
        assert batch["results"][0]["detail"].endswith(SYNTHETIC_NOTE)
    finally:
        async with resources.sessions() as session:
            await RegistryService(session, resources).activate(versions[0])


async def test_a_model_of_real_data_has_no_demo_notice(client, alice, versions):
    schema = (await client.get("/api/predict/schema", headers=alice.headers)).json()
    assert schema["synthetic_data"] is False and schema["notice"] is None
    predicted = (await client.post("/api/predict/eclo", json=FEATURES, headers=alice.headers)).json()
    assert "합성" not in predicted["detail"]
