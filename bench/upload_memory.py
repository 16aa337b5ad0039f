"""`python -m bench upload_memory`: the API's resident memory before, during and after concurrent uploads.

One real `hab serve` with `HAB_UPLOAD_MAX_BYTES` = 50 MB (the default slots, memory settings and table cache).
After one small warm-up upload the server's RSS is read (baseline), then two rounds run, each 4 uploads sent
at once as chunked bodies with no Content-Length (so the server cannot refuse them before reading):

* over the limit: 4 different 65 MB CSVs, each answered 413 once 50 MB of it has arrived;
* valid: 4 different ~30 MB CSVs, each stored (201). Their tables stay in the table cache by design
  (`HAB_DATASET_CACHE_BYTES`), so the expected held memory is the tables' Arrow size, given beside the RSS.

For each round: the peak RSS while it runs (sampled every 10 ms) and the RSS once it has settled (no change
over 2 MB for 3 s, or 60 s at most), each as a difference from the baseline. "Given back" is how much of
the peak's growth is gone after settling. Not part of `make bench`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psutil

from bench.common import MB, bench_services, create_token, load_average_since, render_table
from bench.headline import Headline
from bench.measure import RssSampler
from bench.processes import HabServer

LIMIT_BYTES = 50 * MB
OVER_BYTES = 65 * MB
VALID_BYTES = 30 * MB
CONCURRENT = 4
CHUNK_BYTES = 256 * 1024
SETTLE_STEP_MB = 2.0
SETTLE_SECONDS = 3.0
SETTLE_DEADLINE_S = 60.0


def demo_rows(scale: float = 1.0) -> tuple[bytes, bytes]:
    """(header line, data rows) of the demo accident CSV (~22 MB at scale 1.0, deterministic)."""
    from api.demo.generate import generate_demo_datasets

    data = {d.key: d for d in generate_demo_datasets(seed=7, scale=scale)}["accident"].csv_bytes
    header_end = data.index(b"\n") + 1
    return data[:header_end], data[header_end:]


def demo_csv(rows: tuple[bytes, bytes], size: int, tag: str) -> bytes:
    """The demo rows repeated and cut to about `size` bytes at a row end; `tag` replaces the first row's first
    field, so every body has its own hash."""
    header, body = rows
    data = body * (size // len(body) + 1)
    data = data[: data.rindex(b"\n", 0, size - len(header)) + 1]
    return header + tag.encode() + data[data.index(b",") :]


def arrow_bytes(csv: bytes) -> int:
    """The Arrow size of the table the server keeps in its cache for this CSV (the same parser)."""
    from api.datasets.ingest import parse_csv

    return int(parse_csv(csv).table.nbytes)


def rss_mb(pid: int) -> float:
    return round(psutil.Process(pid).memory_info().rss / MB, 1)


def settled_rss_mb(pid: int, deadline_s: float = SETTLE_DEADLINE_S) -> tuple[float, float]:
    """(RSS once it stops changing, seconds it took): polled every 0.25 s until it has moved less than
    SETTLE_STEP_MB over SETTLE_SECONDS, or until the deadline."""
    started = time.monotonic()
    window: list[tuple[float, float]] = []
    while True:
        now = time.monotonic()
        window.append((now, rss_mb(pid)))
        window = [(t, r) for t, r in window if now - t <= SETTLE_SECONDS]
        values = [r for _, r in window]
        steady = now - started >= SETTLE_SECONDS and max(values) - min(values) < SETTLE_STEP_MB
        if steady or now - started >= deadline_s:
            return values[-1], round(now - started, 1)
        time.sleep(0.25)


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), CHUNK_BYTES):
        yield body[start : start + CHUNK_BYTES]
        await asyncio.sleep(0)


async def _send(client: httpx.AsyncClient, body: bytes, name: str) -> int:
    try:
        response = await client.post(
            "/api/datasets/upload/csv",
            params={"name": name, "filename": f"{name}.csv"},
            content=_chunks(body),  # an async iterator: chunked, no Content-Length
            headers={"Content-Type": "text/csv"},
        )
    except (httpx.RemoteProtocolError, httpx.WriteError, httpx.ReadError):
        return -1  # the server closed the connection after answering (a refused upload)
    return response.status_code


async def send_at_once(base_url: str, token: str, bodies: list[bytes], tag: str) -> list[int]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=300) as client:
        return list(await asyncio.gather(*(_send(client, b, f"{tag}-{i}") for i, b in enumerate(bodies))))


def measure_round(server: HabServer, token: str, bodies: list[bytes], tag: str, baseline: float) -> dict[str, Any]:
    before = rss_mb(server.pid)
    sampler = RssSampler(server.pid).start()
    started = time.perf_counter()
    statuses = asyncio.run(send_at_once(server.base_url, token, bodies, tag))
    elapsed = time.perf_counter() - started
    sampled = sampler.stop().result()
    peak = max(sampled["rss_peak_mb"], sampled["vm_hwm_mb"] or 0.0)
    after, settle_s = settled_rss_mb(server.pid)
    grown = max(peak - before, 0.001)
    return {
        "statuses": statuses,
        "seconds": round(elapsed, 2),
        "rss_before_mb": before,
        "peak_rss_mb": peak,
        "settled_rss_mb": after,
        "settle_s": settle_s,
        "peak_over_baseline_mb": round(peak - baseline, 1),
        "settled_over_baseline_mb": round(after - baseline, 1),
        "given_back_pct": round(100 * (peak - after) / grown, 1),
    }


def measure(extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """Both rounds on one fresh server; the figures of `run()` (the test suite calls this too)."""
    rows = demo_rows()
    over = [demo_csv(rows, OVER_BYTES, f"OVER{i}") for i in range(CONCURRENT)]
    valid = [demo_csv(rows, VALID_BYTES, f"VALID{i}") for i in range(CONCURRENT)]
    cached = sum(arrow_bytes(b) for b in valid) / MB
    warm = demo_csv(rows, 2 * MB, "WARM")
    load = os.getloadavg()
    env = {"HAB_UPLOAD_MAX_BYTES": str(LIMIT_BYTES), **(extra_env or {})}
    with bench_services() as services:
        server = HabServer(services, env)
        try:
            server.start(timeout=300)  # a loaded 2-core machine can take minutes to import everything
            token = create_token(services)
            asyncio.run(send_at_once(server.base_url, token, [warm], "warm"))
            baseline, _ = settled_rss_mb(server.pid)
            over_limit = measure_round(server, token, over, "over", baseline)
            valid_round = measure_round(server, token, valid, "valid", baseline)
        finally:
            server.stop()
    return {
        "limit_mb": LIMIT_BYTES // MB,
        "over_limit_body_mb": round(len(over[0]) / MB, 1),
        "valid_body_mb": round(len(valid[0]) / MB, 1),
        "concurrent": CONCURRENT,
        "baseline_rss_mb": baseline,
        "over_limit": over_limit,
        "valid": valid_round,
        "valid_tables_cached_mb": round(cached, 1),
        "load_average": load_average_since(load),
    }


def run() -> dict[str, Any]:
    return measure()


def report(result: dict[str, Any]) -> str:
    rows = []
    for name, label in (("over_limit", "4 x 65 MB over the limit (413)"), ("valid", "4 x 30 MB valid (201)")):
        r = result[name]
        rows.append(
            [
                label,
                r["peak_over_baseline_mb"],
                r["settled_over_baseline_mb"],
                r["settle_s"],
                r["given_back_pct"],
                " ".join(str(s) for s in r["statuses"]),
            ]
        )
    table = render_table(
        ["round", "peak MB over baseline", "settled MB over baseline", "settle s", "given back %", "statuses"], rows
    )
    return (
        f"baseline RSS {result['baseline_rss_mb']} MB; valid tables in the cache by design: "
        f"{result['valid_tables_cached_mb']} MB; load {result['load_average']}\n{table}"
    )


def headlines(result: dict[str, Any]) -> list[Headline]:
    over, valid = result["over_limit"], result["valid"]
    return [
        Headline(
            f"{result['concurrent']} refused chunked uploads at once: RSS over idle, settled (MB)",
            f"+{over['settled_over_baseline_mb']}",
            f"+{over['peak_over_baseline_mb']} (the peak while they ran)",
            f"{over['given_back_pct']:.0f} % given back",
            "memory given back after uploads end",
            None,
        ),
        Headline(
            f"{result['concurrent']} valid chunked uploads at once: RSS over idle, settled (MB)",
            f"+{valid['settled_over_baseline_mb']}",
            f"+{result['valid_tables_cached_mb']} (their tables, kept in the table cache by design)",
            f"{valid['given_back_pct']:.0f} % of the peak given back",
            "-",
            None,
        ),
    ]
