"""Chat answers from the Redis response cache vs fresh LLM runs, against a fake Anthropic API with 1 s latency.

A real `hab serve` process (PostgreSQL, Redis) talks to the fake Messages API (tests/fakes) through the real
`anthropic` SDK. 200 distinct questions are asked once (cache misses: each costs one LLM call of ~1 s), then
the same 200 again (cache hits: answered from Redis, the turn still stored in PostgreSQL). Latency is the
server's own `Server-Timing` (request received → response started), p50 and p99; LLM calls are counted at
the fake server. Requests run 20 at a time.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
from typing import Any

import httpx

from bench.common import bench_services, create_token, percentile, render_table, server_timing_seconds
from bench.processes import HabServer
from tests.fakes.anthropic_server import FakeAnthropic, Reply, text

QUESTIONS = 200
CONCURRENCY = 20
FAKE_LATENCY_S = 1.0


def _summary(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "p50_ms": round(percentile(ms, 50), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "mean_ms": round(statistics.fmean(ms), 2),
        "max_ms": round(max(ms), 2),
    }


async def _ask_all(
    base_url: str, headers: dict[str, str], bodies: list[dict[str, Any]], concurrency: int = CONCURRENCY
) -> dict[str, Any]:
    gate = asyncio.Semaphore(concurrency)
    server: list[float] = []
    hits = 0

    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=120) as client:

        async def ask(body: dict[str, Any]) -> None:
            nonlocal hits
            async with gate:
                response = await client.post("/api/chat/message", json=body)
            response.raise_for_status()
            hits += bool(response.json()["cache_hit"])
            seconds = server_timing_seconds(response.headers.get("server-timing"))
            if seconds is None:
                raise RuntimeError("hab sent no Server-Timing header")
            server.append(seconds)

        started = asyncio.get_running_loop().time()
        await asyncio.gather(*(ask(b) for b in bodies))
        wall = asyncio.get_running_loop().time() - started
    return {
        "server": _summary(server),
        "cache_hits": hits,
        "requests": len(bodies),
        "concurrency": concurrency,
        "wall_s": round(wall, 2),
    }


def run() -> dict[str, Any]:
    from api.demo.generate import generate_demo_datasets

    train = next(d for d in generate_demo_datasets(seed=3, scale=0.05) if d.key == "train")
    with bench_services() as services, FakeAnthropic(latency=FAKE_LATENCY_S) as fake:
        fake.responder = lambda body: Reply([text("벤치마크 답변입니다. 맑은 날 사고가 가장 많습니다.")], 900, 60)
        token = create_token(services)
        env = {"ANTHROPIC_BASE_URL": fake.url, "HAB_ANTHROPIC_MAX_RETRIES": "0"}
        with HabServer(services, env) as server:
            auth = {"Authorization": f"Bearer {token}"}
            uploaded = httpx.post(
                f"{server.base_url}/api/datasets/upload/csv",
                params={"name": "벤치 사고"},
                content=train.csv_bytes,
                headers={**auth, "Content-Type": "text/csv"},
                timeout=60,
            )
            uploaded.raise_for_status()
            dataset_id = uploaded.json()["id"]
            run_tag = secrets.token_hex(4)
            bodies = [
                {"dataset_ids": [dataset_id], "message": f"질문 {i} ({run_tag}): 날씨별 사고 건수는?"}
                for i in range(QUESTIONS)
            ]
            headers = {**auth, "X-Anthropic-API-Key": "sk-ant-bench-" + secrets.token_hex(8)}
            miss = asyncio.run(_ask_all(server.base_url, headers, bodies))
            calls_after_miss = fake.call_count
            hit = asyncio.run(_ask_all(server.base_url, headers, bodies))
            calls_after_hit = fake.call_count
            # The same hits one at a time: latency without queueing behind 19 other requests.
            hit_sequential = asyncio.run(_ask_all(server.base_url, headers, bodies, concurrency=1))
            calls_after_sequential = fake.call_count
    return {
        "questions": QUESTIONS,
        "concurrency": CONCURRENCY,
        "fake_latency_s": FAKE_LATENCY_S,
        "miss": miss | {"llm_calls": calls_after_miss},
        "hit": hit | {"llm_calls": calls_after_hit - calls_after_miss},
        "hit_sequential": hit_sequential | {"llm_calls": calls_after_sequential - calls_after_hit},
        "p50_speedup": round(miss["server"]["p50_ms"] / hit["server"]["p50_ms"], 1),
        "p99_speedup": round(miss["server"]["p99_ms"] / hit["server"]["p99_ms"], 1),
    }


def report(result: dict[str, Any]) -> str:
    rows = []
    for name in ("miss", "hit", "hit_sequential"):
        part = result[name]
        rows.append(
            [
                "cache " + name.replace("_", " "),
                part["concurrency"],
                part["requests"],
                part["cache_hits"],
                part["llm_calls"],
                part["server"]["p50_ms"],
                part["server"]["p99_ms"],
                part["wall_s"],
            ]
        )
    header = ["run", "concurrent", "requests", "cache hits", "LLM calls (fake)", "p50 ms (server)", "p99 ms (server)"]
    table = render_table([*header, "wall s"], rows)
    return (
        f"{table}\nhits vs misses: p50 {result['p50_speedup']}x, p99 {result['p99_speedup']}x faster "
        f"(fake Anthropic latency {result['fake_latency_s']} s, {result['concurrency']} concurrent)"
    )
