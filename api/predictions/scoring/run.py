"""The worker side of a batch-scoring job: the run that owns it, split into parts that any worker can score.

The run holds its job's lock and lease for its whole life (api/jobs/run.py), so two deliveries of the same
job never run side by side. It splits the input into parts (once: a re-delivered job finds them), asks
other workers for help (helper deliveries, api/predictions/scoring/parts.py), scores free parts itself,
waits for the parts other workers hold, and finishes with the summary the parts folded together. Each
part's rows, its `done`, the job's progress and its running summary are written in ONE transaction: after a
crash only unfinished parts are scored again, and a part is never half-written. (job_id, row_index) is
unique besides.
"""

from __future__ import annotations

import asyncio

import msgspec
import pyarrow as pa

from api.db.tables import Job
from api.errors import NotFound
from api.jobs.kinds import SCORE_PART_FUNCTION, JobKind, JobStatus
from api.jobs.run import JobRun
from api.predictions.repository import PartOutcome, ensure_parts, job_summary, parts_left
from api.predictions.scoring.chunks import ScoringTally
from api.predictions.scoring.inputs import load_job_input
from api.predictions.scoring.parts import LOOPS_PER_PROCESS, score_parts, scoring_here
from models.features import FeatureError
from models.loaded import LoadedModel

CHUNK_ROWS = 100_000  # rows per part, at most
MIN_SPLIT_ROWS = 20_000  # smaller inputs are one part
NO_MODEL = "활성화된 ECLO 모델이 없습니다."
WAIT_FOR_HELPERS_SECONDS = 0.2  # how often the run looks whether the parts other workers hold are done


def balanced_part_rows(rows: int, *, loops: int = LOOPS_PER_PROCESS) -> int:
    """Rows per part: at most CHUNK_ROWS, in a number of parts that the process's loops share evenly. Three
    parts of 100k on two loops left one loop idle for the last third (300k rows: 4 parts of 75k were faster,
    164-179k against 133-165k rows/s in one probe)."""
    if rows <= MIN_SPLIT_ROWS:  # one part: splitting would cost more transactions than it overlaps
        return CHUNK_ROWS
    parts = -(-rows // CHUNK_ROWS)
    parts = -(-parts // loops) * loops
    return -(-rows // parts)


class ScoringRun(JobRun):
    kind = JobKind.SCORE

    async def _model(self) -> LoadedModel | None:
        model = self.resources.models.current
        if model is None:
            await self.resources.model_sync.refresh()
            model = self.resources.models.current
        return model

    async def execute(self, job: Job) -> str:
        model = await self._model()
        if model is None:
            return await self.finish(JobStatus.FAILED, error=NO_MODEL)
        async with self.resources.sessions() as session:
            try:
                table = await load_job_input(session, self.resources, job)
            except NotFound as exc:
                return await self.finish(JobStatus.FAILED, error=exc.message)
        await self.set(total=table.num_rows, params={**job.params, "model_version": model.version})
        start = int(job.progress)
        part_rows = self.resources.settings.score_chunk_rows or balanced_part_rows(table.num_rows - start)
        parts = await ensure_parts(
            self.resources.engine, self.job_id, start=start, total=table.num_rows, part_rows=part_rows
        )
        # Marked before the helpers are asked: a helper delivery this process picks up within its 50 ms poll
        # must be passed on, not become a second pair of loops beside the run's own.
        with scoring_here(self.resources, self.job_id):
            await self._ask_for_help(parts - 1, attempt=job.attempts + 1)
            return await self._score(table, model)

    async def _ask_for_help(self, wanted: int, *, attempt: int) -> None:
        """Helper deliveries for the other workers (each scores free parts, then ends). Best effort: without
        them this run scores every part itself."""
        for helper in range(min(wanted, self.resources.settings.score_helpers)):
            try:
                await self.resources.arq.enqueue_job(
                    SCORE_PART_FUNCTION, self.job_id, _job_id=f"hab-score-part:{self.job_id}:{attempt}:{helper}"
                )
            except Exception:  # Redis away: score alone
                return

    async def _done(self, status: JobStatus, error: str | None = None) -> str:
        stored = await job_summary(self.resources.engine, self.job_id)
        summary = msgspec.to_builtins(ScoringTally.resumed(stored).final())
        return await self.finish(status, error=error, summary=summary)

    async def _score(self, table: pa.Table, model: LoadedModel) -> str:
        engine = self.resources.engine
        while True:
            try:
                outcome = await score_parts(self.resources, self.job_id, table, model)
            except FeatureError as exc:  # a column-level problem: no row of this input can be scored
                return await self._done(JobStatus.FAILED, error=exc.message)
            if outcome is PartOutcome.CANCELLED:
                return await self._done(JobStatus.CANCELLED)
            if await parts_left(engine, self.job_id) == 0:
                return await self._done(JobStatus.SUCCEEDED)
            # Other workers hold the rest: wait for them, and take over any part whose worker died.
            if await self._cancel_requested():
                return await self._done(JobStatus.CANCELLED)
            await asyncio.sleep(WAIT_FOR_HELPERS_SECONDS)

    async def _cancel_requested(self) -> bool:
        job = await self.load()
        return job is None or job.cancel_requested
