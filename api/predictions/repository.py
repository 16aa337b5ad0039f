"""SQL for stored predictions. Batches go in with COPY (ids allocated first, so callers get them back)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator, Iterable
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from api.db.tables import ModelVersion, Prediction

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


async def commit_scored_chunk(
    engine: AsyncEngine,
    job_id: int,
    row_index: np.ndarray,
    eclo: np.ndarray,
    *,
    model_version: int,
    summary: dict[str, Any],
    progress: int,
) -> bool:
    """A chunk's predictions, the job's progress and running summary in ONE transaction, unless the job was
    cancelled (read under FOR UPDATE, so a cancel and a commit never cross). Returns whether it was written."""
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        async with driver.transaction():
            if await driver.fetchval("select cancel_requested from jobs where id = $1 for update", job_id):
                return False
            if len(row_index):
                await driver.copy_to_table(
                    "predictions",
                    source=_chunk_csv(job_id, row_index, eclo, model_version),
                    columns=["job_id", "row_index", "model_version", "eclo", "source"],
                    format="csv",
                )
            await driver.execute(
                "update jobs set progress = $2, heartbeat_at = now(), summary = $3::jsonb where id = $1",
                job_id,
                progress,
                msgspec.json.encode(summary).decode(),
            )
    return True


def _chunk_csv(job_id: int, row_index: np.ndarray, eclo: np.ndarray, model_version: int) -> io.BytesIO:
    """The chunk as CSV for COPY: built by Arrow in C, far cheaper than Python tuples per row."""
    n = len(row_index)
    table = pa.table(
        {
            "job_id": pa.array(np.full(n, job_id, dtype=np.int64)),
            "row_index": pa.array(row_index.astype(np.int64)),
            "model_version": pa.array(np.full(n, model_version, dtype=np.int64)),
            "eclo": pa.array(eclo.astype(np.float64)),
            "source": pa.repeat(pa.scalar("job"), n),
        }
    )
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, write_options=pacsv.WriteOptions(include_header=False))
    sink.seek(0)
    return sink


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
