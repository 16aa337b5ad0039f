"""One scoring job on two `hab worker` processes: both score its parts, each row is stored once, and a
worker killed mid-part loses nothing (its part's transaction rolls back and the other worker scores it)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import psutil
import pytest
from sqlalchemy import text

from api.jobs.locks import JOB_LOCK_NAMESPACE
from api.resources import close_resources, open_resources
from api.settings import Settings
from tests.e2e.test_worker_faults import (
    _ended,
    _setup,
    _start_worker,
    _state,
    _stop,
    _submit,
    _tail,
    _wait,
    daegu_accidents,  # noqa: F401 (a fixture)
    worker_settings,  # noqa: F401 (a fixture)
)
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.timeout(600)]
TOTAL = 120_000
PART = 2_000  # 60 parts: long enough that both workers get some


def _both_ready(log: Path) -> bool:
    return log.exists() and log.read_text(errors="replace").count("Starting worker") >= 2


async def _sql(settings: Settings, query: str, **params) -> list:
    resources = await open_resources(settings)
    try:
        async with resources.engine.connect() as conn:
            return list((await conn.execute(text(query), params)).all())
    finally:
        await close_resources(resources)


def _scorers(settings: Settings, job_id: int) -> dict[str, int]:
    rows = asyncio.run(
        _sql(settings, "select worker, count(*) from job_parts where job_id = :j and done group by worker", j=job_id)
    )
    return {str(worker): int(n) for worker, n in rows}


def _runner_pid(settings: Settings, job_id: int, workers: list[psutil.Process]) -> int | None:
    """The worker process holding the job's lock (the run), found by its database connection's port."""
    rows = asyncio.run(
        _sql(
            settings,
            "select a.client_port from pg_locks l join pg_stat_activity a on a.pid = l.pid"
            " where l.locktype = 'advisory' and l.granted and l.classid = :ns and l.objid = :j",
            ns=JOB_LOCK_NAMESPACE,
            j=job_id,
        )
    )
    ports = {int(port) for (port,) in rows if port is not None}
    for worker in workers:
        if any(c.laddr and c.laddr.port in ports for c in worker.net_connections(kind="tcp")):
            return worker.pid
    return None


def _start_two(settings: Settings, log: Path):
    workers = [_start_worker(settings, log, stale_seconds=2, chunk_rows=PART) for _ in range(2)]
    wait_until(lambda: _both_ready(log), seconds=180, what="both workers started")
    return workers


def test_two_workers_score_one_job_each_row_once(worker_settings, daegu_accidents, tmp_path):  # noqa: F811
    log = tmp_path / "workers.log"
    user_id, dataset_id = asyncio.run(_setup(worker_settings, daegu_accidents))
    workers = _start_two(worker_settings, log)
    try:
        job_id = asyncio.run(_submit(worker_settings, user_id, dataset_id))
        state = _wait(worker_settings, job_id, _ended, 240, "the job ended", log)
    finally:
        for worker in workers:
            _stop(worker)
    assert state.final == ("succeeded", TOTAL, TOTAL, TOTAL), (state, _tail(log))
    scorers = _scorers(worker_settings, job_id)
    assert sum(scorers.values()) == TOTAL // PART, scorers
    # Both processes scored parts of the one job (by host:pid).
    pids = {int(worker.rsplit(":", 1)[1]) for worker in scorers}
    assert pids == {w.pid for w in workers}, (scorers, _tail(log))
    assert state.attempts == 1, state  # one run, helped: not two runs one after the other


@pytest.mark.skip(
    reason="flaky in CI (2026-12-02): the run sometimes scores every part before a helper delivery reaches the "
    "other worker, so there is no helper to kill; needs a way to hold the run while the helper works"
)
def test_a_helper_killed_mid_part_loses_and_doubles_nothing(worker_settings, daegu_accidents, tmp_path):  # noqa: F811
    log = tmp_path / "workers.log"
    user_id, dataset_id = asyncio.run(_setup(worker_settings, daegu_accidents))
    workers = _start_two(worker_settings, log)
    processes = [psutil.Process(w.pid) for w in workers]
    try:
        job_id = asyncio.run(_submit(worker_settings, user_id, dataset_id))
        # Wait until the helper has committed parts of its own, so it is mid-job when it dies.
        runner = wait_until(lambda: _runner_pid(worker_settings, job_id, processes), seconds=120, what="a run")
        helper = next(w for w in workers if w.pid != runner)
        wait_until(
            lambda: any(k.endswith(f":{helper.pid}") for k in _scorers(worker_settings, job_id)),
            seconds=120,
            what="the helper scored a part",
        )
        killed = _state(worker_settings, job_id)
        helper.send_signal(signal.SIGKILL)
        helper.wait(timeout=10)
        assert killed.status == "running" and 0 < killed.progress < TOTAL, (killed, _tail(log))
        state = _wait(worker_settings, job_id, _ended, 240, "the job ended", log)
    finally:
        for worker in workers:
            _stop(worker)
    assert state.final == ("succeeded", TOTAL, TOTAL, TOTAL), (state, _tail(log))
    assert state.attempts == 1, state  # the run itself finished what the killed helper left
    survivors = {int(k.rsplit(":", 1)[1]) for k in _scorers(worker_settings, job_id)}
    assert runner in survivors and helper.pid in survivors
