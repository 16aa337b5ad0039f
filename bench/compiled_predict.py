"""The v1.2.5 model's trees predicting 300,000 encoded rows: LightGBM vs the compiled library, one thread.

What is measured (one run, the same process, the same matrix):
* Model: the v1.2.5 files (`import_legacy(shared/legacy-model-v1.2)`), 500 trees.
* Input: the demo generator's train rows (scale 1.0) encoded once with `encode_frame` and tiled to 300,000
  rows (encoding is not timed: this is the predict stage of a batch job alone).
* compile: `compile_library` into an empty temporary folder, HAB_MODEL_COMPILE_THREADS-like `threads=2`,
  wall seconds (once; later activations reuse the cached library).
* predict: `LoadedModel.raw_predict` with LightGBM (`lightgbm_raw_predict`, num_threads=1, the peer) and
  with the attached compiled predictor, BENCH_REPEAT runs each (default 3) after one warm-up; rows/s of
  the median run. Outputs are compared: the max relative difference must be <= 1e-9.

Goal (issue 13 §1): the compiled predictor several times faster than LightGBM on one thread, with the
same outputs; the job's own goal (>= 150,000 rows/s end to end) is `batch_job`'s.

`python -m bench compiled_predict` runs it (about a minute on a 2-core machine).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import legacy_loaded_model, render_table, repeat
from bench.headline import Headline, ratio_text

NAME = "compiled_predict"
ROWS = 300_000


def _matrix(model: Any) -> np.ndarray:
    from api.datasets.ingest import parse_csv
    from api.demo.generate import generate_demo_datasets
    from models.features import encode_frame

    train = next(d for d in generate_demo_datasets(scale=1.0) if d.key == "train")
    encoded = encode_frame(parse_csv(train.csv_bytes).table, model.metadata, ignore_unknown=True).matrix
    return np.resize(encoded, (ROWS, encoded.shape[1]))


def _rows_per_s(function: Any, x: np.ndarray, runs: int) -> tuple[float, list[float]]:
    function(x[:1000])
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        function(x)
        walls.append(time.perf_counter() - started)
    return len(x) / statistics.median(walls), walls


def run() -> dict[str, Any]:
    from models.compiled import CompiledPredictor, compile_library

    runs = repeat(3)
    model = legacy_loaded_model()
    x = _matrix(model)
    with tempfile.TemporaryDirectory(prefix="hab-bench-compiled-") as folder:
        started = time.perf_counter()
        library = compile_library(model.artifact.model_text, Path(folder), threads=2)
        compile_s = time.perf_counter() - started
        predictor = CompiledPredictor(library, x.shape[1])
        lightgbm_rps, lightgbm_walls = _rows_per_s(model.lightgbm_raw_predict, x, runs)
        compiled_rps, compiled_walls = _rows_per_s(predictor.raw_predict, x, runs)
        reference, compiled = model.lightgbm_raw_predict(x), predictor.raw_predict(x)
    assert compiled is not None
    relative = float(np.max(np.abs(compiled - reference) / np.maximum(np.abs(reference), 1e-12)))
    return {
        "benchmark": NAME,
        "description": "predict stage alone: LightGBM (peer) vs the compiled library, one thread, 300,000 rows",
        "rows": ROWS,
        "trees": 500,
        "compile_s": round(compile_s, 1),
        "lightgbm": {"rows_per_s": round(lightgbm_rps), "walls_s": [round(w, 3) for w in lightgbm_walls]},
        "compiled": {"rows_per_s": round(compiled_rps), "walls_s": [round(w, 3) for w in compiled_walls]},
        "ratio": round(compiled_rps / lightgbm_rps, 2),
        "max_relative_difference": relative,
        "same_outputs": relative <= 1e-9,
    }


def report(result: dict[str, Any]) -> str:
    rows = [
        ["LightGBM, 1 thread (peer)", f"{result['lightgbm']['rows_per_s']:,}", "1.00"],
        ["compiled (tl2cgen), 1 thread", f"{result['compiled']['rows_per_s']:,}", f"{result['ratio']:.2f}"],
    ]
    table = render_table(["predict 300,000 rows", "rows/s", "× LightGBM"], rows)
    return (
        f"{table}\ncompile (2 threads, once per model version): {result['compile_s']} s; "
        f"max relative difference {result['max_relative_difference']:.2g} "
        f"({'same outputs' if result['same_outputs'] else 'OUTPUTS DIFFER'})"
    )


def headlines(result: dict[str, Any]) -> list[Headline]:
    return [
        Headline(
            "predict stage, 300,000 rows, 1 thread (rows/s)",
            f"{result['compiled']['rows_per_s']:,} (compiled)",
            f"{result['lightgbm']['rows_per_s']:,} (LightGBM)",
            ratio_text(result["ratio"]),
            "same outputs (relative difference <= 1e-9)",
            bool(result["same_outputs"]),
        )
    ]
