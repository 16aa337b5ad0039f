"""Proximity analysis through the real app: points placed at known great-circle distances."""

from __future__ import annotations

import math
import re

import pytest

from tests.integration.conftest import stored_counts

HANGUL = re.compile(r"[가-힣]")
R = 6_371_008.8  # mean Earth radius, metres
CENTRE = (35.8714, 128.6014)


def haversine(a: tuple[float, float], b: tuple[float, float]) -> float:
    la1, lo1, la2, lo2 = map(math.radians, (*a, *b))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2 * R * math.asin(math.sqrt(h))


def north(point: tuple[float, float], metres: float) -> tuple[float, float]:
    return point[0] + math.degrees(metres / R), point[1]


def east(point: tuple[float, float], metres: float) -> tuple[float, float]:
    return point[0], point[1] + math.degrees(metres / (R * math.cos(math.radians(point[0]))))


SOURCES = [CENTRE, east(CENTRE, 2000.0), north(CENTRE, -3000.0), None, (0.0, 0.0)]  # None: empty coordinates
TARGETS = [north(CENTRE, d) for d in (100.0, 250.0, 299.0, 450.0)] + [east(CENTRE, 1900.0), east(CENTRE, 2600.0)]


def csv(name_column: str, points) -> bytes:
    lines = [f"{name_column},위도,경도"]
    for i, p in enumerate(points):
        lines.append(f"지점{i}," + (",".join(f"{v:.9f}" for v in p) if p else ","))
    return ("\n".join(lines) + "\n").encode()


async def _upload(client, account, content: bytes, name: str):
    response = await client.post(
        "/api/datasets/upload/csv",
        headers={**account.headers, "Content-Type": "text/csv"},
        params={"name": name},
        content=content,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture(scope="module")
async def ids(client, alice):
    return {
        "source": await _upload(client, alice, csv("대상시설명", SOURCES), "근접-원본"),
        "target": await _upload(client, alice, csv("보안등위치명", TARGETS), "근접-대상"),
        "plain": await _upload(client, alice, "구,값\n중구,1\n".encode(), "좌표없음"),
    }


def expected(radius: float) -> list[tuple[int, int, float]]:
    out = []
    for row, source in enumerate(SOURCES):
        if source is None or source == (0.0, 0.0):
            continue
        distances = [haversine(source, t) for t in TARGETS]
        out.append((row, sum(d <= radius for d in distances), min(distances)))
    return out


@pytest.mark.parametrize("radius", [300.0, 120.0, 5000.0])
async def test_counts_and_nearest_distances_match_haversine(client, alice, ids, radius):
    body = {"source_dataset_id": ids["source"], "target_dataset_id": ids["target"], "radius_m": radius}
    response = await client.post("/api/analysis/proximity", headers=alice.headers, json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    want = expected(radius)
    got = [(i["row_index"], i["count"], i["nearest_m"]) for i in answer["items"]]
    assert [(r, c) for r, c, _ in got] == [(r, c) for r, c, _ in want]
    for (_, _, distance), (_, _, nearest) in zip(got, want, strict=True):
        assert distance == pytest.approx(nearest, abs=0.01)
    summary = answer["summary"]
    counts = [c for _, c, _ in want]
    nearest = sorted(n for _, _, n in want)
    assert (summary["sources"], summary["targets"]) == (3, len(TARGETS))
    assert summary["sources_with_target"] == sum(c > 0 for c in counts)
    assert summary["max_count"] == max(counts) and summary["mean_count"] == pytest.approx(sum(counts) / 3)
    assert summary["median_nearest_m"] == pytest.approx(nearest[1], abs=0.01)
    assert HANGUL.search(summary["text"]) and f"{summary['sources_with_target']:,}곳" in summary["text"]
    assert answer["items"][0]["lat"] == pytest.approx(CENTRE[0]) and answer["items"][0]["lon"] == pytest.approx(
        CENTRE[1]
    )


async def test_the_known_counts_at_300_m(client, alice, ids):
    # Stated plainly too: the centre has the 100/250/299 m targets, the eastern point the one 100 m west of it.
    body = {"source_dataset_id": ids["source"], "target_dataset_id": ids["target"], "radius_m": 300}
    items = (await client.post("/api/analysis/proximity", headers=alice.headers, json=body)).json()["items"]
    assert [(i["row_index"], i["count"]) for i in items] == [(0, 3), (1, 1), (2, 0)]
    assert items[0]["nearest_m"] == pytest.approx(100.0, abs=0.01)
    assert items[1]["nearest_m"] == pytest.approx(100.0, abs=0.5)  # along a parallel, not a great circle


async def test_pages(client, alice, ids):
    body = {"source_dataset_id": ids["source"], "target_dataset_id": ids["target"], "radius_m": 300}
    pages = []
    for offset in (0, 2, 4):
        response = await client.post(
            "/api/analysis/proximity", headers=alice.headers, json=body, params={"offset": offset, "limit": 2}
        )
        answer = response.json()
        assert (answer["total"], answer["offset"], answer["limit"]) == (3, offset, 2)
        pages.append([i["row_index"] for i in answer["items"]])
    assert pages == [[0, 1], [2], []]


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"radius_m": 0}, 400),
        ({"radius_m": 5000.5}, 400),
        ({"radius_m": -3}, 400),
        ({"radius_m": "far"}, 400),
        ({"target_dataset_id": "plain"}, 422),
        ({"source_dataset_id": "plain"}, 422),
        ({"unknown": 1}, 400),
    ],
    ids=["zero", "too-far", "negative", "text", "target-without-coordinates", "source-without-coordinates", "extra"],
)
async def test_bad_requests_are_refused_in_korean_and_store_nothing(client, alice, ids, resources, change, status):
    body = {"source_dataset_id": ids["source"], "target_dataset_id": ids["target"], "radius_m": 300}
    body.update({k: ids.get(v, v) if isinstance(v, str) else v for k, v in change.items()})
    before = await stored_counts(resources)
    keys = await resources.redis.dbsize()
    response = await client.post("/api/analysis/proximity", headers=alice.headers, json=body)
    assert response.status_code == status, response.text
    assert HANGUL.search(response.json()["error"]["message"])
    if "radius_m" in change and status == 400 and not isinstance(change["radius_m"], str):
        assert "5,000" in response.json()["error"]["message"]
    assert await stored_counts(resources) == before and await resources.redis.dbsize() == keys


async def test_bad_page_parameters(client, alice, ids):
    body = {"source_dataset_id": ids["source"], "target_dataset_id": ids["target"], "radius_m": 300}
    for params in ({"limit": 0}, {"limit": 1001}, {"offset": -1}):
        response = await client.post("/api/analysis/proximity", headers=alice.headers, json=body, params=params)
        assert response.status_code == 422 and HANGUL.search(response.json()["error"]["message"]), params


async def test_another_members_private_dataset_is_not_found(client, alice, bob, ids, resources):
    bobs = await _upload(client, bob, csv("보안등위치명", TARGETS[:2]), "밥의-지점")
    missing = await client.post(
        "/api/analysis/proximity",
        headers=alice.headers,
        json={"source_dataset_id": 999_999_999, "target_dataset_id": ids["target"], "radius_m": 300},
    )
    assert missing.status_code == 404
    before = await stored_counts(resources)
    for source, target in ((ids["source"], bobs), (bobs, ids["target"])):
        body = {"source_dataset_id": source, "target_dataset_id": target, "radius_m": 300}
        response = await client.post("/api/analysis/proximity", headers=bob.headers, json=body)
        assert response.status_code == 404, response.text
        assert response.json()["error"]["message"] == missing.json()["error"]["message"]
        assert "근접-" not in response.text
    assert await stored_counts(resources) == before


async def _proximity_lookups(client) -> dict[str, float]:
    """hab_cache_requests for the proximity cache, read from /metrics: {"hit": n, "miss": n}."""
    from prometheus_client.parser import text_string_to_metric_families

    text = (await client.get("/metrics")).text
    out = {"hit": 0.0, "miss": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "hab_cache_requests_total" and sample.labels.get("cache") == "proximity":
                out[sample.labels["result"]] += sample.value
    return out


async def _sha(client, account, dataset_id: int) -> str:
    return (await client.get(f"/api/datasets/{dataset_id}", headers=account.headers)).json()["content_sha256"]


async def test_a_repeated_question_is_answered_from_the_cache(client, alice, ids, resources):
    from api.proximity.cache import cache_key

    radius = 321.0  # a radius no other test asks for, so the first request here is a miss
    key = cache_key(await _sha(client, alice, ids["source"]), await _sha(client, alice, ids["target"]), radius)
    await resources.redis.delete(key)
    body = {"source_dataset_id": ids["source"], "target_dataset_id": ids["target"], "radius_m": radius}

    before = await _proximity_lookups(client)
    first = await client.post("/api/analysis/proximity", headers=alice.headers, json=body)
    assert first.status_code == 200, first.text
    after_first = await _proximity_lookups(client)
    assert (after_first["hit"], after_first["miss"]) == (before["hit"], before["miss"] + 1)
    assert await resources.redis.exists(key) and 0 < await resources.redis.ttl(key) <= 24 * 3600

    second = await client.post("/api/analysis/proximity", headers=alice.headers, json=body)
    assert second.json() == first.json()
    after_second = await _proximity_lookups(client)
    assert (after_second["hit"], after_second["miss"]) == (after_first["hit"] + 1, after_first["miss"])

    # Another page of the same answer is served from the same entry.
    page = await client.post("/api/analysis/proximity", headers=alice.headers, json=body, params={"offset": 1})
    assert [i["row_index"] for i in page.json()["items"]] == [1, 2]
    assert (await _proximity_lookups(client))["hit"] == after_second["hit"] + 1


async def test_a_new_version_of_a_dataset_gets_fresh_figures(client, alice, resources):
    source = await _upload(client, alice, csv("대상시설명", SOURCES), "근접-버전-원본")
    old_target = await _upload(client, alice, csv("보안등위치명", TARGETS), "근접-버전-대상")
    body = {"source_dataset_id": source, "target_dataset_id": old_target, "radius_m": 300}
    old = (await client.post("/api/analysis/proximity", headers=alice.headers, json=body)).json()
    assert [i["count"] for i in old["items"]] == [3, 1, 0]

    # The next version of the target adds a point 50 m north of the centre and one 10 m from the southern source.
    extra = [north(CENTRE, 50.0), north(north(CENTRE, -3000.0), 10.0)]
    new_target = await _upload(client, alice, csv("보안등위치명", TARGETS + extra), "근접-버전-대상")
    assert new_target != old_target
    # Redis outlives the suite's database: an earlier run on the same Redis may have cached this exact answer.
    from api.proximity.cache import cache_key

    new_key = cache_key(await _sha(client, alice, source), await _sha(client, alice, new_target), 300)
    await resources.redis.delete(new_key)
    before = await _proximity_lookups(client)
    body["target_dataset_id"] = new_target
    new = (await client.post("/api/analysis/proximity", headers=alice.headers, json=body)).json()
    assert (await _proximity_lookups(client))["miss"] == before["miss"] + 1
    assert [i["count"] for i in new["items"]] == [4, 1, 1]
    assert new["summary"]["targets"] == len(TARGETS) + 2
    assert new["items"][0]["nearest_m"] == pytest.approx(50.0, abs=0.01)
    assert new["items"][2]["nearest_m"] == pytest.approx(10.0, abs=0.01)


async def test_x_y_coordinate_columns_count_as_points(client, alice, ids):
    """A source whose coordinates are x좌표/y좌표 (recognised by their values, as the map does)."""
    lines = ["설치장소,x좌표,y좌표"] + [f"지점{i},{p[1]:.9f},{p[0]:.9f}" for i, p in enumerate(SOURCES[:3])]
    source = await _upload(client, alice, ("\n".join(lines) + "\n").encode(), "근접-xy")
    body = {"source_dataset_id": source, "target_dataset_id": ids["target"], "radius_m": 300}
    response = await client.post("/api/analysis/proximity", headers=alice.headers, json=body)
    assert response.status_code == 200, response.text
    assert [(i["row_index"], i["count"]) for i in response.json()["items"]] == [(0, 3), (1, 1), (2, 0)]
