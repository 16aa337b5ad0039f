"""The job kinds this worker runs: one arq function per kind, derived from the kind → run table.

The runs themselves live in their domain packages (api/predictions/scoring/run.py, api/chat/jobs.py),
on the shared life cycle of api/jobs/run.py; this module is the process side: it names each function as
the API enqueues it, and puts a run its worker's shutdown interrupted straight back in line.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from api.cancellation import being_cancelled
from api.chat.jobs import ChatJobRun
from api.jobs import recovery
from api.jobs.kinds import SCORE_PART_FUNCTION, JobKind, function_name
from api.jobs.run import JobRun
from api.observability.exposition import sample_queue_depth
from api.predictions.scoring.parts import help_score
from api.predictions.scoring.run import ScoringRun

logger = logging.getLogger("hab.jobs")

RUNS: dict[JobKind, type[JobRun]] = {JobKind.SCORE: ScoringRun, JobKind.CHAT: ChatJobRun}
GIVE_UP: recovery.GiveUpHooks = {kind: run.give_up for kind, run in RUNS.items()}


class JobFunction(Protocol):
    """An arq function over one job id (what arq's `func` takes: named, async, ctx first)."""

    __qualname__: str

    async def __call__(self, ctx: dict[str, Any], job_id: int) -> str: ...


def job_function(run: type[JobRun]) -> JobFunction:
    async def run_job(ctx: dict[str, Any], job_id: int) -> str:
        """Run one delivery (idempotent: a re-delivery resumes, or returns the final status or busy)."""
        resources = ctx["resources"]
        reporter = ctx.get("presence")  # the dashboard lists the job under this worker while it runs
        if reporter is not None:
            reporter.started(job_id)
        runner = run(resources, job_id)
        try:
            return await runner.run()
        except BaseException as exc:
            # Shutdown (SIGTERM) cancels this task; an open transaction has rolled back. Put the job back in
            # line now instead of waiting for the sweeper. Checked on the task rather than the exception type.
            # Run as background work so that closing the resources waits for it even if this task is abandoned.
            # When this run held the job's lock, the re-queue waits for the lock to be let go of.
            if being_cancelled():
                requeue = recovery.requeue_at_shutdown(resources, job_id, ours=runner.held)
                await asyncio.shield(resources.run_in_background(requeue))
            elif isinstance(exc, asyncio.CancelledError):  # cancelled from within, not by a shutdown
                logger.warning("job %s stopped by a cancellation of its own; left to the sweeper", job_id)
            raise
        finally:
            if reporter is not None:
                reporter.ended(job_id)

    run_job.__name__ = run_job.__qualname__ = function_name(run.kind)
    return run_job


FUNCTIONS: dict[JobKind, JobFunction] = {kind: job_function(run) for kind, run in RUNS.items()}


async def score_job_part(ctx: dict[str, Any], job_id: int, bounce: int = 0) -> str:
    """A helper delivery of a scoring job: score its free parts beside the run (api/predictions/scoring/parts.py).
    Nothing to re-queue at shutdown: an interrupted part's transaction rolls back and the run scores it."""
    return await help_score(ctx["resources"], job_id, bounce)


score_job_part.__name__ = score_job_part.__qualname__ = SCORE_PART_FUNCTION
score_job = FUNCTIONS[JobKind.SCORE]
chat_job = FUNCTIONS[JobKind.CHAT]

SWEEP_SECONDS = 3.0  # with the lease (HAB_JOB_STALE_SECONDS, 6 s): a crashed run is put back within ~9 s


async def sweep_forever(resources: Any) -> None:
    """Every few seconds, put silent jobs back in line (a task of each worker, not an arq cron job: at this
    rate arq would log every run, and sweeps are idempotent, so each worker sweeping is harmless)."""
    settings = resources.settings
    while True:
        try:
            count = await recovery.requeue_stale_jobs(
                resources,
                stale_seconds=settings.job_stale_seconds,
                max_attempts=settings.job_max_attempts,
                give_up=GIVE_UP,
            )
            if count:
                recovery.logger.info("re-queued %d stale jobs", count)
            await sample_queue_depth(resources.redis, settings.queue_name)
        except Exception as exc:  # PostgreSQL away for a moment: the next sweep tries again
            recovery.logger.warning("stale-job sweep failed (%s)", type(exc).__name__)
        await asyncio.sleep(SWEEP_SECONDS)
