"""One PostgreSQL advisory lock per job: two deliveries of the same job never run side by side."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

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
