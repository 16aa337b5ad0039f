"""The compiled predictor (models/compiled.py) against LightGBM itself, with a real C compiler."""

from __future__ import annotations

import itertools
import os
import warnings

import numpy as np
import pytest

from models.compiled import (
    COMPILED_MIN_ROWS,
    EQUALITY_TOLERANCE,
    CompiledPredictor,
    CompileError,
    ModelCompiler,
    PredictorBackend,
    compile_library,
    find_compiler,
    library_name,
    verify,
)
from models.loaded import LoadedModel
from models.train import train_eclo
from tests import legacy_model

pytestmark = pytest.mark.skipif(find_compiler() is None, reason="no C compiler on this machine")


@pytest.fixture(scope="module")
def table():
    from api.datasets.ingest import parse_csv
    from api.demo.generate import generate_demo_datasets

    train = next(d for d in generate_demo_datasets(scale=0.05) if d.key == "train")
    return parse_csv(train.csv_bytes).table


@pytest.fixture(scope="module")
def trained(table) -> LoadedModel:
    return LoadedModel(train_eclo(table, num_boost_round=120))


@pytest.fixture(scope="module")
def legacy() -> LoadedModel:
    if not legacy_model.available():
        pytest.skip(legacy_model.SKIP_REASON)
    from models.legacy import import_legacy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LoadedModel(import_legacy(legacy_model.local_copy()))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("compiled")


def every_category_matrix(model: LoadedModel, seed: int = 7) -> np.ndarray:
    """For each categorical feature, one row per category code (plus an unseen code and a missing value),
    the other features drawn at random from their own vocabularies or ranges; then all pairs of the two
    smallest vocabularies, so interactions between categorical splits are visited too."""
    meta = model.metadata
    rng = np.random.default_rng(seed)

    def background(n: int) -> np.ndarray:
        columns = []
        for feature in meta.feature_order:
            vocabulary = meta.categories.get(feature)
            if vocabulary is not None:
                columns.append(rng.integers(0, len(vocabulary), n).astype(np.float64))
            else:
                columns.append(rng.integers(0, 32, n).astype(np.float64))
        return np.column_stack(columns)

    blocks = []
    for position, feature in enumerate(meta.feature_order):
        vocabulary = meta.categories.get(feature)
        if vocabulary is None:
            continue
        codes = np.array([*range(len(vocabulary)), len(vocabulary), np.nan], dtype=np.float64)
        for _ in range(3):  # three random backgrounds per code
            block = background(len(codes))
            block[:, position] = codes
            blocks.append(block)
    small = sorted(meta.categories, key=lambda f: len(meta.categories[f]))[:2]
    a, b = (meta.feature_order.index(f) for f in small)
    pairs = list(itertools.product(range(len(meta.categories[small[0]])), range(len(meta.categories[small[1]]))))
    block = background(len(pairs))
    block[:, a] = [p[0] for p in pairs]
    block[:, b] = [p[1] for p in pairs]
    blocks.append(block)
    return np.vstack(blocks)


def counting(method: str, library, n_features: int) -> CompiledPredictor:
    """A CompiledPredictor that counts the calls of one of its methods (in its `calls`)."""
    original = getattr(CompiledPredictor, method)

    def counted(self, *args):
        self.calls += 1
        return original(self, *args)

    return type("Counting", (CompiledPredictor,), {method: counted, "calls": 0})(library, n_features)


def assert_equal_outputs(model: LoadedModel, predictor: CompiledPredictor) -> None:
    x = every_category_matrix(model)
    reference = model.lightgbm_raw_predict(x)
    compiled = predictor.raw_predict(x)
    assert compiled is not None
    relative = np.abs(compiled - reference) / np.maximum(np.abs(reference), 1e-12)
    assert float(relative.max()) <= EQUALITY_TOLERANCE, f"max relative difference {relative.max():.3g}"
    # Row by row (a single prediction's path), missing values included.
    assert np.isnan(x).any()
    one_by_one = np.array([predictor.raw_predict_one(row) for row in x])
    relative = np.abs(one_by_one - reference) / np.maximum(np.abs(reference), 1e-12)
    assert float(relative.max()) <= EQUALITY_TOLERANCE, f"row by row: max relative difference {relative.max():.3g}"
    # The comparison is not vacuous: the model's outputs vary over these rows.
    assert np.unique(np.round(reference, 9)).size > 10


def test_a_freshly_trained_model_compiles_to_the_same_outputs(trained, cache):
    library = compile_library(trained.artifact.model_text, cache, threads=2)
    assert_equal_outputs(trained, CompiledPredictor(library, len(trained.metadata.feature_order)))


def test_the_v125_model_compiles_to_the_same_outputs(legacy, cache):
    library = compile_library(legacy.artifact.model_text, cache, threads=2)
    assert_equal_outputs(legacy, CompiledPredictor(library, len(legacy.metadata.feature_order)))


def test_a_version_is_compiled_once_per_cache_folder(trained, cache):
    first = compile_library(trained.artifact.model_text, cache, threads=2)
    before = first.stat()
    again = compile_library(trained.artifact.model_text, cache, threads=2)
    assert again == first
    assert (again.stat().st_ino, again.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert first.name == library_name(trained.artifact.model_text)


def test_accelerate_attaches_and_batches_use_the_library(trained, cache):
    model = LoadedModel(trained.artifact)
    assert model.backend is PredictorBackend.LIGHTGBM
    assert ModelCompiler(cache, threads=2).accelerate(model) is PredictorBackend.COMPILED
    assert model.backend is PredictorBackend.COMPILED
    x = every_category_matrix(model)
    np.testing.assert_allclose(model.raw_predict(x), model.lightgbm_raw_predict(x), rtol=EQUALITY_TOLERANCE, atol=0)

    counted = counting("raw_predict", compile_library(model.artifact.model_text, cache), len(x[0]))
    model.attach_compiled(counted)
    model.raw_predict(x[: COMPILED_MIN_ROWS - 1])  # small: LightGBM
    assert counted.calls == 0
    model.raw_predict(x[:COMPILED_MIN_ROWS])
    assert counted.calls == 1


def test_a_library_that_does_not_reproduce_lightgbm_is_refused_and_discarded(trained, table, tmp_path):
    # A library of another model (same features, another seed) under this model's cache name: it loads,
    # but its outputs differ.
    another = train_eclo(table, num_boost_round=20, seed=3)
    other = compile_library(another.model_text, tmp_path / "other", threads=2)
    target = tmp_path / "cache" / library_name(trained.artifact.model_text)
    target.parent.mkdir()
    target.write_bytes(other.read_bytes())
    model = LoadedModel(trained.artifact)
    assert ModelCompiler(tmp_path / "cache").accelerate(model) is PredictorBackend.LIGHTGBM
    assert model.backend is PredictorBackend.LIGHTGBM
    assert not target.exists()


def test_without_a_compiler_the_model_stays_on_lightgbm(trained, tmp_path, monkeypatch):
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no gcc, cc or clang here
    assert find_compiler() is None
    compiler = ModelCompiler(tmp_path / "cache")
    assert not compiler.enabled
    model = LoadedModel(trained.artifact)
    assert compiler.accelerate(model) is PredictorBackend.LIGHTGBM
    assert not (tmp_path / "cache").exists()
    assert os.environ["PATH"] == str(tmp_path)


def test_batches_predicting_at_once_all_use_the_library_with_the_same_outputs(trained, cache):
    from concurrent.futures import ThreadPoolExecutor

    predictor = CompiledPredictor(
        compile_library(trained.artifact.model_text, cache), len(trained.metadata.feature_order)
    )
    x = every_category_matrix(trained)
    reference = trained.lightgbm_raw_predict(x)
    held = predictor._take()  # another thread is in the middle of a prediction
    try:
        out = predictor.raw_predict(x)
        assert out is not None, "a second thread fell back to LightGBM"
        np.testing.assert_allclose(out, reference, rtol=EQUALITY_TOLERANCE, atol=0)
        assert predictor.loaded == 2
    finally:
        predictor._free.append(held)

    # Several threads at once, many times: each answer is the library's and right.
    def predict_many(seed: int) -> list[bool]:
        rows = np.random.default_rng(seed).permutation(len(x))
        results = [predictor.raw_predict(x[rows]) for _ in range(25)]
        return [r is not None and np.allclose(r, reference[rows], rtol=EQUALITY_TOLERANCE, atol=0) for r in results]

    with ThreadPoolExecutor(4) as pool:
        answers = [ok for oks in pool.map(predict_many, range(4)) for ok in oks]
    assert answers == [True] * 100
    assert predictor.loaded <= 4


def test_single_rows_use_the_library_once_attached(trained, cache):
    model = LoadedModel(trained.artifact)
    x = every_category_matrix(model)
    on_lightgbm = [model.predict_one(row) for row in x]

    counted = counting("raw_predict_one", compile_library(model.artifact.model_text, cache), len(x[0]))
    model.attach_compiled(counted)
    on_library = [model.predict_one(row) for row in x]
    assert counted.calls == len(x)
    np.testing.assert_allclose(on_library, on_lightgbm, rtol=EQUALITY_TOLERANCE, atol=0)
    # predict_one is predict() of that row, on the library too.
    np.testing.assert_allclose(on_library, model.predict(x), rtol=EQUALITY_TOLERANCE, atol=0)


def test_a_row_function_answering_nan_is_refused(trained, cache):
    class NanRows(CompiledPredictor):
        def raw_predict_one(self, row):
            return float("nan")

    predictor = NanRows(compile_library(trained.artifact.model_text, cache), len(trained.metadata.feature_order))
    with pytest.raises(CompileError):
        verify(trained, predictor)
    assert (
        verify(trained, CompiledPredictor(predictor.library, len(trained.metadata.feature_order))) <= EQUALITY_TOLERANCE
    )
