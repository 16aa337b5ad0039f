from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from api.errors import ErrorInfo
from api.schemas import Input, Output

MAX_SYNC_BATCH = 10_000


class Prediction(Output, omit_defaults=True):
    eclo: float
    interpretation: str
    detail: str
    percentile: float
    model_version: int
    prediction_id: int
    features: dict[str, Any]
    contributions: dict[str, float] | None = None


class BatchPredictionRequest(Input):
    """`{"rows": [...]}`, up to MAX_SYNC_BATCH rows, each an object of 11 features or a raw accident row.

    Each row is kept as its JSON text: api/predictions/batch_rows.py parses them into Arrow columns at once.
    """

    rows: list[msgspec.Raw]


class BatchItem(Output, omit_defaults=True):
    """One input row's outcome, in input order: a prediction or the reason it could not be made."""

    index: int
    eclo: float | None = None
    interpretation: str | None = None
    detail: str | None = None
    percentile: float | None = None
    prediction_id: int | None = None
    error: ErrorInfo | None = None


class BatchPrediction(Output):
    model_version: int
    count: int
    succeeded: int
    failed: int
    results: list[BatchItem]


class PredictionRecord(Output):
    id: int
    model_version: int
    eclo: float
    source: str
    features: dict[str, Any]
    created_at: dt.datetime
    job_id: int | None = None
    row_index: int | None = None


class FeatureSpecOut(Output):
    name: str
    alias: str
    type: str
    values: list[str] | None = None
    minimum: int | None = None
    maximum: int | None = None
    description: str = ""


class PredictSchema(Output):
    model_version: int
    features: list[FeatureSpecOut]
    raw_row_fields: list[str]
    aliases: dict[str, str]
    max_batch_rows: int = MAX_SYNC_BATCH
    bands: list[dict[str, Any]] = msgspec.field(default_factory=list)
    # True while the active model was trained on hab's synthetic demo data; `notice` says so in Korean.
    synthetic_data: bool = False
    notice: str | None = None
