"""ECLO serving through the real app: schema, single and batch predictions, registry, hot swap."""

from __future__ import annotations

import asyncio
import io
import re
import zipfile

import pytest
from sqlalchemy import func, select

from api.db.tables import ModelVersion, Prediction

HANGUL = re.compile(r"[가-힣]")
FEATURES = {
    "기상상태": "맑음",
    "노면상태": "건조",
    "도로형태": "교차로 - 교차로안",
    "사고유형": "차대사람",
    "시간대": "심야",
    "시군구": "대구광역시 중구 대신동",
    "요일": "토요일",
    "사고연": 2021,
    "사고월": 7,
    "사고일": 3,
    "사고시": 2,
}
RAW_ROW = {
    "사고일시": "2021-07-03 02",
    "요일": "토요일",
    "기상상태": "맑음",
    "시군구": "대구광역시 중구 대신동",
    "도로형태": "교차로 - 교차로안",
    "노면상태": "건조",
    "사고유형": "차대사람",
}
ALIASED = {
    "weather": "맑음",
    "road_surface": "건조",
    "road_type": "교차로 - 교차로안",
    "accident_type": "차대사람",
    "time_band": "심야",
    "district": "대구광역시 중구 대신동",
    "weekday": "토요일",
    "year": 2021,
    "month": 7,
    "day": 3,
    "hour": 2,
}


async def prediction_count(resources) -> int:
    async with resources.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Prediction)) or 0)


async def test_schema_lists_the_features(client, alice, versions):
    body = (await client.get("/api/predict/schema", headers=alice.headers)).json()
    assert body["model_version"] == versions[0]
    by_name = {f["name"]: f for f in body["features"]}
    assert set(by_name) == set(FEATURES)
    assert "맑음" in by_name["기상상태"]["values"] and by_name["사고시"]["minimum"] == 0
    assert by_name["사고시"]["maximum"] == 23 and body["max_batch_rows"] == 10_000


async def test_single_prediction_three_ways_agree(client, alice, resources, versions):
    before = await prediction_count(resources)
    answers = []
    for body in (FEATURES, RAW_ROW, ALIASED):
        response = await client.post("/api/predict/eclo", json=body, headers=alice.headers)
        assert response.status_code == 200, response.text
        answers.append(response.json())
    assert len({a["eclo"] for a in answers}) == 1
    first = answers[0]
    assert first["eclo"] > 0 and first["interpretation"] in {"경미", "보통", "심각", "매우 심각"}
    assert HANGUL.search(first["detail"]) and 0 <= first["percentile"] <= 100
    assert first["model_version"] == versions[0] and "contributions" not in first
    assert await prediction_count(resources) == before + 3
    history = (await client.get("/api/predictions", params={"limit": 3}, headers=alice.headers)).json()
    assert [h["id"] for h in history["items"]] == sorted((a["prediction_id"] for a in answers), reverse=True)
    assert history["items"][0]["features"]["시간대"] == "심야" and history["items"][0]["source"] == "single"


async def test_explain_returns_contributions(client, alice, versions):
    body = (await client.post("/api/predict/eclo", json={**FEATURES, "explain": True}, headers=alice.headers)).json()
    contributions = body["contributions"]
    assert set(FEATURES) <= set(contributions) and all(isinstance(v, float) for v in contributions.values())


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**FEATURES, "기상상태": "폭풍"}, "기상상태"),
        ({**FEATURES, "시군구": "서울특별시 강남구 역삼동"}, "시군구"),
        ({**FEATURES, "사고시": 24}, "사고시"),
        ({k: v for k, v in FEATURES.items() if k != "도로형태"}, "도로형태"),
        ({**RAW_ROW, "사고일시": "2021/07/03"}, "사고일시"),
        ({**FEATURES, "wether": "맑음"}, "wether"),
    ],
)
async def test_invalid_input_names_field_and_stores_nothing(client, alice, resources, versions, body, field):
    before = await prediction_count(resources)
    response = await client.post("/api/predict/eclo", json=body, headers=alice.headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["detail"]["field"] == field and HANGUL.search(error["message"])
    assert "valid" in error["detail"] and "valid_count" in error["detail"]
    assert await prediction_count(resources) == before


async def test_invalid_category_lists_first_ten_valid_values(client, alice, versions):
    error = (
        await client.post("/api/predict/eclo", json={**FEATURES, "시군구": "없는동"}, headers=alice.headers)
    ).json()["error"]
    assert len(error["detail"]["valid"]) == 10 and error["detail"]["valid_count"] > 10
    assert error["detail"]["value"] == "없는동"


async def test_batch_keeps_order_and_reports_bad_rows(client, alice, resources, versions):
    before = await prediction_count(resources)
    rows = [FEATURES, {**FEATURES, "노면상태": "용암"}, RAW_ROW, ALIASED]
    response = await client.post("/api/predict/eclo/batch", json={"rows": rows}, headers=alice.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["count"], body["succeeded"], body["failed"]) == (4, 3, 1)
    assert [r["index"] for r in body["results"]] == [0, 1, 2, 3]
    assert body["results"][1]["error"]["detail"]["field"] == "노면상태" and "eclo" not in body["results"][1]
    assert body["results"][0]["eclo"] == body["results"][2]["eclo"] == body["results"][3]["eclo"]
    single = (await client.post("/api/predict/eclo", json=FEATURES, headers=alice.headers)).json()
    assert single["eclo"] == body["results"][0]["eclo"]
    assert await prediction_count(resources) == before + 3 + 1
    history = (await client.get("/api/predictions", params={"limit": 4}, headers=alice.headers)).json()
    assert {h["source"] for h in history["items"][1:]} == {"batch"}


async def test_batch_limits_store_nothing(client, alice, resources, versions):
    before = await prediction_count(resources)
    too_many = await client.post("/api/predict/eclo/batch", json={"rows": [FEATURES] * 10_001}, headers=alice.headers)
    assert too_many.status_code == 413 and "/api/predict/jobs" in too_many.json()["error"]["detail"]["use"]
    empty = await client.post("/api/predict/eclo/batch", json={"rows": []}, headers=alice.headers)
    not_objects = await client.post("/api/predict/eclo/batch", json={"rows": [1, 2]}, headers=alice.headers)
    assert empty.status_code in (400, 422) and not_objects.status_code in (400, 422)
    assert await prediction_count(resources) == before


async def test_large_sync_batch(client, alice, resources, versions, demo_train_table):
    rows = demo_train_table.select(list(RAW_ROW)).to_pylist()
    for row in rows:
        row["사고일시"] = row["사고일시"].strftime("%Y-%m-%d %H")
    rows = (rows * 2)[:10_000]
    before = await prediction_count(resources)
    body = (await client.post("/api/predict/eclo/batch", json={"rows": rows}, headers=alice.headers)).json()
    assert body["succeeded"] == 10_000 and body["failed"] == 0
    assert len({r["prediction_id"] for r in body["results"]}) == 10_000
    assert await prediction_count(resources) == before + 10_000


async def test_registry_reads(client, alice, versions):
    listed = (await client.get("/api/models", headers=alice.headers)).json()
    by_version = {m["version"]: m for m in listed["items"]}
    assert {versions[0], versions[1]} <= set(by_version)
    assert by_version[versions[0]]["status"] == "active" and by_version[versions[1]]["status"] == "inactive"
    assert {"rmse", "rmsle", "mae"} <= set(by_version[versions[0]]["metrics"])
    active = (await client.get("/api/models/active", headers=alice.headers)).json()
    assert active["version"] == versions[0] and len(active["feature_order"]) == 11
    # Importance for the served version and for an inactive one (read from its artifact); they differ by seed.
    inactive = (await client.get(f"/api/models/{versions[1]}", headers=alice.headers)).json()
    for detail in (active, inactive):
        importance = detail["feature_importance"]
        assert set(importance) == set(detail["feature_order"]) and sum(importance.values()) > 0
    assert active["feature_importance"] != inactive["feature_importance"]


async def test_members_cannot_change_the_registry(client, alice, resources, versions):
    response = await client.post(f"/api/models/{versions[1]}/activate", headers=alice.headers)
    assert response.status_code == 403 and HANGUL.search(response.json()["error"]["message"])
    upload = await client.post("/api/models", headers=alice.headers, files={"file": ("m.zip", b"x")})
    assert upload.status_code == 403
    assert (await client.get("/api/models/active", headers=alice.headers)).json()["version"] == versions[0]


async def test_activate_and_roll_back(client, admin, alice, versions):
    v1, v2 = versions
    try:
        response = await client.post(f"/api/models/{v2}/activate", headers=admin.headers)
        assert response.status_code == 200 and response.json()["status"] == "active"
        assert (await client.post("/api/predict/eclo", json=FEATURES, headers=alice.headers)).json()[
            "model_version"
        ] == v2
        missing = await client.post("/api/models/9999/activate", headers=admin.headers)
        assert missing.status_code == 404
    finally:
        await client.post(f"/api/models/{v1}/activate", headers=admin.headers)
    assert (await client.post("/api/predict/eclo", json=FEATURES, headers=alice.headers)).json()["model_version"] == v1


async def test_upload_bundle_and_refuse_tampering(client, admin, resources, versions):
    async with resources.sessions() as session:
        bundle, _ = (
            await __import__("api.registry.repository", fromlist=["x"])
            .ModelVersionRepository(session=session)
            .bundle(versions[1])
        )
        count = await session.scalar(select(func.count()).select_from(ModelVersion))
    ok = await client.post(
        "/api/models", headers=admin.headers, files={"file": ("model.zip", bundle)}, data={"notes": "업로드 테스트"}
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["status"] == "inactive" and ok.json()["notes"] == "업로드 테스트"

    tampered = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(bundle)) as source, zipfile.ZipFile(tampered, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename.endswith(".txt"):
                data = data.replace(b"leaf_value=", b"leaf_value=1", 1)
            target.writestr(item, data)
    bad = await client.post("/api/models", headers=admin.headers, files={"file": ("model.zip", tampered.getvalue())})
    junk = await client.post("/api/models", headers=admin.headers, files={"file": ("model.zip", b"not a zip")})
    assert bad.status_code == 422 and junk.status_code == 422
    async with resources.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ModelVersion)) == count + 1


async def test_hot_swap_under_load_loses_no_request(client, admin, alice, resources, versions):
    v1, v2 = versions
    stop = asyncio.Event()
    outcomes: list[tuple[int, int | None]] = []

    async def predictor() -> None:
        while not stop.is_set():
            response = await client.post("/api/predict/eclo", json=FEATURES, headers=alice.headers)
            outcomes.append((response.status_code, response.json().get("model_version")))

    async def flipper() -> None:
        for version in (v2, v1, v2, v1):
            await asyncio.sleep(0.15)
            assert (await client.post(f"/api/models/{version}/activate", headers=admin.headers)).status_code == 200
        await asyncio.sleep(0.1)
        stop.set()

    before = await prediction_count(resources)
    await asyncio.gather(flipper(), *(predictor() for _ in range(8)))
    assert len(outcomes) > 20
    assert all(status == 200 for status, _ in outcomes), [o for o in outcomes if o[0] != 200][:3]
    assert {version for _, version in outcomes} == {v1, v2}
    assert await prediction_count(resources) == before + len(outcomes)
    assert resources.models.version == v1


async def test_concurrent_predictions_share_commits_and_are_all_stored(client, alice, resources, versions):
    before, flushes = await prediction_count(resources), resources.prediction_writer.flushes
    responses = await asyncio.gather(
        *(client.post("/api/predict/eclo", json=FEATURES, headers=alice.headers) for _ in range(60))
    )
    assert all(r.status_code == 200 for r in responses)
    ids = {r.json()["prediction_id"] for r in responses}
    assert len(ids) == 60
    assert await prediction_count(resources) == before + 60
    assert resources.prediction_writer.flushes - flushes < 60  # grouped, not one COPY per request
    async with resources.sessions() as session:
        stored = set(await session.scalars(select(Prediction.id).where(Prediction.id.in_(ids))))
    assert stored == ids
