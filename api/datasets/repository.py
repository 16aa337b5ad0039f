"""SQL for datasets, their blobs and share links."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, cast

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import CursorResult, Result, Select, delete, exists, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import defer

from api.datasets.kinds import Visibility
from api.db.tables import Dataset, DatasetBlob, ShareLink, User
from api.users.services import Principal


class DatasetBrief(NamedTuple):
    id: int
    name: str
    kind: str
    rows: int
    sha: str


def visible_sql(admin: str, viewer: str, team: str) -> str:
    """Who may see a dataset row, in SQL over the given parameters (the viewer is an admin; the viewer's id; the
    team visibility): one rule for the briefs read and for the cache hit's re-check (api/chat/repository.py)."""
    return f"({admin}::boolean OR datasets.owner_id = {viewer} OR datasets.visibility = {team})"


# In the driver's own form ($n parameters) and prepared once: every chat turn (cache hits included) runs it,
# on a session's connection or on a bare pooled one (api/chat/hits.py), and building a Core statement per call
# costs more CPU than the query itself.
VISIBLE_BRIEFS_SQL = (
    "SELECT id, name, kind, rows, content_sha256 FROM datasets WHERE id = ANY($1::bigint[])"
    " AND " + visible_sql("$2", "$3", "$4")
)


def visible_briefs_args(dataset_ids: list[int], user: Principal) -> tuple[Any, ...]:
    return (dataset_ids, user.is_admin, user.id, Visibility.TEAM.value)


def briefs_by_id(rows: Iterable[Sequence[Any]]) -> dict[int, DatasetBrief]:
    return {r[0]: DatasetBrief(id=r[0], name=r[1], kind=r[2], rows=r[3], sha=r[4]) for r in rows}


def _rowcount(result: Result[Any]) -> int:
    # A DELETE's result is a CursorResult, which has the row count; the session's execute() is typed as Result.
    return int(cast(CursorResult[Any], result).rowcount or 0)


class DatasetRepository(SQLAlchemyAsyncRepository[Dataset]):
    model_type = Dataset

    def _visible_to(self, user: Principal) -> Select[Dataset, str]:
        stmt = select(Dataset, User.name).join(User, User.id == Dataset.owner_id)
        if not user.is_admin:
            stmt = stmt.where(or_(Dataset.owner_id == user.id, Dataset.visibility == Visibility.TEAM))
        return stmt

    async def page_visible(
        self, user: Principal, *, offset: int, limit: int, kind: str | None, name: str | None
    ) -> tuple[list[tuple[Dataset, str, dict[str, Any] | None]], int]:
        """(dataset, owner name, the profile's coordinate columns) per row; the rest of the profile stays
        unread (deferred): a listing never needs it."""
        stmt = self._visible_to(user).add_columns(Dataset.summary["coordinates"]).options(defer(Dataset.summary))
        if kind:
            stmt = stmt.where(Dataset.kind == kind)
        if name:
            stmt = stmt.where(Dataset.name == name)
        total = await self.session.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = await self.session.execute(
            stmt.order_by(Dataset.created_at.desc(), Dataset.id.desc()).offset(offset).limit(limit)
        )
        return [(d, owner, coordinates) for d, owner, coordinates in rows.all()], int(total or 0)

    async def get_visible(self, dataset_id: int, user: Principal) -> tuple[Dataset, str] | None:
        row = (await self.session.execute(self._visible_to(user).where(Dataset.id == dataset_id))).first()
        return None if row is None else (row[0], row[1])

    async def visible_by_id(self, dataset_ids: list[int], user: Principal) -> dict[int, Dataset]:
        """Those of these datasets the user may see, by id, in one query."""
        rows = await self.session.execute(self._visible_to(user).where(Dataset.id.in_(dataset_ids)))
        return {dataset.id: dataset for dataset, _ in rows.all()}

    async def summaries(self, dataset_ids: list[int]) -> dict[int, dict[str, Any]]:
        """The stored profiles of these datasets, by id (those that still exist)."""
        rows = await self.session.execute(select(Dataset.id, Dataset.summary).where(Dataset.id.in_(dataset_ids)))
        return {r[0]: r[1] for r in rows.all()}

    async def get_with_owner(self, dataset_id: int) -> tuple[Dataset, str] | None:
        stmt = select(Dataset, User.name).join(User, User.id == Dataset.owner_id).where(Dataset.id == dataset_id)
        row = (await self.session.execute(stmt)).first()
        return None if row is None else (row[0], row[1])

    async def lock_name(self, owner_id: int, name: str) -> None:
        """Serialise version numbering of one (owner, name) until the transaction ends."""
        key = int.from_bytes(hashlib.sha256(f"{owner_id}:{name}".encode()).digest()[:8], "big", signed=True)
        await self.session.execute(text("select pg_advisory_xact_lock(:key)"), {"key": key})

    async def next_version(self, owner_id: int, name: str) -> int:
        current = await self.session.scalar(
            select(func.max(Dataset.version)).where(Dataset.owner_id == owner_id, Dataset.name == name)
        )
        return int(current or 0) + 1

    async def any_with_content(self, sha: str) -> Dataset | None:
        """A dataset already made from identical bytes: its parse and profile can be reused."""
        return await self.session.scalar(
            select(Dataset).where(Dataset.content_sha256 == sha).order_by(Dataset.id).limit(1)
        )

    async def stale_profiles(self, version: int, *, limit: int) -> list[tuple[str, str]]:
        """(content hash, kind) of datasets whose stored profile was made by profiling code older than
        `version`, one entry per hash."""
        rows = await self.session.execute(
            select(Dataset.content_sha256, func.min(Dataset.kind))
            .where(Dataset.profile_version < version)
            .group_by(Dataset.content_sha256)
            .order_by(Dataset.content_sha256)
            .limit(limit)
        )
        return [(sha, kind) for sha, kind in rows.all()]

    async def store_profile(self, sha: str, summary: dict[str, Any], columns: list[Any], version: int) -> int:
        """Give every dataset made from these bytes whose profile is older than `version` this profile."""
        result = await self.session.execute(
            update(Dataset)
            .where(Dataset.content_sha256 == sha, Dataset.profile_version < version)
            .values(summary=summary, columns=columns, profile_version=version)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    async def blob_exists(self, sha: str) -> bool:
        return bool(await self.session.scalar(select(exists().where(DatasetBlob.content_sha256 == sha))))

    async def store_blob(self, sha: str, parquet: bytes) -> None:
        await self.session.execute(
            insert(DatasetBlob)
            .values(content_sha256=sha, parquet=parquet, parquet_bytes=len(parquet))
            .on_conflict_do_nothing(index_elements=[DatasetBlob.content_sha256])
        )

    async def fetch_parquet(self, sha: str) -> bytes | None:
        return await self.session.scalar(select(DatasetBlob.parquet).where(DatasetBlob.content_sha256 == sha))

    async def delete_blob_if_unreferenced(self, sha: str) -> bool:
        result = await self.session.execute(
            delete(DatasetBlob).where(
                DatasetBlob.content_sha256 == sha,
                ~exists().where(Dataset.content_sha256 == sha),
            )
        )
        return bool(_rowcount(result))

    async def unreferenced_blobs(self) -> list[str]:
        """Hashes of the blobs no dataset row references any more."""
        orphans = select(DatasetBlob.content_sha256).where(
            ~exists().where(Dataset.content_sha256 == DatasetBlob.content_sha256)
        )
        return list(await self.session.scalars(orphans))

    async def delete_blobs_if_unreferenced(self, shas: list[str]) -> None:
        """Delete these blobs, each only if still unreferenced (an upload may have reused it meanwhile)."""
        await self.session.execute(
            delete(DatasetBlob).where(
                DatasetBlob.content_sha256.in_(shas),
                ~exists().where(Dataset.content_sha256 == DatasetBlob.content_sha256),
            )
        )

    async def any_demo(self) -> bool:
        """Whether demo datasets have been loaded."""
        return bool(await self.session.scalar(select(exists().where(Dataset.is_demo.is_(True)))))


class ShareLinkRepository(SQLAlchemyAsyncRepository[ShareLink]):
    model_type = ShareLink

    async def by_token_hash(self, token_hash: str) -> ShareLink | None:
        return await self.session.scalar(select(ShareLink).where(ShareLink.token_hash == token_hash))

    async def page_for_dataset(
        self, dataset_id: int, *, created_by: int | None, offset: int, limit: int
    ) -> tuple[list[tuple[ShareLink, str]], int]:
        """A dataset's links with their creators' names, newest first; only one creator's when `created_by`."""
        stmt = (
            select(ShareLink, User.name)
            .join(User, User.id == ShareLink.created_by)
            .where(ShareLink.dataset_id == dataset_id)
        )
        if created_by is not None:
            stmt = stmt.where(ShareLink.created_by == created_by)
        total = await self.session.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = await self.session.execute(
            stmt.order_by(ShareLink.created_at.desc(), ShareLink.id.desc()).offset(offset).limit(limit)
        )
        return [(link, creator) for link, creator in rows.all()], int(total or 0)

    async def expire_due(self, now: dt.datetime) -> int:
        result = await self.session.execute(
            delete(ShareLink).where(ShareLink.expires_at.is_not(None), ShareLink.expires_at < now)
        )
        return _rowcount(result)
