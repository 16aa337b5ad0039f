"""Chat answers from the Redis response cache vs fresh LLM runs, against a fake Anthropic API with 1 s latency.

A real `hab serve` process (PostgreSQL, Redis) talks to the fake Messages API (tests/fakes) through the real
`anthropic` SDK. 200 distinct questions are asked once (cache misses: each costs one LLM call of ~1 s), then
the same 200 again (cache hits: answered from Redis, the turn still stored in PostgreSQL). Latency is the
server's own `Server-Timing` (request received → response started), p50 and p99; LLM calls are counted at
the fake server. Requests run 20 at a time; then the hits once more one at a time (a hit alone: the floor).

Hit throughput, as the issue measures it: `wrk -t1 -c20 -d10s --latency` posting the 200 cached questions in
turn, each a new conversation (no `conversation_id`), for 10 s after a 2 s warm-up: hits/s and wrk's p99
(client side). It checks that wrk's 2xx answers all were hits (no new LLM call at the fake) and that each
stored one new conversation (conversations counted through the API). CPU seconds of the server during the wrk
run give its CPU per hit, less noisy on a shared machine than wall-clock figures. Goal: >= 1,000 hits/s and
p99 <= 25 ms at 20 concurrent clients.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.common import bench_services, create_token, percentile, render_table, server_timing_seconds
from bench.headline import Headline
from bench.predict_serving import parse_wrk
from bench.processes import HabServer
from tests.fakes.anthropic_server import FakeAnthropic, Reply, text

QUESTIONS = 200
CONCURRENCY = 20
FAKE_LATENCY_S = 1.0
WRK_DURATION_S = 10
WRK_WARMUP_S = 2
GOAL_HITS_PER_S = 1_000
GOAL_P99_MS = 25.0


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


def _lua_script(directory: Path, bodies: list[dict[str, Any]], headers: dict[str, str]) -> Path:
    """wrk posts the bodies in turn (per thread), with the Bearer token and the Anthropic key headers."""
    (directory / "bodies.json").write_text("\n".join(json.dumps(b, ensure_ascii=False) for b in bodies) + "\n")
    lines = [
        'wrk.method = "POST"',
        'wrk.headers["Content-Type"] = "application/json"',
        *(f'wrk.headers["{name}"] = "{value}"' for name, value in headers.items()),
        "local bodies = {}",
        f'for line in io.lines("{directory / "bodies.json"}") do bodies[#bodies + 1] = line end',
        "local i = 0",
        "request = function()",
        "  i = i % #bodies + 1",
        "  return wrk.format(nil, nil, nil, bodies[i])",
        "end",
    ]
    path = directory / "hits.lua"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _wrk(wrk: str, url: str, script: Path, duration: int) -> dict[str, Any]:
    command = [wrk, "-t1", f"-c{CONCURRENCY}", f"-d{duration}s", "--latency", "-s", str(script), url]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return parse_wrk(proc.stdout)


def _conversations(base_url: str, auth: dict[str, str]) -> int:
    response = httpx.get(f"{base_url}/api/conversations", params={"limit": 1}, headers=auth, timeout=30)
    response.raise_for_status()
    return int(response.json()["total"])


def _wrk_hits(
    server: HabServer, fake: FakeAnthropic, auth: dict[str, str], headers: dict[str, str], bodies: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """Hits/s and p99 with wrk (None when wrk is not installed), checked to be hits that each stored a turn."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    url = f"{server.base_url}/api/chat/message"
    with tempfile.TemporaryDirectory(prefix="hab-bench-chat-") as folder:
        script = _lua_script(Path(folder), bodies, headers)
        _wrk(wrk, url, script, WRK_WARMUP_S)
        calls, conversations = fake.call_count, _conversations(server.base_url, auth)
        process = psutil.Process(server.pid)
        cpu_before = sum(process.cpu_times()[:2])
        result = _wrk(wrk, url, script, WRK_DURATION_S)
        cpu = sum(process.cpu_times()[:2]) - cpu_before
    # wrk stops with up to 20 requests in flight: their turns may be stored though wrk did not count them.
    stored = _conversations(server.base_url, auth) - conversations
    hits_per_s = round(result["ok"] / result["duration_s"], 1)
    return result | {
        "tool": f"wrk -t1 -c{CONCURRENCY} -d{WRK_DURATION_S}s --latency (after a {WRK_WARMUP_S} s warm-up)",
        "hits_per_s": hits_per_s,
        "llm_calls": fake.call_count - calls,
        "conversations_stored": stored,
        "server_cpu_s": round(cpu, 2),
        "server_cpu_ms_per_hit": round(cpu * 1000 / max(1, result["ok"]), 3),
        "goal_met": hits_per_s >= GOAL_HITS_PER_S and (result["p99_ms"] or 0) <= GOAL_P99_MS,
    }


def run() -> dict[str, Any]:
    from api.demo.generate import generate_demo_datasets

    train = next(d for d in generate_demo_datasets(seed=3, scale=0.05) if d.key == "train")
    load_before = os.getloadavg()
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
            throughput = _wrk_hits(server, fake, auth, headers, bodies)
            load_after = os.getloadavg()
    return {
        "goal": {"hits_per_s": GOAL_HITS_PER_S, "p99_ms": GOAL_P99_MS, "concurrency": CONCURRENCY},
        "hit_throughput": throughput,
        "load_average": {"before": round(load_before[0], 2), "after": round(load_after[0], 2)},
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
    text = (
        f"{table}\nhits vs misses: p50 {result['p50_speedup']}x, p99 {result['p99_speedup']}x faster "
        f"(fake Anthropic latency {result['fake_latency_s']} s, {result['concurrency']} concurrent)"
    )
    wrk, goal = result.get("hit_throughput"), result["goal"]
    if wrk is None:
        return text + "\nhit throughput: wrk is not installed, not measured"
    return text + (
        f"\nhit throughput ({wrk['tool']}, each hit a new conversation): {wrk['hits_per_s']:,} hits/s, "
        f"p50 {wrk['p50_ms']} ms, p99 {wrk['p99_ms']} ms (client side); {wrk['non_2xx']} non-2xx, "
        f"{wrk['llm_calls']} LLM calls, {wrk['conversations_stored']:,} conversations stored; server CPU "
        f"{wrk['server_cpu_ms_per_hit']} ms per hit. Goal >= {goal['hits_per_s']:,} hits/s and p99 <= "
        f"{goal['p99_ms']} ms at {goal['concurrency']}: {'met' if wrk['goal_met'] else 'NOT met'}. "
        f"Load average {result['load_average']['before']} before, {result['load_average']['after']} after."
    )


def headlines(result: dict[str, Any]) -> list[Headline]:
    hit, miss, wrk = result["hit"], result["miss"], result["hit_throughput"]
    rows = [
        Headline(
            f"chat answer, {result['concurrency']} at a time: server p50 / p99 (ms)",
            f"{hit['server']['p50_ms']} / {hit['server']['p99_ms']} (cache hits)",
            f"{miss['server']['p50_ms']} / {miss['server']['p99_ms']} (misses; fake LLM {result['fake_latency_s']} s)",
            f"{result['p50_speedup']}x / {result['p99_speedup']}x faster",
            "-",
            None,
        )
    ]
    if wrk is not None:
        rows.append(
            Headline(
                f"cache hits with wrk, c={result['concurrency']}, each a new conversation",
                f"{wrk['hits_per_s']:,} hits/s, p99 {wrk['p99_ms']} ms ({wrk['server_cpu_ms_per_hit']} ms CPU each)",
                "-",
                "-",
                f">= {GOAL_HITS_PER_S:,} hits/s, p99 <= {GOAL_P99_MS:g} ms",
                bool(wrk["goal_met"]),
            )
        )
    return rows
