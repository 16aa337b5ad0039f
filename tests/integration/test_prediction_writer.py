"""The single-prediction writer's retry, on the real PostgreSQL: a lost connection is retried once, and a
retry that finds its rows already stored (the COPY committed, its answer was lost) counts them as stored."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import func, select, text

from api.db.tables import Prediction
from api.predictions.repository import allocate_ids, features_json
from api.predictions.writer import PredictionWriter


async def _records(resources, count: int) -> list[tuple]:
    async with resources.engine.connect() as conn:
        ids = await allocate_ids(conn, count)
    return [(i, None, 1, features_json({"기상상태": "맑음"}), 1.5, "single", None, None) for i in ids]


async def _stored(resources, ids: list[int]) -> int:
    async with resources.sessions() as session:
        return int(await session.scalar(select(func.count()).where(Prediction.id.in_(ids))) or 0)


async def _terminate(resources, writer: PredictionWriter) -> None:
    assert writer._connection is not None
    driver = (await writer._connection.get_raw_connection()).driver_connection
    async with resources.engine.connect() as conn:
        pid = driver.get_server_pid()
        assert (await conn.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid})).scalar() is True


async def test_a_lost_copy_that_had_committed_counts_as_stored(resources):
    writer = PredictionWriter(resources.engine)
    try:
        records = await _records(resources, 3)
        await writer._copy(records)  # committed; now its connection dies before the writer hears back
        await _terminate(resources, writer)
        await writer._copy(records)  # the retry meets its own rows: stored, not an error
        assert writer.reconnects == 1
        assert await _stored(resources, [r[0] for r in records]) == 3
    finally:
        await writer.close()


async def test_a_refused_copy_on_a_live_connection_is_not_retried(resources):
    writer = PredictionWriter(resources.engine)
    try:
        records = await _records(resources, 2)
        await writer._copy(records)
        kept = writer._connection
        with pytest.raises(asyncpg.UniqueViolationError):
            await writer._copy(records)  # the same ids again on a live connection: a real refusal
        assert writer.reconnects == 0 and writer._connection is kept
        fresh = await _records(resources, 1)
        await writer._copy(fresh)  # the kept connection still works
        assert await _stored(resources, [r[0] for r in records + fresh]) == 3
    finally:
        await writer.close()


async def test_a_cancelled_request_still_has_its_row_stored(resources):
    import asyncio

    writer = PredictionWriter(resources.engine)
    try:
        first = asyncio.create_task(writer.add(owner_id=None, model_version=1, features={"기상상태": "맑음"}, eclo=1.0))
        deadline = asyncio.get_running_loop().time() + 10
        while not writer._pending:  # until its row is queued: the request is waiting for the COPY
            assert asyncio.get_running_loop().time() < deadline, "the row was never queued"
            await asyncio.sleep(0)
        queued = writer._pending[-1][0][0]
        first.cancel()  # the client went away (or the server is stopping) while it waited
        with pytest.raises(asyncio.CancelledError):
            await first
        other = await writer.add(owner_id=None, model_version=1, features={"기상상태": "비"}, eclo=2.0)
        assert await _stored(resources, [queued, other]) == 2
    finally:
        await writer.close()
