"""Insight sentences and comparisons through the real app, checked against figures pandas computes here."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest

from api.demo.generate import generate_demo_datasets
from api.insights.cache import PREFIX
from tests.integration.conftest import stored_counts

HANGUL = re.compile(r"[가-힣]")
MIN_GROUP_ROWS = 30  # the service's threshold for "highest/lowest" groups, restated as the spec


@pytest.fixture(scope="module")
def demo():
    return {d.key: d for d in generate_demo_datasets(seed=23, scale=0.05)}


async def _upload(client, account, demo, key, visibility="private"):
    response = await client.post(
        "/api/datasets/upload",
        headers=account.headers,
        files={"file": (demo[key].filename, demo[key].csv_bytes, "text/csv")},
        data={"name": f"insights-{key}", "visibility": visibility},
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="module")
async def uploaded(client, alice, demo):
    return {key: await _upload(client, alice, demo, key) for key in ("train", "lights", "zones")}


def _frame(demo, key) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(demo[key].csv_bytes), encoding=demo[key].encoding)


async def _redis_keys(resources) -> set[bytes]:
    return {k async for k in resources.redis.scan_iter(match=PREFIX + "*")}


async def test_accident_insights_state_the_figures_pandas_finds(client, alice, uploaded, demo):
    response = await client.get(f"/api/datasets/{uploaded['train']['id']}/insights", headers=alice.headers)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    df = _frame(demo, "train")
    by_kind: dict[str, list[dict]] = {}
    for item in items:
        assert HANGUL.search(item["text"]), item
        by_kind.setdefault(item["kind"], []).append(item)

    dominant = {i["columns"][0]: i for i in by_kind["dominant_category"]}
    for column in ("기상상태", "노면상태", "도로형태", "사고유형"):
        counts = df[column].value_counts()
        top = sorted(counts.items(), key=lambda p: (-p[1], p[0]))[0]
        figures = dominant[column]["figures"]
        assert (figures["value"], figures["count"], figures["total"]) == (top[0], top[1], int(counts.sum()))
        share = f"{100 * top[1] / counts.sum():.1f}%"
        assert share in dominant[column]["text"] and f"{top[1]:,}행" in dominant[column]["text"]

    hours = pd.to_datetime(df["사고일시"], format="%Y-%m-%d %H").dt.hour.value_counts()
    busiest = sorted(hours.items(), key=lambda p: (-p[1], p[0]))[0]
    (hour,) = by_kind["busiest_hour"]
    assert (hour["figures"]["hour"], hour["figures"]["count"]) == busiest
    assert f"{busiest[0]}시" in hour["text"]
    weekdays = df["요일"].value_counts()
    top_day = sorted(weekdays.items(), key=lambda p: (-p[1], p[0]))[0]
    (weekday,) = by_kind["busiest_weekday"]
    assert (weekday["figures"]["weekday"], weekday["figures"]["count"]) == top_day

    eclo = {i["columns"][0]: i for i in by_kind["eclo_by_group"]}
    assert {"도로형태", "사고유형"} <= set(eclo)
    for column, item in eclo.items():
        stats = df.groupby(column)["ECLO"].agg(["mean", "count"])
        stats = stats[stats["count"] >= MIN_GROUP_ROWS].reset_index()
        ranked = sorted(stats.itertuples(index=False), key=lambda g: (-g.mean, -g.count, g[0]))
        high, low = ranked[0], ranked[-1]
        f = item["figures"]
        assert (f["highest"], f["highest_count"], f["lowest"], f["lowest_count"]) == (
            high[0], high.count, low[0], low.count,
        )  # fmt: skip
        assert f["highest_mean"] == pytest.approx(high.mean, abs=1e-4)
        assert f["lowest_mean"] == pytest.approx(low.mean, abs=1e-4)
        assert f["overall_mean"] == pytest.approx(df["ECLO"].mean(), abs=1e-4)
        assert f"{high.mean:.2f}" in item["text"] and f"{low.mean:.2f}" in item["text"]


async def test_missing_value_warnings_match_the_file(client, alice, uploaded, demo):
    response = await client.get(f"/api/datasets/{uploaded['lights']['id']}/insights", headers=alice.headers)
    items = [i for i in response.json()["items"] if i["kind"] == "missing_values"]
    df = _frame(demo, "lights")
    missing = df.isna().sum()
    expected = sorted(((c, int(n)) for c, n in missing.items() if n / len(df) >= 0.05), key=lambda p: (-p[1], p[0]))
    assert [(i["columns"][0], i["figures"]["missing"]) for i in items] == expected[:5]
    assert expected and all(f"{n:,}행" in i["text"] for i, (_, n) in zip(items, expected, strict=False))


async def test_insights_are_cached_under_the_content_hash(client, alice, uploaded, resources):
    dataset = uploaded["zones"]
    key = f"{PREFIX}v1:{dataset['content_sha256']}"
    await resources.redis.delete(key)
    first = await client.get(f"/api/datasets/{dataset['id']}/insights", headers=alice.headers)
    assert await resources.redis.exists(key)
    second = await client.get(f"/api/datasets/{dataset['id']}/insights", headers=alice.headers)
    assert first.json() == second.json()


async def test_distribution_answers_carry_a_narration(client, alice, uploaded, demo):
    df = _frame(demo, "train")
    base = f"/api/datasets/{uploaded['train']['id']}/columns"
    weather = (await client.get(f"{base}/기상상태/distribution", headers=alice.headers)).json()
    top = df["기상상태"].value_counts()
    assert f"'{top.index[0]}'" in weather["narration"] and f"{top.iloc[0]:,}행" in weather["narration"]
    eclo = (await client.get(f"{base}/ECLO/distribution", headers=alice.headers)).json()
    assert f"중앙값은 {int(df['ECLO'].median())}" in eclo["narration"]


async def test_a_group_comparison_within_one_dataset(client, alice, uploaded, demo):
    df = _frame(demo, "train")
    dataset_id = uploaded["train"]["id"]
    body = {
        "column": "ECLO",
        "left": {"dataset_id": dataset_id, "where": {"column": "기상상태", "value": "비"}},
        "right": {"dataset_id": dataset_id, "where": {"column": "기상상태", "value": "맑음"}},
    }
    response = await client.post("/api/datasets/compare", headers=alice.headers, json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    rain, clear = df[df["기상상태"] == "비"]["ECLO"], df[df["기상상태"] == "맑음"]["ECLO"]
    assert answer["kind"] == "group_comparison"
    assert answer["left"]["count"] == len(rain) and answer["right"]["count"] == len(clear)
    assert answer["left"]["mean"] == pytest.approx(rain.mean()) and answer["right"]["mean"] == pytest.approx(
        clear.mean()
    )
    assert f"{rain.mean():.2f}" in answer["text"] and ("높습니다" in answer["text"] or "낮습니다" in answer["text"])


async def test_the_same_column_of_two_datasets(client, alice, uploaded, demo):
    lights, zones = uploaded["lights"], uploaded["zones"]
    # 위도 is numeric in both: the comparison states each side's mean over its rows with coordinates.
    body = {"column": "위도", "left": {"dataset_id": lights["id"]}, "right": {"dataset_id": zones["id"]}}
    answer = (await client.post("/api/datasets/compare", headers=alice.headers, json=body)).json()
    assert answer["kind"] == "dataset_comparison"
    assert answer["left"]["count"] == int(_frame(demo, "lights")["위도"].notna().sum())
    assert answer["right"]["mean"] == pytest.approx(_frame(demo, "zones")["위도"].mean())


@pytest.mark.parametrize(
    "change",
    [
        {"column": "없는열"},
        {"left": {"dataset_id": 0}},
        {"left": {"dataset_id": "x"}},
        {"extra": 1},
        {"left": {"where": {"column": "기상상태", "value": "화산재"}}},
        {"right": {"where": None}, "left": {"where": None}},
    ],
    ids=["unknown-column", "missing-dataset", "bad-type", "unknown-field", "empty-group", "same-without-groups"],
)
async def test_bad_comparisons_are_refused_and_store_nothing(client, alice, uploaded, resources, change):
    dataset_id = uploaded["train"]["id"]
    body = {
        "column": "ECLO",
        "left": {"dataset_id": dataset_id, "where": {"column": "기상상태", "value": "비"}},
        "right": {"dataset_id": dataset_id, "where": {"column": "기상상태", "value": "맑음"}},
    }
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value
    before, keys = await stored_counts(resources), await _redis_keys(resources)
    response = await client.post("/api/datasets/compare", headers=alice.headers, json=body)
    assert response.status_code in (400, 404, 422), response.text
    assert HANGUL.search(response.json()["error"]["message"])
    assert await stored_counts(resources) == before and await _redis_keys(resources) == keys


async def test_another_members_private_dataset_is_not_found(client, alice, bob, uploaded, resources):
    dataset_id = uploaded["zones"]["id"]
    keys = await _redis_keys(resources)
    response = await client.get(f"/api/datasets/{dataset_id}/insights", headers=bob.headers)
    missing = await client.get("/api/datasets/999999999/insights", headers=bob.headers)
    assert response.status_code == missing.status_code == 404
    assert response.json()["error"]["message"] == missing.json()["error"]["message"]
    body = {"column": "위도", "left": {"dataset_id": dataset_id}, "right": {"dataset_id": uploaded["lights"]["id"]}}
    compared = await client.post("/api/datasets/compare", headers=bob.headers, json=body)
    assert compared.status_code == 404
    assert await _redis_keys(resources) == keys
