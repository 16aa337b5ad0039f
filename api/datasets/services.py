"""Dataset use cases: upload (parse, profile, store), reads, deletion and share links."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import unicodedata
from typing import Any, Literal, cast

import msgspec
import pyarrow as pa
from sqlalchemy.ext.asyncio import AsyncSession

from api.datasets import profile
from api.datasets import schemas as s
from api.datasets.distribution import column_distribution
from api.datasets.incremental import UploadedCsv, upload_too_large
from api.datasets.ingest import parse_csv
from api.datasets.kinds import Visibility
from api.datasets.map_points import sample_points
from api.datasets.parquet import to_parquet
from api.datasets.repository import DatasetRepository, ShareLinkRepository
from api.datasets.reprofile import ProfileRefresher, column_infos
from api.datasets.sampling import MAX_SAMPLE_ROWS, PairSample, sample_pair
from api.db.tables import Dataset, ShareLink
from api.errors import Forbidden, Gone, InvalidInput, NotFound
from api.observability.metrics import count_upload, upload_failures_counted
from api.resources import Resources
from api.schemas import Page
from api.users.services import Principal
from api.users.tokens import hash_token, new_token

MAX_ROWS_PAGE = 1000
MAX_MAP_POINTS = 50_000
DEFAULT_DATASET_NAME = "업로드 데이터"


def display_name_from_filename(filename: str | None) -> str:
    """A dataset name from a client file name: only the last path part, no extension, no control chars.

    The client's file name is display text only; it never becomes a filesystem path.
    """
    if not filename:
        return DEFAULT_DATASET_NAME
    base = re.split(r"[\\/]", filename)[-1]
    base = re.sub(r"\.(csv|txt|tsv)$", "", base, flags=re.IGNORECASE)
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip(" .")
    return base[:200] or DEFAULT_DATASET_NAME


def _clean_name(name: str | None, filename: str | None) -> str:
    if name is None or not name.strip():
        return display_name_from_filename(filename)
    cleaned = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if not cleaned or len(cleaned) > 200:
        raise InvalidInput("데이터셋 이름은 1~200자여야 합니다.", detail={"field": "name"})
    return cleaned


def to_dataset_out(row: Dataset, owner: str, coordinates: dict[str, Any] | None = None) -> s.Dataset:
    """The listing entry; `coordinates` is the profile's coordinate part when the profile itself was not read."""
    return s.Dataset(
        id=row.id,
        name=row.name,
        version=row.version,
        kind=row.kind,
        rows=row.rows,
        columns=msgspec.convert(row.columns, list[s.ColumnInfo]),
        content_sha256=row.content_sha256,
        size_bytes=row.size_bytes,
        encoding=row.encoding,
        owner=owner,
        owner_id=row.owner_id,
        visibility=cast(s.Visibility, row.visibility),  # the column's check constraint allows only these
        is_demo=row.is_demo,
        created_at=row.created_at,
        coordinates=_coordinate_pair(coordinates if coordinates is not None else row.summary.get("coordinates")),
    )


def _coordinate_pair(found: dict[str, Any] | None) -> s.CoordinatePair | None:
    """The latitude/longitude columns the profile found (by name, or x좌표/y좌표 by their values)."""
    return s.CoordinatePair(lat=found["lat_column"], lon=found["lon_column"]) if found else None


def _link_status(link: ShareLink, now: dt.datetime) -> Literal["active", "expired", "revoked"]:
    if link.revoked_at is not None:
        return "revoked"
    if link.expires_at is not None and link.expires_at <= now:
        return "expired"
    return "active"


def to_summary(row: Dataset) -> profile.DatasetSummary:
    return msgspec.convert(row.summary, profile.DatasetSummary)


class DatasetService:
    def __init__(self, session: AsyncSession, resources: Resources) -> None:
        self.session = session
        self.resources = resources
        self.datasets = DatasetRepository(session=session)
        self.links = ShareLinkRepository(session=session)

    # ---- upload ---------------------------------------------------------------------------------

    @upload_failures_counted
    async def upload(
        self,
        user: Principal,
        data: bytes | UploadedCsv,
        *,
        filename: str | None,
        name: str | None = None,
        visibility: str = "private",
        is_demo: bool = False,
    ) -> s.Dataset:
        """Store an uploaded CSV: raw bytes (CLI, demo data) or a body received and parsed on the fly."""
        upload = data if isinstance(data, UploadedCsv) else UploadedCsv.from_bytes(data)
        limit = self.resources.settings.upload_max_bytes
        if upload.size > limit:
            raise upload_too_large(limit, size_bytes=upload.size)
        if visibility not in set(Visibility):
            raise InvalidInput(
                "공개 범위는 private 또는 team 이어야 합니다.",
                detail={"field": "visibility", "value": visibility, "valid": [str(v) for v in Visibility]},
            )
        display_name = _clean_name(name, filename)
        sha = await asyncio.to_thread(upload.sha256)
        row = Dataset(
            owner_id=user.id,
            name=display_name,
            visibility=visibility,
            content_sha256=sha,
            size_bytes=upload.size,
            source_filename=display_name_from_filename(filename) if filename else None,
            is_demo=is_demo,
        )
        existing = await self.datasets.any_with_content(sha)
        if existing is not None:
            # Identical bytes were parsed and profiled before: reuse them, store nothing twice (a profile
            # made by older profiling code is brought up to date first).
            await ProfileRefresher(self.session, self.resources).refresh(existing)
            row.kind, row.rows, row.encoding = existing.kind, existing.rows, existing.encoding
            row.columns, row.summary = existing.columns, existing.summary
            row.profile_version = existing.profile_version
            reused = await self._add(user, row)
            count_upload("reused")
            return reused

        if upload.early is not None:  # parsed and encoded while the body arrived
            parsed, parquet = upload.early
            upload.release()  # the raw bytes are not needed any more
        else:
            parsed = await asyncio.to_thread(lambda: parse_csv(upload.content(), content_sha256=sha))
            parquet = None
        # The profile is computed in a thread while the Parquet blob is made and sent.
        summarizing = asyncio.ensure_future(asyncio.to_thread(profile.summarize, parsed.table, parsed.kind))
        try:
            if parquet is None:
                parquet = await asyncio.to_thread(to_parquet, parsed.table)
            await self.datasets.store_blob(sha, parquet)
            summary = await summarizing
        finally:
            if not summarizing.done():
                summarizing.cancel()  # the error above is the one to report
            elif not summarizing.cancelled():
                summarizing.exception()  # retrieved, so asyncio does not log it as never seen
        row.kind, row.rows, row.encoding = parsed.kind.value, parsed.table.num_rows, parsed.encoding
        row.columns, row.summary = column_infos(summary), msgspec.to_builtins(summary)
        row.profile_version = profile.PROFILE_VERSION

        out = await self._add(user, row)
        self.resources.tables.put(sha, parsed.table)
        count_upload("stored")
        return out

    async def _add(self, user: Principal, row: Dataset) -> s.Dataset:
        """Insert the row as the next version of its name (locked until the commit) and commit."""
        await self.datasets.lock_name(user.id, row.name)
        row.version = await self.datasets.next_version(user.id, row.name)
        row = await self.datasets.add(row)
        await self.session.commit()
        return to_dataset_out(row, user.name)

    # ---- reads ----------------------------------------------------------------------------------

    async def list(
        self, user: Principal, *, offset: int, limit: int, kind: str | None, name: str | None = None
    ) -> Page[s.Dataset]:
        rows, total = await self.datasets.page_visible(user, offset=offset, limit=limit, kind=kind, name=name)
        items = [to_dataset_out(d, owner, coordinates or {}) for d, owner, coordinates in rows]
        return Page(items=items, total=total, offset=offset, limit=limit)

    async def visible(self, user: Principal, dataset_id: int) -> tuple[Dataset, str]:
        """The dataset if the user may see it; another user's private dataset is 'not found' too."""
        found = await self.datasets.get_visible(dataset_id, user)
        if found is None:
            raise NotFound("데이터셋을 찾을 수 없습니다.", detail={"dataset_id": dataset_id})
        return found

    async def detail(self, user: Principal, dataset_id: int) -> s.DatasetDetail:
        row, owner = await self.visible(user, dataset_id)
        await ProfileRefresher(self.session, self.resources).refresh(row)
        out = to_dataset_out(row, owner)
        return s.DatasetDetail(**msgspec.structs.asdict(out), summary=to_summary(row))

    async def table(self, row: Dataset) -> pa.Table:
        """The dataset's Arrow table, from the in-process cache or decoded from its Parquet blob once."""
        table = await self.resources.tables.load(row.content_sha256, self.datasets.fetch_parquet)
        if table is None:  # the blob was removed under us: the dataset row is gone too
            raise NotFound("데이터셋을 찾을 수 없습니다.", detail={"dataset_id": row.id})
        return table

    async def rows(self, row: Dataset, *, offset: int, limit: int, columns: str | None) -> s.RowsPage:
        if offset < 0 or not 1 <= limit <= MAX_ROWS_PAGE:
            raise InvalidInput(
                f"offset은 0 이상, limit은 1~{MAX_ROWS_PAGE} 사이여야 합니다.",
                detail={"offset": offset, "limit": limit},
            )
        table = await self.table(row)
        selected = table.column_names
        if columns:
            wanted = [c.strip() for c in columns.split(",") if c.strip()]
            unknown = [c for c in wanted if c not in table.column_names]
            if unknown:
                raise InvalidInput(
                    "없는 열 이름이 있습니다: " + ", ".join(unknown),
                    detail={"unknown_columns": unknown, "valid_columns": table.column_names},
                )
            selected = wanted
        page = table.select(selected).slice(offset, limit)
        return s.RowsPage(items=page.to_pylist(), total=table.num_rows, offset=offset, limit=limit, columns=selected)

    async def distribution(self, row: Dataset, column: str) -> s.ColumnDistribution:
        table = await self.table(row)
        if column not in table.column_names:
            raise NotFound(f"'{column}' 열이 없습니다.", detail={"column": column, "valid_columns": table.column_names})
        return await asyncio.to_thread(column_distribution, table, column)

    async def points(self, row: Dataset, *, max_points: int) -> s.MapPoints:
        if not 1 <= max_points <= MAX_MAP_POINTS:
            raise InvalidInput(f"max_points는 1~{MAX_MAP_POINTS} 사이여야 합니다.", detail={"max_points": max_points})
        table = await self.table(row)
        try:
            return await asyncio.to_thread(sample_points, table, max_points=max_points)
        except ValueError:
            raise InvalidInput(
                "이 데이터셋에는 위도/경도 열이 없어 지도에 표시할 수 없습니다.",
                detail={"dataset_id": row.id, "kind": row.kind},
            ) from None

    async def sample(self, row: Dataset, *, x: str, y: str, size: int, seed: int) -> PairSample:
        """Two columns of a random sample of the whole dataset (scatter plots), the same for the same seed."""
        if not 1 <= size <= MAX_SAMPLE_ROWS:
            raise InvalidInput(
                f"n은 1~{MAX_SAMPLE_ROWS:,} 사이여야 합니다.", detail={"n": size, "max": MAX_SAMPLE_ROWS}
            )
        if not 0 <= seed < 2**32:
            raise InvalidInput("seed는 0 이상 2³² 미만의 정수여야 합니다.", detail={"seed": seed})
        table = await self.table(row)
        unknown = [c for c in dict.fromkeys((x, y)) if c not in table.column_names]
        if unknown:
            raise InvalidInput(
                "없는 열 이름이 있습니다: " + ", ".join(unknown),
                detail={"unknown_columns": unknown, "valid_columns": table.column_names},
            )
        return await asyncio.to_thread(sample_pair, table, x, y, size=size, seed=seed)

    # ---- deletion -------------------------------------------------------------------------------

    async def delete(self, user: Principal, dataset_id: int) -> None:
        row, _ = await self.visible(user, dataset_id)
        if row.owner_id != user.id and not user.is_admin:
            raise Forbidden("데이터셋을 만든 사용자나 관리자만 삭제할 수 있습니다.")
        sha = row.content_sha256
        await self.datasets.delete(row.id)
        blob_removed = await self.datasets.delete_blob_if_unreferenced(sha)
        await self.session.commit()
        if blob_removed:
            self.resources.tables.discard(sha)

    # ---- share links ----------------------------------------------------------------------------

    async def create_share(self, user: Principal, dataset_id: int, expires_in: int | None) -> s.ShareLink:
        """A link anyone can open without an account: only the dataset's owner (or an admin) may publish it.

        A team member may read a team dataset but not hand it to people outside the team.
        """
        row, _ = await self.visible(user, dataset_id)
        if row.owner_id != user.id and not user.is_admin:
            raise Forbidden(
                "데이터셋을 만든 사용자나 관리자만 공유 링크를 만들 수 있습니다.", detail={"dataset_id": dataset_id}
            )
        ttl = expires_in if expires_in is not None else self.resources.settings.share_link_default_ttl
        expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ttl)
        token = new_token("shr")
        link = await self.links.add(
            ShareLink(token_hash=hash_token(token), dataset_id=row.id, created_by=user.id, expires_at=expires_at)
        )
        link_id = link.id  # flushed by add(); read before the commit expires the object
        await self.session.commit()
        settings = self.resources.settings
        return s.ShareLink(
            id=link_id,
            token=token,
            url=f"{settings.ui_url}/?share={token}",
            api_url=f"{settings.api_url}/api/shared/{token}",
            dataset_id=row.id,
            expires_at=expires_at,
        )

    async def _live_link(self, token: str) -> ShareLink:
        link = await self.links.by_token_hash(hash_token(token))
        if link is None:
            raise NotFound("공유 링크를 찾을 수 없습니다.")
        if link.revoked_at is not None:
            raise Gone("공유가 취소된 링크입니다.", detail={"reason": "revoked"})
        if link.expires_at is not None and link.expires_at <= dt.datetime.now(dt.UTC):
            raise Gone(
                "만료된 공유 링크입니다.", detail={"reason": "expired", "expired_at": link.expires_at.isoformat()}
            )
        return link

    async def shared(self, token: str) -> tuple[Dataset, ShareLink]:
        link = await self._live_link(token)
        found = await self.datasets.get_with_owner(link.dataset_id)
        if found is None:
            raise NotFound("공유된 데이터셋이 삭제되었습니다.")
        return found[0], link

    async def shared_detail(self, token: str) -> s.SharedDataset:
        row, link = await self.shared(token)
        await ProfileRefresher(self.session, self.resources).refresh(row)
        return s.SharedDataset(
            id=row.id,
            name=row.name,
            version=row.version,
            kind=row.kind,
            rows=row.rows,
            columns=msgspec.convert(row.columns, list[s.ColumnInfo]),
            created_at=row.created_at,
            expires_at=link.expires_at,
            summary=to_summary(row),
        )

    async def list_shares(self, user: Principal, dataset_id: int, *, offset: int, limit: int) -> Page[s.ShareLinkInfo]:
        """The dataset's share links: all of them for its owner and admins; anyone else sees only links they
        made before sharing became the owner's decision (so they can still revoke them)."""
        row, _ = await self.visible(user, dataset_id)
        sees_all = user.is_admin or row.owner_id == user.id
        links, total = await self.links.page_for_dataset(
            row.id, created_by=None if sees_all else user.id, offset=offset, limit=limit
        )
        now = dt.datetime.now(dt.UTC)
        items = [
            s.ShareLinkInfo(
                id=link.id,
                dataset_id=link.dataset_id,
                created_by=creator,
                created_at=link.created_at,
                expires_at=link.expires_at,
                revoked_at=link.revoked_at,
                status=_link_status(link, now),
            )
            for link, creator in links
        ]
        return Page(items=items, total=total, offset=offset, limit=limit)

    async def revoke_share_by_id(self, user: Principal, dataset_id: int, share_id: int) -> None:
        """Revoke one of a dataset's links (its creator, the dataset's owner or an admin); repeating is harmless."""
        row, _ = await self.visible(user, dataset_id)
        link = await self.links.get_one_or_none(id=share_id, dataset_id=row.id)
        if link is None or not (user.is_admin or link.created_by == user.id or row.owner_id == user.id):
            raise NotFound("공유 링크를 찾을 수 없습니다.", detail={"dataset_id": dataset_id, "share_id": share_id})
        if link.revoked_at is None:
            link.revoked_at = dt.datetime.now(dt.UTC)
            await self.session.commit()

    async def revoke_share(self, user: Principal, token: str) -> None:
        """Revoke a link by its token: its creator, the dataset's owner or an admin (as revoke_share_by_id)."""
        link = await self.links.by_token_hash(hash_token(token))
        allowed = link is not None and (user.is_admin or link.created_by == user.id)
        if link is not None and not allowed:
            dataset = await self.datasets.get_one_or_none(id=link.dataset_id)
            allowed = dataset is not None and dataset.owner_id == user.id
        if link is None or not allowed:
            raise NotFound("공유 링크를 찾을 수 없습니다.")
        if link.revoked_at is None:
            link.revoked_at = dt.datetime.now(dt.UTC)
            await self.session.commit()
