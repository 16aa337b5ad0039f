"""Recomputing stored profiles that older profiling code made (`datasets.profile_version` < PROFILE_VERSION).

A profile is a pure function of the stored table, so recomputing it from the Parquet blob is safe to repeat:
every dataset row of one content hash gets the same summary, and the UPDATE only touches rows still older
than the current version, so concurrent refreshes (two API processes, a worker) agree. Three callers: a
read of a dataset's detail (so a page never shows a stale profile), a re-upload of identical bytes (which
reuses the stored profile), and the worker's `refresh_stale_profiles` maintenance job (so listings, which
read only the coordinate part of the profile, catch up without anyone opening each dataset).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from api.datasets import profile
from api.datasets.kinds import DatasetKind
from api.datasets.repository import DatasetRepository
from api.db.tables import Dataset
from api.resources import Resources

log = logging.getLogger("hab.datasets")


def column_infos(summary: profile.DatasetSummary) -> list[dict[str, Any]]:
    """The listing's column part (`datasets.columns`) of a profile."""
    return [{"name": c.name, "dtype": c.dtype, "missing_ratio": c.missing_ratio} for c in summary.columns]


def is_stale(row: Dataset) -> bool:
    return (row.profile_version or 0) < profile.PROFILE_VERSION


class ProfileRefresher:
    def __init__(self, session: AsyncSession, resources: Resources) -> None:
        self.session = session
        self.resources = resources
        self.datasets = DatasetRepository(session=session)

    async def _recompute(self, sha: str, kind: str) -> tuple[dict[str, Any], list[Any]] | None:
        """The current profile of the stored table, or None when its blob is gone."""
        table = await self.resources.tables.load(sha, self.datasets.fetch_parquet)
        if table is None:
            return None
        summary = await asyncio.to_thread(profile.summarize, table, DatasetKind(kind))
        return msgspec.to_builtins(summary), column_infos(summary)

    async def refresh(self, row: Dataset) -> None:
        """Bring this row (and every row of the same bytes) to the current profile, if it is older; commits."""
        if not is_stale(row):
            return
        recomputed = await self._recompute(row.content_sha256, row.kind)
        if recomputed is None:
            return
        summary, columns = recomputed
        await self.datasets.store_profile(row.content_sha256, summary, columns, profile.PROFILE_VERSION)
        await self.session.commit()
        # The UPDATE bypassed the identity map: give the loaded object the values it wrote, as loaded values
        # (plain assignment would mark them changed, and the caller's next commit would write them again).
        set_committed_value(row, "summary", summary)
        set_committed_value(row, "columns", columns)
        set_committed_value(row, "profile_version", profile.PROFILE_VERSION)

    async def refresh_all(self, *, batch: int = 20) -> int:
        """Recompute every stale stored profile, one content hash per transaction; returns the rows updated."""
        updated = 0
        skipped: set[str] = set()
        while True:
            found = await self.datasets.stale_profiles(profile.PROFILE_VERSION, limit=batch + len(skipped))
            stale = [(sha, kind) for sha, kind in found if sha not in skipped]
            if not stale:
                return updated
            for sha, kind in stale[:batch]:
                try:
                    recomputed = await self._recompute(sha, kind)
                except Exception:  # one unreadable blob must not stop the others
                    log.exception("profile refresh failed", extra={"content_sha256": sha})
                    await self.session.rollback()
                    recomputed = None
                if recomputed is None:
                    skipped.add(sha)
                    continue
                updated += await self.datasets.store_profile(sha, *recomputed, profile.PROFILE_VERSION)
                await self.session.commit()
