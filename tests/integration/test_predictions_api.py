"""ECLO serving through the real app: schema, single and batch predictions, registry, hot swap."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import re
import zipfile

import asyncpg
import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import delete, event, func, select, text

from api.db.engine import to_libpq_url
from api.db.tables import ModelVersion, Prediction
from api.predictions import services
from api.predictions.batch_rows import decode_batch_body
from api.predictions.repository import allocate_ids, features_json
from models.features import NUMERIC_RANGES, EncodedBatch, FeatureError, encode_frame, encode_row
from tests.waiting import async_wait_until

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

    async def served_some_more() -> None:
        # Paced by answered requests rather than by the clock: each version serves traffic, however fast
        # the machine is. (Throughput is a benchmark figure: bench/predict_serving.py.)
        mark = len(outcomes)
        await async_wait_until(lambda: len(outcomes) >= mark + 5, seconds=60, what="5 more answered predictions")

    async def flipper() -> None:
        try:
            for version in (v2, v1, v2, v1):
                await served_some_more()
                response = await client.post(f"/api/models/{version}/activate", headers=admin.headers)
                assert response.status_code == 200
            await served_some_more()
        finally:
            stop.set()

    before = await prediction_count(resources)
    await asyncio.gather(flipper(), *(predictor() for _ in range(8)))
    assert len(outcomes) >= 25
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


async def test_a_prediction_checks_out_no_pooled_connection(client, alice, resources, versions):
    """The route opens no session and the writer keeps its connection: no pool checkout (and so no pre-ping)
    per request once the principal is cached and the writer has connected."""
    warm = await client.post("/api/predict/eclo", json=FEATURES, headers=alice.headers)
    assert warm.status_code == 200
    checkouts: list[object] = []

    def on_checkout(*args: object) -> None:
        checkouts.append(args)

    pool = resources.engine.sync_engine.pool
    event.listen(pool, "checkout", on_checkout)
    try:
        before = await prediction_count_raw(resources)
        responses = await asyncio.gather(
            *(client.post("/api/predict/eclo", json=FEATURES, headers=alice.headers) for _ in range(20))
        )
        assert [r.status_code for r in responses] == [200] * 20
        during = len(checkouts)
    finally:
        event.remove(pool, "checkout", on_checkout)
    # 20 requests, no checkout of their own; at most one from this process's 30 s model re-check landing here.
    assert during <= 1
    assert await prediction_count_raw(resources) == before + 20  # still every one stored


async def test_the_writer_survives_its_connection_being_terminated(client, alice, resources, versions):
    """What the pool's pre-ping used to cover: a PostgreSQL restart (here: the writer's backend terminated)
    costs the next group commit a reconnect, not an error."""
    first = await client.post("/api/predict/eclo", json=FEATURES, headers=alice.headers)
    assert first.status_code == 200
    writer = resources.prediction_writer
    assert writer._connection is not None
    driver = (await writer._connection.get_raw_connection()).driver_connection
    backend = driver.get_server_pid()
    async with resources.engine.connect() as conn:
        assert (await conn.execute(text("select pg_terminate_backend(:pid)"), {"pid": backend})).scalar() is True
    reconnects, before = writer.reconnects, await prediction_count_raw(resources)
    responses = await asyncio.gather(
        *(client.post("/api/predict/eclo", json=FEATURES, headers=alice.headers) for _ in range(5))
    )
    assert [r.status_code for r in responses] == [200] * 5
    assert writer.reconnects == reconnects + 1
    ids = {r.json()["prediction_id"] for r in responses}
    async with resources.sessions() as session:
        stored = set(await session.scalars(select(Prediction.id).where(Prediction.id.in_(ids))))
    assert stored == ids
    assert await prediction_count_raw(resources) == before + 5


async def prediction_count_raw(resources) -> int:
    """Rows in predictions, on a connection of its own (not counted as a request's checkout)."""
    conn = await asyncpg.connect(to_libpq_url(resources.database_url))
    try:
        return int(await conn.fetchval("select count(*) from predictions"))
    finally:
        await conn.close()


# ---- sync batch internals: parsing paths, stored rows, id allocation --------------------------------------


def _old_encode(values: list, model) -> EncodedBatch:
    """How a batch was encoded before the Arrow fast path: pandas from dicts, then row by row on a column error."""
    try:
        return encode_frame(pd.DataFrame.from_records(values), model.metadata)
    except FeatureError:
        return services._encode_rows_one_by_one(values, model)


def _verdicts(batch: EncodedBatch) -> tuple:
    errors = [(i, e.field, e.message, e.to_detail()) for i, e in batch.errors]
    return batch.matrix.tolist(), batch.row_index.tolist(), errors


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param([FEATURES, RAW_ROW, ALIASED], id="mixed-names"),
        pytest.param([FEATURES, {**FEATURES, "사고연": "2020"}, {**FEATURES, "사고연": None}], id="int-and-text"),
        pytest.param([FEATURES, {**FEATURES, "사고월": 7.0}, {**FEATURES, "사고일": 3.5}], id="floats"),
        pytest.param([FEATURES, {**FEATURES, "사고시": True}], id="bool"),
        pytest.param([FEATURES, {**FEATURES, "기상상태": {"x": 1}}, {**FEATURES, "요일": [1]}], id="nested"),
        pytest.param([{**RAW_ROW, "사고일시": "2021-07-03"}, RAW_ROW], id="date-without-hour"),
        pytest.param([{**RAW_ROW, "사고일시": "2021-07-03T02:00:00Z"}, RAW_ROW], id="iso-with-zone"),
        pytest.param([{**RAW_ROW, "사고일시": "2021-07-03 02:00"}] * 3, id="datetime-minutes"),
        pytest.param([{**RAW_ROW, "사고일시": "2021-02-30 02"}, {**RAW_ROW, "사고일시": 2021}], id="bad-dates"),
        pytest.param([{k: v for k, v in RAW_ROW.items() if k != "사고일시"}, RAW_ROW], id="key-missing-in-one"),
        pytest.param([{**RAW_ROW, "ID": "A1", "사망자수": 0, "ECLO": 3}, RAW_ROW], id="ignored-columns"),
        pytest.param([FEATURES, {**FEATURES, "wether": "맑음"}], id="unknown-key-in-one"),
        pytest.param([{**FEATURES, "사고연": 10**30}], id="huge-int"),
        pytest.param([{}, {"기상상태": None}, FEATURES], id="empty-rows"),
        pytest.param([{**FEATURES, "시간대": " 심야 "}, {**FEATURES, "시군구": ""}], id="blank-and-padded"),
    ],
)
async def test_batch_parsing_fast_path_equals_the_dict_path(resources, versions, rows):
    model = resources.models.current
    parsed = decode_batch_body(json.dumps({"rows": rows}, ensure_ascii=False).encode())
    assert _verdicts(services._encode(parsed, model)) == _verdicts(_old_encode(rows, model))


async def test_batch_parsing_takes_arrow_columns_for_plain_rows_only(resources, versions):
    plain = decode_batch_body(msgspec.json.encode({"rows": [FEATURES, RAW_ROW, ALIASED]}))
    assert plain.table() is not None and plain.table().num_rows == 3
    pretty = decode_batch_body(json.dumps({"rows": [FEATURES, RAW_ROW]}, indent=2, ensure_ascii=False).encode())
    assert pretty.table() is not None and pretty.table().column("사고일시").type == pa.string()
    for body in (
        b'{"rows": [{"a": 1, "a": 2}]}',  # a key twice: dicts keep the last
        '{"rows": [{"기상상태": "맑음", "사고연": 2021.0}]}'.encode(),
        b'{"rows": [1, {"a": 1}]}',
        b'{"rows": [{"a": "\xff"}]}',
    ):
        assert decode_batch_body(body).table() is None, body


async def test_batch_request_errors(client, alice, resources, versions):
    before = await prediction_count(resources)
    url, headers = "/api/predict/eclo/batch", {**alice.headers, "Content-Type": "application/json"}
    cases = {
        b'{"rows": 1}': (400, "rows"),
        b"{}": (400, "data"),
        b'{"rows": [], "extra": 1}': (400, "data"),
    }
    for body, (status, key) in cases.items():
        response = await client.post(url, content=body, headers=headers)
        assert response.status_code == status, (body, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid_input" and error["detail"]["errors"][0]["key"] == key
    malformed = await client.post(url, content=b'{"rows": [', headers=headers)
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "bad_request"
    for body in (b'{"rows": [{"a": "\xff"}]}', b'{"rows": [{"a": 1e400}]}', b'{"rows": [1]}'):
        response = await client.post(url, content=body, headers=headers)
        assert response.status_code == 422 and HANGUL.search(response.json()["error"]["message"]), body
    assert await prediction_count(resources) == before
    spec = (await client.get("/schema/openapi.json")).json()
    body_schema = spec["paths"][url]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema["required"] == ["rows"] and body_schema["properties"]["rows"]["maxItems"] == 10_000


async def test_batch_stores_every_row_with_its_features(client, alice, resources, versions, demo_train_table):
    """A batch large enough for the two-part pipeline: every stored row is the answer's, with decode_row()."""
    raw = demo_train_table.select(list(RAW_ROW)).slice(0, 3000).to_pylist()
    for row in raw:
        row["사고일시"] = row["사고일시"].strftime("%Y-%m-%d %H")
    rows = [
        *raw[:1500],
        {**FEATURES, "노면상태": "용암"},
        *[{**FEATURES, "사고일": d} for d in range(1, 29)],
        *raw[1500:],
    ]
    body = (await client.post("/api/predict/eclo/batch", json={"rows": rows}, headers=alice.headers)).json()
    assert (body["count"], body["succeeded"], body["failed"]) == (len(rows), len(rows) - 1, 1)
    answers = {r["prediction_id"]: r for r in body["results"] if "prediction_id" in r}
    async with resources.sessions() as session:
        stored = list(await session.scalars(select(Prediction).where(Prediction.id.in_(list(answers)))))
    assert len(stored) == len(answers) == len(rows) - 1
    model = resources.models.current
    for record in stored:
        answer = answers[record.id]
        row = rows[answer["index"]]
        assert record.features == model.decode_row(encode_row(row, model.metadata)[0])
        assert round(record.eclo, 4) == answer["eclo"] == round(model.predict_row(row), 4)
        assert (record.owner_id, record.model_version, record.source) == (alice.id, versions[0], "batch")
        assert record.job_id is None and record.row_index is None


async def test_features_json_many_is_byte_identical(resources, versions):
    model = resources.models.current
    meta = model.metadata
    rng = np.random.default_rng(3)
    columns = []
    for name in meta.feature_order:
        if name in meta.categories:
            columns.append(rng.integers(0, len(meta.categories[name]), 500))
        else:
            low, high = NUMERIC_RANGES[name]
            columns.append(np.r_[low, high, rng.integers(low, high + 1, 498)])
    matrix = np.column_stack(columns).astype(np.float64)
    expected = [features_json(model.decode_row(row)) for row in matrix]
    assert services.features_json_many(matrix, meta) == expected
    assert services.features_json_many(matrix[:0], meta) == []


async def test_concurrent_id_allocation_never_overlaps(resources, versions):
    """Batches, the single-prediction writer and the identity default (scoring jobs' COPY) share one sequence."""

    calls: list[list[int]] = []

    async def reserve(n: int) -> list[int]:
        got: list[int] = []
        for _ in range(5):
            async with resources.engine.connect() as conn:
                call = await allocate_ids(conn, n)
            calls.append(call)
            got += call
        return got

    async def by_default() -> list[int]:
        got: list[int] = []
        for _ in range(5):
            async with resources.engine.connect() as conn:
                result = await conn.execute(
                    text(
                        "insert into predictions (model_version, eclo, source)"
                        " select :v, 1.0, 'job' from generate_series(1, 300) returning id"
                    ),
                    {"v": versions[0]},
                )
                got += [r[0] for r in result]
                await conn.commit()
        return got

    batches = await asyncio.gather(*(reserve(n) for n in (1, 7, 1000, 2500) * 3), by_default(), by_default())
    try:
        ids = [i for batch in batches for i in batch]
        assert len(ids) == len(set(ids)) == 5 * 3 * (1 + 7 + 1000 + 2500) + 2 * 5 * 300
        # Each call's own ids are increasing (across sessions they need not be: the sequence hands each
        # session a block of 1,000, migration 0007).
        assert len(calls) == 5 * 3 * 4
        for call in calls:
            assert all(a < b for a, b in itertools.pairwise(call))
    finally:
        async with resources.engine.connect() as conn:
            await conn.execute(delete(Prediction).where(Prediction.id.in_(batches[-1] + batches[-2])))
            await conn.commit()
