"""One-off conversion of v1.2.5 model files into hab's artifact format — the only place that unpickles.

v1.2.5 shipped ``accident_lgbm_model.pkl`` (a pickled LGBMRegressor trained on log1p(ECLO)),
``label_encoders.pkl`` (a dict of scikit-learn LabelEncoders) and ``feature_config.json``. Pickles execute
code when loaded, so this runs only in an explicit offline admin step on files from a trusted source; the
unpickler additionally refuses every class outside a short allowlist. The result is plain text + JSON.

What is carried over: the trees (``booster_.model_to_string()``, which round-trips exactly), the feature
order and split, and each encoder's ``classes_`` as the category vocabulary (code = index, as before).
What v1.2.5 did not record, and how it is filled in:

- hour → 시간대 mapping: ``hour_bands`` (default DEFAULT_HOUR_BANDS); the encoder knows only the labels.
- training metrics: none, unless ``evaluation_data`` is given (then measured on it; if that data was
  used for training, the numbers are optimistic — the notes say so).
- training ECLO quantiles: from ``evaluation_data`` when given, else from DATA.md's published train
  statistics (see published_train_quantiles).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import warnings
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa

from models.artifact import ModelArtifact
from models.features import DEFAULT_HOUR_BANDS, encode_frame
from models.interpret import build_bands, quantiles_of
from models.metadata import ModelMetadata, fingerprint_training_data, make_version, utc_now
from models.train import TARGET, as_table, regression_metrics

SOURCE = "legacy-v1.2.5"
MODEL_FILE, ENCODERS_FILE, CONFIG_FILE = "accident_lgbm_model.pkl", "label_encoders.pkl", "feature_config.json"
# Exactly the classes the v1.2.5 pickles reference (checked with pickletools), and nothing else.
_ALLOWED_GLOBALS = frozenset(
    {
        ("collections", "OrderedDict"), ("collections", "defaultdict"),
        ("lightgbm.basic", "Booster"), ("lightgbm.sklearn", "LGBMRegressor"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"), ("numpy.core.multiarray", "scalar"),
        ("sklearn.preprocessing._label", "LabelEncoder"),
    }
)  # fmt: skip
# DATA.md, train.csv: ECLO min 1, quartiles 3 / 3 / 6, max 74, mean 4.727.
PUBLISHED_TRAIN_STATS = {"min": 1.0, "q25": 3.0, "q50": 3.0, "q75": 6.0, "max": 74.0, "mean": 4.727}


class LegacyImportError(ValueError):
    """The v1.2.5 files are missing or are not what v1.2.5 wrote (Korean message for CLI users)."""


class PickleSecurityWarning(UserWarning):
    """Unpickling runs code from the file: only import model files from a trusted source."""


class _AllowlistUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise LegacyImportError(
                f"피클 파일이 허용되지 않은 객체 {module}.{name}을(를) 불러오려 합니다. "
                "v1.2.5가 만든 모델 파일이 아니거나 변조되었을 수 있어 가져오기를 중단합니다."
            )
        return super().find_class(module, name)


def _unpickle(path: Path) -> Any:
    try:
        with path.open("rb") as handle, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Trying to unpickle estimator.*")
            return _AllowlistUnpickler(handle).load()
    except LegacyImportError:
        raise
    except Exception as exc:  # any failure inside a foreign pickle is a bad input file
        raise LegacyImportError(f"{path.name}을(를) 읽을 수 없습니다: {type(exc).__name__}: {exc}") from exc


def published_train_quantiles() -> list[float]:
    """101 ECLO quantiles reconstructed from DATA.md's published train statistics.

    Piecewise linear through min (0 %), the quartiles and the 75th percentile; above it an exponential tail
    6·e^(b·t), t = (p − 75) / 25, with b chosen so the distribution's mean equals the published 4.727; the
    100 % point is the published maximum. An approximation, good enough for percentiles of predictions.
    """
    s = PUBLISHED_TRAIN_STATS
    body_mean = 0.25 * ((s["min"] + s["q25"]) / 2 + (s["q25"] + s["q50"]) / 2 + (s["q50"] + s["q75"]) / 2)
    tail_mean = (s["mean"] - body_mean) / 0.25
    low, high = 1e-6, 10.0
    for _ in range(100):  # bisection on q75·(e^b − 1)/b = tail_mean (increasing in b)
        b = (low + high) / 2
        low, high = (b, high) if s["q75"] * np.expm1(b) / b < tail_mean else (low, b)
    p = np.arange(101, dtype=np.float64)
    body = np.interp(p, [0, 25, 50, 75], [s["min"], s["q25"], s["q50"], s["q75"]])
    tail = s["q75"] * np.exp(b * (p - 75) / 25)
    quantiles = np.where(p <= 75, body, tail)
    quantiles[-1] = s["max"]
    return [round(float(q), 4) for q in quantiles]


def _read_config(directory: Path) -> dict[str, list[str]]:
    try:
        config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
        parsed = {key: [str(v) for v in config[key]] for key in ("feature_cols", "cat_cols", "num_cols")}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LegacyImportError(
            f"{CONFIG_FILE}을(를) 해석할 수 없습니다(feature_cols, cat_cols, num_cols 목록이 필요합니다): {exc}"
        ) from exc
    if sorted(parsed["cat_cols"] + parsed["num_cols"]) != sorted(parsed["feature_cols"]):
        raise LegacyImportError(f"{CONFIG_FILE}의 cat_cols와 num_cols가 feature_cols를 나누지 않습니다.")
    return parsed


def _booster_text(model: Any, feature_cols: list[str]) -> str:
    booster = getattr(model, "booster_", None) if not isinstance(model, lgb.Booster) else model
    if not isinstance(booster, lgb.Booster):
        raise LegacyImportError(
            f"{MODEL_FILE}이(가) 학습된 LightGBM 모델(LGBMRegressor)이 아닙니다(읽은 객체: {type(model).__name__})."
        )
    if booster.feature_name() != feature_cols:
        raise LegacyImportError(
            f"모델의 특성 순서 {booster.feature_name()}가 {CONFIG_FILE}의 feature_cols {feature_cols}와 다릅니다."
        )
    text = booster.model_to_string()
    # The text form must predict exactly what the pickled booster predicts.
    rng = np.random.default_rng(0)
    probe = rng.integers(0, 30, size=(64, len(feature_cols))).astype(np.float64)
    converted = lgb.Booster(model_str=text)
    if not np.array_equal(booster.predict(probe, num_threads=1), converted.predict(probe, num_threads=1)):
        raise LegacyImportError("텍스트로 변환한 모델의 예측이 원본과 다릅니다. 변환을 중단합니다.")
    return text


def _categories(encoders: Any, cat_cols: list[str]) -> dict[str, list[str]]:
    if not isinstance(encoders, dict):
        found = type(encoders).__name__
        raise LegacyImportError(f"{ENCODERS_FILE}이(가) 특성별 LabelEncoder 사전이 아닙니다({found}).")
    categories = {}
    for feature in cat_cols:
        classes = getattr(encoders.get(feature), "classes_", None)
        if classes is None or not all(isinstance(c, str) for c in list(classes)):
            raise LegacyImportError(f"{ENCODERS_FILE}에 {feature}의 LabelEncoder(문자열 classes_)가 없습니다.")
        categories[feature] = [str(c) for c in classes]
    return categories


def import_legacy(
    directory: Path | str,
    *,
    target_transform: str = "log1p",
    hour_bands: dict[str, str] = DEFAULT_HOUR_BANDS,
    name: str = "eclo-legacy",
    evaluation_data: pd.DataFrame | pa.Table | None = None,
) -> ModelArtifact:
    """Convert a v1.2.5 model folder into a ModelArtifact (unpickles: trusted files only, offline only)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise LegacyImportError(f"기존 모델 폴더 {directory}이(가) 없습니다.")
    for file in (MODEL_FILE, ENCODERS_FILE, CONFIG_FILE):
        if not (directory / file).is_file():
            raise LegacyImportError(
                f"{directory}에 {file}이(가) 없습니다. v1.2.5의 model/ 폴더"
                f"({MODEL_FILE}, {ENCODERS_FILE}, {CONFIG_FILE})를 지정해 주세요."
            )
    if target_transform not in ("log1p", "none"):
        raise LegacyImportError(f"target_transform은 log1p 또는 none이어야 합니다({target_transform}).")
    config = _read_config(directory)
    warnings.warn(
        f"{directory}의 피클 파일을 읽습니다. 피클은 읽는 순간 코드를 실행할 수 있으므로 신뢰할 수 있는 출처의 "
        "파일만 가져오세요(허용 목록 밖의 클래스는 거부합니다).",
        PickleSecurityWarning,
        stacklevel=2,
    )
    model_text = _booster_text(_unpickle(directory / MODEL_FILE), config["feature_cols"])
    categories = _categories(_unpickle(directory / ENCODERS_FILE), config["cat_cols"])
    digests = {f: hashlib.sha256((directory / f).read_bytes()).hexdigest()[:16] for f in (MODEL_FILE, ENCODERS_FILE)}
    created = utc_now()
    meta = ModelMetadata(
        name=name, version=make_version(created, model_text), feature_order=config["feature_cols"],
        categorical_features=config["cat_cols"], numeric_features=config["num_cols"], categories=categories,
        # target_transform is one of the Literal's values: checked at the top (mypy does not narrow `in`).
        hour_bands=dict(hour_bands), target_transform=target_transform,  # type: ignore[arg-type]
        metrics={}, target_quantiles=published_train_quantiles(), bands=build_bands(published_train_quantiles()),
        training_fingerprint="", training_rows=0, created_at=created.isoformat(),
        lightgbm_version=lgb.__version__, source=SOURCE,
    )  # fmt: skip
    notes = [
        f"v1.2.5 피클에서 변환({MODEL_FILE} sha256 {digests[MODEL_FILE]}…, "
        f"{ENCODERS_FILE} sha256 {digests[ENCODERS_FILE]}…).",
        "시간대 매핑은 가져올 때 지정한 값(기본: 심야 21–6시, 출근 7–9시, 일반 10–17시, 퇴근 18–20시)입니다.",
        "학습 행 수와 학습 데이터 지문은 알 수 없습니다.",
    ]
    artifact = ModelArtifact(meta, model_text)  # validates before the optional evaluation below
    if evaluation_data is None:
        notes.append(
            "학습 지표가 없습니다. ECLO 분위수는 DATA.md의 train 공개 통계(최솟값·사분위수·평균·최댓값)로 추정했습니다."
        )
        return artifact.with_metadata(notes=" ".join(notes))
    table = as_table(evaluation_data)
    batch = encode_frame(table, meta, ignore_unknown=True)
    if TARGET not in table.column_names or not len(batch.row_index):
        raise LegacyImportError("평가 데이터에 ECLO 열이나 인코딩할 수 있는 행이 없습니다.")
    truth = table.column(TARGET).cast(pa.float64()).fill_null(np.nan).to_numpy()[batch.row_index]
    keep = np.isfinite(truth) & (truth >= 0)
    matrix, truth = batch.matrix[keep], truth[keep]
    raw = lgb.Booster(model_str=model_text).predict(matrix, num_threads=1)
    predicted = np.maximum(np.expm1(raw) if target_transform == "log1p" else raw, 0.0)
    metrics = regression_metrics(truth, predicted)
    constant = np.full_like(truth, np.expm1(np.mean(np.log1p(truth))))
    metrics["baseline_rmsle"] = regression_metrics(truth, constant)["rmsle"]
    metrics["evaluation_rows"] = float(len(truth))
    quantiles = quantiles_of(truth)
    notes.append(
        f"지표와 ECLO 분위수는 가져올 때 준 평가 데이터 {len(truth)}행에서 계산했습니다"
        "(그 데이터가 학습에 쓰였다면 지표는 낙관적입니다; baseline은 같은 데이터의 log1p 평균)."
    )
    return artifact.with_metadata(
        metrics=metrics,
        target_quantiles=quantiles,
        bands=build_bands(quantiles),
        notes=" ".join([*notes, f"평가 데이터 지문 sha256 {fingerprint_training_data(matrix, truth, categories)}."]),
    )
