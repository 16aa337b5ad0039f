"""SQL for stored predictions. Batches go in with COPY (ids allocated first, so callers get them back)."""

from __future__ import annotations

import contextlib
import enum
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import asyncpg
import msgspec
import numpy as np
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from api.db.tables import Job, JobPart, ModelVersion, Prediction

_json = msgspec.json.Encoder()
COPY_COLUMNS = ("id", "owner_id", "model_version", "features", "eclo", "source", "job_id", "row_index")


# One nextval per id, so allocations interleave safely with rows that take the identity default (scoring
# jobs' COPY). The sequence is looked up once (an InitPlan), not per row: that lookup was most of the cost
# (docs/decisions/0006); the ids come back as one array, not one row each.
_ALLOCATE_IDS = (
    "select array(select nextval((select pg_get_serial_sequence('predictions', 'id')::regclass))"
    " from generate_series(1, $1))"
)


async def allocate_ids(connection: AsyncConnection, count: int) -> list[int]:
    """Reserve `count` ids from the table's identity sequence (so COPYed rows' ids are known up front)."""
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    return list(await driver.fetchval(_ALLOCATE_IDS, count))


async def copy_rows(connection: AsyncConnection, records: Iterable[tuple[Any, ...]]) -> None:
    """COPY (id, owner_id, model_version, features, eclo, source, job_id, row_index) rows."""
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    await copy_driver_rows(driver, records)


async def copy_driver_rows(driver: asyncpg.Connection, records: Iterable[tuple[Any, ...]]) -> None:
    """copy_rows() on the driver's connection itself (for a caller that keeps one: no lookup per COPY)."""
    await driver.copy_records_to_table("predictions", records=records, columns=COPY_COLUMNS)


class PredictionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def allocate_ids(self, count: int) -> list[int]:
        return await allocate_ids(await self.session.connection(), count)

    async def copy_many(self, records: Iterable[tuple[Any, ...]]) -> None:
        await copy_rows(await self.session.connection(), records)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """One transaction around several COPYs (a savepoint if the session has begun one already)."""
        driver = (await (await self.session.connection()).get_raw_connection()).driver_connection
        assert driver is not None
        async with driver.transaction():
            yield

    async def page_for(
        self, owner_id: int, *, offset: int, limit: int, model_version: int | None
    ) -> tuple[list[Prediction], int]:
        stmt = select(Prediction).where(Prediction.owner_id == owner_id)
        if model_version is not None:
            stmt = stmt.where(Prediction.model_version == model_version)
        total = await self.session.scalar(select(func.count()).select_from(stmt.subquery()))
        # Newest first by time: single predictions take ids from pre-reserved blocks, so ids are not time-ordered.
        ordered = stmt.order_by(Prediction.created_at.desc(), Prediction.id.desc())
        rows = await self.session.scalars(ordered.offset(offset).limit(limit))
        return list(rows), int(total or 0)


def features_json(features: dict[str, Any]) -> str:
    return _json.encode(features).decode()


# ---- scoring jobs --------------------------------------------------------------------------------------


class PartOutcome(enum.StrEnum):
    SCORED = "scored"  # a part was scored and committed
    NONE_FREE = "none_free"  # no part is waiting (all done, or the rest held by other workers)
    CANCELLED = "cancelled"  # the job was cancelled: the part was not written


@dataclass(frozen=True)
class PartRange:
    part: int
    start: int
    stop: int


class ScoredPart(Protocol):
    @property
    def row_index(self) -> np.ndarray: ...
    @property
    def eclo(self) -> np.ndarray: ...


Scored = TypeVar("Scored", bound=ScoredPart)


async def ensure_parts(engine: AsyncEngine, job_id: int, *, start: int, total: int, part_rows: int) -> int:
    """Split rows [start, total) of a job's input into parts once; a re-delivered job finds them made.
    Returns how many parts the job has."""
    async with engine.begin() as conn:
        existing = await conn.scalar(select(func.count()).select_from(JobPart).where(JobPart.job_id == job_id))
        if existing:
            return int(existing)
        parts = [
            {"job_id": job_id, "part": i, "start_row": first, "stop_row": min(first + part_rows, total)}
            for i, first in enumerate(range(start, total, part_rows))
        ]
        if parts:
            await conn.execute(pg_insert(JobPart).values(parts).on_conflict_do_nothing())
        return len(parts)


async def parts_left(engine: AsyncEngine, job_id: int) -> int:
    async with engine.connect() as conn:
        left = await conn.scalar(
            select(func.count()).select_from(JobPart).where(JobPart.job_id == job_id, JobPart.done.is_(False))
        )
    return int(left or 0)


async def score_free_part(
    engine: AsyncEngine,
    job_id: int,
    *,
    score: Callable[[PartRange], Awaitable[Scored]],
    merge_summary: Callable[[dict[str, Any] | None, Scored], dict[str, Any]],
    model_version: int,
    worker: str,
) -> PartOutcome:
    """Claim one waiting part (FOR UPDATE SKIP LOCKED), score it, and commit its predictions, `done`, and the
    job's progress and merged summary in ONE transaction. The part's row lock is held while it is scored, so
    no other worker takes it; if this process dies, PostgreSQL ends the transaction and the part waits again.
    The job row is locked only at the end (so parts commit side by side and a cancel never crosses a commit)."""
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        try:
            async with driver.transaction():
                claimed = await driver.fetchrow(
                    "select part, start_row, stop_row from job_parts where job_id = $1 and not done"
                    " order by part limit 1 for update skip locked",
                    job_id,
                )
                if claimed is None:
                    return PartOutcome.NONE_FREE
                part = PartRange(int(claimed["part"]), int(claimed["start_row"]), int(claimed["stop_row"]))
                result = await score(part)
                if len(result.row_index):
                    await driver.copy_to_table(
                        "predictions",
                        source=job_rows_copy(job_id, result.row_index, result.eclo, model_version),
                        columns=_JOB_ROW_COLUMNS,
                        format="binary",
                    )
                # Locked last and briefly: parts' transactions overlap until here, and the cancel flag read
                # under this lock cannot change before the commit. NO KEY UPDATE is all the updates below need.
                job = await driver.fetchrow(
                    "select cancel_requested, summary from jobs where id = $1 for no key update", job_id
                )
                if job is None or job["cancel_requested"]:
                    raise _Rollback
                stored = _json_value(job["summary"])
                await driver.execute(
                    "update job_parts set done = true, worker = $3, finished_at = now()"
                    " where job_id = $1 and part = $2",
                    job_id,
                    part.part,
                    worker[:128],
                )
                await driver.execute(
                    "update jobs set progress = progress + $2, heartbeat_at = now(), summary = $3::jsonb where id = $1",
                    job_id,
                    part.stop - part.start,
                    msgspec.json.encode(merge_summary(stored, result)).decode(),
                )
        except _Rollback:
            return PartOutcome.CANCELLED
    return PartOutcome.SCORED


def _json_value(raw: Any) -> Any:
    """A jsonb value read on the raw driver: decoded already where SQLAlchemy set its codec on the connection."""
    return msgspec.json.decode(raw) if isinstance(raw, str | bytes) else raw


class _Rollback(Exception):
    """Raised inside a part's transaction to roll it back (the job was cancelled)."""


async def job_summary(engine: AsyncEngine, job_id: int) -> dict[str, Any] | None:
    """The running summary the job's parts folded together."""
    async with engine.connect() as conn:
        return await conn.scalar(select(Job.summary).where(Job.id == job_id))


# PostgreSQL's binary COPY format: one fixed-width record per job row (field count, then each field's byte
# length and big-endian value), so a whole part is built by numpy in one pass and PostgreSQL parses no text.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")  # signature, flags, extension
_COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)
_JOB_ROW_COLUMNS = ["job_id", "row_index", "model_version", "eclo", "source"]
_SOURCE = b"job"
_INT32_MAX = 2**31 - 1
_JOB_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("job_id_len", ">i4"), ("job_id", ">i8"),  # bigint
        ("row_index_len", ">i4"), ("row_index", ">i4"),  # integer
        ("model_version_len", ">i4"), ("model_version", ">i4"),  # integer
        ("eclo_len", ">i4"), ("eclo", ">f8"),  # double precision
        ("source_len", ">i4"), ("source", f"S{len(_SOURCE)}"),  # varchar
    ]
)  # fmt: skip


def job_rows_copy(job_id: int, row_index: np.ndarray, eclo: np.ndarray, model_version: int) -> io.BytesIO:
    """A part's rows as a binary COPY stream of `_JOB_ROW_COLUMNS`."""
    # numpy casts into the record's int32 without complaint: a row index past the column's range would wrap.
    if len(row_index) and (int(row_index.min()) < 0 or int(row_index.max()) > _INT32_MAX):
        raise ValueError("row_index outside the integer column's range")
    rows = np.empty(len(row_index), dtype=_JOB_ROW)
    rows["fields"] = len(_JOB_ROW_COLUMNS)
    rows["job_id_len"], rows["job_id"] = 8, job_id
    rows["row_index_len"], rows["row_index"] = 4, row_index
    rows["model_version_len"], rows["model_version"] = 4, model_version
    rows["eclo_len"], rows["eclo"] = 8, eclo
    rows["source_len"], rows["source"] = len(_SOURCE), _SOURCE
    return io.BytesIO(b"".join((_COPY_HEADER, rows.tobytes(), _COPY_TRAILER)))


async def job_prediction_count(session: AsyncSession, job_id: int) -> int:
    return int(
        await session.scalar(select(func.count()).select_from(Prediction).where(Prediction.job_id == job_id)) or 0
    )


async def job_predictions(session: AsyncSession, job_id: int, *, offset: int, limit: int) -> list[tuple[int, float]]:
    """(row_index, eclo) of a job's stored predictions, by row."""
    rows = await session.execute(
        select(Prediction.row_index, Prediction.eclo)
        .where(Prediction.job_id == job_id)
        .order_by(Prediction.row_index)
        .offset(offset)
        .limit(limit)
    )
    # A job's rows always carry their row_index (the column is NULL only for single and batch rows).
    return [(int(row), float(eclo)) for row, eclo in rows.all() if row is not None]


async def model_metadata(session: AsyncSession, version: int) -> dict[str, Any] | None:
    return await session.scalar(select(ModelVersion.model_metadata).where(ModelVersion.version == version))
