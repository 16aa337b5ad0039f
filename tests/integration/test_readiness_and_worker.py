from __future__ import annotations

import httpx
from sqlalchemy import func, select

from api.app import create_app
from api.db.tables import DatasetBlob
from api.resources import close_resources, open_resources
from tests.integration.conftest import closed_port, run_worker


async def _ready_with(settings, **overrides) -> httpx.Response:
    broken = settings.model_copy(update=overrides)
    app = create_app(broken)
    app.state.resources = await open_resources(broken)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.get("/ready")
    finally:
        await close_resources(app.state.resources)


async def test_ready_names_redis_when_it_is_down(settings):
    response = await _ready_with(settings, redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    assert response.status_code == 503
    assert response.json()["failed"] == ["redis"] and response.json()["checks"]["postgres"] == "ok"


async def test_ready_names_postgres_when_it_is_down(settings):
    response = await _ready_with(settings, database_url=f"postgresql://postgres@127.0.0.1:{closed_port()}/x")
    assert response.status_code == 503 and response.json()["failed"] == ["postgres"]


async def test_health_stays_up_without_redis(settings):
    broken = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{closed_port()}/0"})
    app = create_app(broken)
    app.state.resources = await open_resources(broken)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            assert (await client.get("/health")).status_code == 200
    finally:
        await close_resources(app.state.resources)


async def test_worker_purges_orphan_blobs(resources, settings):
    async with resources.sessions() as session:
        session.add(DatasetBlob(content_sha256="f" * 64, parquet=b"PAR1", parquet_bytes=4))
        await session.commit()
    job = await resources.arq.enqueue_job("purge_unreferenced_blobs")
    await run_worker(settings)
    assert await job.result(timeout=5) >= 1
    async with resources.sessions() as session:
        orphan = await session.scalar(
            select(func.count()).select_from(DatasetBlob).where(DatasetBlob.content_sha256 == "f" * 64)
        )
    assert orphan == 0
    # The job payload in Redis is MessagePack, never a pickle.
    raw = await resources.redis.get(f"arq:result:{job.job_id}")
    assert raw is not None and not raw.startswith(b"\x80")


async def test_prune_arq_results_drops_only_lingering_result_keys(resources):
    from workers.maintenance import prune_arq_results

    redis = resources.redis
    await redis.set("arq:result:lingering-test", b"x")  # no expiry: would stay forever
    await redis.set("arq:result:fresh-test", b"x", ex=600)  # arq's normal short-lived result
    await redis.set("arq:other:lingering-test", b"x")  # not a result key: never touched
    try:
        removed = await prune_arq_results({"redis": redis})
        assert removed >= 1
        assert await redis.exists("arq:result:lingering-test") == 0
        assert await redis.exists("arq:result:fresh-test") == 1
        assert await redis.exists("arq:other:lingering-test") == 1
    finally:
        await redis.delete("arq:result:fresh-test", "arq:other:lingering-test")
