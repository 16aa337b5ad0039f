"""In-process speed figures of the model and analysis code (no servers): the speed checks that used to be
assertions inside ordinary tests, where a loaded CI machine made them fail for no fault of the code.

Figures (each the median of BENCH_REPEAT runs, default 3, after one warm-up), with the bound the old test
asserted as the goal:

* train_eclo_scale_0_3: `train_eclo` on the demo train data at scale 0.3 (~11,900 rows), seed 42, seconds.
  Goal < 20 s (was tests/unit/test_models_train.py).
* encode_row: `encode_row` of one raw accident row, µs per row over 2,000 calls. Goal < 200 µs
  (was tests/unit/test_models_features.py).
* encode_frame_200k: `encode_frame` of a 200,000-row DataFrame, seconds. Goal < 5 s (same file).
* predict_one_row: `LoadedModel.predict` of one encoded row (a 200-round model, as the serving path calls
  it), µs per call over 500 calls. Goal < 2 ms (was tests/unit/test_models_loaded.py).
* analysis_tool_call: every analysis tool on every demo dataset kind (scale 0.02), the slowest call's
  `duration_ms` as run_tool records it. Goal < 5,000 ms (was tests/unit/test_analysis_registry.py).

The hot-swap test in tests/integration/test_predictions_api.py used to require 20 predictions in about
0.7 s; request throughput is measured against a real server by `predict_serving`, with a stricter goal.

`python -m bench micro` runs it (about a minute on a 2-core machine).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.common import render_table, repeat
from bench.headline import Headline

GOALS = {
    "train_eclo_scale_0_3": ("s", 20.0),
    "encode_row": ("µs/row", 200.0),
    "encode_frame_200k": ("s", 5.0),
    "predict_one_row": ("µs/call", 2000.0),
    "analysis_tool_call": ("ms, slowest call", 5000.0),
}


def _timed(function: Callable[[], Any], runs: int, per: int = 1, scale: float = 1.0) -> list[float]:
    """`runs` timings of `function` (after one warm-up call), each divided by `per` and times `scale`."""
    function()
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        out.append((time.perf_counter() - started) / per * scale)
    return out


def _figure(name: str, values: list[float]) -> dict[str, Any]:
    unit, goal = GOALS[name]
    median = statistics.median(values)
    return {
        "unit": unit,
        "median": round(median, 3),
        "min": round(min(values), 3),
        "runs": [round(v, 3) for v in values],
        "goal": f"< {goal:g} {unit}",
        "goal_met": median < goal,
    }


def run() -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    from api.analysis import TOOL_NAMES, ToolContext, run_tool
    from api.datasets.ingest import parse_csv
    from api.demo.generate import generate_demo_datasets
    from models.features import encode_frame, encode_row
    from models.loaded import LoadedModel
    from models.train import train_eclo
    from tests.unit.test_analysis_registry import _default_args

    runs = repeat()
    figures: dict[str, Any] = {}

    train = next(d for d in generate_demo_datasets(scale=0.3) if d.key == "train")
    table = parse_csv(train.csv_bytes).table
    figures["train_eclo_scale_0_3"] = _figure("train_eclo_scale_0_3", _timed(lambda: train_eclo(table, seed=42), runs))

    meta = train_eclo(table, seed=42).metadata
    raw = table.slice(0, 1).to_pylist()[0]
    figures["encode_row"] = _figure(
        "encode_row", _timed(lambda: [encode_row(raw, meta) for _ in range(2000)], runs, per=2000, scale=1e6)
    )
    big = pd.concat([table.slice(0, 1000).to_pandas()] * 200, ignore_index=True)
    figures["encode_frame_200k"] = _figure(
        "encode_frame_200k", _timed(lambda: encode_frame(big, meta, ignore_unknown=True), runs)
    )

    model = LoadedModel(train_eclo(table, num_boost_round=200))
    model.warm()
    single = np.ascontiguousarray(np.zeros((1, len(meta.feature_order))))
    figures["predict_one_row"] = _figure(
        "predict_one_row", _timed(lambda: [model.predict(single) for _ in range(500)], runs, per=500, scale=1e6)
    )

    frames = {d.key: parse_csv(d.csv_bytes).table.to_pandas() for d in generate_demo_datasets(scale=0.02)}

    def slowest_tool_call() -> float:
        slowest = 0.0
        for key, frame in frames.items():
            context = ToolContext(datasets={key: frame})
            for name in TOOL_NAMES:
                slowest = max(slowest, run_tool(name, _default_args(name, frame), context).record.duration_ms)
        return slowest

    slowest_tool_call()  # warm-up
    figures["analysis_tool_call"] = _figure("analysis_tool_call", [slowest_tool_call() for _ in range(runs)])
    return {"repeat": runs, "figures": figures, "goals_met": all(f["goal_met"] for f in figures.values())}


def report(result: dict[str, Any]) -> str:
    rows = [
        [name, f["unit"], f["median"], f["min"], f["goal"], "MET" if f["goal_met"] else "NOT MET"]
        for name, f in result["figures"].items()
    ]
    return render_table(["figure", "unit", "median", "min", "goal", "verdict"], rows)


def headlines(result: dict[str, Any]) -> list[Headline]:
    return [
        Headline(f"{name} ({f['unit']}, median)", f"{f['median']:g}", "-", "-", f["goal"], bool(f["goal_met"]))
        for name, f in result["figures"].items()
    ]
