"""ECLO predictions: one row (latency-bound, in the event loop) and sync batches (in a thread)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import asyncpg
import numpy as np
import pandas as pd
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import ErrorInfo, InvalidInput, PayloadTooLarge, ServiceUnavailable
from api.predictions import schemas as s
from api.predictions.repository import PredictionRepository, features_json
from api.resources import Resources
from api.schemas import Page
from api.users.services import Principal
from models.features import ALIASES, EncodedBatch, FeatureError, encode_frame, encode_row, feature_schema
from models.loaded import LoadedModel

# Large sync batches use every core for the one LightGBM call (the event loop only waits meanwhile);
# small ones stay on one thread, where OpenMP start-up would cost more than it saves. OpenMP threads
# wait passively (api/__init__.py), so an oversubscribed moment does not spin the other cores.
BATCH_THREADS = max(1, min(4, os.cpu_count() or 1))
PARALLEL_BATCH_ROWS = 2000
RAW_ROW_FIELDS = ["사고일시", "기상상태", "노면상태", "도로형태", "사고유형", "시군구", "요일"]


def feature_error(exc: FeatureError) -> InvalidInput:
    return InvalidInput(exc.message, detail=exc.to_detail())


def decode_features(row: np.ndarray, model: LoadedModel) -> dict[str, Any]:
    """The 11 model features of an encoded row, as names and readable values (what is stored)."""
    meta = model.metadata
    out: dict[str, Any] = {}
    for name, value in zip(meta.feature_order, row.tolist(), strict=True):
        vocabulary = meta.categories.get(name)
        out[name] = vocabulary[int(value)] if vocabulary is not None else int(value)
    return out


class PredictionService:
    def __init__(self, session: AsyncSession, resources: Resources) -> None:
        self.session = session
        self.resources = resources
        self.predictions = PredictionRepository(session)

    def model(self) -> LoadedModel:
        model = self.resources.models.current
        if model is None:
            raise ServiceUnavailable(
                "활성화된 ECLO 모델이 없습니다. 관리자가 `hab train --activate` 등으로 모델을 활성화해야 합니다.",
                detail={"reason": "no_active_model"},
            )
        return model

    def schema(self) -> s.PredictSchema:
        model = self.model()
        specs = [s.FeatureSpecOut(**spec.to_dict()) for spec in feature_schema(model.metadata)]
        return s.PredictSchema(
            model_version=int(model.version),
            features=specs,
            raw_row_fields=RAW_ROW_FIELDS,
            aliases=dict(ALIASES),
            bands=[b.to_dict() for b in model.metadata.bands],
        )

    async def predict_one(self, user: Principal, body: dict[str, Any]) -> s.Prediction:
        body = dict(body)
        explain = bool(body.pop("explain", False))
        model = self.model()  # one reference for the whole request: a swap mid-request changes nothing here
        try:
            matrix = encode_row(body, model.metadata)
        except FeatureError as exc:
            raise feature_error(exc) from None
        eclo = float(model.predict(matrix)[0])
        features = decode_features(matrix[0], model)
        try:
            prediction_id = await self.resources.prediction_writer.add(
                owner_id=user.id, model_version=int(model.version), features=features, eclo=eclo
            )
        except (OSError, SQLAlchemyError, asyncpg.PostgresError) as exc:
            raise ServiceUnavailable(
                "예측 결과를 저장하지 못했습니다. 잠시 후 다시 시도해 주세요.", detail={"reason": type(exc).__name__}
            ) from None
        label, detail = model.interpret(eclo)
        return s.Prediction(
            eclo=round(eclo, 4),
            interpretation=label,
            detail=detail,
            percentile=round(model.percentile(eclo), 1),
            model_version=int(model.version),
            prediction_id=prediction_id,
            features=features,
            contributions=model.contributions_named(matrix[0]) if explain else None,
        )

    async def predict_batch(self, user: Principal, rows: list[dict[str, Any]]) -> s.BatchPrediction:
        if len(rows) > s.MAX_SYNC_BATCH:
            raise PayloadTooLarge(
                f"한 번에 {s.MAX_SYNC_BATCH:,}행까지 예측할 수 있습니다. 더 많은 행은 배치 작업"
                " (POST /api/predict/jobs)으로 보내 주세요.",
                detail={"rows": len(rows), "limit": s.MAX_SYNC_BATCH, "use": "/api/predict/jobs"},
            )
        if not rows:
            raise InvalidInput("rows가 비어 있습니다. 예측할 행을 하나 이상 보내 주세요.", detail={"field": "rows"})
        model = self.model()
        scored = await asyncio.to_thread(_score_batch, rows, model)
        ids = await self.predictions.allocate_ids(len(scored.row_index)) if len(scored.row_index) else []
        version = int(model.version)
        await self.predictions.copy_many(
            [
                (pid, user.id, version, features_json(feat), eclo, "batch", None, None)
                for pid, feat, eclo in zip(ids, scored.features, scored.eclo.tolist(), strict=True)
            ]
        )
        await self.session.commit()
        results: list[s.BatchItem | None] = [None] * len(rows)
        for pid, index, eclo, label, detail, pct in zip(
            ids,
            scored.row_index.tolist(),
            scored.eclo.tolist(),
            scored.labels,
            scored.details,
            scored.percentiles.tolist(),
            strict=True,
        ):
            results[index] = s.BatchItem(
                index=index,
                eclo=round(eclo, 4),
                interpretation=label,
                detail=detail,
                percentile=round(pct, 1),
                prediction_id=pid,
            )
        for index, exc in scored.errors:
            results[index] = s.BatchItem(
                index=index, error=ErrorInfo(code="invalid_input", message=exc.message, detail=exc.to_detail())
            )
        done = [r for r in results if r is not None]
        return s.BatchPrediction(
            model_version=version, count=len(rows), succeeded=len(ids), failed=len(scored.errors), results=done
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
                features=r.features,
                created_at=r.created_at,
                job_id=r.job_id,
                row_index=r.row_index,
            )
            for r in rows
        ]
        return Page(items=items, total=total, offset=offset, limit=limit)


class _Scored:
    def __init__(
        self,
        row_index: np.ndarray,
        eclo: np.ndarray,
        features: list[dict[str, Any]],
        errors: list[tuple[int, FeatureError]],
        model: LoadedModel,
    ) -> None:
        self.row_index = row_index
        self.eclo = eclo
        self.features = features
        self.errors = errors
        self.labels, self.details, self.percentiles = model.describe_many(eclo)


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


def _score_batch(rows: list[dict[str, Any]], model: LoadedModel) -> _Scored:
    """Encode and predict every valid row with one vectorised call (runs in a worker thread)."""
    non_objects = [i for i, row in enumerate(rows) if not isinstance(row, dict)]
    if non_objects:
        raise InvalidInput("rows의 각 항목은 객체여야 합니다.", detail={"indexes": non_objects[:10]})
    try:
        batch = encode_frame(pd.DataFrame.from_records(rows), model.metadata)
    except FeatureError:
        # A column-level problem (rows mixing Korean names and aliases, a key only some rows carry
        # wrongly): fall back to row by row so that each row gets its own verdict.
        batch = _encode_rows_one_by_one(rows, model)
    threads = BATCH_THREADS if len(batch.row_index) >= PARALLEL_BATCH_ROWS else 1
    eclo = model.predict(batch.matrix, num_threads=threads) if len(batch.row_index) else np.empty(0)
    features = [decode_features(row, model) for row in batch.matrix]
    return _Scored(batch.row_index, eclo, features, batch.errors, model)
