"""Baseline for bench/predict_serving.py: the v1.2.5 model served the way the v1.3 guide proposed.

A small FastAPI app that loads v1.2.5's pickles once at startup (``accident_lgbm_model.pkl``, a
LGBMRegressor trained on log1p(ECLO); ``label_encoders.pkl``, one scikit-learn LabelEncoder per
categorical feature; ``feature_config.json``) and, per request, does what v1.2.5's ``utils/`` did for one
prediction: build a one-row pandas DataFrame from the JSON body (the 11 features, Korean names), run each
LabelEncoder's ``transform`` on its categorical column, order the columns by ``feature_cols``, call
``model.predict`` (LightGBM's default threads, as v1.2.5 did) and return ``expm1`` of the result.
It stores nothing.

Unpickling is acceptable here only because this is a benchmark reproducing the old path on the trusted
files in shared/; hab itself never unpickles outside ``models/legacy.py``.

Run: ``python -m bench.legacy_fastapi_app PORT [MODEL_DIR] [async|sync]`` (one uvicorn process, same
defaults as ``hab serve``: auto loop/http, no access log).
"""

from __future__ import annotations

import json
import pickle
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[2] / "shared" / "legacy-model-v1.2"


class AccidentFeatures(BaseModel):
    기상상태: str
    노면상태: str
    도로형태: str
    사고유형: str
    시간대: str
    시군구: str
    요일: str
    사고연: int
    사고월: int
    사고일: int
    사고시: int


class EcloPrediction(BaseModel):
    eclo: float


def create_app(model_dir: Path = DEFAULT_MODEL_DIR, handler: str = "async") -> FastAPI:
    """handler: "async" (an `async def` endpoint) or "sync" (a `def` endpoint, run in FastAPI's thread pool)."""
    if handler not in ("async", "sync"):
        raise ValueError(f"handler must be async or sync, not {handler!r}")
    with warnings.catch_warnings():  # pickled with scikit-learn 1.6.1
        warnings.simplefilter("ignore")
        model: Any = pickle.loads((model_dir / "accident_lgbm_model.pkl").read_bytes())
        encoders: dict[str, Any] = pickle.loads((model_dir / "label_encoders.pkl").read_bytes())
    config = json.loads((model_dir / "feature_config.json").read_text(encoding="utf-8"))
    feature_cols: list[str] = config["feature_cols"]
    cat_cols: list[str] = config["cat_cols"]

    app = FastAPI(title="v1.2.5 ECLO model (baseline)")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    def predict_eclo(features: AccidentFeatures) -> EcloPrediction:
        frame = pd.DataFrame([features.model_dump()])
        for column in cat_cols:
            frame[column] = encoders[column].transform(frame[column])
        raw = model.predict(frame[feature_cols])
        return EcloPrediction(eclo=float(np.expm1(raw[0])))

    if handler == "async":  # runs in the event loop, one request at a time

        @app.post("/api/predict/eclo")
        async def predict_async(features: AccidentFeatures) -> EcloPrediction:
            return predict_eclo(features)

    else:  # "sync": FastAPI runs a plain `def` endpoint in its thread pool (up to 40 at once)

        @app.post("/api/predict/eclo")
        def predict_sync(features: AccidentFeatures) -> EcloPrediction:
            return predict_eclo(features)

    return app


def main(argv: list[str]) -> None:
    import uvicorn

    if not 1 <= len(argv) <= 3:
        sys.exit("usage: python -m bench.legacy_fastapi_app PORT [MODEL_DIR] [async|sync]")
    model_dir = Path(argv[1]) if len(argv) >= 2 else DEFAULT_MODEL_DIR
    handler = argv[2] if len(argv) == 3 else "async"
    app = create_app(model_dir, handler)
    uvicorn.run(app, host="127.0.0.1", port=int(argv[0]), log_level="warning", access_log=False)


if __name__ == "__main__":
    main(sys.argv[1:])
