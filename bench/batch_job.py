"""A 1,000,000-row batch scoring job end to end on one worker, next to the v1.2.5 per-row path and a floor.

What is measured (one run, the same v1.2.5 trees everywhere):

* Input: the demo generator's Daegu train CSV (`generate_demo_datasets`, key "train", scale 1.0:
  39,609 rows × 23 columns, UTF-8), tiled to exactly 1,000,000 rows with unique IDs
  (`ACCIDENT_0000000` …). Every row is in the v1.2.5 model's vocabulary, so every row is scoreable.
* Model: `hab models import-legacy shared/legacy-model-v1.2 --activate`.
* hab: a real `hab serve` and ONE `hab worker` (subprocesses, the bench database, a queue of their own,
  HAB_QUEUE_NAME). The CSV is uploaded once as a dataset (POST /api/datasets/upload, timed separately;
  the file is larger than the default 200 MiB upload limit, so the server gets HAB_UPLOAD_MAX_BYTES).
  Each measured run gets a FRESH worker (its dataset cache is empty, so the run includes reading the
  dataset's Parquet from PostgreSQL), waits until it polls the queue (its arq health-check key appears in
  Redis), then times POST /api/predict/jobs {dataset_id} until GET /api/jobs/{id} says succeeded (polled
  every 0.2 s). Stored rows are then checked: count(*), count(distinct row_index), min/max row_index of
  `predictions where job_id = …` must be 1,000,000 / 1,000,000 / 0 / 999,999. Also recorded: the job's
  own started_at→finished_at, the worker's CPU seconds and peak RSS, and the machine's busy CPU
  seconds, and the CPU seconds of all PostgreSQL processes (meaningful when PostgreSQL runs on this
  machine). Default chunk size, plus one run each with HAB_SCORE_CHUNK_ROWS=200000 and 50000.
* Dataset load, for insight: in this process, the dataset's Parquet fetched from PostgreSQL with asyncpg
  and decoded with hab's `from_parquet`, i.e. what a fresh worker does before its first chunk.
* (a) v1.2.5 per-row, in a fresh subprocess: unpickle the model and LabelEncoders (not timed), read the
  first 2,000 CSV rows (not timed), then per row: derive the 11 features from the raw row (사고일시 →
  사고연/월/일/시, 시간대 from the hour with models.features.DEFAULT_HOUR_BANDS), build a one-row DataFrame,
  LabelEncoder.transform the 7 categoricals, `LGBMRegressor.predict` (LightGBM's default threads, as
  v1.2.5 did), expm1. Stores nothing. The 2,000-row time is EXTRAPOLATED linearly to 1,000,000 rows.
  It runs twice (two subprocesses); the goal uses the faster run, the one most favourable to v1.2.5.
* (b) floor, a fresh subprocess per run: imports, unpickling (the Booster's text and the encoders'
  classes_) and nothing else happen before the clock. Timed: asyncpg connect, `pyarrow.csv.read_csv`
  (the 7 needed columns, as strings, Arrow's default threads), vectorised encoding (pyarrow `index_in`
  against each LabelEncoder's classes_, 사고일시 sliced into numbers, 시간대 from the hour through
  DEFAULT_HOUR_BANDS; models.features.encode_frame is NOT used), raw `lightgbm.Booster(model_str=…)
  .predict(num_threads=1)` (and once with 2), expm1 and clip at 0 like hab, the result rows as CSV built
  by Arrow, and ONE `COPY predictions (job_id, row_index, model_version, eclo, source)` in one
  transaction (a dummy `jobs` row is inserted first, outside the clock, so its rows belong to a real job).
* Every measurement starts with `TRUNCATE predictions`, so each COPY goes into an empty table, and with
  the prefault of bench.measure (BENCH_PREFAULT_MB).
* Cross-checks: hab's stored ECLO of rows 0–1,999 against the per-row path's values, and the floor's
  stored ECLO of the same rows against hab's.

Goals (issue): hab ≥ 100× (a)'s rows/s; hab ≤ 2× (b)'s wall time.

`python -m bench batch_job` runs it (BENCH_REPEAT, default 2, sets the runs of hab and of the 1-thread
floor). Entry points used by it: `python -m bench.batch_job legacy CSV MODEL_DIR ROWS` and
`python -m bench.batch_job floor CSV MODEL_DIR DSN JOB_ID MODEL_VERSION THREADS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    LEGACY_DIR,
    MB,
    BenchServices,
    bench_services,
    create_token,
    created,
    import_legacy_model,
    load_average_since,
    render_table,
    repeat,
    require_legacy_model,
    run_json_subprocess,
    sql,
    stats,
)
from bench.headline import Headline
from bench.measure import RssSampler, machine_busy_cpu_s, postgres_cpu_s, prefault_memory, process_cpu_s
from bench.processes import HabServer, HabWorker, wait_for_compiled, wait_for_model

NAME = "batch_job"
ROWS = 1_000_000
# The performance issue's own measure: a 300,000-row job (its first rows), submit -> succeeded on one worker.
SHORT_ROWS = 300_000
GOAL_SHORT_ROWS_PER_S = 150_000
LEGACY_ROWS = 2_000
CHECK_ROWS = 2_000  # rows whose ECLO is compared between the three paths
POLL_S = 0.05
CHUNK_VARIANTS = (200_000, 50_000)
UPLOAD_MAX_BYTES = 512 * MB  # the 1M-row file is ~217 MB; hab's default limit is 200 MiB
GOAL_VS_LEGACY = 100.0
GOAL_VS_FLOOR = 2.0
STAGES = ("load_input", "encode", "predict", "write")  # hab_scoring_stage_seconds of the worker
CATEGORICAL = ("기상상태", "노면상태", "도로형태", "사고유형", "시간대", "시군구", "요일")
FLOOR_COLUMNS = ("사고일시", "요일", "기상상태", "시군구", "도로형태", "노면상태", "사고유형")


# ------------------------------------------------------------------------------------------ input


def make_csv(path: Path) -> dict[str, Any]:
    """The demo train CSV (39,609 rows) tiled to ROWS rows with unique IDs, written to `path`."""
    from api.demo.generate import generate_demo_datasets

    started = time.perf_counter()
    demo = {d.key: d for d in generate_demo_datasets(scale=1.0)}["train"]
    header, _, body = demo.csv_bytes.partition(b"\n")
    lines = body.rstrip(b"\n").split(b"\n")
    if any(b"\r" in line or b'"' in line for line in lines[:100]):
        raise RuntimeError("unexpected quoting or CR line endings in the demo CSV")
    tails = [line[line.index(b",") :] for line in lines]
    n = len(tails)
    out = b"\n".join(b"ACCIDENT_%07d%s" % (i, tails[i % n]) for i in range(ROWS))
    data = header + b"\n" + out + b"\n"
    path.write_bytes(data)
    return {
        "source": "generate_demo_datasets(scale=1.0)['train'], tiled",
        "source_rows": n,
        "rows": ROWS,
        "columns": header.decode().count(",") + 1,
        "bytes": len(data),
        "mb": round(len(data) / MB, 1),
        "seconds": round(time.perf_counter() - started, 2),
    }


# ------------------------------------------------------------------------------------ database


def _dsn(database_url: str) -> str:
    from api.db.engine import to_libpq_url

    return to_libpq_url(database_url)


def truncate_predictions(database_url: str) -> None:
    sql(database_url, "truncate predictions", fetch="exec")


def stored_check(database_url: str, job_id: int, rows: int = ROWS) -> dict[str, Any]:
    row = sql(
        database_url,
        "select count(*) as rows, count(distinct row_index) as distinct_rows, min(row_index) as min_row,"
        " max(row_index) as max_row, avg(eclo) as mean_eclo from predictions where job_id = $1",
        job_id,
        fetch="row",
    )
    out = dict(row)
    out["mean_eclo"] = float(out["mean_eclo"]) if out["mean_eclo"] is not None else None
    out["ok"] = (
        out["rows"] == rows and out["distinct_rows"] == rows and out["min_row"] == 0 and out["max_row"] == rows - 1
    )
    return out


def first_eclo(database_url: str, job_id: int) -> list[float]:
    rows = sql(
        database_url,
        "select eclo from predictions where job_id = $1 and row_index < $2 order by row_index",
        job_id,
        CHECK_ROWS,
        fetch="all",
    )
    return [float(r["eclo"]) for r in rows]


def max_abs_diff(a: list[float], b: list[float]) -> float | None:
    if len(a) != len(b) or not a:
        return None
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


# ---------------------------------------------------------------------------------- hab run


def _wait_for_job(client: Any, job_id: int, started: float, worker: HabWorker) -> tuple[dict[str, Any], int]:
    """Poll GET /api/jobs/{id} every POLL_S until it succeeds; (the job's last answer, polls)."""
    polls = 0
    while True:
        time.sleep(POLL_S)
        polls += 1
        info = client.get(f"/api/jobs/{job_id}").raise_for_status().json()
        if info["status"] == "succeeded":
            return info, polls
        if info["status"] in ("failed", "cancelled"):
            raise RuntimeError(f"job {job_id} {info['status']}: {info.get('error')}\n{worker.log_tail()}")
        if time.perf_counter() - started > 600:
            raise RuntimeError(f"job {job_id} did not finish within 600 s: {info}")


def hab_job(
    server: HabServer, token: str, dataset_id: int, services: BenchServices, worker: HabWorker, rows: int = ROWS
) -> dict[str, Any]:
    """Submit one scoring job for the dataset and wait for it; then check every row is stored."""
    import httpx

    truncate_predictions(services.database_url)
    prefault = prefault_memory()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
        stages_before = _stage_seconds(worker)
        sampler = RssSampler(worker.pid, interval=0.05).start()
        cpu_before, busy_before, pg_before = process_cpu_s(worker.pid), machine_busy_cpu_s(), postgres_cpu_s()
        started = time.perf_counter()
        response = client.post("/api/predict/jobs", json={"dataset_id": dataset_id})
        if response.status_code != 202:
            raise RuntimeError(f"submit failed: HTTP {response.status_code}: {response.text[:1000]}")
        job_id = int(response.json()["job_id"])
        info, polls = _wait_for_job(client, job_id, started, worker)
        elapsed = time.perf_counter() - started
        worker_cpu, machine_busy = process_cpu_s(worker.pid) - cpu_before, machine_busy_cpu_s() - busy_before
        postgres_cpu = postgres_cpu_s() - pg_before
        sampler.stop()
        stages = {k: round(v - stages_before.get(k, 0.0), 3) for k, v in _stage_seconds(worker).items()}
    stored = stored_check(services.database_url, job_id, rows)
    if not stored["ok"]:
        raise RuntimeError(f"job {job_id}: stored rows {stored}, expected {rows:,} rows 0..{rows - 1}")
    summary = info.get("summary") or {}
    created = _parse_ts(info["created_at"])
    return {
        "job_id": job_id,
        "wall_s": round(elapsed, 3),
        "rows": rows,
        "rows_per_s": round(rows / elapsed),
        "job_duration_s": info["duration_seconds"],
        "job_rows_per_s": round(rows / info["duration_seconds"]) if info["duration_seconds"] else None,
        "queued_s": round((_parse_ts(info["started_at"]) - created).total_seconds(), 3),
        "polls": polls,
        "attempts": info["attempts"],
        "worker_cpu_s": round(worker_cpu, 2),
        "postgres_cpu_s": round(postgres_cpu, 2),
        # CPU used by everything else: hab serve, this process, and other users of a shared machine
        "other_cpu_s": round(machine_busy - worker_cpu - postgres_cpu, 2),
        "machine_busy_cpu_s": round(machine_busy, 2),
        "machine_cpu_available_s": round(elapsed * (os.cpu_count() or 1), 2),
        "worker_rss": sampler.result(),
        # the worker's own hab_scoring_stage_seconds (this worker only; summed over its two scoring loops)
        "worker_stage_s": stages,
        "stored": stored,
        "summary": {k: summary.get(k) for k in ("count", "mean_eclo", "max_eclo", "error_count")},
        "prefault_s": round(prefault, 2),
        "first_eclo": first_eclo(services.database_url, job_id),
    }


def _stage_seconds(worker: HabWorker) -> dict[str, float]:
    samples = worker.metric_samples("hab_scoring_stage_seconds_total")
    return {dict(labels)["stage"]: value for labels, value in samples.items()}


def _parse_ts(value: str) -> Any:
    import datetime as dt

    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def upload(server: HabServer, token: str, csv_path: Path, rows: int = ROWS) -> dict[str, Any]:
    """Upload the first `rows` data rows of the CSV as a dataset."""
    import httpx

    body = csv_path.read_bytes()
    if rows < ROWS:
        body = b"\n".join(body.split(b"\n", rows + 1)[: rows + 1]) + b"\n"
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=600) as client:
        started = time.perf_counter()
        files = {"file": (f"batch-{rows}.csv", body, "text/csv")}
        response = client.post("/api/datasets/upload", files=files, data={"name": f"batch {rows:,}"})
        elapsed = time.perf_counter() - started
    dataset = created(response)
    return {
        "dataset_id": dataset["id"],
        "kind": dataset.get("kind"),
        "rows": dataset.get("rows"),
        "wall_s": round(elapsed, 2),
    }


def dataset_load(database_url: str, dataset_id: int) -> dict[str, Any]:
    """Fetch the dataset's Parquet from PostgreSQL and decode it with hab's from_parquet (for insight)."""
    from api.datasets.parquet import from_parquet

    started = time.perf_counter()
    data = sql(
        database_url,
        "select b.parquet from dataset_blobs b join datasets d on d.content_sha256 = b.content_sha256 where d.id = $1",
        dataset_id,
    )
    fetched = time.perf_counter()
    table = from_parquet(data)
    decoded = time.perf_counter()
    return {
        "parquet_mb": round(len(data) / MB, 1),
        "fetch_s": round(fetched - started, 3),
        "from_parquet_s": round(decoded - fetched, 3),
        "table_mb": round(table.nbytes / MB, 1),
        "rows": table.num_rows,
    }


# ------------------------------------------------------------------------------ (a) v1.2.5 per row


def legacy_job(csv_path: str, model_dir: str, rows: str) -> None:
    """Subprocess body: the v1.2.5 per-row path on the first `rows` rows; prints one JSON line."""
    import pickle
    import warnings

    import numpy as np
    import pandas as pd

    from models.features import DEFAULT_HOUR_BANDS

    n = int(rows)
    directory = Path(model_dir)
    with warnings.catch_warnings():  # pickled with scikit-learn 1.6.1
        warnings.simplefilter("ignore")
        model = pickle.loads((directory / "accident_lgbm_model.pkl").read_bytes())
        encoders = pickle.loads((directory / "label_encoders.pkl").read_bytes())
    config = json.loads((directory / "feature_config.json").read_text(encoding="utf-8"))
    feature_cols, cat_cols = config["feature_cols"], config["cat_cols"]
    raw = pd.read_csv(csv_path, nrows=n, dtype=str, keep_default_na=False).to_dict("records")

    def features(row: dict[str, str]) -> dict[str, Any]:
        stamp = row["사고일시"]  # "YYYY-MM-DD HH"
        hour = int(stamp[11:13])
        return {
            "기상상태": row["기상상태"], "노면상태": row["노면상태"], "도로형태": row["도로형태"],
            "사고유형": row["사고유형"], "시간대": DEFAULT_HOUR_BANDS[str(hour)], "시군구": row["시군구"],
            "요일": row["요일"], "사고연": int(stamp[0:4]), "사고월": int(stamp[5:7]), "사고일": int(stamp[8:10]),
            "사고시": hour,
        }  # fmt: skip

    def predict(row: dict[str, str]) -> float:
        frame = pd.DataFrame([features(row)])
        for column in cat_cols:
            frame[column] = encoders[column].transform(frame[column])
        return float(np.expm1(model.predict(frame[feature_cols])[0]))

    predict(raw[0])  # warm-up (first-call costs), not timed
    started = time.perf_counter()
    eclo = [predict(row) for row in raw]
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "rows": n,
                "wall_s": elapsed,
                "per_row_ms": elapsed / n * 1e3,
                "rows_per_s": n / elapsed,
                "extrapolated_1m_s": elapsed / n * ROWS,
                "eclo": eclo,
            }
        )
    )


# ------------------------------------------------------------------------------------- (b) floor


def _floor_encode(table: Any, classes: dict[str, list[str]], feature_cols: list[str]) -> tuple[Any, int]:
    """The floor's vectorised encoding of the CSV's columns: (feature matrix, count of unknown categories)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from models.features import DEFAULT_HOUR_BANDS

    stamp = table.column("사고일시")
    numbers = {
        name: pc.cast(pc.utf8_slice_codeunits(stamp, a, b), pa.int64()).to_numpy()
        for name, (a, b) in {"사고연": (0, 4), "사고월": (5, 7), "사고일": (8, 10), "사고시": (11, 13)}.items()
    }
    columns: dict[str, np.ndarray] = {k: v.astype(np.float64) for k, v in numbers.items()}
    unknown = 0
    for name in CATEGORICAL:
        if name == "시간대":
            index = {v: i for i, v in enumerate(classes[name])}
            per_hour = np.array([index[DEFAULT_HOUR_BANDS[str(h)]] for h in range(24)], dtype=np.float64)
            columns[name] = per_hour[numbers["사고시"]]
            continue
        codes = pc.index_in(table.column(name), value_set=pa.array(classes[name]))
        unknown += codes.null_count
        columns[name] = codes.to_numpy(zero_copy_only=False).astype(np.float64)
    matrix = np.empty((table.num_rows, len(feature_cols)), dtype=np.float64)
    for i, name in enumerate(feature_cols):
        matrix[:, i] = columns[name]
    return matrix, unknown


def _floor_csv(eclo: Any, job: int, version: int) -> Any:
    """The floor's result rows as COPY CSV, built by Arrow."""
    import io

    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    n = len(eclo)
    result = pa.table(
        {
            "job_id": pa.array(np.full(n, job, dtype=np.int64)),
            "row_index": pa.array(np.arange(n, dtype=np.int64)),
            "model_version": pa.array(np.full(n, version, dtype=np.int64)),
            "eclo": pa.array(eclo),
            "source": pa.repeat(pa.scalar("job"), n),
        }
    )
    sink = io.BytesIO()
    pacsv.write_csv(result, sink, write_options=pacsv.WriteOptions(include_header=False))
    sink.seek(0)
    return sink


def floor_job(csv_path: str, model_dir: str, dsn: str, job_id: str, model_version: str, threads: str) -> None:
    """Subprocess body: CSV parse + vectorised encoding + raw Booster.predict + one COPY; prints one JSON line."""
    import pickle
    import warnings

    import asyncpg
    import lightgbm as lgb
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute
    import pyarrow.csv as pacsv

    directory = Path(model_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model_text = pickle.loads((directory / "accident_lgbm_model.pkl").read_bytes()).booster_.model_to_string()
        encoders = pickle.loads((directory / "label_encoders.pkl").read_bytes())
    classes = {c: [str(v) for v in encoders[c].classes_] for c in CATEGORICAL}
    feature_cols = json.loads((directory / "feature_config.json").read_text(encoding="utf-8"))["feature_cols"]
    booster = lgb.Booster(model_str=model_text)
    num_threads, job, version = int(threads), int(job_id), int(model_version)
    options = pacsv.ConvertOptions(
        include_columns=list(FLOOR_COLUMNS), column_types={c: pa.string() for c in FLOOR_COLUMNS}
    )

    async def body() -> dict[str, float]:
        t: dict[str, float] = {}
        t0 = time.perf_counter()
        connection = await asyncpg.connect(dsn)
        t["connect"] = time.perf_counter()
        table = pacsv.read_csv(csv_path, convert_options=options)
        t["read_csv"] = time.perf_counter()
        matrix, unknown = _floor_encode(table, classes, feature_cols)
        t["encode"] = time.perf_counter()
        eclo = np.maximum(np.expm1(booster.predict(matrix, num_threads=num_threads)), 0.0)
        t["predict"] = time.perf_counter()
        sink = _floor_csv(eclo, job, version)
        t["build_csv"] = time.perf_counter()
        async with connection.transaction():
            columns = ["job_id", "row_index", "model_version", "eclo", "source"]
            await connection.copy_to_table("predictions", source=sink, columns=columns, format="csv")
        t["copy_commit"] = time.perf_counter()
        await connection.close()
        t["close"] = time.perf_counter()
        phases, previous = {}, t0
        for name, at in t.items():
            phases[name] = at - previous
            previous = at
        return {"wall_s": time.perf_counter() - t0, "rows": table.num_rows, "unknown_values": unknown, "phases": phases}

    print(json.dumps(asyncio.run(body()) | {"num_threads": num_threads}))


def floor_run(
    csv_path: Path, services: BenchServices, owner_id: int, model_version: int, threads: int
) -> dict[str, Any]:
    truncate_predictions(services.database_url)
    job_id = sql(
        services.database_url,
        "insert into jobs (kind, owner_id, status, params) values ('score', $1, 'succeeded', '{\"bench\": \"floor\"}')"
        " returning id",
        owner_id,
    )
    prefault = prefault_memory()
    result = run_json_subprocess(
        [
            "-m", "bench.batch_job", "floor", str(csv_path), str(LEGACY_DIR), _dsn(services.database_url),
            str(job_id), str(model_version), str(threads),
        ],
        timeout=600,
    )  # fmt: skip
    stored = stored_check(services.database_url, job_id)
    if not stored["ok"] or result["unknown_values"]:
        raise RuntimeError(f"floor: stored {stored}, unknown categorical values {result['unknown_values']}")
    result["stored"] = stored
    result["rows_per_s"] = round(ROWS / result["wall_s"])
    result["prefault_s"] = round(prefault, 2)
    result["first_eclo"] = first_eclo(services.database_url, job_id)
    result["job_id"] = job_id
    return result


# ----------------------------------------------------------------------------------------- run


def _measure_hab_and_floor(services: BenchServices, csv_path: Path, repetitions: int) -> dict[str, Any]:
    """Upload the CSV, then per repetition the 1-thread floor and a hab job on a fresh worker; then the variants."""
    token = create_token(services)
    out: dict[str, Any] = {"imported": import_legacy_model(services), "variants": {}}
    out |= {"hab_runs": [], "floor_runs": [], "short_runs": []}
    model_version = int(sql(services.database_url, "select version from model_versions where status = 'active'"))
    owner_id = int(sql(services.database_url, "select min(id) from users"))
    out["model_version"] = model_version
    env = {"HAB_QUEUE_NAME": f"arq:bench-batch-{secrets.token_hex(4)}", "HAB_UPLOAD_MAX_BYTES": str(UPLOAD_MAX_BYTES)}
    variants = out["variants"]
    with HabServer(services, extra_env=env) as server:
        wait_for_model(server.base_url, token)
        # Workers share the server's data folder, so they load the library this compile leaves in its cache.
        out["compile_wait_s"] = wait_for_compiled(server.base_url, token)
        uploaded = out["upload"] = upload(server, token, csv_path)
        out["dataset_load"] = dataset_load(services.database_url, uploaded["dataset_id"])
        for i in range(repetitions):
            out["floor_runs"].append(floor_run(csv_path, services, owner_id, model_version, threads=1))
            with HabWorker(services, env, f"default-{i}") as worker:
                out["hab_runs"].append(hab_job(server, token, uploaded["dataset_id"], services, worker))
        short = upload(server, token, csv_path, SHORT_ROWS)
        for i in range(repetitions):
            with HabWorker(services, env, f"short-{i}") as worker:
                out["short_runs"].append(hab_job(server, token, short["dataset_id"], services, worker, SHORT_ROWS))
        variants["floor_2_threads"] = floor_run(csv_path, services, owner_id, model_version, threads=2)
        # One job, two workers: the run's helpers let the second score parts beside the first.
        with HabWorker(services, env, "pair-a") as worker, HabWorker(services, env, "pair-b"):
            variants["two_workers"] = hab_job(server, token, uploaded["dataset_id"], services, worker)
        with HabWorker(services, env | {"HAB_MODEL_COMPILE": "off"}, "lightgbm-only") as worker:
            variants["lightgbm_only"] = hab_job(server, token, uploaded["dataset_id"], services, worker)
        for chunk in CHUNK_VARIANTS:
            with HabWorker(services, env | {"HAB_SCORE_CHUNK_ROWS": str(chunk)}, f"chunk-{chunk}") as worker:
                variants[f"chunk_{chunk}"] = hab_job(server, token, uploaded["dataset_id"], services, worker)
        out["worker_log"] = worker.log_tail(1500)
    return out


def run() -> dict[str, Any]:
    require_legacy_model()
    repetitions = repeat(2)
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="hab-bench-batch-"))
    csv_path = work / "batch-1m.csv"
    try:
        input_info = make_csv(csv_path)
        legacy_args = ["-m", "bench.batch_job", "legacy", str(csv_path), str(LEGACY_DIR), str(LEGACY_ROWS)]
        legacy_runs = [run_json_subprocess(legacy_args) for _ in range(2)]
        with bench_services() as services:
            measured = _measure_hab_and_floor(services, csv_path, repetitions)
            embedded = services.embedded
    finally:
        with contextlib.suppress(OSError):
            csv_path.unlink()
        with contextlib.suppress(OSError):
            work.rmdir()
    return _result(measured, legacy_runs, input_info, embedded, load_before, repetitions)


def _result(
    measured: dict[str, Any],
    legacy_runs: list[dict[str, Any]],
    input_info: dict[str, Any],
    embedded: list[str],
    load_before: tuple[float, float, float],
    repetitions: int,
) -> dict[str, Any]:
    hab_runs, floor_runs, variants = measured["hab_runs"], measured["floor_runs"], measured["variants"]
    legacy_eclo = legacy_runs[0]["eclo"]
    for r in legacy_runs:
        r.pop("eclo")
    legacy = min(legacy_runs, key=lambda r: r["wall_s"])
    hab_eclo = hab_runs[0].pop("first_eclo")
    floor_eclo = floor_runs[0].pop("first_eclo")
    short_runs = measured["short_runs"]
    for r in [*hab_runs[1:], *floor_runs[1:], *variants.values(), *short_runs]:
        r.pop("first_eclo", None)
    hab_wall = stats([r["wall_s"] for r in hab_runs])
    floor_wall = stats([r["wall_s"] for r in floor_runs])
    hab_rps = ROWS / hab_wall["median"]
    vs_legacy = hab_rps / legacy["rows_per_s"]
    vs_floor = hab_wall["median"] / floor_wall["median"]
    return {
        "benchmark": NAME,
        "description": "1,000,000-row batch scoring job end to end on one worker vs v1.2.5 per row and a floor",
        "goal": f"hab rows/s >= {GOAL_VS_LEGACY:.0f}x the v1.2.5 per-row path; hab wall <= {GOAL_VS_FLOOR}x the floor",
        "services": {"embedded": embedded},
        "model": {
            "import": measured["imported"],
            "version": measured["model_version"],
            "legacy_dir": str(LEGACY_DIR),
            "compile_wait_s": measured["compile_wait_s"],
        },
        "input": input_info,
        "upload": measured["upload"],
        "load_average_1m": load_average_since(load_before),
        "repetitions": repetitions,
        "hab": {"wall_s": hab_wall, "rows_per_s_median": round(hab_rps), "runs": hab_runs},
        "hab_short": {
            "rows": SHORT_ROWS,
            "rows_per_s_median": round(statistics.median(r["rows_per_s"] for r in short_runs)),
            "goal_rows_per_s": GOAL_SHORT_ROWS_PER_S,
            "runs": short_runs,
        },
        "hab_variants": {k: v for k, v in variants.items() if k != "floor_2_threads"},
        "legacy_per_row": {
            "used_for_goal": legacy | {"extrapolated": True},
            "runs": legacy_runs,
            "note": "the faster of the runs is used for the goal; 1,000,000-row time is extrapolated",
        },
        "dataset_load": measured["dataset_load"],
        "floor": {"wall_s": floor_wall, "runs": floor_runs, "two_threads": variants["floor_2_threads"]},
        "same_predictions": {
            "rows_compared": CHECK_ROWS,
            "max_abs_diff_hab_vs_legacy": max_abs_diff(hab_eclo, legacy_eclo),
            "max_abs_diff_hab_vs_floor": max_abs_diff(hab_eclo, floor_eclo),
        },
        "ratios": {
            "hab_vs_legacy_rows_per_s": round(vs_legacy, 1),
            "hab_vs_floor_wall": round(vs_floor, 2),
            "best_hab_vs_legacy_rows_per_s": round(ROWS / hab_wall["min"] / legacy["rows_per_s"], 1),
            "best_hab_vs_best_floor_wall": round(hab_wall["min"] / floor_wall["min"], 2),
            "one_worker_vs_two_workers_wall": round(hab_wall["median"] / variants["two_workers"]["wall_s"], 2),
        },
        "goals": {"vs_legacy": vs_legacy >= GOAL_VS_LEGACY, "vs_floor": vs_floor <= GOAL_VS_FLOOR},
        "worker_log_tail": measured["worker_log"],
    }


def _hab_table(result: dict[str, Any]) -> str:
    def hab_row(label: str, r: dict[str, Any]) -> list[Any]:
        return [
            label,
            f"{r['wall_s']:.2f}",
            f"{r['rows_per_s']:,}",
            f"{r['job_duration_s']:.2f}",
            f"{r['worker_cpu_s']:.1f}",
            f"{r['postgres_cpu_s']:.1f}",
            f"{r['other_cpu_s']:.1f}",
            f"{r['machine_busy_cpu_s']:.1f}/{r['machine_cpu_available_s']:.0f}",
            f"{r['worker_rss']['rss_peak_mb']:.0f}",
            " / ".join(f"{r['worker_stage_s'].get(k, 0):.2f}" for k in STAGES),
            f"{r['stored']['rows']:,}",
        ]

    rows = [hab_row(f"hab, fresh worker, run {i + 1}", r) for i, r in enumerate(result["hab"]["runs"])]
    rows += [hab_row(f"hab, {k.replace('_', ' ')}", r) for k, r in result["hab_variants"].items()]
    rows += [hab_row(f"hab, {SHORT_ROWS:,} rows, run {i + 1}", r) for i, r in enumerate(result["hab_short"]["runs"])]
    header = ["hab job (submit -> succeeded)", "wall s", "rows/s", "job s", "worker CPU s", "PG CPU s"]
    stages = "worker stages s (" + " / ".join(STAGES) + ")"
    return render_table([*header, "other CPU s", "machine CPU s", "RSS MB", stages, "stored"], rows)


def _compiled_note(seconds: float | None) -> str:
    if seconds is None:
        return "NOT in use (LightGBM only: no C compiler or HAB_MODEL_COMPILE=off)"
    return f"in {seconds:.1f} s after activation, before the timed runs; 'lightgbm only' is a worker with it off"


def report(result: dict[str, Any]) -> str:
    hab_table = _hab_table(result)
    floor = result["floor"]
    phase_names = list(floor["runs"][0]["phases"])
    frows = [
        [f"floor, {r['num_threads']} thread(s)", f"{r['wall_s']:.2f}", f"{r['rows_per_s']:,}"]
        + [f"{r['phases'][p]:.2f}" for p in phase_names]
        + [f"{r['stored']['rows']:,}"]
        for r in [*floor["runs"], floor["two_threads"]]
    ]
    floor_table = render_table(["(b) floor", "wall s", "rows/s", *phase_names, "stored"], frows)
    lg = result["legacy_per_row"]["used_for_goal"]
    lg_runs = ", ".join(f"{r['per_row_ms']:.2f}" for r in result["legacy_per_row"]["runs"])
    load = result["dataset_load"]
    same = result["same_predictions"]
    ratios, goals = result["ratios"], result["goals"]

    def verdict(flag: bool) -> str:
        return "MET" if flag else "NOT MET"

    return (
        f"Input: {result['input']['rows']:,} rows, {result['input']['mb']} MB; upload {result['upload']['wall_s']} s; "
        f"load average {result['load_average_1m']['before']} before, {result['load_average_1m']['after']} after\n"
        f"Model compiled to native code {_compiled_note(result['model']['compile_wait_s'])}\n"
        f"{hab_table}\n{floor_table}\n"
        f"(a) v1.2.5 per row (runs: {lg_runs} ms/row; the faster is used): {lg['rows']:,} rows in {lg['wall_s']:.2f} s"
        f" = {lg['per_row_ms']:.2f} ms/row, {lg['rows_per_s']:.0f} rows/s; 1,000,000 rows EXTRAPOLATED: "
        f"{lg['extrapolated_1m_s']:,.0f} s\n"
        f"Dataset load (in-process, for insight): Parquet {load['parquet_mb']} MB fetched in {load['fetch_s']} s, "
        f"decoded in {load['from_parquet_s']} s ({load['table_mb']} MB in memory)\n"
        f"Same predictions, first {same['rows_compared']:,} rows: "
        f"max |hab - v1.2.5| = {same['max_abs_diff_hab_vs_legacy']}, "
        f"max |hab - floor| = {same['max_abs_diff_hab_vs_floor']}\n"
        f"hab median {result['hab']['wall_s']['median']:.2f} s = {result['hab']['rows_per_s_median']:,} rows/s: "
        f"{ratios['hab_vs_legacy_rows_per_s']}x (a) (goal >= {GOAL_VS_LEGACY:.0f}x: {verdict(goals['vs_legacy'])}); "
        f"{ratios['hab_vs_floor_wall']}x the floor's wall time "
        f"(goal <= {GOAL_VS_FLOOR}x: {verdict(goals['vs_floor'])})\n"
        f"Fastest runs: hab {ratios['best_hab_vs_legacy_rows_per_s']}x (a); "
        f"{ratios['best_hab_vs_best_floor_wall']}x the fastest floor\n"
        f"One job on two workers: {ratios['one_worker_vs_two_workers_wall']}x faster than the one-worker median"
    )


def headlines(result: dict[str, Any]) -> list[Headline]:
    short, ratios, goals = result["hab_short"], result["ratios"], result["goals"]
    legacy = result["legacy_per_row"]["used_for_goal"]
    floor_median = result["floor"]["wall_s"]["median"]
    two = result["hab_variants"]["two_workers"]
    return [
        Headline(
            f"{short['rows']:,}-row job, submit -> succeeded, one worker (rows/s)",
            f"{short['rows_per_s_median']:,}",
            "-",
            "-",
            f">= {short['goal_rows_per_s']:,} rows/s",
            short["rows_per_s_median"] >= short["goal_rows_per_s"],
        ),
        Headline(
            "1,000,000-row job, one worker (rows/s)",
            f"{result['hab']['rows_per_s_median']:,}",
            f"{legacy['rows_per_s']:.0f} (v1.2.5 per row, extrapolated)",
            f"{ratios['hab_vs_legacy_rows_per_s']}x",
            f">= {GOAL_VS_LEGACY:.0f}x",
            bool(goals["vs_legacy"]),
        ),
        Headline(
            "1,000,000-row job, one worker (wall s)",
            f"{result['hab']['wall_s']['median']:.2f}",
            f"{floor_median:.2f} (floor: read, encode, LightGBM predict, one COPY)",
            f"{ratios['hab_vs_floor_wall']}x",
            f"<= {GOAL_VS_FLOOR}x",
            bool(goals["vs_floor"]),
        ),
        Headline(
            "1,000,000-row job on two workers (wall s)",
            f"{two['wall_s']:.2f}",
            f"{result['hab']['wall_s']['median']:.2f} (one worker)",
            f"{ratios['one_worker_vs_two_workers_wall']}x faster",
            "clearly faster than one worker (> 1x)",
            ratios["one_worker_vs_two_workers_wall"] > 1.0,
        ),
    ]


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "legacy":
        legacy_job(*sys.argv[2:5])
    elif len(sys.argv) == 8 and sys.argv[1] == "floor":
        floor_job(*sys.argv[2:8])
    else:
        sys.exit(
            f"usage: {sys.executable} -m bench.batch_job legacy CSV MODEL_DIR ROWS | "
            "floor CSV MODEL_DIR DSN JOB_ID MODEL_VERSION THREADS"
        )
