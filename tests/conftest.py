"""Real PostgreSQL and Redis for the whole suite.

TEST_DATABASE_URL / DATABASE_URL and REDIS_URL are used when set; otherwise embedded servers are
started in a temporary folder. Either way the suite gets a fresh database whose schema is built by
`alembic upgrade head`, and drops it afterwards.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from api.db.migrate import upgrade_head
from api.local.embedded import EmbeddedPostgres, EmbeddedRedis
from api.local.services import drop_database, ensure_database, with_database
from api.runtime import prepare_process


def pytest_configure(config: pytest.Config) -> None:
    prepare_process()  # as every entry point does, before any test module imports lightgbm or pyarrow
    # Processes the suite starts serve on LightGBM unless a test turns compilation on: compiling each test
    # model in every API and worker would cost minutes of CPU, and the compiled path has tests of its own
    # (tests/unit/test_models_compiled.py, tests/integration/test_compiled_serving.py).
    os.environ.setdefault("HAB_MODEL_COMPILE", "off")


@dataclass(frozen=True)
class ServiceUrls:
    database_url: str
    redis_url: str
    embedded: bool


@pytest.fixture(scope="session")
def services() -> Iterator[ServiceUrls]:
    server_url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    temp = Path(tempfile.mkdtemp(prefix="hab-test-"))
    started: list[EmbeddedPostgres | EmbeddedRedis] = []
    if not server_url:
        pg = EmbeddedPostgres(temp / "postgres")
        server_url = pg.start()
        started.append(pg)
    if not redis_url:
        rd = EmbeddedRedis(temp / "redis")
        redis_url = rd.start()
        started.append(rd)
    database = f"hab_test_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(ensure_database(server_url, database))
    database_url = with_database(server_url, database)
    upgrade_head(database_url)
    try:
        yield ServiceUrls(database_url=database_url, redis_url=redis_url, embedded=bool(started))
    finally:
        asyncio.run(drop_database(server_url, database))
        for server in started:
            server.remove()


# ---- the closing summary names what could not be tested on this machine ----------------------------------

PREREQUISITE_MARKERS = {
    "v1.2.5 model files": "v1.2.5 model files not found",
    "the real browser (Chromium)": "chromium",
    "Prometheus": "prometheus is not installed",
}


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    from tests import legacy_model

    skipped = terminalreporter.stats.get("skipped", [])
    lines = []
    for what, marker in PREREQUISITE_MARKERS.items():
        names = [r.nodeid for r in skipped if marker.lower() in str(r.longrepr).lower()]
        if names:
            lines.append(f"SKIPPED for lack of {what}: {len(names)} test(s): " + ", ".join(names))
    if legacy_model.available():
        lines.append(f"v1.2.5 model files: found in {legacy_model.SOURCE} (tests used a copy)")
    elif not any("v1.2.5" in line for line in lines):
        lines.append(f"v1.2.5 model files: not found in {legacy_model.SOURCE}")
    terminalreporter.section("hab: prerequisites", sep="-")
    for line in lines:
        terminalreporter.write_line(line)
