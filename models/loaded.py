"""A model version ready to serve: one LightGBM Booster built from the artifact's text, plus interpretation.

Threads and latency (LightGBM 4.7; figures in docs/decisions/0008-lightgbm-threads.md):
- ``num_threads`` is passed on every predict call. It cannot be fixed at load time: ``Booster(model_str=...,
  params=...)`` ignores ``params`` (LightGBM warns "Ignoring params argument"), the ``[num_threads: …]`` line
  of the model text is not used for prediction either, and ``reset_parameter()`` on a Booster loaded from a
  string crashed the interpreter (segfault). Without it LightGBM uses every core, which makes single rows
  slow on big machines. The per-call parameter costs next to nothing.
- One row takes tens of microseconds, so single predictions run in the event loop.
- ``pred_contrib`` is far heavier (milliseconds per row for 500 trees): compute contributions only on request.
- More threads help only on idle cores: with the cores busy (API, workers, other jobs), OpenMP's waiting
  made 2-thread LightGBM work many times slower. Keep 1 unless the process owns the machine.
- LightGBM's OpenMP pool may hang in a process forked after it was used: start workers with spawn.
- One row (``predict_one``) goes through the compiled library's row function once one is attached
  (models/compiled.py), else through LightGBM's single-row "fast" C API (a FastConfig made once per
  model): ``Booster.predict`` builds a predictor and validates its input on every call, which cost more
  than walking the trees (docs/decisions/0010). A FastConfig is not safe for concurrent calls, so it is used
  under a lock taken without waiting; a caller that finds it busy uses ``Booster.predict``.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Mapping
from typing import Any

import lightgbm as lgb
import numpy as np

from models.artifact import ModelArtifact
from models.compiled import COMPILED_MIN_ROWS, CompiledPredictor, PredictorBackend
from models.features.encoding import encode_row, lookup_tables
from models.interpret import PercentileScale, band_for, describe, interpretation, labels_for, sentence_parts
from models.metadata import SYNTHETIC_NOTE, SYNTHETIC_SOURCE, InterpretationBand, ModelMetadata, VersionNumber

BASE_VALUE_KEY = "기준값"  # key of the expected value (bias) in contributions_named()


class LoadedModel:
    """Serve one artifact: predict ECLO, explain, interpret. Safe to share between threads."""

    def __init__(self, artifact: ModelArtifact) -> None:
        self.artifact = artifact
        self.metadata: ModelMetadata = artifact.metadata
        self._booster = lgb.Booster(model_str=artifact.model_text)
        self._n_features = len(self.metadata.feature_order)
        self._scale = PercentileScale(self.metadata.target_quantiles)
        if self._booster.num_feature() != self._n_features:
            raise ValueError(f"모델 특성 수 {self._booster.num_feature()}가 메타데이터({self._n_features})와 다릅니다.")
        self._log1p = self.metadata.target_transform == "log1p"
        self._compiled: CompiledPredictor | None = None
        self._single = _SingleRowPredictor(self._booster)

    def __repr__(self) -> str:
        return f"LoadedModel(name={self.metadata.name!r}, version={self.metadata.version!r})"

    @property
    def version(self) -> VersionNumber:
        """The registry number of this model; ValueError for an artifact that was never registered (use
        ``metadata.version`` for its label)."""
        return self.metadata.version_number()

    @property
    def name(self) -> str:
        return self.metadata.name

    def _matrix(self, matrix: np.ndarray) -> np.ndarray:
        x = np.asarray(matrix, dtype=np.float64)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.ndim != 2 or x.shape[1] != self._n_features:
            raise ValueError(f"입력 행렬의 모양 {x.shape}이(가) (n, {self._n_features})가 아닙니다.")
        return x

    @property
    def backend(self) -> PredictorBackend:
        """What predicts batches (and single rows): the compiled library once one is attached, else LightGBM."""
        return PredictorBackend.LIGHTGBM if self._compiled is None else PredictorBackend.COMPILED

    def attach_compiled(self, predictor: CompiledPredictor) -> None:
        """Serve batches from a verified compiled library from now on (one assignment: readers see either)."""
        self._compiled = predictor

    def raw_predict(self, matrix: np.ndarray, *, num_threads: int = 1) -> np.ndarray:
        """The model's own output (log1p(ECLO) when target_transform is log1p)."""
        x = self._matrix(matrix)
        if len(x) == 0:
            return np.empty(0, dtype=np.float64)
        compiled = self._compiled
        if compiled is not None and len(x) >= COMPILED_MIN_ROWS:
            out = compiled.raw_predict(x)
            if out is not None:
                return out
        return np.asarray(self._booster.predict(x, num_threads=num_threads))  # an ndarray already, for dense input

    def lightgbm_raw_predict(self, matrix: np.ndarray, *, num_threads: int = 1) -> np.ndarray:
        """raw_predict() by LightGBM itself, whatever is attached: the reference the compiled library matches."""
        x = self._matrix(matrix)
        return np.asarray(self._booster.predict(x, num_threads=num_threads)) if len(x) else np.empty(0)

    def predict(self, matrix: np.ndarray, *, num_threads: int = 1) -> np.ndarray:
        """ECLO on its natural scale (expm1 applied for log1p models), never negative; shape (n,)."""
        raw = self.raw_predict(matrix, num_threads=num_threads)
        return np.maximum(np.expm1(raw) if self._log1p else raw, 0.0)

    def predict_one(self, row: np.ndarray) -> float:
        """predict() of one encoded row (shape (n_features,)): by the compiled library's row function once one
        is attached, else by LightGBM's single-row path."""
        x = np.ascontiguousarray(row, dtype=np.float64)
        if x.shape != (self._n_features,):
            raise ValueError(f"입력 행의 모양 {x.shape}이(가) ({self._n_features},)가 아닙니다.")
        compiled = self._compiled
        raw = compiled.raw_predict_one(x) if compiled is not None else self._single.raw_predict(x)
        if raw is None:
            raw = float(self._booster.predict(x.reshape(1, -1), num_threads=1)[0])
        return max(float(np.expm1(raw)) if self._log1p else raw, 0.0)

    def decode_row(self, row: np.ndarray) -> dict[str, Any]:
        """The features of one encoded row, as names and readable values (what is stored with a prediction)."""
        meta = self.metadata
        out: dict[str, Any] = {}
        for name, value in zip(meta.feature_order, row.tolist(), strict=True):
            vocabulary = meta.categories.get(name)
            out[name] = vocabulary[int(value)] if vocabulary is not None else int(value)
        return out

    def predict_row(self, row: Mapping[str, Any]) -> float:
        """Encode one row (features or raw accident row, see models.features) and predict its ECLO."""
        return float(self.predict(encode_row(row, self.metadata))[0])

    def contributions(self, matrix: np.ndarray, *, num_threads: int = 1) -> np.ndarray:
        """Per-feature SHAP contributions plus the expected value (last column), shape (n, n_features + 1).

        They are on the model's raw scale: for log1p models, each row sums to log1p(predicted ECLO) (before
        the clip at 0), not to ECLO. Columns follow metadata.feature_order.
        """
        x = self._matrix(matrix)
        return np.asarray(self._booster.predict(x, pred_contrib=True, num_threads=num_threads), dtype=np.float64)

    def contributions_named(self, matrix_row: np.ndarray) -> dict[str, float]:
        """Contributions of one encoded row by feature name, plus the expected value under BASE_VALUE_KEY."""
        values = self.contributions(self._matrix(matrix_row)[:1])[0]
        named = {name: float(v) for name, v in zip(self.metadata.feature_order, values[:-1], strict=True)}
        named[BASE_VALUE_KEY] = float(values[-1])
        return named

    def band(self, eclo: float) -> InterpretationBand:
        return band_for(eclo, self.metadata.bands)

    def interpret(self, eclo: float) -> tuple[str, str]:
        """(band label such as '보통', one Korean sentence with the band range and percentile)."""
        label, sentence = interpretation(eclo, self.metadata.bands, self.metadata.target_quantiles, scale=self._scale)
        return label, sentence + self.caveat

    def describe_one(self, eclo: float) -> tuple[str, str, float]:
        """(interpret()'s label and sentence, percentile()) with the percentile computed once."""
        pct = self.percentile(eclo)
        band = band_for(eclo, self.metadata.bands)
        return band.label, describe(eclo, band, pct) + self.caveat, pct

    @property
    def synthetic(self) -> bool:
        """Trained on the synthetic demo data: its figures illustrate the system, not real risk."""
        return self.metadata.source == SYNTHETIC_SOURCE

    @property
    def caveat(self) -> str:
        """What every interpretation sentence of this model ends with ('' for a model of real data)."""
        return SYNTHETIC_NOTE if self.synthetic else ""

    def percentile(self, eclo: float) -> float:
        """Where eclo lies (0–100) among the training accidents' ECLO."""
        return float(self._scale(eclo))

    def percentiles(self, eclo: np.ndarray) -> np.ndarray:
        """percentile() for an array of ECLO values."""
        return np.asarray(self._scale(np.asarray(eclo, dtype=np.float64)))

    def describe_many(self, eclo: np.ndarray) -> tuple[list[str], list[str], np.ndarray]:
        """(labels, sentences, percentiles) for a batch, vectorised except for the sentence text, which is
        describe()'s, formatted from per-band parts made once (faster than describe() per row; docs/decisions/0006)."""
        eclo = np.asarray(eclo, dtype=np.float64)
        bands = self.metadata.bands
        index = np.searchsorted(np.asarray([b.upper for b in bands[:-1]], dtype=np.float64), eclo, side="right")
        pct = self.percentiles(eclo)
        labels = [b.label for b in bands]
        parts = [sentence_parts(b) for b in bands]
        before, after = parts[0][0], parts[0][2] + self.caveat
        between = [p[1] for p in parts]
        chosen = index.tolist()
        rows = zip(eclo.tolist(), chosen, pct.tolist(), strict=True)
        sentences = [f"{before}{v:.2f}{between[i]}{p:.0f}{after}" for v, i, p in rows]
        return [labels[i] for i in chosen], sentences, pct

    def labels(self, eclo: np.ndarray) -> list[str]:
        """Band label of each ECLO value of an array (for batches)."""
        return labels_for(eclo, self.metadata.bands)

    def feature_importance(self) -> dict[str, float]:
        """Share of the total split gain per feature (sums to 1; all 0 for a model without splits)."""
        gain = self._booster.feature_importance(importance_type="gain").astype(np.float64)
        total = gain.sum()
        shares = gain / total if total > 0 else gain
        return {name: float(v) for name, v in zip(self.metadata.feature_order, shares, strict=True)}

    def warm(self) -> None:
        """Build the encoder tables and run one prediction, so the first real request pays nothing extra."""
        lookup_tables(self.metadata)
        self.predict(np.zeros((1, self._n_features)))
        self.predict_one(np.zeros(self._n_features))


_PREDICT_NORMAL = 0  # C_API_PREDICT_NORMAL
_DTYPE_FLOAT64 = 1  # C_API_DTYPE_FLOAT64


class _SingleRowPredictor:
    """LightGBM's LGBM_BoosterPredictForMatSingleRowFast for one Booster: the same numbers as
    ``Booster.predict(row, num_threads=1)`` (same iterations: the best one when the model has it, else all)."""

    def __init__(self, booster: lgb.Booster) -> None:
        from lightgbm.basic import _LIB, _safe_call

        self._lib, self._check = _LIB, _safe_call
        iterations = booster.best_iteration if booster.best_iteration > 0 else -1
        self._config = ctypes.c_void_p()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,  # the C API takes the Booster by its handle
                ctypes.c_int(_PREDICT_NORMAL),
                ctypes.c_int(0),
                ctypes.c_int(iterations),
                ctypes.c_int(_DTYPE_FLOAT64),
                ctypes.c_int32(booster.num_feature()),
                ctypes.c_char_p(b"num_threads=1"),
                ctypes.byref(self._config),
            )
        )
        self._booster = booster  # the FastConfig refers to the Booster: keep it alive as long as this
        self._out = np.empty(1, dtype=np.float64)
        self._out_pointer = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._out_len = ctypes.c_int64()
        self._lock = threading.Lock()

    def raw_predict(self, row: np.ndarray) -> float | None:
        """The raw output for a contiguous float64 row, or None when another thread is using this predictor."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            self._check(
                self._lib.LGBM_BoosterPredictForMatSingleRowFast(
                    self._config, row.ctypes.data_as(ctypes.c_void_p), ctypes.byref(self._out_len), self._out_pointer
                )
            )
            return float(self._out[0])
        finally:
            self._lock.release()

    def __del__(self) -> None:
        config = getattr(self, "_config", None)
        if config is not None and config.value:
            self._lib.LGBM_FastConfigFree(config)
