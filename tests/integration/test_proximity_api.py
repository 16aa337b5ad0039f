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
