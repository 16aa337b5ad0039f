"""models.loaded and models.interpret: natural-scale ECLO, contributions, bands, percentiles, latency."""

from __future__ import annotations

import numpy as np
import pytest

from api.datasets.ingest import parse_csv
from api.demo.generate import generate_demo_datasets
from models.features import encode_frame
from models.interpret import BAND_CUTS, band_for, build_bands, labels_for, percentile, quantiles_of
from models.loaded import BASE_VALUE_KEY, LoadedModel
from models.train import train_eclo

ROW = {
    "사고일시": "2021-07-03 23",
    "기상상태": "비",
    "노면상태": "젖음/습기",
    "도로형태": "교차로 - 교차로안",
    "사고유형": "차대사람",
    "시군구": "대구광역시 달성군 화원읍",
}


@pytest.fixture(scope="module")
def table():
    train = next(d for d in generate_demo_datasets(scale=0.1) if d.key == "train")
    return parse_csv(train.csv_bytes).table


@pytest.fixture(scope="module")
def model(table):
    loaded = LoadedModel(train_eclo(table, num_boost_round=200))
    loaded.warm()
    return loaded


@pytest.fixture(scope="module")
def matrix(table, model):
    return encode_frame(table, model.metadata, ignore_unknown=True).matrix[:300]


def test_predict_is_expm1_of_raw_and_never_negative(model, matrix):
    raw = model.raw_predict(matrix)
    np.testing.assert_allclose(model.predict(matrix), np.maximum(np.expm1(raw), 0.0), rtol=0, atol=0)
    assert model.predict(matrix[0]).shape == (1,)  # a single encoded row may be 1-D
    assert np.array_equal(model.predict(matrix, num_threads=2), model.predict(matrix))
    assert model.predict(np.empty((0, 11))).shape == (0,)
    with pytest.raises(ValueError):
        model.predict(np.zeros((1, 10)))


def test_contributions_sum_to_the_raw_prediction(model, matrix):
    contributions = model.contributions(matrix[:50])
    assert contributions.shape == (50, 12)
    np.testing.assert_allclose(contributions.sum(axis=1), model.raw_predict(matrix[:50]), rtol=1e-9, atol=1e-12)
    named = model.contributions_named(matrix[0])
    assert list(named) == [*model.metadata.feature_order, BASE_VALUE_KEY]
    assert np.isclose(sum(named.values()), np.log1p(model.predict(matrix[:1])[0]))


def test_predict_row_and_interpretation(model):
    eclo = model.predict_row(ROW)
    label, detail = model.interpret(eclo)
    assert label in {"경미", "보통", "심각", "매우 심각"} and label in detail and "백분위" in detail
    assert model.band(eclo).label == label
    assert 0 <= model.percentile(eclo) <= 100
    assert model.labels(np.array([eclo]))[0] == label
    importance = model.feature_importance()
    assert set(importance) == set(model.metadata.feature_order) and abs(sum(importance.values()) - 1) < 1e-9


def test_bands_are_grounded_and_contiguous():
    bands = build_bands(quantiles_of(np.array([1, 2, 3, 3, 3, 3, 4, 5, 6, 8, 9, 10, 12, 20])))
    assert [(b.label, b.lower, b.upper) for b in bands] == [
        ("경미", 0.0, 4.0), ("보통", 4.0, 7.0), ("심각", 7.0, 10.0), ("매우 심각", 10.0, None),
    ]  # fmt: skip
    assert all("ECLO" in b.description and "%" in b.description for b in bands)
    assert "사망" in bands[-1].description and [c[0] for c in BAND_CUTS] == [b.label for b in bands]
    values = np.array([0.0, 1.5, 3.99, 4.0, 6.99, 7.0, 9.99, 10.0, 50.0])
    expected = ["경미", "경미", "경미", "보통", "보통", "심각", "심각", "매우 심각", "매우 심각"]
    assert [band_for(v, bands).label for v in values] == expected == labels_for(values, bands)


def test_percentile_is_monotonic_and_handles_plateaus():
    q = quantiles_of(np.array([1] * 10 + [2] * 10 + [3] * 40 + [5] * 20 + [9] * 15 + [40] * 5))
    grid = np.linspace(0, 60, 601)
    values = percentile(grid, q)
    assert np.all(np.diff(values) >= 0) and values[0] == 0 and values[-1] == 100
    assert percentile(-5.0, q) == 0.0 and percentile(1000.0, q) == 100.0
    assert 35 < percentile(3.0, q) < 45  # the middle of the 3-plateau (about the 20th to 60th percentile)
    assert isinstance(percentile(3.0, q), float)


def test_single_row_predictions_equal_the_batch_ones(model, table):
    # Single-row latency is a benchmark figure (bench/micro.py, predict_one_row); here: the one-row path
    # (the serving path) gives exactly what the batch path gives for the same rows.
    matrix = encode_frame(table.slice(0, 20), model.metadata).matrix
    batch = model.predict(matrix)
    single = np.array([model.predict(np.ascontiguousarray(matrix[i : i + 1]))[0] for i in range(len(matrix))])
    assert model.predict(np.zeros((1, 11))).shape == (1,)
    assert np.array_equal(single, batch) and np.all(np.isfinite(batch)) and batch.min() >= 0


def test_describe_many_matches_one_by_one():
    """The vectorised batch interpretation equals interpret()/percentile() row by row."""
    import numpy as np

    from api.datasets.ingest import parse_csv
    from api.demo.generate import generate_demo_datasets
    from models.loaded import LoadedModel
    from models.train import train_eclo

    train = next(d for d in generate_demo_datasets(scale=0.05) if d.key == "train")
    model = LoadedModel(train_eclo(parse_csv(train.csv_bytes).table))
    eclo = np.array([0.5, 3.0, 3.99, 4.0, 6.5, 7.0, 9.99, 10.0, 25.0, 80.0])
    labels, sentences, pct = model.describe_many(eclo)
    for i, value in enumerate(eclo.tolist()):
        assert (labels[i], sentences[i]) == model.interpret(value)
        assert pct[i] == model.percentile(value)


def test_predict_one_is_predict_of_that_row(model, matrix):
    """LightGBM's single-row path gives predict()'s numbers exactly, and a busy FastConfig falls back."""
    matrix = matrix[:300]
    expected = model.predict(matrix)
    assert [model.predict_one(row) for row in matrix] == expected.tolist()
    with model._single._lock:  # another thread predicting one row: this call uses Booster.predict
        assert model.predict_one(matrix[0]) == expected[0]
    with pytest.raises(ValueError):
        model.predict_one(matrix[:2])
    for value in expected[:50].tolist():
        assert model.describe_one(value) == (*model.interpret(value), model.percentile(value))
