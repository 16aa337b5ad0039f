"""ECLO predictions: sync batches (in a thread) and the caller's history. One row: api/predictions/single.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Iterator
from itertools import repeat
from typing import Any, TypeVar, cast

import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import ErrorInfo, InvalidInput, PayloadTooLarge
from api.observability.metrics import PredictionSource, count_predictions
from api.predictions import schemas as s
from api.predictions.batch_rows import BatchRows
from api.predictions.repository import PredictionRepository
from api.predictions.single import active_model
from api.resources import Resources
from api.schemas import Page
from api.users.services import Principal
from models.features import (
    NUMERIC_RANGES,
    EncodedBatch,
    FeatureError,
    encode_frame,
    encode_row,
)
from models.loaded import LoadedModel
from models.metadata import ModelMetadata, PerMetadata

# Large sync batches use every core for the one LightGBM call (the event loop only waits meanwhile);
# small ones stay on one thread, where OpenMP start-up would cost more than it saves. OpenMP threads
# wait passively (api/__init__.py), so an oversubscribed moment does not spin the other cores.
BATCH_THREADS = max(1, min(4, os.cpu_count() or 1))
PARALLEL_BATCH_ROWS = 2000
# Such a batch is predicted in two parts: the first HEAD_SHARE with every core, the rest on one core while
# PostgreSQL COPYs the first part on another; the second COPY then overlaps building the answer. On 2 cores,
# shares 0.6–0.9 were tried and 0.75–0.8 were best (docs/decisions/0006).
HEAD_SHARE = 0.75


class _FeaturesJson:
    """features_json(LoadedModel.decode_row(row)) for a whole encoded matrix at once, for the batch COPY.

    Every feature takes few values (a vocabulary, or an integer range), so each column's `"name":value` JSON
    fragments are made once per model; a batch is then one Arrow take() per column and one join, in C
    (a fraction of the cost of per-row dicts and encoding; docs/decisions/0006). The text is byte-identical.
    """

    def __init__(self, meta: ModelMetadata) -> None:
        self.meta = meta
        encode = msgspec.json.encode
        self.columns: list[tuple[pa.Array, int]] = []  # (fragment per value, value of the first fragment)
        order = list(meta.feature_order)
        for i, name in enumerate(order):
            values: list[str] | list[int]
            if name in meta.categories:
                low, values = 0, list(meta.categories[name])
            else:
                low, high = NUMERIC_RANGES[name]
                values = list(range(low, high + 1))
            fragments = [(encode(name) + b":" + encode(v)).decode() for v in values]
            if i == 0:
                fragments = ["{" + f for f in fragments]
            if i == len(order) - 1:
                fragments = [f + "}" for f in fragments]
            self.columns.append((pa.array(fragments, pa.string()), low))

    def __call__(self, matrix: np.ndarray) -> list[str]:
        if not len(matrix):
            return []
        # encode_frame only lets through in-range integers and vocabulary codes, so every index is valid.
        parts = [fragments.take(matrix[:, i].astype(np.int64) - low) for i, (fragments, low) in enumerate(self.columns)]
        return pc.binary_join_element_wise(*parts, ",").to_pylist()


_features_json = PerMetadata(_FeaturesJson, size=8)


def features_json_many(matrix: np.ndarray, meta: ModelMetadata) -> list[str]:
    """The stored features JSON of each encoded row (see _FeaturesJson)."""
    return _features_json(meta)(matrix)


class PredictionService:
    def __init__(self, session: AsyncSession, resources: Resources) -> None:
        self.session = session
        self.resources = resources
        self.predictions = PredictionRepository(session)

    async def predict_batch(self, user: Principal, rows: BatchRows) -> s.BatchPrediction:
        if rows.count > s.MAX_SYNC_BATCH:
            raise PayloadTooLarge(
                f"한 번에 {s.MAX_SYNC_BATCH:,}행까지 예측할 수 있습니다. 더 많은 행은 배치 작업"
                " (POST /api/predict/jobs)으로 보내 주세요.",
                detail={"rows": rows.count, "limit": s.MAX_SYNC_BATCH, "use": "/api/predict/jobs"},
            )
        if not rows.count:
            raise InvalidInput("rows가 비어 있습니다. 예측할 행을 하나 이상 보내 주세요.", detail={"field": "rows"})
        model = active_model(self.resources)
        version = model.version
        # Ids for every input row are reserved while the rows are parsed and encoded (the round trip is then off
        # the critical path); those of invalid rows stay unused, a gap like any other in a sequence.
        reserving = asyncio.ensure_future(self.predictions.allocate_ids(rows.count))
        try:
            batch = await asyncio.to_thread(_encode, rows, model)
        except BaseException:
            with contextlib.suppress(Exception):
                await reserving  # the session's connection must be idle before the session closes
            raise
        count = len(batch.row_index)
        ids = (await reserving)[:count]
        head = count if count < PARALLEL_BATCH_ROWS else int(count * HEAD_SHARE)
        threads = BATCH_THREADS if count >= PARALLEL_BATCH_ROWS else 1
        handoff = _Handoff(asyncio.get_running_loop())
        predicting = asyncio.ensure_future(
            asyncio.to_thread(_predict_parts, model, batch.matrix, head, threads, handoff.give)
        )
        first = await handoff.take(predicting)

        def records(part: _Part, part_ids: list[int]) -> Iterator[tuple[Any, ...]]:
            return zip(
                part_ids, repeat(user.id), repeat(version), part.features_json, part.eclo.tolist(), repeat("batch"),
                repeat(None), repeat(None),
            )  # fmt: skip

        async with self.predictions.transaction():  # both COPYs or neither
            _, rest = await _together(self.predictions.copy_many(records(first, ids[:head])), predicting)
            eclo = np.concatenate([first.eclo, rest.eclo])
            _, results = await _together(
                self.predictions.copy_many(records(rest, ids[head:])),
                asyncio.to_thread(_batch_results, batch, eclo, ids, rows.count, model),
            )
        await self.session.commit()
        count_predictions(version, PredictionSource.BATCH, count)
        return s.BatchPrediction(
            model_version=version, count=rows.count, succeeded=count, failed=len(batch.errors), results=results
        )

    async def history(
        self, user: Principal, *, offset: int, limit: int, model_version: int | None
    ) -> Page[s.PredictionRecord]:
        if offset < 0 or not 1 <= limit <= 1000:
            raise InvalidInput(
                "offset은 0 이상, limit은 1~1000 사이여야 합니다.", detail={"offset": offset, "limit": limit}
            )
        rows, total = await self.predictions.page_for(user.id, offset=offset, limit=limit, model_version=model_version)
        items = [
            s.PredictionRecord(
                id=r.id,
                model_version=r.model_version,
                eclo=r.eclo,
                source=r.source,
                features=r.features or {},  # NULL only on job rows, which have no owner and so are never listed
                created_at=r.created_at,
                job_id=r.job_id,
                row_index=r.row_index,
            )
            for r in rows
        ]
        return Page(items=items, total=total, offset=offset, limit=limit)


T1 = TypeVar("T1")
T2 = TypeVar("T2")


async def _together(first: Awaitable[T1], second: Awaitable[T2]) -> tuple[T1, T2]:
    """Run both to the end, then raise the first failure (a COPY must not be left running on the session)."""
    one, two = await asyncio.gather(first, second, return_exceptions=True)
    for outcome in (one, two):
        if isinstance(outcome, BaseException):
            raise outcome
    return cast(T1, one), cast(T2, two)


class _Part(msgspec.Struct, kw_only=True):
    """Predictions for consecutive valid rows of a batch, with the features JSON that is stored with them."""

    eclo: np.ndarray
    features_json: list[str]

    @classmethod
    def predict(cls, model: LoadedModel, matrix: np.ndarray, threads: int) -> _Part:
        eclo = model.predict(matrix, num_threads=threads) if len(matrix) else np.empty(0)
        return cls(eclo=eclo, features_json=features_json_many(matrix, model.metadata))


def _predict_parts(
    model: LoadedModel, matrix: np.ndarray, head: int, threads: int, give: Callable[[_Part], None]
) -> _Part:
    """Predict matrix[:head] with `threads` and give() it away, then the rest on one thread (worker thread)."""
    give(_Part.predict(model, matrix[:head], threads))
    return _Part.predict(model, matrix[head:], 1)


class _Handoff:
    """Passes the first part from the predicting thread to the event loop as soon as it is ready.

    The COPY of that part then starts while the same thread goes straight on to the rest. (A second thread
    started at that moment first waited for the GIL, which the COPY's record encoding holds.)
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.ready: asyncio.Future[_Part] = loop.create_future()

    def give(self, part: _Part) -> None:
        self.loop.call_soon_threadsafe(self._set, part)

    def _set(self, part: _Part) -> None:
        if not self.ready.done():
            self.ready.set_result(part)

    async def take(self, predicting: asyncio.Future[_Part]) -> _Part:
        """The first part, or the predicting thread's exception if it failed before giving it."""
        await asyncio.wait([self.ready, predicting], return_when=asyncio.FIRST_COMPLETED)
        if not self.ready.done():
            predicting.result()  # raises: the thread gives the first part before it can return
        return self.ready.result()


def _batch_results(
    batch: EncodedBatch, eclo: np.ndarray, ids: list[int], count: int, model: LoadedModel
) -> list[s.BatchItem]:
    """One item per input row, in input order: its prediction or its error."""
    labels, details, percentiles = model.describe_many(eclo)
    results: list[s.BatchItem | None] = [None] * count
    for pid, index, value, label, detail, pct in zip(
        ids, batch.row_index.tolist(), eclo.tolist(), labels, details, percentiles.tolist(), strict=True
    ):
        results[index] = s.BatchItem(
            index=index,
            eclo=round(value, 4),
            interpretation=label,
            detail=detail,
            percentile=round(pct, 1),
            prediction_id=pid,
        )
    for index, exc in batch.errors:
        results[index] = s.BatchItem(
            index=index, error=ErrorInfo(code="invalid_input", message=exc.message, detail=exc.to_detail())
        )
    return [r for r in results if r is not None]


def _encode_rows_one_by_one(rows: list[dict[str, Any]], model: LoadedModel) -> EncodedBatch:
    encoded: list[np.ndarray] = []
    positions: list[int] = []
    errors: list[tuple[int, FeatureError]] = []
    for index, row in enumerate(rows):
        try:
            encoded.append(encode_row(row, model.metadata)[0])
            positions.append(index)
        except FeatureError as exc:
            errors.append((index, exc))
    width = len(model.metadata.feature_order)
    matrix = np.vstack(encoded) if encoded else np.empty((0, width))
    return EncodedBatch(matrix=matrix, row_index=np.asarray(positions, dtype=np.int64), errors=errors)


def _decoded(rows: BatchRows) -> list[dict[str, Any]]:
    try:
        values = rows.dicts()
    except (msgspec.MsgspecError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            "rows를 읽을 수 없습니다. 올바른 UTF-8 JSON이어야 합니다.", detail={"reason": str(exc)[:200]}
        ) from None
    non_objects = [i for i, row in enumerate(values) if not isinstance(row, dict)]
    if non_objects:
        raise InvalidInput("rows의 각 항목은 객체여야 합니다.", detail={"indexes": non_objects[:10]})
    return values


def _encode(rows: BatchRows, model: LoadedModel) -> EncodedBatch:
    """Parse and encode the rows (runs in a worker thread): Arrow columns, else dicts, else row by row."""
    table = rows.table()
    try:
        if table is not None:
            return encode_frame(table, model.metadata)
        return encode_frame(pd.DataFrame.from_records(_decoded(rows)), model.metadata)
    except FeatureError:
        # A column-level problem (rows mixing Korean names and aliases, a key only some rows carry
        # wrongly): fall back to row by row so that each row gets its own verdict.
        return _encode_rows_one_by_one(_decoded(rows), model)
