"""models.legacy: the v1.2.5 pickles convert into an artifact that predicts exactly what v1.2.5 predicted."""

from __future__ import annotations

import os
import pickle
import shutil
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from api.datasets.ingest import parse_csv
from api.demo.generate import generate_demo_datasets
from models.artifact import ModelArtifact
from models.features import encode_frame, encode_row
from models.legacy import LegacyImportError, PickleSecurityWarning, import_legacy, published_train_quantiles
from models.loaded import LoadedModel
from tests import legacy_model

LEGACY_DIR = legacy_model.local_copy()
pytestmark = pytest.mark.skipif(not legacy_model.available(), reason=legacy_model.SKIP_REASON)
# The test's own hour -> 시간대 table (DEFAULT_HOUR_BANDS written out independently).
BAND_OF_HOUR = ["심야"] * 7 + ["출근시간대"] * 3 + ["일반시간대"] * 8 + ["퇴근시간대"] * 3 + ["심야"] * 3
FEATURE_COLS = [
    "기상상태",
    "노면상태",
    "도로형태",
    "사고시",
    "사고연",
    "사고월",
    "사고유형",
    "사고일",
    "시간대",
    "시군구",
    "요일",
]


@pytest.fixture(scope="module")
def legacy():
    """The pickled model and encoders, read here only to compare against (trusted files)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with (LEGACY_DIR / "accident_lgbm_model.pkl").open("rb") as handle:
            model = pickle.load(handle)
        with (LEGACY_DIR / "label_encoders.pkl").open("rb") as handle:
            encoders = pickle.load(handle)
    return model, encoders


@pytest.fixture(scope="module")
def artifact():
    with pytest.warns(PickleSecurityWarning):
        return import_legacy(LEGACY_DIR)


@pytest.fixture(scope="module")
def raw_rows() -> pd.DataFrame:
    """A few hundred raw accident rows (demo train data: Daegu places, all known to the v1.2.5 encoders)."""
    train = next(d for d in generate_demo_datasets(scale=0.01) if d.key == "train")
    return parse_csv(train.csv_bytes).table.to_pandas()


def legacy_predict(legacy, frame: pd.DataFrame) -> np.ndarray:
    """v1.2.5's way: LabelEncoder codes as plain numbers, LGBMRegressor.predict, expm1."""
    model, encoders = legacy
    when = pd.to_datetime(frame["사고일시"])
    features = pd.DataFrame(
        {
            "사고시": when.dt.hour, "사고연": when.dt.year, "사고월": when.dt.month, "사고일": when.dt.day,
            "시간대": [BAND_OF_HOUR[h] for h in when.dt.hour],
            **{c: frame[c] for c in ("기상상태", "노면상태", "도로형태", "사고유형", "시군구", "요일")},
        }
    )  # fmt: skip
    for column, encoder in encoders.items():
        features[column] = encoder.transform(features[column].astype(str))
    return np.expm1(model.predict(features[FEATURE_COLS]))


def test_parity_with_v125_on_raw_rows(legacy, artifact, raw_rows):
    assert len(raw_rows) >= 300
    model = LoadedModel(artifact)
    batch = encode_frame(raw_rows, artifact.metadata, ignore_unknown=True)
    assert not batch.errors
    ours = model.predict(batch.matrix)
    theirs = legacy_predict(legacy, raw_rows)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=0)
    row_by_row = [model.predict_row(r) for r in raw_rows.head(50).to_dict("records")]
    np.testing.assert_allclose(row_by_row, theirs[:50], rtol=1e-9, atol=0)


def test_parity_on_random_valid_categories(legacy, artifact):
    _, encoders = legacy
    rng = np.random.default_rng(5)
    n = 400
    when = pd.Timestamp("2019-01-01") + pd.to_timedelta(rng.integers(0, 3 * 365 * 24, n), unit="h")
    frame = pd.DataFrame(
        {c: rng.choice(encoders[c].classes_, n) for c in ("기상상태", "노면상태", "도로형태", "사고유형", "시군구")}
    )
    frame["사고일시"] = when.strftime("%Y-%m-%d %H")
    frame["요일"] = rng.choice(encoders["요일"].classes_, n)  # explicit, even if not the date's weekday
    batch = encode_frame(frame, artifact.metadata)
    assert not batch.errors
    np.testing.assert_allclose(
        LoadedModel(artifact).predict(batch.matrix), legacy_predict(legacy, frame), rtol=1e-9, atol=0
    )
    first = frame.iloc[0].to_dict()
    assert np.array_equal(encode_row(first, artifact.metadata)[0], batch.matrix[0])


def test_converted_metadata(artifact, legacy):
    meta = artifact.metadata
    _, encoders = legacy
    assert meta.source == "legacy-v1.2.5" and meta.target_transform == "log1p"
    assert meta.feature_order == FEATURE_COLS
    assert meta.categories == {k: list(v.classes_) for k, v in encoders.items()}
    assert len(meta.categories["시군구"]) == 199
    assert meta.metrics == {} and "학습 지표가 없습니다" in meta.notes
    assert meta.target_quantiles == published_train_quantiles()


def test_bundle_round_trip_keeps_predictions(artifact, raw_rows):
    restored = ModelArtifact.from_bundle(artifact.to_bundle(), expected_sha256=artifact.bundle_sha256)
    matrix = encode_frame(raw_rows, artifact.metadata, ignore_unknown=True).matrix
    assert np.array_equal(LoadedModel(restored).predict(matrix), LoadedModel(artifact).predict(matrix))


def test_published_quantiles_follow_data_md():
    q = np.array(published_train_quantiles())
    assert len(q) == 101 and np.all(np.diff(q) >= 0)
    assert (q[0], q[25], q[50], q[75], q[100]) == (1.0, 3.0, 3.0, 6.0, 74.0)
    assert abs(q[:100].mean() - 4.727) < 0.15  # the fitted tail reproduces the published mean


def test_evaluation_data_gives_metrics_and_quantiles(raw_rows):
    with pytest.warns(PickleSecurityWarning):
        artifact = import_legacy(LEGACY_DIR, evaluation_data=raw_rows)
    m = artifact.metadata.metrics
    assert {"rmse", "rmsle", "mae", "baseline_rmsle"} <= set(m) and m["evaluation_rows"] == len(raw_rows)
    assert artifact.metadata.target_quantiles[0] == raw_rows["ECLO"].min()


def copy_legacy(tmp_path: Path, *skip: str) -> Path:
    target = tmp_path / "model"
    target.mkdir()
    for name in ("accident_lgbm_model.pkl", "label_encoders.pkl", "feature_config.json"):
        if name not in skip:
            shutil.copy(LEGACY_DIR / name, target / name)
    return target


def test_missing_files_are_explained(tmp_path):
    with pytest.raises(LegacyImportError, match="없습니다"):
        import_legacy(tmp_path / "nowhere")
    with pytest.raises(LegacyImportError, match=r"label_encoders\.pkl"):
        import_legacy(copy_legacy(tmp_path, "label_encoders.pkl"))


class _Exploit:
    def __reduce__(self):
        return os.system, ("touch hab-pwned",)


def test_foreign_pickles_are_refused_without_running_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    directory = copy_legacy(tmp_path, "accident_lgbm_model.pkl")
    (directory / "accident_lgbm_model.pkl").write_bytes(pickle.dumps(_Exploit()))
    with pytest.warns(PickleSecurityWarning), pytest.raises(LegacyImportError, match="허용되지 않은"):
        import_legacy(directory)
    assert not (tmp_path / "hab-pwned").exists()
    (directory / "accident_lgbm_model.pkl").write_bytes(pickle.dumps(OrderedDict(a=1)))
    with pytest.warns(PickleSecurityWarning), pytest.raises(LegacyImportError, match="LightGBM"):
        import_legacy(directory)
    (directory / "feature_config.json").write_text('{"feature_cols": []}')
    with pytest.raises(LegacyImportError, match=r"feature_config\.json"):
        import_legacy(directory)
