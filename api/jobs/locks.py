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
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.cancellation import being_cancelled

logger = logging.getLogger("hab.jobs")

# Job locks use every first key from 4201 up (lock_keys): another two-int4 advisory lock needs a first key below.
JOB_LOCK_NAMESPACE = 4201
_INT4_SPAN = 2**31
# Past this the first key would leave int4: ids that no table of ours reaches (4.6e18 jobs).
MAX_LOCKABLE_JOB_ID = (_INT4_SPAN - JOB_LOCK_NAMESPACE) * _INT4_SPAN - 1


def lock_keys(job_id: int) -> tuple[int, int]:
    """The job's advisory lock as PostgreSQL's two int4 keys (a key space apart from the one-bigint locks of
    datasets and the registry). Ids below 2**31 map to (JOB_LOCK_NAMESPACE, id); a larger id moves on to the next
    first keys instead of overflowing int4 (job ids are bigint), one lock per id either way."""
    if not 0 <= job_id <= MAX_LOCKABLE_JOB_ID:
        raise ValueError(f"job id {job_id} has no advisory lock key")
    return JOB_LOCK_NAMESPACE + job_id // _INT4_SPAN, job_id % _INT4_SPAN


LOCK_POLL_SECONDS = 0.02


@asynccontextmanager
async def job_lock(engine: AsyncEngine, job_id: int, *, wait_seconds: float = 0.0) -> AsyncIterator[bool]:
    """Yields whether this process now holds the job's lock (held on its own connection until exit).

    `wait_seconds`: keep trying that long while another session holds it (a run of this process that is
    still letting go of it); by default one try.
    """
    async with engine.connect() as connection:
        held = await _try_lock(connection, job_id, wait_seconds)
        try:
            yield held
        finally:
            if held:
                await _unlock(connection, job_id)


async def _try_lock(connection: AsyncConnection, job_id: int, wait_seconds: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        held = bool(await connection.scalar(select(func.pg_try_advisory_lock(*lock_keys(job_id)))))
        if held or loop.time() >= deadline:
            await connection.commit()  # a session lock: it outlives this transaction
            return held
        await asyncio.sleep(LOCK_POLL_SECONDS)


async def _unlock(connection: AsyncConnection, job_id: int) -> None:
    """Release the lock, finishing that even when the caller is cancelled meanwhile (closing or pooling the
    connection mid-statement would break it); the cancellation is passed on afterwards."""
    release = asyncio.ensure_future(_release(connection, job_id))
    interrupted = False
    while not release.done():
        try:
            await asyncio.wait({release})  # unlike awaiting it, a cancellation here leaves the release running
        except asyncio.CancelledError:
            interrupted = True
    if interrupted:
        if not release.cancelled():
            release.exception()  # retrieved: the cancellation is what the caller gets
        raise asyncio.CancelledError
    release.result()


async def _release(connection: AsyncConnection, job_id: int) -> None:
    """The unlock; when it fails, close the connection instead, so that PostgreSQL releases the lock with the
    session rather than the pool handing out a connection that still holds it."""
    try:
        released = await connection.scalar(select(func.pg_advisory_unlock(*lock_keys(job_id))))
    except Exception:
        await connection.invalidate()
        raise
    if not released:
        logger.warning("the lock of job %s was not held when released", job_id)


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
            if being_cancelled():  # the run ended mid-beat and the driver reported it as its own error
                raise asyncio.CancelledError from exc
            logger.warning("heartbeat of job %s failed (%s)", job_id, type(exc).__name__)
