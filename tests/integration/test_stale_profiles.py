"""Profiles stored by older profiling code (before x좌표/y좌표 were recognised as coordinates) are recomputed.

Each test stores a dataset through the API, then writes the row back as the old code left it: the profile's
`coordinates` empty and `profile_version` 1 (what migration 0008 gives rows that existed before it).
"""

from __future__ import annotations

import secrets

from sqlalchemy import select, update

from api.datasets.profile import PROFILE_VERSION
from api.db.tables import Dataset
from tests.integration.conftest import run_worker


def _csv() -> bytes:
    # A salt column makes the bytes (so the content hash and blob) unique to this test.
    lines = ["설치장소,x좌표,y좌표,salt"]
    for i in range(12):
        lines.append(f"지점{i},{128.55 + i * 0.01:.6f},{35.84 + i * 0.005:.6f},{secrets.token_hex(4)}")
    return ("\n".join(lines) + "\n").encode()


async def _upload(client, account, content: bytes, name: str) -> dict:
    response = await client.post(
        "/api/datasets/upload/csv",
        headers={**account.headers, "Content-Type": "text/csv"},
        params={"name": name},
        content=content,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _make_stale(resources, dataset_id: int) -> None:
    """The row as profiling code before coordinate recognition stored it."""
    async with resources.sessions() as session:
        row = await session.get(Dataset, dataset_id)
        assert row is not None and row.summary["coordinates"] is not None  # today's code finds them
        old = {**row.summary, "coordinates": None}
        await session.execute(
            update(Dataset).where(Dataset.content_sha256 == row.content_sha256).values(summary=old, profile_version=1)
        )
        await session.commit()


async def _stored(resources, dataset_id: int) -> tuple[int, dict | None]:
    async with resources.sessions() as session:
        row = (
            await session.execute(select(Dataset.profile_version, Dataset.summary).where(Dataset.id == dataset_id))
        ).one()
        return row.profile_version, row.summary["coordinates"]


async def _listed_coordinates(client, account, name: str) -> dict | None:
    response = await client.get("/api/datasets", params={"name": name}, headers=account.headers)
    assert response.status_code == 200, response.text
    (item,) = response.json()["items"]
    return item["coordinates"]


async def test_new_uploads_store_the_current_profile_version(client, alice, resources):
    stored = await _upload(client, alice, _csv(), f"좌표-새-{secrets.token_hex(3)}")
    assert stored["coordinates"] == {"lat": "y좌표", "lon": "x좌표"}
    version, coordinates = await _stored(resources, stored["id"])
    assert version == PROFILE_VERSION and coordinates["valid"] == 12


async def test_reading_a_stale_profile_recomputes_it_and_the_map_has_points(client, alice, resources):
    name = f"좌표-옛-{secrets.token_hex(3)}"
    stored = await _upload(client, alice, _csv(), name)
    await _make_stale(resources, stored["id"])
    assert await _listed_coordinates(client, alice, name) is None  # what users met before

    detail = await client.get(f"/api/datasets/{stored['id']}", headers=alice.headers)
    assert detail.status_code == 200, detail.text
    coordinates = detail.json()["summary"]["coordinates"]
    assert coordinates["lat_column"] == "y좌표" and coordinates["lon_column"] == "x좌표"
    assert coordinates["valid"] == 12
    assert await _stored(resources, stored["id"]) == (PROFILE_VERSION, coordinates)
    assert await _listed_coordinates(client, alice, name) == {"lat": "y좌표", "lon": "x좌표"}

    points = await client.get(f"/api/datasets/{stored['id']}/points", headers=alice.headers)
    assert points.status_code == 200, points.text
    assert points.json()["returned"] == 12
    assert {round(p["lat"], 3) for p in points.json()["points"]} >= {35.84, 35.895}


async def test_reupload_of_identical_bytes_does_not_reuse_a_stale_profile(client, alice, resources):
    content, name = _csv(), f"좌표-재-{secrets.token_hex(3)}"
    first = await _upload(client, alice, content, name)
    await _make_stale(resources, first["id"])

    second = await _upload(client, alice, content, name)
    assert second["version"] == 2 and second["content_sha256"] == first["content_sha256"]
    assert second["coordinates"] == {"lat": "y좌표", "lon": "x좌표"}
    for dataset_id in (first["id"], second["id"]):  # the older version is brought up to date too
        version, coordinates = await _stored(resources, dataset_id)
        assert version == PROFILE_VERSION and coordinates["valid"] == 12


async def test_the_maintenance_job_recomputes_stale_profiles_once(client, alice, bob, resources, settings):
    names = [f"좌표-작업-{secrets.token_hex(3)}" for _ in range(2)]
    stored = [await _upload(client, alice, _csv(), names[0]), await _upload(client, bob, _csv(), names[1])]
    for item in stored:
        await _make_stale(resources, item["id"])

    job = await resources.arq.enqueue_job("refresh_stale_profiles")
    await run_worker(settings)
    assert await job.result(timeout=5) >= 2
    for item in stored:
        version, coordinates = await _stored(resources, item["id"])
        assert version == PROFILE_VERSION and coordinates["lat_column"] == "y좌표"
    assert await _listed_coordinates(client, alice, names[0]) == {"lat": "y좌표", "lon": "x좌표"}
    assert await _listed_coordinates(client, bob, names[1]) == {"lat": "y좌표", "lon": "x좌표"}

    again = await resources.arq.enqueue_job("refresh_stale_profiles")
    await run_worker(settings)
    assert await again.result(timeout=5) == 0  # idempotent: nothing left to do


async def test_a_refreshed_row_carries_the_new_profile_without_pending_changes(client, alice, resources):
    from sqlalchemy import inspect

    from api.datasets.reprofile import ProfileRefresher

    dataset = await _upload(client, alice, _csv(), "재계산-세션")
    await _make_stale(resources, dataset["id"])
    async with resources.sessions() as session:
        row = await session.get(Dataset, dataset["id"])
        assert row is not None and row.profile_version == 1
        await ProfileRefresher(session, resources).refresh(row)
        assert row.profile_version == PROFILE_VERSION and row.summary["coordinates"] is not None
        # Loaded values, not edits: the caller's next commit has nothing of this row to write again.
        assert not inspect(row).modified and row not in session.dirty
    assert (await _stored(resources, dataset["id"]))[0] == PROFILE_VERSION
