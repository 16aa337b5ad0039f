"""The job dashboard (GET /api/jobs/overview) over real arq workers, real PostgreSQL and Redis.

A job is held "running" deterministically by a row lock the test takes on its jobs row: the worker's run
has started (so the worker reports it) and waits on the lock until the test lets go.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import secrets
import signal
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, text

from api.db.tables import Job
from api.jobs import presence
from tests.e2e.test_processes import HAB
from tests.integration.conftest import _account, make_test_worker
from tests.integration.test_predictions_api import RAW_ROW
from tests.waiting import async_wait_until

pytestmark = pytest.mark.timeout(240)
TTL = 1.5  # seconds: short, so a killed worker's record expires quickly


@pytest.fixture(scope="module")
def fast(settings):
    """The suite's settings with a short presence TTL (what HAB_WORKER_TTL_SECONDS sets)."""
    return settings.model_copy(update={"worker_ttl_seconds": TTL})


class LiveWorker:
    """A real arq worker (not burst) in this event loop, stopped as SIGTERM stops it."""

    def __init__(self, settings) -> None:
        self.worker = make_test_worker(settings)
        self.running = asyncio.create_task(self.worker.main())
        self.worker.main_task = self.running  # what arq's signal handler cancels (set by `run()`, not `main()`)

    async def stop(self) -> None:
        self.worker.handle_sig(signal.SIGTERM)
        await asyncio.gather(self.running, return_exceptions=True)
        await self.worker.close()


def started_here(workers: list[dict], since: dt.datetime) -> list[dict]:
    """The in-process workers this test started (earlier tests' workers share pid and queue)."""
    return [w for w in workers if w["pid"] == os.getpid() and dt.datetime.fromisoformat(w["started_at"]) >= since]


async def fresh_member(resources, name: str):
    return await _account(resources, f"{name}-{secrets.token_hex(3)}", False)


async def overview(client, account) -> dict:
    response = await client.get("/api/jobs/overview", headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def submit_inline(client, account) -> int:
    response = await client.post("/api/predict/jobs", json={"rows": [RAW_ROW]}, headers=account.headers)
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


@contextlib.asynccontextmanager
async def row_locked(resources, job_id: int) -> AsyncIterator[None]:
    """Hold the job's row (FOR UPDATE) so its run, once started, waits on its first write."""
    async with resources.sessions() as session, session.begin():
        await session.execute(select(Job.id).where(Job.id == job_id).with_for_update())
        yield


async def job_status(client, account, job_id: int) -> str:
    return (await client.get(f"/api/jobs/{job_id}", headers=account.headers)).json()["status"]


async def test_a_live_worker_is_listed_with_its_running_job_and_members_see_only_theirs(
    client, resources, fast, admin, versions
):
    alice, bob = await fresh_member(resources, "dash-a"), await fresh_member(resources, "dash-b")
    since = dt.datetime.now(dt.UTC)
    before = await overview(client, admin)
    assert before["scope"] == "all" and before["scope_label"] == "모든 사용자의 작업"
    job_id = await submit_inline(client, alice)
    assert (await overview(client, admin))["queue_depth"] == before["queue_depth"] + 1  # waiting for a worker
    lock = row_locked(resources, job_id)
    await lock.__aenter__()
    locked = True
    live = LiveWorker(fast)
    try:

        async def listed() -> list[dict]:
            ours = started_here((await overview(client, admin))["workers"], since)
            return ours if ours and ours[0]["job_ids"] == [job_id] else []

        (worker,) = await async_wait_until(listed, seconds=30, what="the worker reports alice's job")
        assert worker["host"] and worker["other_jobs"] == 0 and worker["started_at"] <= worker["heartbeat_at"]

        mine = await overview(client, alice)
        assert mine["scope"] == "mine" and mine["scope_label"] == "내 작업"
        assert started_here(mine["workers"], since)[0]["job_ids"] == [job_id]
        assert mine["running"] + mine["queued"] == 1  # alice's one job, picked up but not yet marked running
        (seen_by_bob,) = started_here((await overview(client, bob))["workers"], since)
        # bob sees the worker and that it is busy, not alice's job id
        assert seen_by_bob["job_ids"] == [] and seen_by_bob["other_jobs"] == 1
        await lock.__aexit__(None, None, None)
        locked = False
        await async_wait_until(lambda: _ended(client, alice, job_id), seconds=60, what="alice's job ends, let go")
    finally:
        if locked:
            await lock.__aexit__(None, None, None)  # the run goes on before its worker stops
        await live.stop()
    assert started_here((await overview(client, admin))["workers"], since) == []  # withdrawn at once on stop
    assert await job_status(client, alice, job_id) == "succeeded"


async def test_counts_of_the_last_hour_match_the_jobs_made_here(client, resources, fast, admin, versions):
    bob = await fresh_member(resources, "dash-counts")
    admin_before = await overview(client, admin)
    member_before = await overview(client, bob)
    assert member_before["succeeded"] == member_before["failed"] == member_before["cancelled"] == 0
    succeeded = [await submit_inline(client, bob) for _ in range(2)]

    # A job whose dataset is deleted before it runs fails.
    upload = await client.post(
        "/api/datasets/upload/csv",
        params={"name": "곧 지울 데이터"},
        content=",".join(RAW_ROW).encode() + b"\n" + ",".join(str(v) for v in RAW_ROW.values()).encode() + b"\n",
        headers={**bob.headers, "Content-Type": "text/csv"},
    )
    assert upload.status_code == 201, upload.text
    doomed = await client.post("/api/predict/jobs", json={"dataset_id": upload.json()["id"]}, headers=bob.headers)
    assert doomed.status_code == 202, doomed.text
    assert (await client.delete(f"/api/datasets/{upload.json()['id']}", headers=bob.headers)).status_code == 204
    cancelled = await submit_inline(client, bob)
    assert (await client.post(f"/api/jobs/{cancelled}/cancel", headers=bob.headers)).status_code == 200
    # A job that finished two hours ago is outside the window.
    old = await submit_inline(client, bob)
    async with resources.sessions() as session, session.begin():
        await session.execute(
            text("UPDATE jobs SET status = 'succeeded', finished_at = now() - interval '2 hours' WHERE id = :id"),
            {"id": old},
        )

    live = LiveWorker(fast)
    try:
        for job_id in [*succeeded, doomed.json()["job_id"]]:

            async def ended(job_id: int = job_id) -> bool:
                return await job_status(client, bob, job_id) in ("succeeded", "failed")

            await async_wait_until(ended, seconds=60, what=f"job {job_id} ends")
    finally:
        await live.stop()
    assert [await job_status(client, bob, j) for j in succeeded] == ["succeeded", "succeeded"]
    assert await job_status(client, bob, doomed.json()["job_id"]) == "failed"

    member = await overview(client, bob)
    assert (member["succeeded"], member["failed"], member["cancelled"]) == (2, 1, 1)
    assert member["window_seconds"] == 3600 and member["queued"] == member["running"] == 0
    after = await overview(client, admin)
    made = {"succeeded": 2, "failed": 1, "cancelled": 1}
    assert {k: after[k] - admin_before[k] for k in made} == made


@pytest.mark.e2e
@pytest.mark.faults
async def test_a_killed_worker_disappears_within_the_ttl(client, resources, settings, admin, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAB_") or k == "HAB_MODEL_COMPILE"}
    env.update(
        {
            "DATABASE_URL": settings.database_url or "",
            "REDIS_URL": settings.redis_url or "",
            "HAB_ENV": "test",
            "HAB_ENV_FILE": "/dev/null",
            "HAB_SECRET_KEY": settings.secret_key or "",
            "HAB_QUEUE_NAME": settings.queue_name,
            "HAB_WORKER_TTL_SECONDS": str(TTL),
        }
    )
    log = tmp_path / "worker.log"
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(HAB, "worker", env=env, stdout=out, stderr=out)
    try:

        async def listed() -> list:
            return [w for w in (await overview(client, admin))["workers"] if w["pid"] == process.pid]

        await async_wait_until(listed, seconds=120, interval=0.2, what="the hab worker is listed")
        process.send_signal(signal.SIGKILL)
        await asyncio.wait_for(process.wait(), 10)
        # No graceful withdrawal: only the TTL removes it (the deadline allows a renewal just before the kill).
        gone = await async_wait_until(
            lambda: _absent(listed), seconds=TTL + 5, what="the killed worker leaves the list"
        )
        assert gone
        keys = [k async for k in resources.redis.scan_iter(match=presence.presence_key(settings.queue_name, "*"))]
        assert keys == []
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _absent(listed) -> bool:
    return not await listed()


async def _ended(client, account, job_id: int) -> bool:
    return await job_status(client, account, job_id) == "succeeded"
