from __future__ import annotations

import datetime as dt
from typing import Any

from api.schemas import Output


class ModelVersionInfo(Output):
    version: int
    name: str
    status: str
    source: str
    created_at: dt.datetime
    activated_at: dt.datetime | None
    metrics: dict[str, float]
    target_transform: str
    artifact_sha256: str
    training_rows: int | None = None
    notes: str = ""


class ModelVersionDetail(ModelVersionInfo, kw_only=True):
    feature_order: list[str]
    categories: dict[str, list[str]]
    hour_bands: dict[str, str]
    bands: list[dict[str, Any]]
    feature_importance: dict[str, float] | None = None
    # What predicts batches in the process that answered, when it serves this version: "compiled" (the
    # model built to native code) or "lightgbm" (before the build finished, or without a C compiler).
    predictor: str | None = None
