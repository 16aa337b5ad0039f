"""Housekeeping jobs (idempotent; safe to run at any time, any number of times)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from api.datasets.repository import DatasetRepository, ShareLinkRepository
from api.datasets.reprofile import ProfileRefresher


async def purge_unreferenced_blobs(ctx: dict[str, Any]) -> int:
    """Remove dataset blobs that no dataset row references any more."""
    resources = ctx["resources"]
    async with resources.sessions() as session:
        datasets = DatasetRepository(session=session)
        shas = await datasets.unreferenced_blobs()
        if shas:
            await datasets.delete_blobs_if_unreferenced(shas)
            await session.commit()
        for sha in shas:
            resources.tables.discard(sha)
        return len(shas)


async def refresh_stale_profiles(ctx: dict[str, Any]) -> int:
    """Recompute the stored profiles older profiling code made (e.g. before x좌표/y좌표 were recognised as
    coordinates); returns how many dataset rows were updated. Runs when a worker starts and every hour."""
    resources = ctx["resources"]
    async with resources.sessions() as session:
        return await ProfileRefresher(session, resources).refresh_all()


async def expire_share_links(ctx: dict[str, Any]) -> int:
    """Delete share links past their expiry (reads already refuse them; this keeps the table small)."""
    resources = ctx["resources"]
    async with resources.sessions() as session:
        removed = await ShareLinkRepository(session=session).expire_due(dt.datetime.now(dt.UTC))
        await session.commit()
        return removed


async def prune_arq_results(ctx: dict[str, Any]) -> int:
    """Drop arq result keys of finished jobs past a day: the durable record is the jobs table."""
    redis = ctx["redis"]
    removed = 0
    async for key in redis.scan_iter(match="arq:result:*", count=500):
        ttl = await redis.ttl(key)
        if ttl == -1 or ttl > 24 * 3600:  # results kept without (or with a very long) expiry
            removed += await redis.delete(key)
    return removed
