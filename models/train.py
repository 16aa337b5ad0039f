"""Train an ECLO model from accident-shaped data (the 23 train columns, or at least 사고일시, the categorical
columns and ECLO) into a ModelArtifact.

Choices, so that they are written down once:

- Features come from models.features (the same encoder the API uses); vocabularies are the sorted values
  seen in training (like scikit-learn's LabelEncoder), plus every 시간대 label of ``hour_bands`` and every
  요일, so derived values always have a code.
- The categorical features are LightGBM *categorical* features (its native many-vs-many splits suit 시군구's
  ~200 unordered values better than ordered codes). The input representation is unchanged: the code is
  the index in the vocabulary, passed as a float.
- Target log1p(ECLO), L2 loss: the model predicts a log-scale mean, which RMSLE rewards; predictions are
  mapped back with expm1.
- A seeded random holdout (default 20 %) measures the model; the shipped model is exactly the evaluated one
  (trained on the other 80 %), so the stored metrics describe it rather than a refit.
- Deterministic: fixed seed, ``deterministic=True`` and column-wise histograms; same data, seed and
  parameters give the same model text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightgbm as lgb
import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from models.artifact import ModelArtifact
from models.features import (
    CATEGORICAL_FEATURES,
    DATETIME_FIELD,
    DEFAULT_HOUR_BANDS,
    FEATURE_ORDER,
    NUMERIC_FEATURES,
    WEEKDAYS,
    canonical_name,
    encode_frame,
)
from models.interpret import build_bands, quantiles_of
from models.metadata import ModelMetadata, fingerprint_training_data, make_version, utc_now

TARGET = "ECLO"
MIN_ROWS = 50
DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "regression",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "deterministic": True,
    "force_col_wise": True,
    "verbosity": -1,
}


def as_table(frame: pd.DataFrame | pa.Table) -> pa.Table:
    """Training data as an Arrow table (a pandas frame is converted, without its index)."""
    if isinstance(frame, pa.Table):
        return frame
    return pa.Table.from_pandas(frame, preserve_index=False)


def _column(table: pa.Table, feature: str) -> pa.ChunkedArray | None:
    for name in table.column_names:
        try:
            if canonical_name(name) == feature:
                return table.column(name)
        except ValueError:
            continue
    return None


def _vocabularies(table: pa.Table, hour_bands: Mapping[str, str]) -> dict[str, list[str]]:
    has_datetime = _column(table, DATETIME_FIELD) is not None
    has_hour = has_datetime or _column(table, "사고시") is not None
    out = {}
    for feature in CATEGORICAL_FEATURES:
        values: set[str] = set()
        column = _column(table, feature)
        if column is not None:
            text = pc.utf8_trim_whitespace(column.cast(pa.string()))
            values = {v for v in pc.unique(text).to_pylist() if v}
        if feature == "시간대" and has_hour:
            values |= set(hour_bands.values())
        if feature == "요일" and has_datetime:
            values |= set(WEEKDAYS)
        if not values:
            raise ValueError(f"학습 데이터에 {feature} 열이 없고 다른 열에서 계산할 수도 없습니다.")
        out[feature] = sorted(values)
    return out


def _target(table: pa.Table) -> np.ndarray:
    if TARGET not in table.column_names:
        raise ValueError("학습 데이터에 ECLO 열이 없습니다.")
    return table.column(TARGET).cast(pa.float64()).fill_null(np.nan).to_numpy()


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """rmse, mae and rmsle on the ECLO scale."""
    error = y_pred - y_true
    log_error = np.log1p(np.maximum(y_pred, 0.0)) - np.log1p(y_true)
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "rmsle": float(np.sqrt(np.mean(log_error**2))),
    }


def train_eclo(
    frame: pd.DataFrame | pa.Table,
    *,
    name: str = "eclo",
    seed: int = 42,
    holdout: float = 0.2,
    num_boost_round: int = 300,
    hour_bands: Mapping[str, str] = DEFAULT_HOUR_BANDS,
    num_threads: int = 1,
    params: Mapping[str, Any] | None = None,
) -> ModelArtifact:
    """Train a LightGBM ECLO model on accident rows and return it as an artifact with metrics and bands.

    Rows whose features cannot be encoded, or whose ECLO is missing or negative, are left out (and counted
    in the notes). ``params`` override DEFAULT_PARAMS. One thread by default: fast enough for the demo data,
    and immune to OpenMP's collapse when the cores are busy with other processes (docs/decisions/0008).
    """
    if not 0.0 <= holdout < 0.9:
        raise ValueError("holdout은 0 이상 0.9 미만이어야 합니다.")
    table = as_table(frame)
    hour_bands = dict(hour_bands)
    categories = _vocabularies(table, hour_bands)
    placeholder = build_bands([0.0] * 101)
    meta = ModelMetadata(
        name=name, version="training", feature_order=list(FEATURE_ORDER),
        categorical_features=list(CATEGORICAL_FEATURES), numeric_features=list(NUMERIC_FEATURES),
        categories=categories, hour_bands=hour_bands, target_transform="log1p", metrics={},
        target_quantiles=[0.0] * 101, bands=placeholder, training_fingerprint="", training_rows=0,
        created_at=utc_now().isoformat(), lightgbm_version=lgb.__version__, source="trained",
    )  # fmt: skip
    batch = encode_frame(table, meta, ignore_unknown=True)
    target = _target(table)[batch.row_index]
    usable = np.isfinite(target) & (target >= 0)
    matrix, target = batch.matrix[usable], target[usable]
    dropped = table.num_rows - len(target)
    if len(target) < MIN_ROWS:
        raise ValueError(f"학습에 쓸 수 있는 행이 {len(target)}개뿐입니다(최소 {MIN_ROWS}개).")

    order = np.random.default_rng(seed).permutation(len(target))
    n_holdout = round(len(target) * holdout)
    fit_rows, holdout_rows = np.sort(order[n_holdout:]), np.sort(order[:n_holdout])
    train_params = {**DEFAULT_PARAMS, "seed": seed, "num_threads": num_threads}
    train_params.update(params or {})
    dataset = lgb.Dataset(
        matrix[fit_rows], label=np.log1p(target[fit_rows]), feature_name=list(FEATURE_ORDER),
        categorical_feature=[], params={"max_bin": 255, "verbosity": -1},
    )  # fmt: skip
    booster = lgb.train(train_params, dataset, num_boost_round=num_boost_round)

    metrics: dict[str, float] = {}
    if n_holdout:
        truth = target[holdout_rows]
        predicted = np.maximum(np.expm1(booster.predict(matrix[holdout_rows], num_threads=num_threads)), 0.0)
        metrics = regression_metrics(truth, predicted)
        log_mean = np.full_like(truth, np.expm1(np.mean(np.log1p(target[fit_rows]))))
        mean = np.full_like(truth, np.mean(target[fit_rows]))
        metrics["baseline_rmsle"] = regression_metrics(truth, log_mean)["rmsle"]
        metrics["baseline_rmse"] = regression_metrics(truth, mean)["rmse"]
        metrics["baseline_mae"] = regression_metrics(truth, mean)["mae"]
        metrics["holdout_rows"] = float(n_holdout)

    quantiles = quantiles_of(target)
    model_text = booster.model_to_string()
    created = utc_now()
    notes = [
        f"학습 {len(fit_rows)}행, 검증(holdout) {n_holdout}행, seed {seed}, 트리 {booster.num_trees()}개.",
        "baseline_rmsle는 학습 구간 log1p 평균(상수 예측), baseline_rmse/mae는 학습 구간 ECLO 평균 기준.",
    ]
    if dropped:
        notes.append(f"특성 또는 ECLO가 올바르지 않은 {dropped}행은 제외했습니다.")
    final = msgspec.structs.replace(
        meta,
        version=make_version(created, model_text),
        metrics=metrics,
        target_quantiles=quantiles,
        bands=build_bands(quantiles),
        training_fingerprint=fingerprint_training_data(matrix, target, categories),
        training_rows=len(fit_rows),
        created_at=created.isoformat(),
        notes=" ".join(notes),
    )
    return ModelArtifact(final, model_text)
