"""`make run`: one foreground command that brings up the whole local stack and takes it down cleanly.

Order: PostgreSQL and Redis (configured or embedded) → migrations → local admin token in env/.env →
demo data on first run → API, worker and Streamlit as child processes → URLs printed. Ctrl-C or
SIGTERM stops the children (SIGTERM, then SIGKILL after a grace period) and the embedded servers.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from types import FrameType

from sqlalchemy import select

from api.db.migrate import upgrade_head
from api.db.tables import Dataset
from api.envfile import read_env_file, update_env_file
from api.infra.services import resolve_services
from api.resources import Resources
from api.settings import PROJECT_ROOT, Settings, env_file_path, get_settings

LOCAL_ADMIN = "local-admin"
GRACE_SECONDS = 15


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


def _say(message: str) -> None:
    print(f"[hab] {message}", flush=True)


async def _prepare_data(settings: Settings) -> str:
    """Ensure the local admin (returning a working token) and the demo data."""
    from api.datasets.demo_loader import load_demo_datasets
    from api.resources import close_resources, open_resources
    from api.users.services import UserService

    resources = await open_resources(settings)
    try:
        async with resources.sessions() as session:
            users = UserService(session)
            token = read_env_file(env_file_path()).get("HAB_API_TOKEN", "")
            principal = await users.authenticate(token) if token else None
            if principal is None or not principal.is_admin:
                if await users.repository.by_name(LOCAL_ADMIN) is None:
                    _, token = await users.create(LOCAL_ADMIN, admin=True)
                else:
                    token = await users.rotate_token(LOCAL_ADMIN)
                await session.commit()
        started = time.monotonic()
        loaded = await load_demo_datasets(resources, scale=settings.demo_scale, echo=lambda line: _say(line))
        if loaded:
            _say(f"데모 데이터셋 {len(loaded)}개 저장 ({time.monotonic() - started:.1f}초)")
        await _ensure_demo_model(resources)
        return token
    finally:
        await close_resources(resources)


async def _ensure_demo_model(resources: Resources) -> None:
    """On a fresh install, train and activate a model from the demo train data so predictions work at once."""
    from api.datasets.demo import DEMO_TRAIN_NAME
    from api.registry.repository import ModelVersionRepository
    from api.registry.training import train_and_register

    async with resources.sessions() as session:
        if await ModelVersionRepository(session=session).next_version() > 1:
            return  # some model exists already; never replace an admin's choice
        train_id = await session.scalar(
            select(Dataset.id).where(Dataset.is_demo.is_(True), Dataset.name == DEMO_TRAIN_NAME).order_by(Dataset.id)
        )
    if train_id is None:
        return
    _say("데모 ECLO 모델을 학습합니다 (처음 한 번만)…")
    info = await train_and_register(
        resources,
        dataset_id=train_id,
        csv_path=None,
        name="eclo-demo",
        activate=True,
        echo=lambda line: _say("  " + line),
    )
    _say(f"데모 모델 버전 {info.version} 활성화")


def _wait_http(url: str, timeout: float, children: list[Child]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(c.process.poll() is not None for c in children):
            return False
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def _stop_children(children: list[Child]) -> None:
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    for child in children:
        remaining = max(0.1, deadline - time.monotonic())
        try:
            child.process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            _say(f"{child.name} 이(가) 제때 끝나지 않아 강제 종료합니다.")
            child.process.kill()
            child.process.wait()


def run_stack() -> int:
    settings = get_settings()
    stop_requested = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    _say("PostgreSQL·Redis 준비 중…")
    urls = resolve_services(settings)
    children: list[Child] = []
    try:
        env = {**os.environ, "DATABASE_URL": urls.database_url, "REDIS_URL": urls.redis_url}
        os.environ.update({"DATABASE_URL": urls.database_url, "REDIS_URL": urls.redis_url})
        settings = settings.model_copy(update={"database_url": urls.database_url, "redis_url": urls.redis_url})
        _say("데이터베이스 마이그레이션 적용 중…")
        upgrade_head(urls.database_url)
        token = asyncio.run(_prepare_data(settings))
        api_url = f"http://{settings.api_host}:{settings.api_port}"
        update_env_file(env_file_path(), {"HAB_API_URL": api_url, "HAB_API_TOKEN": token})
        env.update({"HAB_API_URL": api_url, "HAB_API_TOKEN": token})

        commands = {
            "api": [sys.executable, "-m", "api.cli", "serve"],
            "worker": [sys.executable, "-m", "api.cli", "worker"],
            "ui": [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(PROJECT_ROOT / "frontend" / "app.py"),
                "--server.port",
                str(settings.ui_port),
                "--server.address",
                settings.api_host,
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
            ],
        }
        for name, command in commands.items():
            # Own session: Ctrl-C reaches only this supervisor, which then stops children in order.
            process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, start_new_session=True)
            children.append(Child(name, process))

        if not _wait_http(f"{api_url}/ready", 60, children) and not stop_requested:
            _say("API가 시작되지 않았습니다. 위의 로그를 확인해 주세요.")
            return 1
        _say("준비 완료 / ready")
        _say(f"  화면 (Streamlit): http://{settings.api_host}:{settings.ui_port}")
        _say(f"  API:              {api_url}  (문서: {api_url}/schema/swagger)")
        _say(f"  API 토큰은 {env_file_path()} 에 저장되었습니다. 끝내려면 Ctrl-C")

        while not stop_requested:
            for child in children:
                if child.process.poll() is not None:
                    _say(f"{child.name} 프로세스가 종료되었습니다 (코드 {child.process.returncode}). 전체를 멈춥니다.")
                    return 1
            time.sleep(0.5)
        _say("종료 중…")
        return 0
    finally:
        _stop_children(children)
        urls.stop_embedded(force=True)
        _say("모두 종료했습니다.")
