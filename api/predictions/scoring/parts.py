"""Scoring a job's parts: the loop every worker on a job runs, the run's own and its helpers'.

A scoring job's input is split into parts (api/predictions/repository.py `ensure_parts`); the worker that
runs the job (ScoringRun) enqueues helper deliveries, and every worker that picks one up scores free parts
side by side with it, each part in one transaction (`score_free_part`). So a second worker makes one job
faster, and a part is stored exactly once whoever scores it and whoever dies.

Inside one process, two loops run at once: one scores a part in a thread while the other COPYs its rows
(both cores busy, as the pipelined chunks of one worker were).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pyarrow as pa

from api.jobs.kinds import SCORE_PART_FUNCTION, JobKind, JobStatus
from api.jobs.repository import JobRepository
from api.observability.metrics import (
    PredictionSource,
    ScoringStage,
    count_job_rows,
    count_predictions,
    count_scoring_stage,
)
from api.predictions.repository import PartOutcome, PartRange, score_free_part
from api.predictions.scoring.chunks import ChunkResult, ScoringTally, score_chunk
from api.predictions.scoring.inputs import load_job_input
from api.resources import Resources
from models.features import FeatureError
from models.loaded import LoadedModel

logger = logging.getLogger(__name__)

LOOPS_PER_PROCESS = 2
MAX_BOUNCES = 20
BOUNCE_DELAY = dt.timedelta(seconds=0.3)


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@contextlib.contextmanager
def scoring_here(resources: Resources, job_id: int) -> Iterator[None]:
    """Mark the job as being scored by this process, so helper deliveries that reach it meanwhile are passed
    on to other workers rather than adding loops here (nested marks keep the outermost one)."""
    if job_id in resources.scoring_jobs:
        yield
        return
    resources.scoring_jobs.add(job_id)
    try:
        yield
    finally:
        resources.scoring_jobs.discard(job_id)


async def score_parts(
    resources: Resources, job_id: int, table: pa.Table, model: LoadedModel, *, loops: int = LOOPS_PER_PROCESS
) -> PartOutcome:
    """Score free parts until none is free (NONE_FREE) or the job was cancelled (CANCELLED). A FeatureError
    (a column no row can be scored without) stops every loop and propagates."""
    version = model.version
    identity = worker_identity()

    async def score(part: PartRange) -> ChunkResult:
        chunk = table.slice(part.start, part.stop - part.start)
        return await asyncio.to_thread(score_chunk, chunk, model, part.start)

    def merge(stored: dict[str, Any] | None, result: ChunkResult) -> dict[str, Any]:
        return msgspec.to_builtins(ScoringTally.resumed(stored).with_chunk(result, model))

    async def loop() -> PartOutcome:
        scored: list[tuple[PartRange, ChunkResult]] = []

        async def score_and_keep(part: PartRange) -> ChunkResult:
            result = await score(part)
            scored.append((part, result))
            return result

        while True:
            scored.clear()
            started = time.perf_counter()
            outcome = await score_free_part(
                resources.engine,
                job_id,
                score=score_and_keep,
                merge_summary=merge,
                model_version=version,
                worker=identity,
            )
            if outcome is not PartOutcome.SCORED:
                return outcome
            elapsed = time.perf_counter() - started
            for part, result in scored:  # counted once committed
                count_job_rows(JobKind.SCORE, part.stop - part.start)
                count_predictions(version, PredictionSource.JOB, len(result.eclo))
                count_scoring_stage(ScoringStage.ENCODE, result.encode_s)
                count_scoring_stage(ScoringStage.PREDICT, result.predict_s)
                # the rest of the part's transaction: claim, COPY, summary, commit
                count_scoring_stage(ScoringStage.WRITE, elapsed - result.encode_s - result.predict_s)

    with scoring_here(resources, job_id):
        tasks = [asyncio.create_task(loop()) for _ in range(max(1, loops))]
        try:
            outcomes = await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return PartOutcome.CANCELLED if PartOutcome.CANCELLED in outcomes else PartOutcome.NONE_FREE


async def help_score(resources: Resources, job_id: int, bounce: int = 0) -> str:
    """A helper delivery: score free parts of a running job with the model version it started with.

    A process already scoring the job passes the delivery on (re-enqueued a moment later, a bounded number
    of times) so that it reaches another worker instead of stacking here."""
    if job_id in resources.scoring_jobs:
        if bounce < MAX_BOUNCES:
            with contextlib.suppress(Exception):
                await resources.arq.enqueue_job(
                    SCORE_PART_FUNCTION,
                    job_id,
                    bounce + 1,
                    _job_id=f"hab-score-part:{job_id}:{secrets.token_hex(6)}",
                    _defer_by=BOUNCE_DELAY,
                )
        return "passed-on"
    async with resources.sessions() as session:
        job = await JobRepository(session=session).get_one_or_none(id=job_id)
        if job is None or job.status != JobStatus.RUNNING:
            return "idle"
        version = job.params.get("model_version")
        model = resources.models.current
        if model is None or version is None or model.version != version:
            return "other-model"  # the run itself scores with its own model
        table = await load_job_input(session, resources, job)
    try:
        outcome = await score_parts(resources, job_id, table, model)
    except FeatureError:
        return "refused"  # the run itself meets the same error and fails the job
    logger.info("helped job %s (%s)", job_id, outcome.value)
    return outcome.value
