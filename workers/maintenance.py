"""Housekeeping jobs (idempotent; safe to run at any time, any number of times)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, exists, select

from api.datasets.repository import ShareLinkRepository
from api.db.tables import Dataset, DatasetBlob


async def purge_unreferenced_blobs(ctx: dict[str, Any]) -> int:
    """Remove dataset blobs that no dataset row references any more."""
    resources = ctx["resources"]
    async with resources.sessions() as session:
        orphans = select(DatasetBlob.content_sha256).where(
            ~exists().where(Dataset.content_sha256 == DatasetBlob.content_sha256)
        )
        shas = list(await session.scalars(orphans))
        if shas:
            await session.execute(
                delete(DatasetBlob).where(
                    DatasetBlob.content_sha256.in_(shas),
                    ~exists().where(Dataset.content_sha256 == DatasetBlob.content_sha256),
                )
            )
            await session.commit()
        for sha in shas:
            resources.tables.discard(sha)
        return len(shas)


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
