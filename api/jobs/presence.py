"""Which workers are alive: each worker writes a small record under a key with a TTL, the API reads them.

A worker renews its record every third of the TTL; one that dies (SIGKILL, a lost machine) stops renewing
and Redis drops its key within the TTL, so the dashboard never needs to guess from missed beats. A worker
that stops gracefully deletes its key at once. Keys carry the queue name, so workers of another queue (a
test's own) are never listed. This module is the protocol both sides share; the worker's loop is in
workers/presence.py (the API never imports workers).
"""

from __future__ import annotations

import msgspec
from redis.asyncio import Redis

KEY_PREFIX = "hab:worker"


class WorkerPresence(msgspec.Struct, kw_only=True):
    """One worker's report (times are Unix seconds)."""

    worker_id: str
    host: str
    pid: int
    started_at: float
    heartbeat_at: float
    job_ids: list[int]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(WorkerPresence)


def presence_key(queue_name: str, worker_id: str) -> str:
    return f"{KEY_PREFIX}:{queue_name}:{worker_id}"


async def publish(redis: Redis, queue_name: str, presence: WorkerPresence, *, ttl_seconds: float) -> None:
    await redis.set(presence_key(queue_name, presence.worker_id), _encoder.encode(presence), px=int(ttl_seconds * 1000))


async def withdraw(redis: Redis, queue_name: str, worker_id: str) -> None:
    await redis.delete(presence_key(queue_name, worker_id))


async def live_workers(redis: Redis, queue_name: str) -> list[WorkerPresence]:
    """Every worker of this queue whose record has not expired, oldest first."""
    prefix = presence_key(queue_name, "").encode()
    # A queue named "q:x" would match "q:*" too: keep only keys whose rest is a bare worker id.
    keys = [key async for key in redis.scan_iter(match=prefix + b"*", count=500) if b":" not in key[len(prefix) :]]
    if not keys:
        return []
    found = []
    for raw in await redis.mget(keys):
        if raw is None:  # expired between SCAN and MGET
            continue
        try:
            found.append(_decoder.decode(raw))
        except msgspec.DecodeError:  # not ours (a foreign key under the prefix): skip it rather than fail the page
            continue
    return sorted(found, key=lambda w: (w.started_at, w.worker_id))
