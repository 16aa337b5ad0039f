"""models.train: learns something real from the demo data, deterministically and quickly."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pytest

from api.datasets.ingest import parse_csv
from api.demo.generate import generate_demo_datasets
from models.features import FEATURE_ORDER, encode_frame
from models.loaded import LoadedModel
from models.train import train_eclo


@pytest.fixture(scope="module")
def table() -> pa.Table:
    train = next(d for d in generate_demo_datasets(scale=0.3) if d.key == "train")
    return parse_csv(train.csv_bytes).table


@pytest.fixture(scope="module")
def trained(table):
    # (The training time is a benchmark figure: bench/micro.py, train_eclo_scale_0_3.)
    return (train_eclo(table, seed=42),)


def test_beats_the_mean_baseline_on_holdout(trained, table):
    (artifact,) = trained
    m = artifact.metadata.metrics
    assert {"rmse", "rmsle", "mae", "baseline_rmsle", "baseline_rmse", "baseline_mae", "holdout_rows"} <= set(m)
    assert m["rmsle"] < m["baseline_rmsle"] and m["rmse"] < m["baseline_rmse"] and m["mae"] < m["baseline_mae"]
    assert m["holdout_rows"] == round(table.num_rows * 0.2)
    assert artifact.metadata.training_rows + m["holdout_rows"] == table.num_rows


def test_metadata(trained, table):
    meta = trained[0].metadata
    assert meta.feature_order == list(FEATURE_ORDER) and meta.target_transform == "log1p"
    assert meta.source == "trained" and meta.lightgbm_version and len(meta.training_fingerprint) == 64
    for feature, values in meta.categories.items():
        assert values == sorted(values), feature
    assert set(meta.categories["시간대"]) == {"심야", "출근시간대", "일반시간대", "퇴근시간대"}
    assert len(meta.categories["요일"]) == 7
    q = meta.target_quantiles
    assert len(q) == 101 and q == sorted(q)
    eclo = table.column("ECLO").to_numpy()
    assert q[0] == eclo.min() and q[-1] == eclo.max() and q[50] == np.median(eclo)
    assert [b.label for b in meta.bands] == ["경미", "보통", "심각", "매우 심각"]


def test_same_seed_same_model_other_seed_other_model(trained, table):
    first = trained[0]
    again = train_eclo(table, seed=42)
    assert again.model_text == first.model_text
    assert again.metadata.training_fingerprint == first.metadata.training_fingerprint
    other = train_eclo(table, seed=7)
    assert hashlib.sha256(other.model_text.encode()).digest() != hashlib.sha256(first.model_text.encode()).digest()


def test_predictions_are_sensible(trained, table):
    model = LoadedModel(trained[0])
    batch = encode_frame(table, model.metadata, ignore_unknown=True)
    predicted = model.predict(batch.matrix, num_threads=2)
    assert predicted.min() >= 0 and 2.0 < predicted.mean() < 8.0
    # The demo generator makes pedestrian accidents more severe; the model must have learned that.
    kind = np.asarray(table.column("사고유형").to_pylist())[batch.row_index]
    assert predicted[kind == "차대사람"].mean() > predicted[kind == "차대차"].mean()


def test_bad_rows_are_left_out(table):
    small = table.slice(0, 400)
    frame = small.to_pandas()
    frame["사고일시"] = frame["사고일시"].dt.strftime("%Y-%m-%d %H")
    frame.loc[0, "사고일시"] = "언젠가"
    frame.loc[1, "ECLO"] = -1
    artifact = train_eclo(frame, num_boost_round=20, holdout=0.25)
    assert artifact.metadata.training_rows + artifact.metadata.metrics["holdout_rows"] == 398
    assert "2행은 제외" in artifact.metadata.notes


def test_too_little_data_is_refused(table):
    with pytest.raises(ValueError, match="최소"):
        train_eclo(table.slice(0, 10))
