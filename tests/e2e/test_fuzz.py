"""schemathesis against a live `hab serve` (+ `hab worker`) on real PostgreSQL and Redis, chat on the fake Anthropic.

The fuzzer reads `/schema/openapi.json` and runs its default checks (no 5xx, statuses, bodies and headers as
documented, invalid data refused, valid data accepted, ...) on every operation, once with an admin's token and
once with a member's. `make test` runs a bounded form (HAB_FUZZ_EXAMPLES, default 3 per operation, no
shrinking); `make fuzz` runs it with 100 examples per operation. A finding is fixed in the code, never excluded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bench.common import ManagedProcess
from tests.fakes.anthropic_server import FakeAnthropic, Reply, text

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
EXAMPLES = int(os.environ.get("HAB_FUZZ_EXAMPLES", "3"))
FULL = EXAMPLES >= 100
DEMO_SCALE = 0.01
CONFIG = Path(__file__).with_name("schemathesis.toml")


@dataclass(frozen=True)
class FuzzStack:
    url: str
    tokens: dict[str, str]
    root: Path


class _Process(ManagedProcess):
    def __init__(self, name: str, args: list[str], env: dict[str, str], root: Path) -> None:
        super().__init__()
        self.name = name
        self.log_path = root / f"{name}.log"
        self.spawn([str(BIN / "hab"), *args], env)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answer(_body: dict) -> Reply:
    """Every chat turn gets a short final answer (no tool calls), so a turn ends after one model call."""
    return Reply([text("퍼징 응답입니다.")], input_tokens=50, output_tokens=10)


async def _seed(settings) -> dict[str, str]:
    """An admin and a member, the demo datasets (plus one of the member's own, shared with the team) and an
    active model, so that ids in the fuzzer's requests can hit real rows."""
    from sqlalchemy import select

    from api.datasets.kinds import Visibility
    from api.datasets.services import DatasetService
    from api.db.tables import Dataset
    from api.demo.generate import DEMO_TRAIN_NAME, generate_demo_datasets
    from api.demo.loader import load_demo_datasets
    from api.registry.training import train_and_register
    from api.resources import close_resources, open_resources
    from api.users.services import UserService

    resources = await open_resources(settings)
    try:
        async with resources.sessions() as session:
            users = UserService(session)
            _, admin_token = await users.create("퍼징-관리자", admin=True)
            member, member_token = await users.create("퍼징-회원")
            await session.commit()
        await load_demo_datasets(resources, scale=DEMO_SCALE, echo=lambda _line: None)
        train = next(d for d in generate_demo_datasets(seed=3, scale=DEMO_SCALE) if d.key == "train")
        async with resources.sessions() as session:
            principal = await UserService(session).authenticate(member_token)
            assert principal is not None and principal.id == member.id
            await DatasetService(session, resources).upload(
                principal, train.csv_bytes, filename="member.csv", name="회원 사고", visibility=str(Visibility.TEAM)
            )
            train_id = await session.scalar(select(Dataset.id).where(Dataset.name == DEMO_TRAIN_NAME))
        await train_and_register(
            resources, name="eclo-fuzz", activate=True, dataset_id=train_id, csv_path=None, echo=lambda _l: None
        )
        return {"admin": admin_token, "member": member_token}
    finally:
        await close_resources(resources)


def _wait_ready(url: str, process: _Process, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited:\n{process.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{process.name} was not ready within {timeout:.0f} s:\n{process.log_tail()}")


@pytest.fixture(scope="module")
def fuzz_stack(services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzStack]:
    from api.db.migrate import upgrade_head
    from api.local.services import drop_database, ensure_database, with_database
    from api.settings import Settings

    root = tmp_path_factory.mktemp("fuzz")
    database = f"hab_fuzz_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(ensure_database(services.database_url, database))
    processes: list[_Process] = []
    try:
        database_url = with_database(services.database_url, database)
        upgrade_head(database_url)
        secret = secrets.token_urlsafe(32)
        queue = f"hab-fuzz-{secrets.token_hex(4)}"
        settings = Settings(
            database_url=database_url,
            redis_url=services.redis_url,
            HAB_ENV="test",
            HAB_SECRET_KEY=secret,
            HAB_QUEUE_NAME=queue,
            _env_file=None,
        )
        tokens = asyncio.run(_seed(settings))
        env_file = root / "empty.env"
        env_file.write_text("", encoding="utf-8")
        with FakeAnthropic() as anthropic:
            anthropic.responder = _answer
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith(("HAB_", "ANTHROPIC_"))},
                "DATABASE_URL": database_url,
                "REDIS_URL": services.redis_url,
                "HAB_ENV": "test",
                "HAB_SECRET_KEY": secret,
                "HAB_QUEUE_NAME": queue,
                "HAB_ENV_FILE": str(env_file),
                "HAB_DATA_DIR": str(root / "data"),
                "HAB_PUBLIC_URL": url,
                "HAB_LOG_LEVEL": "WARNING",
                "HAB_UPLOAD_MAX_BYTES": str(4 << 20),
                "ANTHROPIC_BASE_URL": anthropic.url,
                "HAB_ANTHROPIC_MAX_RETRIES": "0",
                "HAB_MODEL_COMPILE": "off",  # as the suite's other processes (tests/conftest.py)
            }
            server = _Process("serve", ["serve", "--host", "127.0.0.1", "--port", str(port)], env, root)
            processes.append(server)
            processes.append(_Process("worker", ["worker"], env, root))
            _wait_ready(url, server)
            yield FuzzStack(url=url, tokens=tokens, root=root)
    finally:
        for process in reversed(processes):
            process.stop()
        asyncio.run(drop_database(services.database_url, database))


def run_schemathesis(stack: FuzzStack, role: str, examples: int) -> subprocess.CompletedProcess[str]:
    report = stack.root / f"report-{role}"
    args = [
        str(BIN / "st"),
        "--config-file",
        str(CONFIG),
        "run",
        f"{stack.url}/schema/openapi.json",
        "--max-examples",
        str(examples),
        "--header",
        f"Authorization: Bearer {stack.tokens[role]}",
        # One worker: with two, hypothesis's lambda-source cache (shared by the threads) sometimes raised
        # "AST constructor recursion depth mismatch" inside schemathesis, a tool error rather than a finding.
        "--workers",
        "1",
        "--request-timeout",
        "60",
        "--seed",
        os.environ.get("HAB_FUZZ_SEED", "15"),
        "--generation-database",
        "none",
        "--report",
        "junit",
        "--report-dir",
        str(report),
        "--no-color",
    ]
    if not FULL:
        args.append("--no-shrink")
    env = {**os.environ, "SCHEMATHESIS_HOOKS": ""}
    # Run in the stack's folder: schemathesis keeps a cache in its working directory.
    return subprocess.run(args, cwd=stack.root, env=env, capture_output=True, text=True, timeout=3600)


@pytest.mark.parametrize("role", ["admin", "member"])
def test_fuzz_finds_nothing(fuzz_stack: FuzzStack, role: str) -> None:
    result = run_schemathesis(fuzz_stack, role, EXAMPLES)
    output = result.stdout + result.stderr
    print(output)
    server_log = (fuzz_stack.root / "serve.log").read_text(errors="replace")
    assert result.returncode == 0, output[-20000:]
    # Findings the checks cannot see: an unhandled exception is logged even when its answer looked fine.
    assert "Traceback" not in server_log, server_log[-5000:]
