"""One prediction per request (latency-bound, in the event loop) and the input schema: no database session.

The row is stored by the process's PredictionWriter (group commit), so a request here never opens a session
of its own; the route's dependency provides this service without one (docs/decisions/0010).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.exc import SQLAlchemyError

from api.errors import InvalidInput, ServiceUnavailable
from api.observability.metrics import PredictionSource, count_predictions
from api.predictions import schemas as s
from api.resources import Resources
from api.users.services import Principal
from models.features import ACCEPTED_ALIASES, FeatureError, encode_row, feature_schema
from models.loaded import LoadedModel

RAW_ROW_FIELDS = ["사고일시", "기상상태", "노면상태", "도로형태", "사고유형", "시군구", "요일"]


def feature_error(exc: FeatureError) -> InvalidInput:
    return InvalidInput(exc.message, detail=exc.to_detail())


def active_model(resources: Resources) -> LoadedModel:
    """The model this process serves now, or the Korean 503 when none is active."""
    model = resources.models.current
    if model is None:
        raise ServiceUnavailable(
            "활성화된 ECLO 모델이 없습니다. 관리자가 `hab train --activate` 등으로 모델을 활성화해야 합니다.",
            detail={"reason": "no_active_model"},
        )
    return model


@dataclass(frozen=True, slots=True)
class ScoredRow:
    """One row scored and described, not yet stored."""

    model_version: int
    eclo: float
    features: dict[str, Any]
    interpretation: str
    detail: str
    percentile: float
    contributions: dict[str, float] | None


class SinglePredictionService:
    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    def schema(self) -> s.PredictSchema:
        model = active_model(self.resources)
        specs = [s.FeatureSpecOut(**spec.to_dict()) for spec in feature_schema(model.metadata)]
        return s.PredictSchema(
            model_version=model.version,
            features=specs,
            raw_row_fields=RAW_ROW_FIELDS,
            aliases=dict(ACCEPTED_ALIASES),
            bands=[b.to_dict() for b in model.metadata.bands],
            synthetic_data=model.synthetic,
            notice=model.caveat.strip() or None,
        )

    def score(self, body: dict[str, Any]) -> ScoredRow:
        """Everything a prediction needs before it is stored; raises InvalidInput or ServiceUnavailable (no
        active model) and stores nothing."""
        body = dict(body)
        explain = bool(body.pop("explain", False))
        model = active_model(self.resources)  # one reference for the whole request: a swap changes nothing here
        try:
            matrix = encode_row(body, model.metadata)
        except FeatureError as exc:
            raise feature_error(exc) from None
        eclo = model.predict_one(matrix[0])
        label, detail, pct = model.describe_one(eclo)
        return ScoredRow(
            model_version=model.version,
            eclo=eclo,
            features=model.decode_row(matrix[0]),
            interpretation=label,
            detail=detail,
            percentile=pct,
            contributions=model.contributions_named(matrix[0]) if explain else None,
        )

    async def store(self, user: Principal, scored: ScoredRow) -> s.Prediction:
        """Store the scored row (group commit) and answer it; raises ServiceUnavailable when it was not stored."""
        try:
            prediction_id = await self.resources.prediction_writer.add(
                owner_id=user.id, model_version=scored.model_version, features=scored.features, eclo=scored.eclo
            )
        except (OSError, SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise ServiceUnavailable(
                "예측 결과를 저장하지 못했습니다. 잠시 후 다시 시도해 주세요.", detail={"reason": type(exc).__name__}
            ) from None
        count_predictions(scored.model_version, PredictionSource.SINGLE)
        return s.Prediction(
            eclo=round(scored.eclo, 4),
            interpretation=scored.interpretation,
            detail=scored.detail,
            percentile=round(scored.percentile, 1),
            model_version=scored.model_version,
            prediction_id=prediction_id,
            features=scored.features,
            contributions=scored.contributions,
        )

    async def predict_one(self, user: Principal, body: dict[str, Any]) -> s.Prediction:
        return await self.store(user, self.score(body))
