"""SQL for stored predictions. Batches go in with COPY (ids allocated first, so callers get them back)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api.db.tables import Prediction

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
