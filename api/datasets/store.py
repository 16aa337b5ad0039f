"""In-process cache of dataset tables, keyed by content hash.

Datasets are immutable and content-addressed, so a table parsed once can be served from memory for as
long as it fits: repeated reads of a 600k-row dataset neither re-read PostgreSQL nor re-parse Parquet.
Loads are single-flight: concurrent first reads of the same hash fetch and decode it once.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import pyarrow as pa

from api.datasets.parquet import from_parquet

FetchParquet = Callable[[str], Awaitable[bytes | None]]


class TableCache:
    """A byte-bounded LRU of Arrow tables."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._tables: OrderedDict[str, pa.Table] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()  # workers call from threads too
        self._loading: dict[str, asyncio.Future[pa.Table | None]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, sha: str) -> pa.Table | None:
        with self._lock:
            table = self._tables.get(sha)
            if table is not None:
                self._tables.move_to_end(sha)
                self.hits += 1
            return table

    def put(self, sha: str, table: pa.Table) -> None:
        size = table.nbytes
        if size > self.max_bytes:
            return
        with self._lock:
            if sha in self._tables:
                self._tables.move_to_end(sha)
                return
            self._tables[sha] = table
            self._bytes += size
            while self._bytes > self.max_bytes and self._tables:
                _, old = self._tables.popitem(last=False)
                self._bytes -= old.nbytes

    def discard(self, sha: str) -> None:
        with self._lock:
            table = self._tables.pop(sha, None)
            if table is not None:
                self._bytes -= table.nbytes

    async def load(self, sha: str, fetch: FetchParquet) -> pa.Table | None:
        """The table for `sha`, fetching and decoding its Parquet at most once at a time."""
        table = self.get(sha)
        if table is not None:
            return table
        pending = self._loading.get(sha)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[pa.Table | None] = asyncio.get_running_loop().create_future()
        self._loading[sha] = future
        try:
            self.misses += 1
            data = await fetch(sha)
            table = None if data is None else await asyncio.to_thread(from_parquet, data)
            if table is not None:
                self.put(sha, table)
            future.set_result(table)
            return table
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters (if any) re-raise it themselves
            raise
        finally:
            self._loading.pop(sha, None)

    @property
    def size_bytes(self) -> int:
        return self._bytes
