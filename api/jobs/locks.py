"""One PostgreSQL advisory lock per job, and the heartbeat lease a live run keeps while it holds it.

The lock means "a live run owns this job": two deliveries of the same job never run side by side, and it
is released by PostgreSQL itself when the run's connection dies with its worker. The lease (`heartbeat_at`,
renewed every `HAB_JOB_HEARTBEAT_SECONDS` by a task of the run, independent of how slow its work is) lets
the sweeper notice a dead run within seconds; the sweeper still takes the lock before touching a running
job, so a slow but live run is never given away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger("hab.jobs")

JOB_LOCK_NAMESPACE = 4201


@asynccontextmanager
async def job_lock(engine: AsyncEngine, job_id: int) -> AsyncIterator[bool]:
    """Yields whether this process now holds the job's lock (held on its own connection until exit)."""
    async with engine.connect() as connection:
        held = bool(await connection.scalar(select(func.pg_try_advisory_lock(JOB_LOCK_NAMESPACE, job_id))))
        await connection.commit()
        try:
            yield held
        finally:
            if held:
                await asyncio.shield(connection.execute(select(func.pg_advisory_unlock(JOB_LOCK_NAMESPACE, job_id))))


@asynccontextmanager
async def job_lease(engine: AsyncEngine, job_id: int, *, heartbeat_seconds: float) -> AsyncIterator[bool]:
    """The job's lock plus a heartbeat renewed while it is held (only once the run has marked it running)."""
    async with job_lock(engine, job_id) as held:
        if not held:
            yield False
            return
        beat = asyncio.create_task(_renew(engine, job_id, heartbeat_seconds))
        try:
            yield True
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat


_RENEW = text("update jobs set heartbeat_at = now() where id = :id and status = 'running'")


async def _renew(engine: AsyncEngine, job_id: int, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            async with engine.begin() as connection:
                await connection.execute(_RENEW, {"id": job_id})
        except Exception as exc:  # a database hiccup must never fail a run that is working; the next beat retries
            logger.warning("heartbeat of job %s failed (%s)", job_id, type(exc).__name__)
