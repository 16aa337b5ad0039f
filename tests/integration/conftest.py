from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import func, select

from api.app import create_app
from api.datasets.ingest import parse_csv
from api.db.tables import Dataset, DatasetBlob, ShareLink
from api.demo.generate import generate_demo_datasets
from api.registry.services import RegistryService
from api.resources import Resources, arq_client, close_resources, open_resources
from api.settings import Settings
from api.users.services import UserService
from models.train import train_eclo
from tests.fakes.anthropic_server import FakeAnthropic
from workers.settings import create_worker

# Small enough that the size-limit tests stay fast.
TEST_UPLOAD_LIMIT = 3 * 1024 * 1024


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="session")
def anthropic_server() -> Iterator[FakeAnthropic]:
    """The fake Anthropic Messages API every chat test talks to through the real SDK."""
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def fake_anthropic(anthropic_server) -> Iterator[FakeAnthropic]:
    """The fake, emptied of script, calls and invalid keys before and after each test."""
    anthropic_server.reset()
    yield anthropic_server
    anthropic_server.reset()


@pytest.fixture(scope="session")
def settings(services, anthropic_server) -> Settings:
    return Settings(
        database_url=services.database_url,
        redis_url=services.redis_url,
        HAB_ENV="test",
        HAB_UPLOAD_MAX_BYTES=TEST_UPLOAD_LIMIT,
        HAB_PUBLIC_URL="http://testserver.local",
        HAB_SECRET_KEY=secrets.token_urlsafe(32),
        HAB_QUEUE_NAME=f"hab-test-queue-{secrets.token_hex(4)}",
        ANTHROPIC_BASE_URL=anthropic_server.url,
        HAB_ANTHROPIC_MAX_RETRIES=0,
        _env_file=None,
    )


@pytest.fixture(scope="session")
async def app(settings) -> Litestar:
    return create_app(settings)


@pytest.fixture(scope="session")
async def client(app, settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real app over ASGI, in the suite's event loop (so tests can share its engine and Redis).

    The resources are opened as the lifespan opens them, but here: Litestar's lifespan runs in an anyio
    task group that cannot span pytest-asyncio's setup and teardown tasks. The lifespan itself is
    exercised by the tests that start `hab serve`.
    """
    app.state.resources = await open_resources(settings, follow_models=True)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local", timeout=60) as c:
            yield c
    finally:
        await close_resources(app.state.resources)


@pytest.fixture(scope="session")
def resources(app, client) -> Resources:
    return app.state.resources


async def _account(resources: Resources, name: str, admin: bool) -> Account:
    async with resources.sessions() as session:
        user, token = await UserService(session).create(name, admin=admin)
        await session.commit()
    return Account(id=user.id, name=user.name, token=token)


@pytest.fixture(scope="session")
async def admin(resources) -> Account:
    return await _account(resources, "관리자-테스트", True)


@pytest.fixture(scope="session")
async def alice(resources) -> Account:
    return await _account(resources, "alice", False)


@pytest.fixture(scope="session")
async def bob(resources) -> Account:
    return await _account(resources, "bob", False)


def closed_port() -> int:
    """A local port nothing listens on (for 'service down' tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class StoredCounts:
    datasets: int
    blobs: int
    share_links: int


async def stored_counts(resources: Resources) -> StoredCounts:
    """How many rows the dataset store holds: bad-input tests check that this does not change."""
    async with resources.sessions() as session:
        return StoredCounts(
            datasets=await session.scalar(select(func.count()).select_from(Dataset)) or 0,
            blobs=await session.scalar(select(func.count()).select_from(DatasetBlob)) or 0,
            share_links=await session.scalar(select(func.count()).select_from(ShareLink)) or 0,
        )


@pytest.fixture(scope="session")
def demo_train_table():
    train = next(d for d in generate_demo_datasets(seed=11, scale=0.25) if d.key == "train")
    return parse_csv(train.csv_bytes).table


@pytest.fixture(scope="session")
async def versions(resources, demo_train_table):
    """Two registered versions (different seeds), the first one active."""
    first = await asyncio.to_thread(train_eclo, demo_train_table, name="eclo-test", seed=1)
    second = await asyncio.to_thread(train_eclo, demo_train_table, name="eclo-test", seed=2)
    async with resources.sessions() as session:
        registry = RegistryService(session, resources)
        v1 = await registry.register(first, created_by=None)
        v2 = await registry.register(second, created_by=None)
        await registry.activate(v1.version)
    return v1.version, v2.version


@pytest.fixture(scope="session")
async def chat_datasets(client, alice):
    """An accident-shaped and a CCTV dataset of alice's, with the frames the tools see."""
    demo = {d.key: d for d in generate_demo_datasets(seed=5, scale=0.02)}
    stored = {}
    for key, name in (("train", "사고 채팅"), ("cctv", "CCTV 채팅")):
        response = await client.post(
            "/api/datasets/upload/csv",
            params={"name": name},
            content=demo[key].csv_bytes,
            headers={**alice.headers, "Content-Type": "text/csv"},
        )
        assert response.status_code == 201, response.text
        stored[key] = response.json()
    return stored


def make_test_worker(settings, **overrides):
    """A real arq worker as `hab worker` builds it, polling fast, without cron jobs or the stale-job sweeper
    (tests sweep themselves) and without signal handlers."""
    options = {
        "redis_pool": arq_client(settings.redis_url, settings.queue_name),
        "poll_delay": 0.05,
        "cron_jobs": None,
        "handle_signals": False,
    }
    return create_worker(settings, sweep=False, **{**options, **overrides})


async def run_worker(settings) -> None:
    """A real arq worker in burst mode: processes what is queued, then returns."""
    worker = make_test_worker(settings, burst=True, max_jobs=2)
    try:
        await worker.main()
    finally:
        await worker.close()
