"""The job lock under cancellation, on real PostgreSQL (api/jobs/locks.py)."""

from __future__ import annotations

import asyncio
import gc
import secrets

import pytest
from sqlalchemy import event, func, select

from api.jobs.locks import MAX_LOCKABLE_JOB_ID, job_lock, lock_keys


async def _lock_is_free(resources, key: int) -> bool:
    """Whether another session can take the lock now (taken and given back at once)."""
    async with resources.engine.connect() as connection:
        taken = bool(await connection.scalar(select(func.pg_try_advisory_lock(*lock_keys(key)))))
        if taken:
            await connection.scalar(select(func.pg_advisory_unlock(*lock_keys(key))))
        await connection.commit()
        return taken


async def test_a_cancellation_during_the_unlock_still_releases_the_lock_on_a_healthy_connection(resources):
    """Cancelled just as its unlock is sent (a shutdown's timeout, a cancelled sweep), the lock is let go of on
    its own connection, which is neither closed under the statement nor left with an error nobody reads, and
    the caller then gets the cancellation."""
    key = 2**30 + secrets.randbelow(2**30)  # no job has an id this large here
    holder: asyncio.Task[None] | None = None
    unlocks: list[str] = []
    invalidated: list[BaseException | None] = []
    unretrieved: list[dict] = []

    def cancel_at_unlock(conn, cursor, statement, parameters, context, executemany) -> None:
        if "pg_advisory_unlock" in statement and holder is not None and not unlocks:
            unlocks.append(statement)
            holder.cancel()  # delivered at the unlock's first await, mid-statement

    def count_invalidation(dbapi_connection, record, exception) -> None:
        invalidated.append(exception)

    async def hold() -> None:
        async with job_lock(resources.engine, key) as held:
            assert held

    loop = asyncio.get_running_loop()
    previous_handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: unretrieved.append(context))
    engine = resources.engine.sync_engine
    event.listen(engine, "before_cursor_execute", cancel_at_unlock)
    event.listen(engine.pool, "invalidate", count_invalidation)
    try:
        holder = asyncio.create_task(hold())
        outcome = (await asyncio.gather(holder, return_exceptions=True))[0]
        gc.collect()  # a task whose exception nobody read reports it when collected
    finally:
        event.remove(engine, "before_cursor_execute", cancel_at_unlock)
        event.remove(engine.pool, "invalidate", count_invalidation)
        loop.set_exception_handler(previous_handler)
    assert unlocks, f"the cancellation never reached the unlock ({outcome!r})"
    assert isinstance(outcome, asyncio.CancelledError)
    assert await _lock_is_free(resources, key)
    assert invalidated == [] and unretrieved == []


async def test_job_ids_past_int4_have_locks_of_their_own(resources):
    """Job ids are bigint: one past 2**31 (and the largest the keys can name) is locked and let go of like any
    other, and is not the lock of the small id its low bits spell."""
    small = 1 + secrets.randbelow(2**20)
    for large in (2**31 + small, 5 * 2**31 + small, MAX_LOCKABLE_JOB_ID):
        async with job_lock(resources.engine, small) as held_small, job_lock(resources.engine, large) as held_large:
            assert held_small and held_large
            assert not await _lock_is_free(resources, large)
        assert await _lock_is_free(resources, large) and await _lock_is_free(resources, small)
    assert lock_keys(small) == (4201, small)  # what ids below 2**31 were always locked by
    for outside in (-1, MAX_LOCKABLE_JOB_ID + 1):
        with pytest.raises(ValueError):
            lock_keys(outside)
