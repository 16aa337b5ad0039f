"""Real `hab worker` processes killed mid-batch: the job still ends with exactly one prediction per row."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

import pytest
from sqlalchemy import func, select

from api.datasets.ingest import parse_csv
from api.datasets.services import DatasetService
from api.db.tables import Job, Prediction
from api.demo.generate import generate_demo_datasets
from api.predictions.scoring.submit import ScoringJobRequest, submit_scoring_job
from api.registry.services import RegistryService
from api.resources import close_resources, open_resources
from api.settings import Settings
from api.users.services import Principal, UserService
from models.train import train_eclo
from tests.e2e.test_processes import HAB

# Two 120k-row jobs each scored across two worker processes, with deadlines of their own (120 + 180 s).
pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.timeout(600)]
CHUNK = 10_000


@pytest.fixture(scope="module")
def worker_settings(services) -> Settings:
    return Settings(
        _env_file=None,
        database_url=services.database_url,
        redis_url=services.redis_url,
        HAB_ENV="test",
        HAB_SECRET_KEY=secrets.token_urlsafe(32),
        HAB_QUEUE_NAME=f"hab-e2e-{secrets.token_hex(4)}",
    )


def _worker_env(settings: Settings, stale_seconds: float = 120, chunk_rows: int = CHUNK) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAB_")}
    env.update(
        {
            "DATABASE_URL": settings.database_url or "",
            "REDIS_URL": settings.redis_url or "",
            "HAB_ENV": "test",
            "HAB_SECRET_KEY": settings.secret_key,
            "HAB_QUEUE_NAME": settings.queue_name,
            "HAB_SCORE_CHUNK_ROWS": str(chunk_rows),
            "HAB_JOB_STALE_SECONDS": str(stale_seconds),
            "HAB_ENV_FILE": "/dev/null",
            "HAB_MODEL_COMPILE": os.environ.get("HAB_MODEL_COMPILE", "off"),  # as the suite's other processes
        }
    )
    return env


@pytest.fixture(scope="module")
def daegu_accidents():
    # Daegu-only rows (the model's vocabulary), 120k of them: every row scores.
    data = next(d for d in generate_demo_datasets(seed=5, scale=120_000 / 39_609) if d.key == "train")
    return data.csv_bytes


async def _setup(settings: Settings, csv_bytes: bytes) -> tuple[int, int]:
    """A user, an active model and a 120k-row accident dataset; returns (user id, dataset id)."""
    resources = await open_resources(settings)
    try:
        async with resources.sessions() as session:
            user, _ = await UserService(session).create(f"faults-{secrets.token_hex(3)}")
            await session.commit()
            principal = Principal(id=user.id, name=user.name, role=user.role)
            dataset = await DatasetService(session, resources).upload(principal, csv_bytes, filename="big.csv")
            registry = RegistryService(session, resources)
            if await registry.versions.active_version() is None:
                # Trained on the same rows, so every 시군구 is in its vocabulary and every row scores.
                model = await asyncio.to_thread(train_eclo, parse_csv(csv_bytes).table)
                info = await registry.register(model, created_by=None)
                await registry.activate(info.version)
        return user.id, dataset.id
    finally:
        await close_resources(resources)


async def _submit(settings: Settings, user_id: int, dataset_id: int) -> int:
    resources = await open_resources(settings)
    try:
        async with resources.sessions() as session:
            principal = Principal(id=user_id, name="x", role="member")
            accepted = await submit_scoring_job(session, resources, principal, ScoringJobRequest(dataset_id=dataset_id))
        return accepted.job_id
    finally:
        await close_resources(resources)


class JobState(NamedTuple):
    status: str
    progress: int
    stored: int  # prediction rows of the job
    distinct: int  # distinct row_index among them (stored - distinct = duplicates)
    attempts: int  # runs started (each run counts itself before it loads the input)
    heartbeat_age: float  # seconds since the last heartbeat, by the database's clock

    @property
    def final(self) -> tuple[str, int, int, int]:
        return self.status, self.progress, self.stored, self.distinct


async def _read_state(resources, job_id: int) -> JobState:
    async with resources.sessions() as session:
        job = await session.get(Job, job_id, populate_existing=True)
        stored = await session.scalar(select(func.count()).select_from(Prediction).where(Prediction.job_id == job_id))
        distinct = await session.scalar(
            select(func.count(func.distinct(Prediction.row_index))).where(Prediction.job_id == job_id)
        )
        age = await session.scalar(
            select(func.extract("epoch", func.clock_timestamp() - Job.heartbeat_at)).where(Job.id == job_id)
        )
        return JobState(job.status, int(job.progress), int(stored), int(distinct), int(job.attempts), float(age or 0))


def _state(settings: Settings, job_id: int) -> JobState:
    async def read() -> JobState:
        resources = await open_resources(settings)
        try:
            return await _read_state(resources, job_id)
        finally:
            await close_resources(resources)

    return asyncio.run(read())


def _wait(settings: Settings, job_id: int, condition, seconds: float, what: str, log: Path) -> JobState:
    """Poll the job (one connection, every 20 ms) until `condition(state)`; fail the test at the deadline."""

    async def poll() -> JobState:
        resources = await open_resources(settings)
        try:
            deadline = time.monotonic() + seconds
            while True:
                state = await _read_state(resources, job_id)
                if condition(state):
                    return state
                if time.monotonic() > deadline:
                    raise AssertionError(f"not within {seconds:g} s: {what}; last {state}\n{_tail(log)}")
                await asyncio.sleep(0.02)
        finally:
            await close_resources(resources)

    return asyncio.run(poll())


def _start_worker(settings: Settings, log: Path, **kwargs) -> subprocess.Popen:
    """A `hab worker` whose output is appended to `log` (shown when an assertion fails)."""
    with log.open("ab") as out:
        return subprocess.Popen([HAB, "worker"], env=_worker_env(settings, **kwargs), stdout=out, stderr=out)


def _tail(log: Path, lines: int = 150) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _ended(state: JobState) -> bool:
    return state.status in ("succeeded", "failed", "cancelled")


# Each test fails unless its kill really interrupted a run: the job was part-way (0 < progress < total,
# one run started) when the worker died, and it then needed a second run to finish.


def test_sigkill_mid_batch_ends_with_exactly_n_predictions(worker_settings, daegu_accidents, tmp_path):
    log = tmp_path / "workers.log"
    user_id, dataset_id = asyncio.run(_setup(worker_settings, daegu_accidents))
    job_id = asyncio.run(_submit(worker_settings, user_id, dataset_id))
    total = 120_000
    first = _start_worker(worker_settings, log)
    try:
        _wait(worker_settings, job_id, lambda s: s.progress >= 2 * CHUNK or _ended(s), 120, "2 chunks written", log)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        _stop(first)
    killed = _state(worker_settings, job_id)
    assert killed.status == "running" and 0 < killed.progress < total, (killed, _tail(log))
    assert killed.stored == killed.distinct == killed.progress and killed.attempts == 1, (killed, _tail(log))

    # The killed run's heartbeat must be older than the new worker's stale limit (1 s) for its sweeper.
    _wait(worker_settings, job_id, lambda s: s.heartbeat_age > 1.5, 30, "the killed run's heartbeat aged", log)
    second = _start_worker(worker_settings, log, stale_seconds=1)
    try:
        state = _wait(worker_settings, job_id, _ended, 180, "the job ended", log)
    finally:
        _stop(second)
    assert state.final == ("succeeded", total, total, total), (state, _tail(log))
    assert state.attempts >= 2, (state, _tail(log))  # finished by a run started after the kill


def test_sigterm_never_leaves_a_half_written_chunk(worker_settings, daegu_accidents, tmp_path):
    log = tmp_path / "workers.log"
    user_id, dataset_id = asyncio.run(_setup(worker_settings, daegu_accidents))
    job_id = asyncio.run(_submit(worker_settings, user_id, dataset_id))
    total = 120_000
    first = _start_worker(worker_settings, log)
    try:
        _wait(worker_settings, job_id, lambda s: s.progress >= CHUNK or _ended(s), 120, "1 chunk written", log)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) is not None
    finally:
        _stop(first)
    stopped = _state(worker_settings, job_id)
    assert stopped.stored == stopped.distinct == stopped.progress, (stopped, _tail(log))
    assert stopped.progress % CHUNK == 0, (stopped, _tail(log))  # whole chunks only
    # Interrupted part-way and put back in line at shutdown (not finished, not left running).
    assert stopped.status == "queued" and 0 < stopped.progress < total, (stopped, _tail(log))
    assert stopped.attempts == 1, (stopped, _tail(log))

    second = _start_worker(worker_settings, log)
    try:
        state = _wait(worker_settings, job_id, _ended, 180, "the job ended", log)
    finally:
        _stop(second)
    assert state.final == ("succeeded", total, total, total), (state, _tail(log))
    assert state.attempts >= 2, (state, _tail(log))  # finished by a run started after the shutdown
