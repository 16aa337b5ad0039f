"""One scoring job on two `hab worker` processes: both score its parts, each row is stored once, and a
worker killed mid-part loses nothing (its part's transaction rolls back and the other worker scores it)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from sqlalchemy import text

from api.jobs.locks import lock_keys
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
    first, second = lock_keys(job_id)
    rows = asyncio.run(
        _sql(
            settings,
            "select a.client_port from pg_locks l join pg_stat_activity a on a.pid = l.pid"
            " where l.locktype = 'advisory' and l.granted and l.classid = :ns and l.objid = :j",
            ns=first,
            j=second,
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


@contextlib.contextmanager
def _predictions_held(settings: Settings) -> Iterator[None]:
    """Hold a SHARE lock on `predictions` (another connection, until the block ends): every part's COPY waits,
    so parts are claimed and scored but none commits. The run cannot finish the job before a helper has
    claimed a part, whatever the machine's speed."""
    locked, release = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    async def hold() -> None:
        resources = await open_resources(settings)
        try:
            async with resources.engine.connect() as conn:
                await conn.execute(text("lock table predictions in share mode"))
                locked.set()
                await asyncio.to_thread(release.wait)
                await conn.rollback()
        finally:
            await close_resources(resources)

    def thread_main() -> None:
        try:
            asyncio.run(hold())
        except BaseException as error:  # reported to the test below
            failure.append(error)
            locked.set()

    thread = threading.Thread(target=thread_main, daemon=True)
    thread.start()
    assert locked.wait(60) and not failure, failure
    try:
        yield
    finally:
        release.set()
        thread.join(60)
    assert not failure, failure


def _waiting_backends(settings: Settings, process: psutil.Process) -> int:
    """How many of the process's PostgreSQL connections wait for a lock (a part's COPY held by the test)."""
    ports = {c.laddr.port for c in process.net_connections(kind="tcp") if c.laddr}
    rows = asyncio.run(_sql(settings, "select client_port from pg_stat_activity where wait_event_type = 'Lock'"))
    return sum(1 for (port,) in rows if port in ports)


def test_a_helper_killed_mid_part_loses_and_doubles_nothing(worker_settings, daegu_accidents, tmp_path):  # noqa: F811
    log = tmp_path / "workers.log"
    user_id, dataset_id = asyncio.run(_setup(worker_settings, daegu_accidents))
    workers = _start_two(worker_settings, log)
    processes = [psutil.Process(w.pid) for w in workers]
    try:
        with _predictions_held(worker_settings):
            job_id = asyncio.run(_submit(worker_settings, user_id, dataset_id))
            runner = wait_until(lambda: _runner_pid(worker_settings, job_id, processes), seconds=120, what="a run")
            helper = next(w for w in workers if w.pid != runner)
            # The helper has claimed a part (its row lock held) and scored it: its COPY waits on the test's lock.
            wait_until(
                lambda: _waiting_backends(worker_settings, psutil.Process(helper.pid)) > 0,
                seconds=120,
                what="the helper is mid-part",
            )
            killed = _state(worker_settings, job_id)
            helper.send_signal(signal.SIGKILL)
            helper.wait(timeout=10)
        # Nothing had committed when the helper died: its part is the one its death rolled back.
        assert killed.status == "running" and killed.progress == 0, (killed, _tail(log))
        state = _wait(worker_settings, job_id, _ended, 240, "the job ended", log)
    finally:
        for worker in workers:
            _stop(worker)
    assert state.final == ("succeeded", TOTAL, TOTAL, TOTAL), (state, _tail(log))
    assert state.attempts == 1, state  # the run itself finished what the killed helper left
    scorers = _scorers(worker_settings, job_id)
    assert sum(scorers.values()) == TOTAL // PART, scorers
    assert {int(k.rsplit(":", 1)[1]) for k in scorers} == {runner}, scorers  # the helper committed nothing
