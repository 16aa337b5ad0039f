"""A real `hab serve` gives back the memory of refused uploads once they are over.

Four chunked uploads with no Content-Length, each over the 30 MB limit, are sent at once: the server reads
each to the limit (two at a time, its upload slots) and refuses it. Afterwards its RSS must come back to
within MARGIN_MB of what it was before (polled with a deadline: jemalloc returns the last of it within
HAB_MEMORY_REUSE_SECONDS). Without giving memory back the server kept ~300 MB of the 4 x 50 MB version of
this (bench/upload_memory.py); here it would keep well over 100 MB.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
from pathlib import Path

import httpx
import psutil
import pytest

from api.resources import close_resources, open_resources
from api.settings import Settings
from api.users.services import UserService
from bench.upload_memory import demo_csv, demo_rows, send_at_once
from tests.frontend.conftest import Process, free_port
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
MB = 2**20
LIMIT_BYTES = 30 * MB
BODY_BYTES = 40 * MB
MARGIN_MB = 60.0
GIVE_BACK_DEADLINE_S = 60.0


async def _admin_token(settings: Settings) -> str:
    resources = await open_resources(settings)
    try:
        async with resources.sessions() as session:
            _, token = await UserService(session).create(f"mem-{secrets.token_hex(3)}", admin=True)
            await session.commit()
        return token
    finally:
        await close_resources(resources)


def _rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / MB


def _steady_rss_mb(pid: int) -> float:
    """The RSS once two readings 2 s apart differ by less than 2 MB."""
    readings = [_rss_mb(pid)]

    def steady() -> bool:
        readings.append(_rss_mb(pid))
        return abs(readings[-1] - readings[-2]) < 2

    wait_until(steady, seconds=60, interval=2, what="the server's RSS to settle")
    return readings[-1]


def _too_large_count(base_url: str) -> float:
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    found = re.search(r'^hab_dataset_uploads_total\{outcome="payload_too_large"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def _datasets_total(base_url: str, token: str) -> int:
    response = httpx.get(f"{base_url}/api/datasets", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


def test_refused_concurrent_uploads_give_their_memory_back(services, tmp_path: Path):
    secret = secrets.token_urlsafe(32)
    settings = Settings(
        _env_file=None, database_url=services.database_url, redis_url=services.redis_url, HAB_ENV="test"
    )
    token = asyncio.run(_admin_token(settings))
    (tmp_path / "empty.env").write_text("", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAB_") or k == "HAB_MODEL_COMPILE"}
    env |= {
        "DATABASE_URL": services.database_url,
        "REDIS_URL": services.redis_url,
        "HAB_ENV": "test",
        "HAB_SECRET_KEY": secret,
        "HAB_ENV_FILE": str(tmp_path / "empty.env"),
        "HAB_UPLOAD_MAX_BYTES": str(LIMIT_BYTES),
        "HAB_QUEUE_NAME": f"hab-mem-{secrets.token_hex(4)}",
    }
    rows = demo_rows(scale=0.2)
    bodies = [demo_csv(rows, BODY_BYTES, f"MEM{i}") for i in range(4)]
    warm = demo_csv(rows, 2 * MB, "MEMWARM")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    api = Process("api", ["serve", "--host", "127.0.0.1", "--port", str(port)], env, tmp_path)
    try:
        wait_until(lambda: _ready(base_url), seconds=480, interval=0.2, what=f"hab serve ready\n{api.log_tail()}")
        pid = api.proc.pid
        assert asyncio.run(send_at_once(base_url, token, [warm], "warm")) == [201]  # imports and first-use costs
        stored_before = _datasets_total(base_url, token)
        before = _steady_rss_mb(pid)

        statuses = asyncio.run(send_at_once(base_url, token, bodies, "over"))

        # Refused (413, or the connection closed right after it while the client was still sending), and
        # nothing stored.
        assert all(s in (413, -1) for s in statuses), statuses
        assert _too_large_count(base_url) == 4
        assert _datasets_total(base_url, token) == stored_before
        peak = _rss_mb(pid)
        held: list[float] = []

        def given_back() -> bool:
            held.append(_rss_mb(pid) - before)
            return held[-1] <= MARGIN_MB

        try:
            wait_until(given_back, seconds=GIVE_BACK_DEADLINE_S, interval=0.5, what="memory given back")
        except AssertionError:
            raise AssertionError(
                f"RSS still {held[-1]:.0f} MB over the {before:.0f} MB before the uploads after "
                f"{GIVE_BACK_DEADLINE_S:.0f} s (right after them: {peak - before:.0f} MB)"
            ) from None
    finally:
        api.proc.send_signal(signal.SIGCONT)
        api.stop()


def _ready(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
