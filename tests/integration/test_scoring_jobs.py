"""Batch scoring jobs through the API and real arq workers (burst mode) on real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event, func, select, update

from api.db.tables import Job, Prediction
from api.jobs.locks import job_lease, job_lock
from api.jobs.recovery import requeue_stale_jobs
from api.jobs.services import enqueue
from api.observability.metrics import ScoringStage
from api.predictions.scoring import parts as scoring_parts
from api.predictions.scoring import run as scoring
from api.resources import arq_client
from models.interpret import BAND_CUTS
from tests.integration.conftest import closed_port, make_test_worker, run_worker
from tests.integration.test_predictions_api import RAW_ROW


async def job_predictions(resources, job_id: int) -> int:
    async with resources.sessions() as session:
        return int(
            await session.scalar(select(func.count()).select_from(Prediction).where(Prediction.job_id == job_id))
        )


async def job_count(resources) -> int:
    async with resources.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Job)))


@pytest.fixture(scope="module")
async def train_dataset(client, alice, demo_train_table, versions):
    import pyarrow.csv as pacsv

    sink = io.BytesIO()
    pacsv.write_csv(demo_train_table.slice(0, 2500), sink)
    response = await client.post(
        "/api/datasets/upload", headers=alice.headers, files={"file": ("jobs-train.csv", sink.getvalue(), "text/csv")}
    )
    assert response.status_code == 201, response.text
    return response.json()


def _stage_seconds() -> dict[str, float]:
    return {
        stage.value: REGISTRY.get_sample_value("hab_scoring_stage_seconds_total", {"stage": stage.value}) or 0.0
        for stage in ScoringStage
    }


async def stored_eclo(resources, job_id: int) -> dict[int, float]:
    async with resources.sessions() as session:
        rows = await session.execute(select(Prediction.row_index, Prediction.eclo).where(Prediction.job_id == job_id))
        return {int(index): float(eclo) for index, eclo in rows.all()}


def expected_summary(
    eclo: dict[int, float], districts: list[str]
) -> tuple[dict[str, int], list[tuple[str, int, float]]]:
    """Bands and the top districts computed here, row by row, from the stored predictions and the input."""
    bands: dict[str, int] = {}
    for value in eclo.values():
        label = next(label for label, low, high, _ in BAND_CUTS if value >= low and (high is None or value < high))
        bands[label] = bands.get(label, 0) + 1
    per_district: dict[str, list[float]] = {}
    for index, value in eclo.items():
        per_district.setdefault(districts[index], []).append(value)
    top = sorted(
        ((d, len(v), round(sum(v) / len(v), 4)) for d, v in per_district.items()), key=lambda t: (-t[2], t[0])
    )[:10]
    return bands, top


async def test_dataset_job_end_to_end(client, alice, resources, settings, train_dataset, versions, demo_train_table):
    stages_before = _stage_seconds()
    submitted = await client.post("/api/predict/jobs", json={"dataset_id": train_dataset["id"]}, headers=alice.headers)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["job_id"]
    queued = (await client.get(f"/api/jobs/{job_id}", headers=alice.headers)).json()
    assert queued["status"] == "queued" and queued["total"] == 2500
    await run_worker(settings)
    job = (await client.get(f"/api/jobs/{job_id}", headers=alice.headers)).json()
    assert job["status"] == "succeeded", job
    assert job["progress"] == job["total"] == 2500 and job["duration_seconds"] is not None
    summary = job["summary"]
    assert summary["count"] == 2500 and summary["error_count"] == 0
    assert sum(summary["bands"].values()) == 2500 and summary["max_eclo"] >= summary["mean_eclo"] > 0
    assert 1 <= len(summary["top_districts"]) <= 10
    means = [d["mean_eclo"] for d in summary["top_districts"]]
    assert means == sorted(means, reverse=True)
    assert await job_predictions(resources, job_id) == 2500
    bands, top = expected_summary(await stored_eclo(resources, job_id), demo_train_table.column("시군구").to_pylist())
    assert summary["bands"] == bands
    assert [(d["시군구"], d["count"], d["mean_eclo"]) for d in summary["top_districts"]] == top
    # Each stage of the job is measured (the worker ran in this process, so its metrics are here).
    stages_after = _stage_seconds()
    assert all(stages_after[s] > stages_before[s] for s in stages_after), (stages_before, stages_after)

    page = (
        await client.get(
            f"/api/predict/jobs/{job_id}/results", params={"offset": 10, "limit": 5}, headers=alice.headers
        )
    ).json()
    assert set(page) >= {"items", "total", "offset", "limit"} and page["total"] == 2500
    assert [r["row_index"] for r in page["items"]] == [10, 11, 12, 13, 14]
    assert page["items"][0]["id"].startswith("ACCIDENT_") and page["items"][0]["interpretation"]

    # Delivered again (arq is at-least-once): nothing is scored twice.
    await resources.arq.enqueue_job("score_job", job_id, _job_id=f"score-{job_id}-again")
    await run_worker(settings)
    assert await job_predictions(resources, job_id) == 2500


async def test_inline_rows_with_bad_rows_and_csv_escaping(client, alice, resources, settings, versions):
    rows = [
        {**RAW_ROW, "ID": '=HYPERLINK("http://evil")'},
        {**RAW_ROW, "ID": "ok-1"},
        {**RAW_ROW, "ID": "bad-1", "기상상태": "폭풍"},
        {**RAW_ROW, "ID": "@SUM(A1)"},
    ]
    job_id = (await client.post("/api/predict/jobs", json={"rows": rows}, headers=alice.headers)).json()["job_id"]
    await run_worker(settings)
    job = (await client.get(f"/api/jobs/{job_id}", headers=alice.headers)).json()
    assert job["status"] == "succeeded"
    assert job["summary"]["count"] == 3 and job["summary"]["error_count"] == 1
    error = job["summary"]["errors"][0]
    assert error["row_index"] == 2 and error["field"] == "기상상태" and error["value"] == "폭풍"
    response = await client.get(f"/api/predict/jobs/{job_id}/results", params={"format": "csv"}, headers=alice.headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert lines[0] == ["row_index", "ID", "eclo", "interpretation"]
    ids = {int(line[0]): line[1] for line in lines[1:]}
    assert ids == {0: '\'=HYPERLINK("http://evil")', 1: "ok-1", 3: "'@SUM(A1)"}


async def test_results_with_the_input_columns_stay_safe_to_open(client, alice, resources, settings, versions):
    """keep_columns brings the input's own text into the CSV: every text cell is neutralised there too."""
    rows = [
        {**RAW_ROW, "ID": "a", "메모": '=HYPERLINK("http://evil")', "비고": "+cmd", "eclo": "-1", "점수": 3},
        {**RAW_ROW, "ID": "b", "메모": "평범한 메모", "비고": "\t탭", "eclo": "@x", "점수": 4},
    ]
    job_id = (await client.post("/api/predict/jobs", json={"rows": rows}, headers=alice.headers)).json()["job_id"]
    await run_worker(settings)
    response = await client.get(
        f"/api/predict/jobs/{job_id}/results", params={"format": "csv", "keep_columns": "true"}, headers=alice.headers
    )
    assert response.status_code == 200, response.text
    lines = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert list(lines[0]) == [
        "row_index",
        *RAW_ROW,
        "ID",
        "메모",
        "비고",
        "eclo (입력)",
        "점수",
        "eclo",
        "interpretation",
    ]
    first, second = lines
    assert (first["메모"], first["비고"], first["eclo (입력)"]) == ('\'=HYPERLINK("http://evil")', "'+cmd", "'-1")
    assert (second["메모"], second["비고"], second["eclo (입력)"]) == ("평범한 메모", "'\t탭", "'@x")
    assert (first["점수"], second["ID"], first["사고일시"]) == ("3", "b", RAW_ROW["사고일시"])
    assert float(first["eclo"]) >= 0 and first["interpretation"]
    # Only as CSV: a JSON page has a fixed shape; refused with a Korean message.
    refused = await client.get(
        f"/api/predict/jobs/{job_id}/results", params={"format": "json", "keep_columns": "true"}, headers=alice.headers
    )
    assert refused.status_code == 422 and "CSV" in refused.json()["error"]["message"]


async def test_refusals_store_no_job(client, alice, bob, resources, train_dataset, versions):
    before = await job_count(resources)
    lights = await client.post(
        "/api/datasets/upload",
        headers=alice.headers,
        files={"file": ("l.csv", "보안등위치명,설치개수\n대명1동1,1\n".encode(), "text/csv")},
    )
    not_accident = await client.post(
        "/api/predict/jobs", json={"dataset_id": lights.json()["id"]}, headers=alice.headers
    )
    assert not_accident.status_code == 422 and not_accident.json()["error"]["detail"]["kind"] == "lights"
    both = await client.post("/api/predict/jobs", json={"dataset_id": 1, "rows": [RAW_ROW]}, headers=alice.headers)
    neither = await client.post("/api/predict/jobs", json={}, headers=alice.headers)
    hidden = await client.post("/api/predict/jobs", json={"dataset_id": train_dataset["id"]}, headers=bob.headers)
    assert both.status_code == 422 and neither.status_code == 422 and hidden.status_code == 404
    assert await job_count(resources) == before


async def test_redis_down_answers_503_and_leaves_no_job(client, alice, resources, train_dataset, monkeypatch):
    before = await job_count(resources)
    monkeypatch.setattr(resources, "arq", arq_client(f"redis://127.0.0.1:{closed_port()}/0"))
    response = await client.post("/api/predict/jobs", json={"dataset_id": train_dataset["id"]}, headers=alice.headers)
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert response.json()["error"]["detail"]["reason"] == "queue_unavailable"
    assert await job_count(resources) == before


async def test_cancel_mid_run_keeps_written_chunks(client, alice, resources, settings, train_dataset, monkeypatch):
    monkeypatch.setattr(scoring, "CHUNK_ROWS", 500)
    job_id = (
        await client.post("/api/predict/jobs", json={"dataset_id": train_dataset["id"]}, headers=alice.headers)
    ).json()["job_id"]
    real_score_chunk = scoring_parts.score_chunk
    calls = 0

    def score_then_cancel(chunk, model, start):
        nonlocal calls
        calls += 1
        if calls == 3:  # the user presses cancel while the third chunk is being scored
            import asyncio

            asyncio.run_coroutine_threadsafe(
                client.post(f"/api/jobs/{job_id}/cancel", headers=alice.headers), loop
            ).result()
        return real_score_chunk(chunk, model, start)

    import asyncio

    loop = asyncio.get_running_loop()
    monkeypatch.setattr(scoring_parts, "score_chunk", score_then_cancel)
    await run_worker(settings)
    job = (await client.get(f"/api/jobs/{job_id}", headers=alice.headers)).json()
    # Two parts are scored side by side, so the cancel lands after the 1st or 2nd part's commit: whole
    # parts only, and the rows written so far stay and are counted.
    assert job["status"] == "cancelled" and job["progress"] in (500, 1000)
    stored = await job_predictions(resources, job_id)
    assert stored == job["progress"] == job["summary"]["count"]


async def test_cancel_queued_and_finished(client, alice, resources, settings, train_dataset):
    job_id = (
        await client.post("/api/predict/jobs", json={"dataset_id": train_dataset["id"]}, headers=alice.headers)
    ).json()["job_id"]
    cancelled = await client.post(f"/api/jobs/{job_id}/cancel", headers=alice.headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    await run_worker(settings)
    assert await job_predictions(resources, job_id) == 0
    again = await client.post(f"/api/jobs/{job_id}/cancel", headers=alice.headers)
    assert again.status_code == 409


async def test_jobs_list_filters_and_privacy(client, alice, bob, settings, versions):
    # Its own jobs (so it holds when run alone): one run to the end, then two left queued.
    async def submit() -> int:
        response = await client.post("/api/predict/jobs", json={"rows": [RAW_ROW]}, headers=alice.headers)
        assert response.status_code == 202, response.text
        return response.json()["job_id"]

    succeeded = await submit()
    await run_worker(settings)
    queued = [await submit(), await submit()]
    params = {"kind": "score", "limit": 100}
    listed = (await client.get("/api/jobs", params=params, headers=alice.headers)).json()
    assert listed["total"] >= 3 and all(j["kind"] == "score" for j in listed["items"])
    assert [j["id"] for j in listed["items"][:3]] == [*reversed(queued), succeeded]  # newest first
    created = [j["created_at"] for j in listed["items"]]
    assert created == sorted(created, reverse=True)
    done = (await client.get("/api/jobs", params={"status": "succeeded", "limit": 100}, headers=alice.headers)).json()
    assert {j["status"] for j in done["items"]} == {"succeeded"} and succeeded in {j["id"] for j in done["items"]}
    assert not set(queued) & {j["id"] for j in done["items"]}
    assert (await client.get("/api/jobs", params={"status": "weird"}, headers=alice.headers)).status_code == 400
    for job_id in (succeeded, *queued):
        assert (await client.get(f"/api/jobs/{job_id}", headers=bob.headers)).status_code == 404
    assert (await client.get(f"/api/predict/jobs/{succeeded}/results", headers=bob.headers)).status_code == 404
    assert (await client.get("/api/jobs", headers=bob.headers)).json()["total"] == 0  # bob never submits a job
    await run_worker(settings)  # leave nothing queued for the tests that follow


async def test_sweeper_requeues_a_silent_running_job(client, alice, resources, settings, train_dataset):
    # Simulate a worker that died mid-run: its arq message is gone, the row says running, heartbeat is old.
    job_id = await _running_job_without_message(client, alice, resources, settings, train_dataset["id"], silent=True)
    assert await requeue_stale_jobs(resources, stale_seconds=60, max_attempts=5) >= 1
    await run_worker(settings)
    job = (await client.get(f"/api/jobs/{job_id}", headers=alice.headers)).json()
    assert job["status"] == "succeeded" and await job_predictions(resources, job_id) == 2500


async def test_sweeper_fails_a_job_whose_worker_keeps_dying(client, alice, resources, settings, train_dataset):
    job_id = await _running_job_without_message(
        client, alice, resources, settings, train_dataset["id"], attempts=3, silent=True
    )

    # The sweeps also see whatever stale jobs earlier tests left, so only this job's own state and queue
    # messages are checked, never the sweep's total.
    # A live run still holds the lock (only slow to report): the job is left alone.
    async with job_lock(resources.engine, job_id) as held:
        assert held
        await requeue_stale_jobs(resources, stale_seconds=60, max_attempts=3)
    assert await _status(resources, job_id) == "running"
    assert await _messages(resources, settings, job_id) == []

    # Below the limit it goes back on the queue; at the limit, with nobody running it, it fails.
    await requeue_stale_jobs(resources, stale_seconds=60, max_attempts=4)
    assert await _status(resources, job_id) == "running"
    assert [m.split("-")[:3] for m in await _messages(resources, settings, job_id)] == [["score", str(job_id), "4"]]
    await resources.arq.delete(settings.queue_name)
    await requeue_stale_jobs(resources, stale_seconds=60, max_attempts=3)
    job = (await client.get(f"/api/jobs/{job_id}", headers=alice.headers)).json()
    assert job["status"] == "failed" and "3번의 시도" in job["error"] and job["finished_at"] is not None
    assert await _messages(resources, settings, job_id) == [] and await job_predictions(resources, job_id) == 0


async def _messages(resources, settings, job_id: int) -> list[str]:
    """This job's messages on the arq queue (arq ids are `<kind>-<job id>-<attempt>-<random>`)."""
    members = await resources.arq.zrange(settings.queue_name, 0, -1)
    ids = [m.decode() if isinstance(m, bytes) else m for m in members]
    return [i for i in ids if i.split("-")[1:2] == [str(job_id)]]


async def _mark_running(resources, job_id: int, *, attempts: int = 0, silent: bool = False) -> None:
    """The row of a run in progress; `silent`: its last heartbeat is a day old (its worker died)."""
    heartbeat = func.now() - func.make_interval(0, 0, 0, 1) if silent else func.now()
    async with resources.sessions() as session:
        await session.execute(
            update(Job).where(Job.id == job_id).values(status="running", attempts=attempts, heartbeat_at=heartbeat)
        )
        await session.commit()


async def _running_job_without_message(
    client, alice, resources, settings, dataset_id: int, *, attempts: int = 0, silent: bool = False
) -> int:
    """A submitted scoring job whose arq message is gone and whose row says running."""
    job_id = (await client.post("/api/predict/jobs", json={"dataset_id": dataset_id}, headers=alice.headers)).json()[
        "job_id"
    ]
    await resources.arq.delete(settings.queue_name)
    await _mark_running(resources, job_id, attempts=attempts, silent=silent)
    return job_id


async def _job(resources, job_id: int) -> Job:
    async with resources.sessions() as session:
        return await session.get(Job, job_id)


async def _status(resources, job_id: int) -> str:
    return (await _job(resources, job_id)).status


def _blocked_run(surfaced: BaseException | None = None, failure: BaseException | None = None):
    """A stand-in for `ScoringRun.run` that blocks until cancelled, then raises `surfaced` (a driver may
    report the cancellation as its own error); with `failure`, it fails on its own without being cancelled."""
    started = asyncio.Event()

    async def blocked_run(self) -> str:
        started.set()
        if failure is not None:
            raise failure
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if surfaced is not None:
                raise surfaced from None
            raise
        return "unreachable"

    return started, blocked_run


async def _cancel_mid_run(resources, job_id: int, monkeypatch, surfaced: BaseException) -> BaseException:
    """Run `score_job` with a blocked run and cancel it as a worker shutdown does."""
    from workers import jobs as worker_jobs

    started, blocked_run = _blocked_run(surfaced)
    monkeypatch.setattr(scoring.ScoringRun, "run", blocked_run)
    task = asyncio.create_task(worker_jobs.score_job({"resources": resources}, job_id))
    await started.wait()
    task.cancel()
    outcome = (await asyncio.gather(task, return_exceptions=True))[0]
    assert isinstance(outcome, BaseException)
    return outcome


@pytest.mark.parametrize("surfaced", [asyncio.CancelledError(), ConnectionResetError("driver interrupted")])
async def test_shutdown_requeues_a_running_job_whatever_the_run_raised(
    client, alice, resources, settings, train_dataset, monkeypatch, surfaced
):
    job_id = await _running_job_without_message(client, alice, resources, settings, train_dataset["id"])
    outcome = await _cancel_mid_run(resources, job_id, monkeypatch, surfaced)
    assert type(outcome) is type(surfaced)  # re-raised unchanged (arq's wait_for reports a cancellation either way)
    assert await _status(resources, job_id) == "queued"
    assert await resources.arq.zcard(settings.queue_name) == 1  # on the queue again, without the sweeper

    monkeypatch.undo()
    await run_worker(settings)
    assert await _status(resources, job_id) == "succeeded" and await job_predictions(resources, job_id) == 2500


async def test_a_run_that_fails_without_shutdown_is_not_requeued(
    client, alice, resources, settings, train_dataset, monkeypatch
):
    from workers import jobs as worker_jobs

    job_id = await _running_job_without_message(client, alice, resources, settings, train_dataset["id"])
    _, failing_run = _blocked_run(failure=ConnectionResetError("database went away"))
    monkeypatch.setattr(scoring.ScoringRun, "run", failing_run)
    with pytest.raises(ConnectionResetError):
        await worker_jobs.score_job({"resources": resources}, job_id)
    assert await _status(resources, job_id) == "running"  # arq retries it; the sweeper is the fallback
    assert await resources.arq.zcard(settings.queue_name) == 0


async def test_shutdown_requeue_skips_a_job_another_run_holds(
    client, alice, resources, settings, train_dataset, monkeypatch, caplog
):
    job_id = await _running_job_without_message(client, alice, resources, settings, train_dataset["id"])
    async with job_lock(resources.engine, job_id) as held:  # another worker's live run
        assert held
        with caplog.at_level("INFO", logger="hab.jobs"):
            await _cancel_mid_run(resources, job_id, monkeypatch, asyncio.CancelledError())
    assert await _status(resources, job_id) == "running" and await resources.arq.zcard(settings.queue_name) == 0
    assert f"job {job_id} not re-queued at shutdown: a run still holds its lock" in caplog.messages


async def test_shutdown_requeue_waits_for_the_interrupted_runs_own_lock(
    client, alice, resources, settings, train_dataset, monkeypatch
):
    """The interrupted run's connection may still hold the job's lock when the re-queue starts (its unlock in
    flight, or a closed session the server has not ended yet): the re-queue waits for it to go instead of
    taking it for another live run's and leaving the job running."""
    from sqlalchemy import event

    from api.jobs import recovery

    job_id = await _running_job_without_message(client, alice, resources, settings, train_dataset["id"])
    monkeypatch.setattr(recovery, "LOCK_RELEASE_WAIT_SECONDS", 60.0)  # this test lets go when it has seen a try
    tries: list[str] = []
    tried = asyncio.Event()

    def count_tries(conn, cursor, statement, parameters, context, executemany) -> None:
        if "pg_try_advisory_lock" in statement:
            tries.append(statement)
            tried.set()

    async with job_lock(resources.engine, job_id) as held:  # the interrupted run's connection, not yet let go
        assert held
        event.listen(resources.engine.sync_engine, "after_cursor_execute", count_tries)
        try:
            requeue = asyncio.create_task(recovery.requeue_at_shutdown(resources, job_id, ours=True))
            await asyncio.wait_for(tried.wait(), 10)
            assert await _status(resources, job_id) == "running"  # tried while the lock was still held
        except BaseException:
            event.remove(resources.engine.sync_engine, "after_cursor_execute", count_tries)
            raise
    try:
        await asyncio.wait_for(requeue, 10)
    finally:
        event.remove(resources.engine.sync_engine, "after_cursor_execute", count_tries)
    assert len(tries) >= 2  # a first try found the lock held; a later one took it
    assert await _status(resources, job_id) == "queued"
    assert [m.split("-")[:3] for m in await _messages(resources, settings, job_id)] == [["score", str(job_id), "1"]]


async def test_a_run_that_held_the_lock_has_its_shutdown_requeue_wait_for_it(
    client, alice, resources, settings, train_dataset, monkeypatch
):
    """The real lease: a run interrupted after taking the job's lock says so to the re-queue (which then waits
    for the lock); the job is back on the queue."""
    from api.jobs import recovery
    from workers import jobs as worker_jobs

    job_id = await _running_job_without_message(client, alice, resources, settings, train_dataset["id"])
    started, blocked = _blocked_run()
    monkeypatch.setattr(scoring.ScoringRun, "_run", blocked)  # inside the real run(): lock and lease taken
    real_requeue, seen = recovery.requeue_at_shutdown, []

    async def observed_requeue(resources_, job_id_, **options):
        seen.append(options)
        await real_requeue(resources_, job_id_, **options)

    monkeypatch.setattr(recovery, "requeue_at_shutdown", observed_requeue)
    task = asyncio.create_task(worker_jobs.score_job({"resources": resources}, job_id))
    await asyncio.wait_for(started.wait(), 30)
    task.cancel()
    assert isinstance((await asyncio.gather(task, return_exceptions=True))[0], asyncio.CancelledError)
    assert seen == [{"ours": True}]
    assert await _status(resources, job_id) == "queued"
    assert [m.split("-")[:3] for m in await _messages(resources, settings, job_id)] == [["score", str(job_id), "1"]]


async def test_shutdown_requeue_retries_a_failed_write(client, alice, resources, settings, train_dataset, monkeypatch):
    from api.jobs import recovery

    job_id = await _running_job_without_message(client, alice, resources, settings, train_dataset["id"])
    real_requeue, calls = recovery.requeue_one, []

    async def flaky_requeue(resources_, job_id_, **options):
        calls.append(job_id_)
        if len(calls) == 1:
            raise ConnectionResetError("pooled connection broken by the cancelled query")
        await real_requeue(resources_, job_id_, **options)

    monkeypatch.setattr(recovery, "requeue_one", flaky_requeue)
    outcome = await _cancel_mid_run(resources, job_id, monkeypatch, asyncio.CancelledError())
    assert isinstance(outcome, asyncio.CancelledError)  # the failed first try did not replace it
    assert calls == [job_id, job_id] and await _status(resources, job_id) == "queued"
    assert await resources.arq.zcard(settings.queue_name) == 1


@pytest.mark.parametrize("signals", [1, 2])
async def test_worker_shutdown_waits_for_the_requeue(
    client, alice, resources, settings, train_dataset, monkeypatch, signals
):
    """A real arq worker stopped as SIGTERM stops it, while another of its tasks ends cancelled (as a job
    caught in arq's own Redis calls does) and, in the second case, with a repeated signal: close() returns
    only once the job is back on the queue, and the worker's resources were closed after that."""
    import signal

    from api.jobs import recovery
    from workers import settings as worker_settings

    job_id = await _running_job_without_message(client, alice, resources, settings, train_dataset["id"])
    await enqueue(resources, await _job(resources, job_id))
    started, blocked_run = _blocked_run()
    monkeypatch.setattr(scoring.ScoringRun, "run", blocked_run)
    real_requeue, order = recovery.requeue_one, []

    async def slow_requeue(resources_, job_id_, **options):
        await asyncio.sleep(0.3)  # a re-queue still in flight when arq would have given up waiting
        await real_requeue(resources_, job_id_, **options)
        order.append("requeued")

    async def shutdown(ctx):
        order.append("on_shutdown")
        await worker_settings.shutdown(ctx)

    monkeypatch.setattr(recovery, "requeue_one", slow_requeue)
    worker = make_test_worker(settings, on_shutdown=shutdown)
    running = asyncio.create_task(worker.main())
    await asyncio.wait_for(started.wait(), 30)
    worker.tasks["stuck-in-redis"] = asyncio.create_task(asyncio.sleep(3600))
    for _ in range(signals):
        worker.handle_sig(signal.SIGTERM)
    await asyncio.gather(running, return_exceptions=True)
    await worker.close()
    assert order == ["requeued", "on_shutdown"]
    assert await _status(resources, job_id) == "queued"


async def test_sweeper_gives_up_a_chat_job_and_drops_its_sealed_key(alice, resources, settings):
    from api.chat import keybox

    async with resources.sessions() as session:
        job = Job(kind="chat", owner_id=alice.id, status="queued", total=1, params={})
        session.add(job)
        await session.commit()
    await _mark_running(resources, job.id, attempts=2, silent=True)
    await resources.redis.set(keybox.redis_key(job.id), b"sealed", ex=600)
    from workers.jobs import GIVE_UP  # what each kind adds to giving up, as the workers' sweeper passes it

    await requeue_stale_jobs(resources, stale_seconds=60, max_attempts=2, give_up=GIVE_UP)  # (counts other jobs too)
    failed = await _job(resources, job.id)
    assert failed.status == "failed" and failed.summary["error"]["code"] == "worker_lost"
    assert await _messages(resources, settings, job.id) == []  # given up, not re-queued
    assert await resources.redis.exists(keybox.redis_key(job.id)) == 0


async def test_a_helper_delivery_reaching_the_process_scoring_the_job_is_passed_on(resources, settings):
    """A process that scores a job (from the moment its run asks for help) passes helper deliveries of that
    job on to other workers instead of adding loops beside its own."""
    job_id = 987_654_321  # no such job: a delivery that is not passed on ends "idle"
    ours = {f"hab-score-part:{job_id}:".encode()}

    async def queued_for_job() -> list[bytes]:
        members = await resources.arq.zrange(settings.queue_name, 0, -1)
        return [m for m in members if any(m.startswith(prefix) for prefix in ours)]

    before = await queued_for_job()
    with scoring_parts.scoring_here(resources, job_id):
        with scoring_parts.scoring_here(resources, job_id):  # the run's mark, then its score_parts' mark
            assert await scoring_parts.help_score(resources, job_id) == "passed-on"
        assert job_id in resources.scoring_jobs  # the inner mark left the outer one in place
        assert await scoring_parts.help_score(resources, job_id) == "passed-on"
    assert job_id not in resources.scoring_jobs
    passed = [m for m in await queued_for_job() if m not in before]
    assert len(passed) == 2  # each passed on as a deferred delivery for another worker
    await resources.arq.zrem(settings.queue_name, *passed)
    await resources.arq.delete(*[b"arq:job:" + m for m in passed])
    assert await scoring_parts.help_score(resources, job_id) == "idle"


async def test_a_heartbeat_blocked_mid_statement_ends_with_the_run(client, alice, resources, settings, train_dataset):
    """A run ends while its heartbeat's UPDATE waits (here on the job row, held by this test): the lease's exit
    cancels the beat, which ends instead of beating on, and the lock is let go of."""
    job_id = await _running_job_without_message(client, alice, resources, settings, train_dataset["id"])
    beats: list[str] = []
    waiting = asyncio.Event()

    def seen_beat(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().startswith("update jobs set heartbeat_at"):
            beats.append(statement)
            waiting.set()

    engine = resources.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen_beat)
    try:
        async with resources.sessions() as session, session.begin():
            await session.execute(update(Job).where(Job.id == job_id).values(progress=Job.progress))  # row held
            lease = job_lease(resources.engine, job_id, heartbeat_seconds=0.01)
            held = await lease.__aenter__()
            assert held
            await asyncio.wait_for(waiting.wait(), 10)  # a beat is now blocked on the row
            await asyncio.wait_for(lease.__aexit__(None, None, None), 10)  # returns: the beat ended
    finally:
        event.remove(engine, "before_cursor_execute", seen_beat)
    assert beats
    async with job_lock(resources.engine, job_id) as free:  # let go of with the lease
        assert free
