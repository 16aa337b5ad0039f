"""Where a job's sealed secret waits in Redis for the worker that runs it (a chat job's sealed API key).

Owned by the jobs layer so that cancelling a job or giving up on it can drop the secret without knowing
the kind; sealing and opening it are the kind's business (api/chat/keybox.py).
"""

from __future__ import annotations

import contextlib

from redis.asyncio import Redis


def redis_key(job_id: int) -> str:
    return f"hab:chat:sealed-key:{job_id}"


async def forget(redis: Redis, job_id: int) -> None:
    """Drop the job's sealed secret if it has one (best effort: the TTL removes it anyway)."""
    with contextlib.suppress(Exception):
        await redis.delete(redis_key(job_id))
