"""Group commit for single predictions.

Every prediction must be stored before it is answered, but one INSERT + COMMIT per request costs more
than the prediction itself. Requests hand their row to this writer and wait; the writer COPYs whatever
has accumulated while the previous COPY ran, so under load one round trip stores many rows and at low
load a row waits for exactly one COPY. Ids come from blocks reserved from the table's identity
sequence, so each request knows its prediction id without a query of its own.

The writer keeps one connection for its COPYs instead of checking one out of the pool per group commit:
a checkout with its ping (a BEGIN and a ROLLBACK) cost more than the COPY under load
(docs/decisions/0010). What the pre-ping guarded against is handled here instead: when a COPY on the kept
connection fails (PostgreSQL restarted, the backend was terminated), the connection is dropped and the COPY
is tried once more on a fresh one. Only a lost connection is retried: a COPY that PostgreSQL refused on a
live connection would be refused again. A retry cannot store a row twice: ids are assigned before the COPY
and are the primary key, so when a COPY committed but its answer was lost, the retry's unique violation
means the rows are stored (a COPY is one statement: all of its rows or none).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.db.bare import connection_lost
from api.predictions.repository import allocate_ids, copy_driver_rows, features_json

logger = logging.getLogger("hab.predictions.writer")

Record = tuple[Any, ...]


class PredictionWriter:
    def __init__(self, engine: AsyncEngine, *, id_block: int = 1000, max_batch: int = 5000) -> None:
        self.engine = engine
        self.id_block = id_block
        self.max_batch = max_batch
        self._ids: deque[int] = deque()
        self._id_lock = asyncio.Lock()
        self._pending: list[tuple[Record, asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._connection: AsyncConnection | None = None  # used by _run only, one COPY at a time
        self._driver: asyncpg.Connection | None = None  # the kept connection's asyncpg connection
        self.flushes = 0
        self.reconnects = 0

    async def _next_id(self) -> int:
        if not self._ids:
            async with self._id_lock:
                if not self._ids:
                    async with self.engine.connect() as conn:
                        self._ids.extend(await allocate_ids(conn, self.id_block))
        return self._ids.popleft()

    async def add(
        self, *, owner_id: int | None, model_version: int, features: dict[str, Any], eclo: float, source: str = "single"
    ) -> int:
        """Store one prediction durably and return its id."""
        prediction_id = await self._next_id()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        record = (prediction_id, owner_id, model_version, features_json(features), eclo, source, None, None)
        self._pending.append((record, done))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        self._wakeup.set()
        # Not shielded: a cancelled request cancels only its own future; its row stays in the batch and is
        # stored, and the writer skips futures that are already done.
        await done
        return prediction_id

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                try:
                    await self._copy([record for record, _ in batch])
                except Exception as exc:  # every waiter of this batch gets the failure
                    logger.warning("storing %d predictions failed (%s)", len(batch), type(exc).__name__)
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                else:
                    self.flushes += 1
                    for _, done in batch:
                        if not done.done():
                            done.set_result(None)

    async def _copy(self, records: list[Record]) -> None:
        kept = self._driver
        if kept is not None:
            try:
                await copy_driver_rows(kept, records)
                return
            except Exception as exc:
                if not connection_lost(exc):
                    raise
                logger.info("the kept connection failed (%s); copying on a fresh one", type(exc).__name__)
                self.reconnects += 1
                await self._drop_connection()
            retry = True
        else:
            retry = False
        self._connection = await self.engine.connect()
        try:
            driver = (await self._connection.get_raw_connection()).driver_connection
            assert driver is not None
            self._driver = driver
            await copy_driver_rows(driver, records)
        except asyncpg.UniqueViolationError:
            if not retry:
                raise
            logger.info("the lost COPY of %d predictions had committed; they are stored", len(records))
        except BaseException:
            await self._drop_connection()
            raise

    async def _drop_connection(self) -> None:
        connection, self._connection, self._driver = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.invalidate()
            with contextlib.suppress(Exception):
                await connection.close()

    async def close(self) -> None:
        if self._task is not None:
            # Let waiting requests finish their write before the engine goes away.
            for _ in range(100):
                if not self._pending:
                    break
                await asyncio.sleep(0.01)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
            self._connection = self._driver = None
