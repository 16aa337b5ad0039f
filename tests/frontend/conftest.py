"""One live hab stack for the frontend tests: a real `hab serve` and `hab worker` on a fresh database.

The database is its own (created next to the suite's and migrated to head, so the seed data never meets the
integration tests) and is seeded in-process before the processes start: an admin and a regular user, the
synthetic demo datasets (small scale) and two trained model versions (the first active). Streamlit's AppTest then runs
the real frontend scripts against the live server, which the frontend finds through HAB_API_URL/HAB_API_TOKEN.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from bench.common import ManagedProcess
from tests.fakes.anthropic_server import FakeAnthropic

REPO_ROOT = Path(__file__).resolve().parents[2]
APP = REPO_ROOT / "frontend" / "app.py"
HAB = str(Path(sys.executable).with_name("hab"))
DEMO_SCALE = 0.02
RUN_TIMEOUT = 30.0


@dataclass(frozen=True)
class Stack:
    url: str
    ui_url: str  # HAB_PUBLIC_URL: where the browser test's Streamlit listens (share links open a page there)
    admin_token: str
    user_token: str
    root: Path
    env_file: Path
    model_versions: tuple[int, int]
    worker: Process
    anthropic: FakeAnthropic
    env: dict[str, str]  # what the processes were started with (tests start more processes like them)
    worker_metrics_url: str

    def get(self, path: str, token: str | None = None, **params: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        return httpx.get(f"{self.url}{path}", headers=headers, params=params, timeout=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process(ManagedProcess):
    """A `hab` subprocess with its log in a file (log tail and SIGTERM-then-SIGKILL stop from ManagedProcess)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        super().__init__()
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen([HAB, *args], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def _wait_ready(url: str, process: Process, timeout: float = 180) -> None:
    # Generous: on a busy 2-core machine importing the application alone has taken over 60 s.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited ({process.proc.returncode}):\n{process.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{process.name} was not ready within {timeout:.0f} s:\n{process.log_tail()}")


async def _seed(settings) -> tuple[str, str, tuple[int, int]]:
    """Users, demo datasets and two model versions (v1 active), through the service layer."""
    from sqlalchemy import select

    from api.db.tables import Dataset
    from api.demo.generate import DEMO_TRAIN_NAME
    from api.demo.loader import load_demo_datasets
    from api.registry.training import train_and_register
    from api.resources import close_resources, open_resources
    from api.users.services import UserService

    resources = await open_resources(settings)
    try:
        async with resources.sessions() as session:
            users = UserService(session)
            _, admin_token = await users.create("관리자", admin=True)
            _, user_token = await users.create("민지")
            await session.commit()
        await load_demo_datasets(resources, scale=DEMO_SCALE, echo=lambda _line: None)
        async with resources.sessions() as session:
            train_id = await session.scalar(select(Dataset.id).where(Dataset.name == DEMO_TRAIN_NAME))
        quiet = {"echo": lambda _line: None, "dataset_id": train_id, "csv_path": None}
        first = await train_and_register(resources, name="eclo-frontend", activate=True, **quiet)
        second = await train_and_register(resources, name="eclo-frontend-b", activate=False, **quiet)
        return admin_token, user_token, (first.version, second.version)
    finally:
        await close_resources(resources)


@pytest.fixture(scope="session")
def stack(services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from api.db.migrate import upgrade_head
    from api.local.services import drop_database, ensure_database, with_database

    database = f"hab_frontend_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(ensure_database(services.database_url, database))
    try:
        database_url = with_database(services.database_url, database)
        upgrade_head(database_url)
        with FakeAnthropic() as anthropic:
            yield from _run_stack(
                database_url, services.redis_url, tmp_path_factory.mktemp("frontend-stack"), anthropic
            )
    finally:
        asyncio.run(drop_database(services.database_url, database))


def _run_stack(database_url: str, redis_url: str, root: Path, anthropic: FakeAnthropic) -> Iterator[Stack]:
    from api.settings import Settings

    env_file = root / "empty.env"
    env_file.write_text("", encoding="utf-8")
    secret = secrets.token_urlsafe(32)
    queue = f"hab-frontend-test-{secrets.token_hex(4)}"
    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        HAB_ENV="test",
        HAB_SECRET_KEY=secret,
        HAB_QUEUE_NAME=queue,
        _env_file=None,
    )
    admin_token, user_token, versions = asyncio.run(_seed(settings))

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    ui_url = f"http://127.0.0.1:{free_port()}"
    worker_metrics_port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"HAB_API_URL", "HAB_API_TOKEN"}},
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "HAB_ENV": "test",
        "HAB_SECRET_KEY": secret,
        "HAB_QUEUE_NAME": queue,
        "HAB_ENV_FILE": str(env_file),
        "HAB_DATA_DIR": str(root / "data"),
        "HAB_PUBLIC_URL": ui_url,
        "HAB_PUBLIC_API_URL": url,
        "HAB_LOG_LEVEL": "WARNING",
        "HAB_SCORE_CHUNK_ROWS": "100",  # several progress steps even for small inputs
        "HAB_MODEL_RECHECK_SECONDS": "2",
        "HAB_WORKER_TTL_SECONDS": "3",  # a stopped worker leaves the 작업 page's list quickly
        "ANTHROPIC_BASE_URL": anthropic.url,
        "HAB_ANTHROPIC_MAX_RETRIES": "0",
        "HAB_WORKER_METRICS_PORT": str(worker_metrics_port),
    }
    processes: list[Process] = []
    try:
        server = Process("serve", ["serve", "--host", "127.0.0.1", "--port", str(port)], env, root)
        processes.append(server)
        worker = Process("worker", ["worker"], env, root)
        processes.append(worker)
        _wait_ready(url, server)
        yield Stack(
            url=url,
            ui_url=ui_url,
            admin_token=admin_token,
            user_token=user_token,
            root=root,
            env_file=env_file,
            model_versions=versions,
            worker=worker,
            anthropic=anthropic,
            env=env,
            worker_metrics_url=f"http://127.0.0.1:{worker_metrics_port}/metrics",
        )
    finally:
        for process in reversed(processes):  # the worker first, then the server
            with contextlib.suppress(ProcessLookupError):
                process.proc.send_signal(signal.SIGCONT)  # in case a test paused it and then failed
            process.stop()


@pytest.fixture
def frontend_env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """Point the frontend at the live server as the admin; no developer env/ or project key file is read."""
    monkeypatch.setenv("HAB_API_URL", stack.url)
    monkeypatch.setenv("HAB_API_TOKEN", stack.admin_token)
    monkeypatch.setenv("HAB_ENV_FILE", str(stack.env_file))
    project = stack.root / "project"  # the v1.2.x key files (.env, .streamlit/secrets.toml) are looked for here
    project.mkdir(exist_ok=True)
    monkeypatch.setenv("HAB_PROJECT_DIR", str(project))
    return stack


def open_page(page: str | None = None, *, timeout: float = RUN_TIMEOUT, state: dict | None = None) -> AppTest:
    """Run the app, then switch to `page` (e.g. "views/explore.py") and run it; no exception allowed."""
    at = AppTest.from_file(str(APP), default_timeout=timeout)
    for key, value in (state or {}).items():
        at.session_state[key] = value
    at.run()
    assert_clean(at)
    if page is not None:
        at.switch_page(page).run()
        assert_clean(at)
    return at


def texts(elements) -> list[str]:
    """The text bodies of a list of elements (markdown, error, caption …)."""
    return [str(e.value) for e in elements]


def plotly_figures(at: AppTest) -> list[dict]:
    """Every Plotly chart on the page as its figure JSON (data + layout)."""
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def figure_title(figure: dict) -> str:
    title = figure.get("layout", {}).get("title", {})
    return title.get("text", "") if isinstance(title, dict) else str(title)


def metrics(at: AppTest) -> dict[str, str]:
    """Metric label -> shown value, main area and sidebar."""
    return {m.label: m.value for m in at.metric}


def assert_clean(at: AppTest) -> None:
    """No exception and no 'unexpected problem' fallback message on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not any("예상하지 못한 문제" in t for t in texts(at.error)), texts(at.error)
