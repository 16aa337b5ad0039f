"""Upload + profile of a 600k-row accident-shaped CSV, next to pandas' pyarrow reader + to_parquet.

What is measured (all in the same run, on the same file):

* hab (end to end): a real `hab serve` process; wall time of POST /api/datasets/upload (multipart,
  httpx, the file given as a file object so httpx streams it; see `_httpx_file`) plus
  GET /api/datasets/{id} (the profile), and the server's peak RSS during those requests
  (sampled every 10 ms; "delta" is peak minus the RSS just before the upload). Each repetition gets a
  fresh server, warmed up by one small upload, and uploads distinct bytes (one ID changed), so the
  content-hash dedupe never short-cuts the parse.
* baseline: `pandas.read_csv(path, engine="pyarrow")` + `df.to_parquet(buffer)` in a fresh
  subprocess per repetition (pandas/pyarrow imported and warmed up on the file's first 2,000 rows
  before the clock starts, as the server is), same RSS sampling.
* breakdown (for insight): sha256, parse_csv, summarize, to_parquet on the same
  bytes in a fresh subprocess, each step timed on its own, then the whole pipeline once more in the
  same process (on a VM the first large parse in a fresh process is often slower; the baseline
  records the same "again" figure).
* hab, raw body: the same measurement with the CSV as the request body of
  POST /api/datasets/upload/csv (Content-Type text/csv, no multipart), on its own fresh server.
  Reported next to the multipart route; the goal verdict stays on the multipart route.
* HTTP floor (for insight): the same multipart POST to a no-op uvicorn app that only reads the body
  into memory, and the same raw-body POST to it.

Baseline, breakdown, hab and the HTTP floor are interleaved per repetition so that load from other
processes on the machine affects them alike; the load average is recorded. Before each measurement
1.5 GB of memory is touched and freed (BENCH_PREFAULT_MB; see bench.measure.prefault_memory): on a
young VM, first use of a never-touched page costs ~2.5 s/GB and would otherwise land at random.

Goal (issue): hab at most 1.5x the baseline's wall time (medians).

`python -m bench dataset_upload` runs it; `python -m bench.dataset_upload <generate|baseline|breakdown>
PATH` and `... drain-server PORT` are the subprocess entry points it uses.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.common import (
    MB,
    PYTHON,
    bench_services,
    create_token,
    created,
    load_average_since,
    render_table,
    repeat,
    run_json_subprocess,
    stats,
)
from bench.headline import Headline, ratio_text
from bench.measure import RssSampler, prefault_mb, prefault_memory, sample_rss
from bench.processes import DrainServer, HabServer

NAME = "dataset_upload"
ROWS = 602_775  # rows of the real countrywide_accident.csv (DATA.md)
DEMO_BASE_ROWS = 100_000  # demo "accident" rows at scale 1.0
GOAL_RATIO = 1.0  # issue 13 (it was 1.5)
FILENAME = "countrywide_accident.csv"
FIRST_ID = b"COUNTRYWIDE_ACCIDENT_000000"
WARMUP_LINES = 2_000


# ---------------------------------------------------------------------------------- the CSV file


def generate_csv(path: Path) -> dict[str, Any]:
    """The demo "accident" CSV at 602,775 rows (deterministic: fixed seed), written to `path`."""
    from api.demo.generate import generate_demo_datasets

    started = time.perf_counter()
    demo = {d.key: d for d in generate_demo_datasets(scale=ROWS / DEMO_BASE_ROWS)}["accident"]
    data = demo.csv_bytes
    path.write_bytes(data)
    header = data[: data.index(b"\n")].decode("utf-8")
    return {
        "rows": data.count(b"\n") - 1,
        "columns": len(header.split(",")),
        "bytes": len(data),
        "size_mb": round(len(data) / MB, 1),
        "encoding": demo.encoding,
        "generate_s": round(time.perf_counter() - started, 2),
    }


def variant(data: bytes, tag: str) -> bytes:
    """The same CSV with the first row's ID changed (same length), so its SHA-256 differs."""
    new_id = FIRST_ID[: -len(tag)] + tag.encode()
    assert len(new_id) == len(FIRST_ID) and data.count(FIRST_ID) == 1
    return data.replace(FIRST_ID, new_id, 1)


def head_lines(data: bytes, lines: int) -> bytes:
    end = 0
    for _ in range(lines + 1):
        end = data.index(b"\n", end) + 1
    return data[:end]


# ------------------------------------------------------------------- subprocess: pandas baseline


def baseline_job(path: Path) -> dict[str, Any]:
    import gc
    import importlib
    import io

    import pandas as pd

    # pyarrow's CSV reader and Parquet writer are imported before the clock starts, as in a running server.
    for module in ("pyarrow", "pyarrow.csv", "pyarrow.parquet"):
        importlib.import_module(module)
    # The same small warm-up as the hab server and the breakdown get: first-call costs off the clock.
    head = head_lines(path.read_bytes(), WARMUP_LINES)
    pd.read_csv(io.BytesIO(head), engine="pyarrow").to_parquet(io.BytesIO())
    del head
    gc.collect()
    with sample_rss() as rss:
        t0 = time.perf_counter()
        df = pd.read_csv(path, engine="pyarrow")
        t1 = time.perf_counter()
        buffer = io.BytesIO()
        df.to_parquet(buffer)
        t2 = time.perf_counter()
    rows, columns = df.shape
    del df
    gc.collect()
    t3 = time.perf_counter()
    pd.read_csv(path, engine="pyarrow").to_parquet(io.BytesIO())
    second = time.perf_counter() - t3
    return {
        "second_total_s": second,
        "read_csv_s": t1 - t0,
        "to_parquet_s": t2 - t1,
        "total_s": t2 - t0,
        "rows": rows,
        "columns": columns,
        "parquet_mb": round(buffer.tell() / MB, 2),
        **rss.result(),
    }


# ------------------------------------------------------------- subprocess: in-process breakdown


def _pipeline_steps(data: bytes) -> tuple[dict[str, float], Any]:
    """hab's upload steps on `data`, each timed on its own; returns the timings and the parsed table."""
    from concurrent.futures import ThreadPoolExecutor

    from api.datasets.ingest import parse_csv, sha256_hex
    from api.datasets.parquet import to_parquet
    from api.datasets.profile import summarize

    out: dict[str, float] = {}
    t = time.perf_counter()
    sha256_hex(data)
    out["sha256_s"] = time.perf_counter() - t

    t = time.perf_counter()
    parsed = parse_csv(data, content_sha256="-")  # the server hashes while the body arrives
    out["parse_csv_s"] = time.perf_counter() - t

    t = time.perf_counter()
    summarize(parsed.table, parsed.kind)
    out["summarize_s"] = time.perf_counter() - t

    t = time.perf_counter()
    to_parquet(parsed.table)
    out["to_parquet_s"] = time.perf_counter() - t

    # What DatasetService.upload does: summarize and to_parquet side by side in threads.
    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        both = [pool.submit(summarize, parsed.table, parsed.kind), pool.submit(to_parquet, parsed.table)]
        for f in both:
            f.result()
    out["summarize_and_parquet_parallel_s"] = time.perf_counter() - t
    out["service_pipeline_s"] = out["parse_csv_s"] + out["summarize_and_parquet_parallel_s"]
    return out, parsed


def breakdown_job(path: Path) -> dict[str, Any]:
    """Two passes over the file: the first in a fresh process (as the server's first big upload), then again."""
    import gc

    from api.datasets.ingest import parse_csv
    from api.datasets.parquet import to_parquet
    from api.datasets.profile import summarize

    data = path.read_bytes()
    warm = parse_csv(head_lines(data, WARMUP_LINES))  # first-call costs (lazy imports, kernels) off the clock
    summarize(warm.table, warm.kind)
    to_parquet(warm.table)
    del warm
    gc.collect()

    with sample_rss() as rss:
        out: dict[str, Any] = dict(_pipeline_steps(data)[0])
    second, parsed = _pipeline_steps(data)
    out |= {f"second_{k}": v for k, v in second.items()}
    out["rows"] = parsed.table.num_rows
    out["columns"] = parsed.table.num_columns
    out["kind"] = str(parsed.kind)
    out["arrow_table_mb"] = round(parsed.table.nbytes / MB, 1)
    out["parquet_mb"] = round(len(to_parquet(parsed.table)) / MB, 2)
    out.update(rss.result())
    return out


# --------------------------------------------------------------------------- hab, end to end


def _httpx_file(body: bytes) -> dict[str, Any]:
    """The multipart file as a file object: httpx then sends it in 64 KB reads. Given as one bytes object,
    httpx sends it several times slower (1.1 s against 0.27 s for this file to a no-op server, measured)."""
    return {"file": (FILENAME, io.BytesIO(body), "text/csv")}


def _httpx_pieces(body: bytes) -> Any:
    """A raw body in 1 MB views, as hab's own clients send it (same reason as `_httpx_file`)."""
    view = memoryview(body)
    return (view[i : i + MB] for i in range(0, len(view), MB))


def _upload(client: Any, body: bytes, name: str) -> dict[str, Any]:
    return created(client.post("/api/datasets/upload", files=_httpx_file(body), data={"name": name}))


def _upload_raw(client: Any, body: bytes, name: str) -> dict[str, Any]:
    response = client.post(
        "/api/datasets/upload/csv",
        params={"name": name, "filename": FILENAME},
        content=_httpx_pieces(body),
        headers={"Content-Type": "text/csv", "Content-Length": str(len(body))},
    )
    return created(response, "raw-body upload")


CURL = shutil.which("curl")


def _curl_post(base_url: str, token: str, path: Path, name: str, *, raw: bool) -> dict[str, Any]:
    """The same upload with curl (a C client; the body streams from a file already in the page cache)."""
    if raw:
        target = [f"{base_url}/api/datasets/upload/csv?name={quote(name)}&filename={FILENAME}"]
        body = ["--data-binary", f"@{path}", "-H", "Content-Type: text/csv"]
    else:
        target = [f"{base_url}/api/datasets/upload"]
        body = ["-F", f"file=@{path};type=text/csv;filename={FILENAME}", "-F", f"name={name}"]
    command = [CURL or "curl", "-sS", "-X", "POST", "-H", f"Authorization: Bearer {token}", "-w", "\n%{http_code}"]
    proc = subprocess.run([*command, *body, *target], capture_output=True, check=False, timeout=600)
    text, _, status = proc.stdout.rpartition(b"\n")
    if proc.returncode != 0 or status != b"201":
        raise RuntimeError(
            f"curl upload failed ({proc.returncode}, HTTP {status!r}): {proc.stderr[-500:]!r} {text[:500]!r}"
        )
    return json.loads(text)


def hab_once(
    services: Any, token: str, data: bytes, tag: str, *, raw: bool = False, curl: bool = False
) -> dict[str, Any]:
    """One measured upload + GET summary against a fresh `hab serve`, warmed up by one small upload.

    `raw`: POST /api/datasets/upload/csv with the CSV as the body (warm-up too) instead of multipart.
    `curl`: the measured upload is sent by curl instead of httpx (the warm-up and the GET stay httpx).
    """
    import httpx

    upload = _upload_raw if raw else _upload

    body = variant(data, tag)  # distinct bytes: no dedupe fast path
    limit = str(max(512 * MB, 2 * len(data)))
    with (
        HabServer(services, {"HAB_UPLOAD_MAX_BYTES": limit}) as server,
        httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=600) as client,
    ):
        warm = upload(client, variant(head_lines(data, WARMUP_LINES), "w" + tag[1:]), f"warmup-{tag}")
        client.get(f"/api/datasets/{warm['id']}").raise_for_status()
        client.delete(f"/api/datasets/{warm['id']}").raise_for_status()
        time.sleep(0.5)  # let the server settle before RSS is taken

        body_path = services.temp_dir / f"upload-{tag}.csv"
        if curl:
            body_path.write_bytes(body)
        sampler = RssSampler(server.pid).start()
        t0 = time.perf_counter()
        if curl:
            uploaded = _curl_post(server.base_url, token, body_path, f"bench-upload-{tag}", raw=raw)
        else:
            uploaded = upload(client, body, f"bench-upload-{tag}")
        t1 = time.perf_counter()
        detail = client.get(f"/api/datasets/{uploaded['id']}")
        t2 = time.perf_counter()
        sampler.stop()
        detail.raise_for_status()
        summary = detail.json()["summary"]
        if uploaded["rows"] != ROWS or summary["rows"] != ROWS or len(uploaded["columns"]) != 23:
            raise RuntimeError(f"unexpected result: rows={uploaded['rows']} columns={len(uploaded['columns'])}")
        client.delete(f"/api/datasets/{uploaded['id']}").raise_for_status()
        body_path.unlink(missing_ok=True)
    return {
        "upload_s": t1 - t0,
        "get_summary_s": t2 - t1,
        "total_s": t2 - t0,
        "rows": uploaded["rows"],
        "columns": len(uploaded["columns"]),
        "kind": uploaded["kind"],
        "response_summary_kb": round(len(detail.content) / 1024, 1),
        **sampler.result(),
    }


# -------------------------------------------------------- HTTP floor: the same POST, no work


async def _drain_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app that reads the whole request body into memory and answers 200: the transfer alone.

    The body is kept (joined into one bytes object), as any server that parses it must: with glibc's
    malloc, keeping 133 MB of chunks costs several times more than reading and dropping them.
    """
    if scope["type"] != "http":
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": str(len(body)).encode()})


def drain_server_job(port: str) -> None:
    import uvicorn

    uvicorn.run(_drain_app, host="127.0.0.1", port=int(port), log_level="warning", access_log=False)


def http_floor_once(data: bytes, tag: str, log_dir: Path) -> dict[str, Any]:
    """The same multipart POST (httpx) to a no-op uvicorn app: what receiving the body costs by itself.

    Then the same bytes once more as a raw body (the /upload/csv route's request shape), and both by curl."""
    import httpx

    body = variant(data, tag)
    with DrainServer(log_dir) as server, httpx.Client(timeout=600) as client:
        url = server.url
        t0 = time.perf_counter()
        client.post(url, files=_httpx_file(body), data={"name": "floor"}).raise_for_status()
        t1 = time.perf_counter()
        client.post(
            url, content=_httpx_pieces(body), headers={"Content-Type": "text/csv", "Content-Length": str(len(body))}
        ).raise_for_status()
        result = {"post_s": t1 - t0, "raw_post_s": time.perf_counter() - t1}
        if CURL:
            with tempfile.NamedTemporaryFile(suffix=".csv") as file:
                file.write(body)
                file.flush()
                for key, args in (
                    ("curl_post_s", ["-F", f"file=@{file.name};type=text/csv", "-F", "name=floor"]),
                    ("curl_raw_post_s", ["--data-binary", f"@{file.name}", "-H", "Content-Type: text/csv"]),
                ):
                    t = time.perf_counter()
                    subprocess.run([CURL, "-sS", "-f", "-o", "/dev/null", *args, url], check=True, timeout=600)
                    result[key] = time.perf_counter() - t
    return result


# ----------------------------------------------------------------------------------------- run


@dataclass
class _Runs:
    """Every repetition's raw result, per measurement."""

    baseline: list[dict[str, Any]] = field(default_factory=list)
    breakdown: list[dict[str, Any]] = field(default_factory=list)
    hab: list[dict[str, Any]] = field(default_factory=list)
    hab_raw: list[dict[str, Any]] = field(default_factory=list)
    hab_curl: list[dict[str, Any]] = field(default_factory=list)
    floor: list[dict[str, Any]] = field(default_factory=list)
    prefault_s: float = 0.0

    def prefaulted(self, into: list[dict[str, Any]], measure: Any, *args: Any, **kwargs: Any) -> None:
        """Put recently used memory first on the kernel's free lists (bench.measure.prefault_memory), then measure."""
        self.prefault_s += prefault_memory()
        into.append(measure(*args, **kwargs))


def _measure(services: Any, token: str, path: Path, repetitions: int) -> _Runs:
    """Every measurement, interleaved, so that a change in machine load affects them alike."""
    data = path.read_bytes()
    run_id = secrets.token_hex(2)
    runs = _Runs()
    for i in range(repetitions):
        runs.prefaulted(runs.baseline, run_json_subprocess, ["-m", f"bench.{NAME}", "baseline", str(path)])
        runs.prefaulted(runs.breakdown, run_json_subprocess, ["-m", f"bench.{NAME}", "breakdown", str(path)])
        runs.prefaulted(runs.hab, hab_once, services, token, data, f"{run_id}{i:02d}")
        runs.prefaulted(runs.hab_raw, hab_once, services, token, data, f"r{run_id}{i:01d}", raw=True)
        if CURL:
            runs.prefaulted(runs.hab_curl, hab_once, services, token, data, f"c{run_id}{i:01d}", curl=True)
        runs.floor.append(http_floor_once(data, f"f{run_id}{i:01d}", services.temp_dir))
    return runs


def _columns(runs: list[dict[str, Any]], *keys: str) -> dict[str, Any]:
    """stats() of each key over the runs: seconds to 3 digits, megabytes (`..._mb`) to 1."""
    return {key: stats([r[key] for r in runs], 1 if key.endswith("_mb") else 3) for key in keys}


HAB_COLUMNS = ("total_s", "upload_s", "get_summary_s", "rss_delta_mb", "rss_peak_mb")
BREAKDOWN_COLUMNS = (
    "sha256_s",
    "parse_csv_s",
    "summarize_s",
    "to_parquet_s",
    "summarize_and_parquet_parallel_s",
    "service_pipeline_s",
    "second_parse_csv_s",
    "second_service_pipeline_s",
)


def _results(runs: _Runs) -> dict[str, Any]:
    baseline_columns = ("total_s", "read_csv_s", "to_parquet_s", "rss_delta_mb", "rss_peak_mb", "second_total_s")
    return {
        "hab": _columns(runs.hab, *HAB_COLUMNS),
        "hab_raw_body": _columns(runs.hab_raw, *HAB_COLUMNS),
        "baseline": _columns(runs.baseline, *baseline_columns),
        "http_floor": _columns(runs.floor, *(key for key in runs.floor[0] if runs.floor[0].get(key) is not None)),
        "breakdown": _columns(runs.breakdown, *BREAKDOWN_COLUMNS, "rss_delta_mb"),
    }


def _ratios(hab: list[dict[str, Any]], baseline: list[dict[str, Any]]) -> dict[str, Any]:
    """hab's time and memory against the baseline's, on the medians; the goal verdict."""
    h, b = _columns(hab, "total_s", "rss_delta_mb"), _columns(baseline, "total_s", "rss_delta_mb")
    ratio = h["total_s"]["median"] / b["total_s"]["median"]
    # Each repetition measures hab right after the baseline, so these ratios share the machine's load.
    paired = [x["total_s"] / y["total_s"] for x, y in zip(hab, baseline, strict=True)]
    return {
        "time_ratio": round(ratio, 2),
        "time_ratio_paired": stats(paired, 2),
        "time_ratio_of_minimums": round(h["total_s"]["min"] / b["total_s"]["min"], 2),
        "memory_delta_ratio": round(h["rss_delta_mb"]["median"] / max(b["rss_delta_mb"]["median"], 1), 2),
        "goal_met": ratio <= GOAL_RATIO,
    }


def run() -> dict[str, Any]:
    repetitions = repeat()
    temp = Path(tempfile.mkdtemp(prefix="hab-bench-upload-"))
    load_before = os.getloadavg()
    try:
        path = temp / FILENAME
        with bench_services() as services:
            token = create_token(services)  # first, so that a broken setup fails before the slow parts
            file_info = run_json_subprocess(["-m", "bench.dataset_upload", "generate", str(path)])
            runs = _measure(services, token, path, repetitions)
            embedded = services.embedded
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    results = _results(runs)
    outside_pipeline = results["hab"]["upload_s"]["median"] - results["breakdown"]["service_pipeline_s"]["median"]
    return {
        "benchmark": NAME,
        "description": "Upload + profile of a 600k-row accident-shaped CSV vs pandas.read_csv(engine='pyarrow') "
        "+ to_parquet of the same file",
        "goal": f"hab total wall time <= {GOAL_RATIO}x baseline (medians)",
        "repetitions": repetitions,
        "file": file_info,
        "services": {"embedded": embedded},
        "prefault": {"mb_before_each_measurement": prefault_mb(), "total_s": round(runs.prefault_s, 1)},
        "load_average_1m": load_average_since(load_before),
        "results": results,
        **_ratios(runs.hab, runs.baseline),
        "raw_body": {"route": "POST /api/datasets/upload/csv", **_ratios(runs.hab_raw, runs.baseline)},
        "derived": {"upload_outside_parse_profile_parquet_s": round(outside_pipeline, 3)},
        "curl": _curl_verdict(runs.hab_curl, runs.baseline),
        "raw": {
            "hab": runs.hab,
            "hab_raw_body": runs.hab_raw,
            "hab_curl": runs.hab_curl,
            "baseline": runs.baseline,
            "breakdown": runs.breakdown,
            "http_floor": runs.floor,
        },
    }


def _curl_verdict(hab_curl: list[dict[str, Any]], baseline: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The multipart upload sent by curl: hab's time without the httpx client's own cost in it."""
    if not hab_curl:
        return None
    ratios = _ratios(hab_curl, baseline)
    del ratios["memory_delta_ratio"]
    return {
        "route": "POST /api/datasets/upload (multipart), client curl",
        **_columns(hab_curl, "total_s", "upload_s", "rss_delta_mb"),
        **ratios,
    }


def report(result: dict[str, Any]) -> str:
    """The printed table."""
    r = result["results"]
    f = result["file"]

    def row(label: str, t: dict[str, Any] | None, m: dict[str, Any] | None = None) -> list[Any]:
        return [
            label,
            f"{t['median']:.2f}" if t else "",
            f"{t['min']:.2f}" if t else "",
            f"{m['median']:.0f}" if m else "",
        ]

    rows = [
        row("hab: upload + GET summary", r["hab"]["total_s"], r["hab"]["rss_delta_mb"]),
        row("  POST /api/datasets/upload", r["hab"]["upload_s"]),
        row("  GET /api/datasets/{id}", r["hab"]["get_summary_s"]),
        row("hab raw body: upload/csv + GET summary", r["hab_raw_body"]["total_s"], r["hab_raw_body"]["rss_delta_mb"]),
        row("  POST /api/datasets/upload/csv", r["hab_raw_body"]["upload_s"]),
        row("  GET /api/datasets/{id}", r["hab_raw_body"]["get_summary_s"]),
        row("baseline: read_csv + to_parquet", r["baseline"]["total_s"], r["baseline"]["rss_delta_mb"]),
        row("  pandas.read_csv(engine=pyarrow)", r["baseline"]["read_csv_s"]),
        row("  DataFrame.to_parquet", r["baseline"]["to_parquet_s"]),
        row("  (again, same process)", r["baseline"]["second_total_s"]),
        row("HTTP floor: same POST, no-op app", r["http_floor"]["post_s"]),
        row("HTTP floor: raw-body POST, no-op app", r["http_floor"]["raw_post_s"]),
        row("HTTP floor: same POST sent by curl", r["http_floor"].get("curl_post_s")),
        row("HTTP floor: raw-body POST sent by curl", r["http_floor"].get("curl_raw_post_s")),
        row("breakdown (in-process, hab code)", None, r["breakdown"]["rss_delta_mb"]),
        row("  sha256 (the server hashes while receiving)", r["breakdown"]["sha256_s"]),
        row("  parse_csv (decode, parse, type)", r["breakdown"]["parse_csv_s"]),
        row("  summarize", r["breakdown"]["summarize_s"]),
        row("  to_parquet", r["breakdown"]["to_parquet_s"]),
        row("  summarize || to_parquet (as service)", r["breakdown"]["summarize_and_parquet_parallel_s"]),
        row("  parse + (summarize||parquet)", r["breakdown"]["service_pipeline_s"]),
        row("  (again, same process) parse_csv", r["breakdown"]["second_parse_csv_s"]),
        row("  (again, same process) whole pipeline", r["breakdown"]["second_service_pipeline_s"]),
    ]
    table = render_table(["", "median s", "min s", "peak RSS delta MB (median)"], rows)
    verdict = "MET" if result["goal_met"] else "NOT MET"
    raw = result["raw_body"]
    raw_verdict = "MET" if raw["goal_met"] else "NOT MET"
    load = result["load_average_1m"]
    return (
        f"File: {f['rows']:,} rows x {f['columns']} columns, {f['size_mb']} MB ({f['encoding']}); "
        f"{result['repetitions']} repetitions; load average (1 min) {load['before']} before, {load['after']} after\n"
        f"{table}\n"
        f"hab absolute peak RSS (median): {r['hab']['rss_peak_mb']['median']:.0f} MB; "
        f"upload time outside parse/profile/parquet (HTTP, multipart, DB): "
        f"{result['derived']['upload_outside_parse_profile_parquet_s']:.2f} s\n"
        f"Ratio hab/baseline: time {result['time_ratio']:.2f}x (of minimums {result['time_ratio_of_minimums']:.2f}x, "
        f"per repetition {', '.join(f'{x:.2f}' for x in result['time_ratio_paired']['runs'])}), "
        f"peak memory {result['memory_delta_ratio']:.2f}x -> goal <= {GOAL_RATIO}x: {verdict}\n"
        f"Raw body (upload/csv)/baseline: time {raw['time_ratio']:.2f}x "
        f"(of minimums {raw['time_ratio_of_minimums']:.2f}x, "
        f"per repetition {', '.join(f'{x:.2f}' for x in raw['time_ratio_paired']['runs'])}), "
        f"peak memory {raw['memory_delta_ratio']:.2f}x -> {raw_verdict}" + _curl_line(result.get("curl"))
    )


def _curl_line(curl: dict[str, Any] | None) -> str:
    if not curl:
        return "\n(curl not installed: no curl-client measurement)"
    verdict = "MET" if curl["goal_met"] else "NOT MET"
    return (
        f"\nhab multipart sent by curl: upload + GET summary {curl['total_s']['median']:.2f} s "
        f"(min {curl['total_s']['min']:.2f}); ratio {curl['time_ratio']:.2f}x "
        f"(of minimums {curl['time_ratio_of_minimums']:.2f}x, per repetition "
        f"{', '.join(f'{x:.2f}' for x in curl['time_ratio_paired']['runs'])}) -> {verdict}"
    )


def _main(argv: list[str]) -> None:
    jobs = {"generate": generate_csv, "baseline": baseline_job, "breakdown": breakdown_job}
    if len(argv) == 2 and argv[0] == "drain-server":
        drain_server_job(argv[1])
        return
    if len(argv) != 2 or argv[0] not in jobs:
        sys.exit(f"usage: {PYTHON} -m bench.dataset_upload {{{'|'.join(jobs)}}} PATH | drain-server PORT")
    print(json.dumps(jobs[argv[0]](Path(argv[1]))))


if __name__ == "__main__":
    _main(sys.argv[1:])


def headlines(result: dict[str, Any]) -> list[Headline]:
    hab, base = result["results"]["hab"], result["results"]["baseline"]
    return [
        Headline(
            "upload + profile of the 600k-row CSV, multipart (s, median)",
            f"{hab['total_s']['median']:.2f}",
            f"{base['total_s']['median']:.2f} (read_csv + to_parquet)",
            ratio_text(result["time_ratio"]),
            f"<= {GOAL_RATIO:g}x",
            result["time_ratio"] <= GOAL_RATIO,
        )
    ]
