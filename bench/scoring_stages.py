"""Each stage of a batch-scoring part, alone, on 300,000 rows: where a job's time goes and what its floor is.

What is measured (one process; the v1.2.5 model; BENCH_REPEAT runs of each, the median):
* Input: the demo generator's train rows (scale 1.0, parsed by hab's `parse_csv`) tiled to 300,000 rows.
* encode: `encode_frame` of the Arrow table (what a part does first).
* predict: the compiled library (`CompiledPredictor.raw_predict` + expm1, as `LoadedModel.predict` does)
  and, as the peer, LightGBM on one thread.
* summary: `ScoringTally.with_chunk` (bands and per-district sums folded for the job's summary); and, for
  comparison, the same fold done per row in Python (what it was before: `labels()` + np.unique, a dict
  update per row).
* copy: the rows into a scratch copy of `predictions` (same columns, indexes, identity and check), in one
  transaction, after `TRUNCATE`: hab's binary COPY (`job_rows_copy`) with the identity's CACHE 1000
  (migration 0007), and as peers the same rows as Arrow-built CSV, and binary with CACHE 1. Build and COPY
  are timed apart. PostgreSQL's own CPU is in the COPY time (it runs on this machine).
* floor: predict (compiled) + binary COPY, the two stages no scoring can skip; `batch_job` compares the
  whole job with it.

`python -m bench scoring_stages` runs it (a minute or two; it compiles the model once, ~10–60 s).
"""

from __future__ import annotations

import asyncio
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import bench_services, legacy_loaded_model, render_table, repeat
from bench.headline import Headline, ratio_text

NAME = "scoring_stages"
ROWS = 300_000
SCRATCH = "bench_predictions"


def _timed(function: Callable[[], Any], runs: int) -> tuple[float, Any]:
    result = function()  # warm-up
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        result = function()
        walls.append(time.perf_counter() - started)
    return statistics.median(walls), result


def _per_row_summary(result: Any, model: Any) -> dict[str, Any]:
    """The summary fold as it was done per row in Python (the comparison for `with_chunk`)."""
    bands: dict[str, int] = {}
    labels, counts = np.unique(np.asarray(model.labels(result.eclo), dtype=object), return_counts=True)
    for label, n in zip(labels.tolist(), counts.tolist(), strict=True):
        bands[label] = bands.get(label, 0) + int(n)
    districts: dict[str, tuple[int, float]] = {}
    for district, value in zip(result.districts.to_pylist(), result.eclo.tolist(), strict=True):
        seen, total = districts.get(district, (0, 0.0))
        districts[district] = (seen + 1, total + value)
    return {"bands": bands, "districts": districts}


async def _copy_timings(database_url: str, row_index: np.ndarray, eclo: np.ndarray, runs: int) -> dict[str, Any]:
    import asyncpg
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from api.db.engine import to_libpq_url
    from api.predictions.repository import job_rows_copy

    def as_csv() -> io.BytesIO:
        n = len(row_index)
        table = pa.table(
            {
                "job_id": pa.array(np.full(n, 1, dtype=np.int64)),
                "row_index": pa.array(row_index.astype(np.int64)),
                "model_version": pa.array(np.full(n, 1, dtype=np.int64)),
                "eclo": pa.array(eclo),
                "source": pa.repeat(pa.scalar("job"), n),
            }
        )
        sink = io.BytesIO()
        pacsv.write_csv(table, sink, write_options=pacsv.WriteOptions(include_header=False))
        sink.seek(0)
        return sink

    columns = ["job_id", "row_index", "model_version", "eclo", "source"]
    conn = await asyncpg.connect(to_libpq_url(database_url))
    try:
        await conn.execute(f"create table {SCRATCH} (like predictions including all)")
        out: dict[str, Any] = {}
        variants = (
            ("binary, id cache 1000 (hab)", 1000, lambda: job_rows_copy(1, row_index, eclo, 1), "binary"),
            ("binary, id cache 1", 1, lambda: job_rows_copy(1, row_index, eclo, 1), "binary"),
            ("CSV built by Arrow, id cache 1000", 1000, as_csv, "csv"),
        )
        for label, cache, build, fmt in variants:
            await conn.execute(f"alter table {SCRATCH} alter column id set cache {cache}")
            builds, copies = [], []
            for _ in range(runs + 1):
                await conn.execute(f"truncate {SCRATCH}")
                started = time.perf_counter()
                source = build()
                built = time.perf_counter()
                async with conn.transaction():
                    await conn.copy_to_table(SCRATCH, source=source, columns=columns, format=fmt)
                builds.append(built - started)
                copies.append(time.perf_counter() - built)
            out[label] = {"build_s": statistics.median(builds[1:]), "copy_s": statistics.median(copies[1:])}
        stored = await conn.fetchval(f"select count(*) from {SCRATCH}")
        if stored != len(row_index):
            raise RuntimeError(f"scratch table holds {stored} rows, expected {len(row_index)}")
        return out
    finally:
        await conn.execute(f"drop table if exists {SCRATCH}")
        await conn.close()


def run() -> dict[str, Any]:
    import pyarrow as pa

    from api.datasets.ingest import parse_csv
    from api.demo.generate import generate_demo_datasets
    from api.predictions.scoring.chunks import ScoringTally, score_chunk
    from models.compiled import CompiledPredictor, compile_library
    from models.features import encode_frame

    runs = repeat(3)
    model = legacy_loaded_model()
    train = next(d for d in generate_demo_datasets(scale=1.0) if d.key == "train")
    source = parse_csv(train.csv_bytes).table
    table = pa.concat_tables([source] * (ROWS // source.num_rows + 1)).slice(0, ROWS).combine_chunks()
    seconds: dict[str, float] = {}
    seconds["encode"], batch = _timed(lambda: encode_frame(table, model.metadata, ignore_unknown=True), runs)
    with tempfile.TemporaryDirectory(prefix="hab-bench-stages-") as folder:
        library = compile_library(model.artifact.model_text, Path(folder), threads=2)
        compiled = CompiledPredictor(library, batch.matrix.shape[1])
        seconds["predict (compiled)"], _ = _timed(lambda: np.expm1(compiled.raw_predict(batch.matrix)), runs)
        seconds["predict (LightGBM, 1 thread)"], _ = _timed(lambda: model.lightgbm_raw_predict(batch.matrix), runs)
        model.attach_compiled(compiled)
        result = score_chunk(table, model, 0)
    seconds["summary fold"], _ = _timed(lambda: ScoringTally().with_chunk(result, model), runs)
    seconds["summary fold, per row in Python (before)"], _ = _timed(lambda: _per_row_summary(result, model), runs)
    with bench_services() as services:
        copies = asyncio.run(_copy_timings(services.database_url, result.row_index, result.eclo, runs))
    hab_copy = copies["binary, id cache 1000 (hab)"]
    floor = seconds["predict (compiled)"] + hab_copy["build_s"] + hab_copy["copy_s"]
    stages = seconds["encode"] + seconds["summary fold"] + floor
    return {
        "rows": ROWS,
        "repeat": runs,
        "valid_rows": len(result.row_index),
        "seconds": {k: round(v, 4) for k, v in seconds.items()},
        "copy": {k: {kk: round(vv, 4) for kk, vv in v.items()} for k, v in copies.items()},
        "floor_s": round(floor, 4),
        "all_stages_s": round(stages, 4),
        "floor_rows_per_s": round(ROWS / floor),
        "all_stages_rows_per_s": round(ROWS / stages),
    }


def report(result: dict[str, Any]) -> str:
    n = result["rows"]
    rows = [[stage, f"{s:.3f}", f"{n / s:,.0f}"] for stage, s in result["seconds"].items()]
    for label, c in result["copy"].items():
        timings = f"{c['build_s']:.3f} / {c['copy_s']:.3f}"
        rows.append([f"copy: {label}: build / COPY", timings, f"{n / c['copy_s']:,.0f}"])
    floor, stages = result["floor_s"], result["all_stages_s"]
    rows.append(["floor: predict (compiled) + binary COPY", f"{floor:.3f}", f"{result['floor_rows_per_s']:,}"])
    rows.append(["all stages: encode + summary + floor", f"{stages:.3f}", f"{result['all_stages_rows_per_s']:,}"])
    return render_table([f"stage, {n:,} rows", "median s", "rows/s"], rows)


def headlines(result: dict[str, Any]) -> list[Headline]:
    s, copy = result["seconds"], result["copy"]
    binary, text = copy["binary, id cache 1000 (hab)"], copy["CSV built by Arrow, id cache 1000"]
    return [
        Headline(
            "a part's stages, one after another, 300,000 rows (rows/s)",
            f"{result['all_stages_rows_per_s']:,}",
            f"{result['floor_rows_per_s']:,} (floor: compiled predict + COPY)",
            ratio_text(result["floor_s"] / result["all_stages_s"]),
            "-",
            None,
        ),
        Headline(
            "summary fold of 300,000 rows (s)",
            f"{s['summary fold']:.3f}",
            f"{s['summary fold, per row in Python (before)']:.3f} (per row in Python)",
            ratio_text(s["summary fold, per row in Python (before)"] / s["summary fold"], 1) + " faster",
            "-",
            None,
        ),
        Headline(
            "COPY of 300,000 job rows, build + COPY (s)",
            f"{binary['build_s'] + binary['copy_s']:.3f} (binary)",
            f"{text['build_s'] + text['copy_s']:.3f} (CSV)",
            ratio_text((text["build_s"] + text["copy_s"]) / (binary["build_s"] + binary["copy_s"])) + " faster",
            "-",
            None,
        ),
    ]
