"""`make soak`: ten minutes of mixed traffic on one `hab serve` and one `hab worker`; errors and memory growth.

Traffic, from 8 concurrent clients: single predictions (every one stored), dataset rows pages, column
distributions, chat questions answered from the answer cache (the fake Anthropic API of tests/fakes answers
the first of each), and now and then a small scoring job for the worker. Goal: zero errors, and RSS of the
API and the worker growing less than 10 % from the end of warm-up (the first 20 % of the run) to the end.
Not run by CI; the figures go to BENCHMARKS.md.

`HAB_SOAK_SECONDS` (default 600) shortens it for a smoke run.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import time
from collections import Counter
from typing import Any

import httpx
import psutil

from bench.common import bench_services, create_token, render_table, upload_and_train
from bench.headline import Headline
from bench.processes import HabServer, HabWorker, wait_for_model
from tests.fakes.anthropic_server import FakeAnthropic, Reply, text
from tests.sample_rows import ACCIDENT_ROW

CLIENTS = 8
WARM_UP_SHARE = 0.2
GOAL_GROWTH = 0.10
ROW = ACCIDENT_ROW


def _seconds() -> float:
    return float(os.environ.get("HAB_SOAK_SECONDS", "600"))


def _rss_mb(pid: int) -> float:
    return round(psutil.Process(pid).memory_info().rss / 2**20, 1)


async def _traffic(base: str, headers: dict[str, str], dataset: dict[str, Any], seconds: float) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    run_tag = secrets.token_hex(4)  # this run's questions: an earlier run's cached answers do not count
    questions = [f"질문 {i} ({run_tag}): 날씨별 사고 건수는?" for i in range(20)]  # few distinct: mostly hits
    column = "기상상태"
    deadline = time.monotonic() + seconds

    async def one(client: httpx.AsyncClient, choice: str) -> httpx.Response:
        if choice == "predict":
            return await client.post("/api/predict/eclo", json=ROW)
        if choice == "rows":
            return await client.get(f"/api/datasets/{dataset['id']}/rows", params={"offset": random.randrange(0, 900)})
        if choice == "distribution":
            return await client.get(f"/api/datasets/{dataset['id']}/columns/{column}/distribution")
        if choice == "chat":
            body = {"dataset_ids": [dataset["id"]], "message": random.choice(questions)}
            return await client.post("/api/chat/message", json=body)
        return await client.post("/api/predict/jobs", json={"rows": [ROW] * 50})

    async def client_loop() -> None:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
            while time.monotonic() < deadline:
                choice = random.choices(["predict", "rows", "distribution", "chat", "job"], [50, 20, 15, 14, 1])[0]
                try:
                    response = await one(client, choice)
                    ok = response.status_code < 400
                except httpx.HTTPError:
                    ok = False
                outcomes[f"{choice} {'ok' if ok else 'error'}"] += 1

    await asyncio.gather(*(client_loop() for _ in range(CLIENTS)))
    return outcomes


def _sample_memory(pids: dict[str, int], seconds: float) -> list[dict[str, float]]:
    samples = []
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        samples.append({"t": round(time.monotonic() - started, 1), **{n: _rss_mb(p) for n, p in pids.items()}})
        time.sleep(min(5.0, seconds / 40))
    return samples


def _growth(samples: list[dict[str, float]], name: str, seconds: float) -> dict[str, float]:
    after_warm_up = [s[name] for s in samples if s["t"] >= seconds * WARM_UP_SHARE]
    start, end = after_warm_up[0], after_warm_up[-1]
    return {"after_warm_up_mb": start, "end_mb": end, "max_mb": max(after_warm_up), "growth": round(end / start - 1, 4)}


def run() -> dict[str, Any]:
    from api.demo.generate import generate_demo_datasets

    seconds = _seconds()
    train = next(d for d in generate_demo_datasets(seed=9, scale=0.05) if d.key == "train")
    with bench_services() as services, FakeAnthropic() as fake:
        fake.responder = lambda body: Reply([text("맑은 날 사고가 가장 많습니다.")], 900, 60)
        token = create_token(services)
        env = {"ANTHROPIC_BASE_URL": fake.url, "HAB_QUEUE_NAME": f"hab-soak-{secrets.token_hex(4)}"}
        with HabServer(services, env) as server, HabWorker(services, env, "soak") as worker:
            auth = {"Authorization": f"Bearer {token}"}
            # A model to predict with, trained on the uploaded rows; the API and the worker swap to it.
            dataset = upload_and_train(server.base_url, services, token, train.csv_bytes, "soak")
            wait_for_model(server.base_url, token)
            headers = {**auth, "X-Anthropic-API-Key": "sk-ant-soak-" + secrets.token_hex(8)}
            pids = {"api": server.pid, "worker": worker.pid}

            async def both() -> tuple[Counter[str], list[dict[str, float]]]:
                sampler = asyncio.to_thread(_sample_memory, pids, seconds)
                return await asyncio.gather(_traffic(server.base_url, headers, dataset, seconds), sampler)

            outcomes, samples = asyncio.run(both())
            llm_calls = fake.call_count
    errors = sum(n for k, n in outcomes.items() if k.endswith("error"))
    growth = {name: _growth(samples, name, seconds) for name in pids}
    return {
        "seconds": seconds,
        "clients": CLIENTS,
        "requests": sum(outcomes.values()),
        "errors": errors,
        "outcomes": dict(outcomes),
        "llm_calls": llm_calls,
        "rss": growth,
        "goal_met": errors == 0 and all(g["growth"] < GOAL_GROWTH for g in growth.values()),
        "samples": samples,
    }


def report(result: dict[str, Any]) -> str:
    rows = [
        [name, g["after_warm_up_mb"], g["end_mb"], g["max_mb"], f"{g['growth'] * 100:.1f} %"]
        for name, g in result["rss"].items()
    ]
    table = render_table(["process", "RSS after warm-up MB", "RSS at end MB", "max MB", "growth"], rows)
    return (
        f"{result['requests']:,} requests in {result['seconds']:.0f} s from {result['clients']} clients, "
        f"{result['errors']} errors; outcomes {result['outcomes']}\n{table}\n"
        f"goal (0 errors, growth < {GOAL_GROWTH * 100:.0f} %): {'met' if result['goal_met'] else 'NOT met'}"
    )


def headlines(result: dict[str, Any]) -> list[Headline]:
    growth = ", ".join(f"{name} {g['growth'] * 100:+.1f} %" for name, g in result["rss"].items())
    return [
        Headline(
            f"{result['seconds']:.0f} s of mixed traffic: errors; RSS growth after warm-up",
            f"{result['errors']} errors in {result['requests']:,} requests; {growth}",
            "-",
            "-",
            f"0 errors, growth < {GOAL_GROWTH * 100:.0f} %",
            bool(result["goal_met"]),
        )
    ]
