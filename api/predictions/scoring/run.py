"""The worker side of a batch-scoring job: its input scored chunk by chunk, each chunk committed whole.

A run holds its job's lock and lease for its whole life (api/jobs/run.py), so two deliveries of the same
job never score side by side. Each chunk's rows, the job's progress and its running summary are written in
ONE transaction: after a crash the job resumes from the last committed chunk, and a chunk is never
half-written. (job_id, row_index) is unique besides.
"""

from __future__ import annotations

import asyncio
import contextlib

import msgspec
import pyarrow as pa
from sqlalchemy.ext.asyncio import AsyncSession

from api.datasets.parquet import from_parquet
from api.datasets.repository import DatasetRepository
from api.db.tables import Job
from api.errors import NotFound
from api.jobs.kinds import JobKind, JobStatus
from api.jobs.repository import JobRepository
from api.jobs.run import JobRun
from api.observability.metrics import PredictionSource, count_job_rows, count_predictions
from api.predictions.repository import commit_scored_chunk
from api.predictions.scoring.chunks import ChunkResult, ScoringTally, score_chunk
from api.resources import Resources
from models.features import FeatureError
from models.loaded import LoadedModel

CHUNK_ROWS = 100_000
NO_MODEL = "활성화된 ECLO 모델이 없습니다."


async def load_job_input(session: AsyncSession, resources: Resources, job: Job) -> pa.Table:
    """A scoring job's input: its stored dataset (through the table cache) or its inline rows."""
    dataset_id = job.params.get("dataset_id")
    if dataset_id is None:
        data = await JobRepository(session=session).input_parquet(job.id)
        if data is None:
            raise NotFound("작업 입력이 없습니다.")
        return await asyncio.to_thread(from_parquet, data)
    repository = DatasetRepository(session=session)
    row = await repository.get_one_or_none(id=dataset_id)
    table = None if row is None else await resources.tables.load(row.content_sha256, repository.fetch_parquet)
    if table is None:
        raise NotFound("작업 대상 데이터셋이 삭제되었습니다.")
    return table


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
        tally = ScoringTally.resumed(job.summary)
        return await self._score(table, model, start=int(job.progress), tally=tally)

    async def _done(self, status: JobStatus, tally: ScoringTally, error: str | None = None) -> str:
        return await self.finish(status, error=error, summary=msgspec.to_builtins(tally.final()))

    async def _score(self, table: pa.Table, model: LoadedModel, *, start: int, tally: ScoringTally) -> str:
        chunk_rows = self.resources.settings.score_chunk_rows or CHUNK_ROWS
        starts = list(range(start, table.num_rows, chunk_rows))

        def scoring(index: int) -> asyncio.Task[ChunkResult]:
            chunk = table.slice(starts[index], chunk_rows)
            return asyncio.create_task(asyncio.to_thread(score_chunk, chunk, model, starts[index]))

        # Pipelined: chunk k+1 is scored (worker thread, LightGBM) while chunk k is COPYed (PostgreSQL), so
        # both cores work; commits stay one per chunk and in order, so resuming is unchanged.
        upcoming = scoring(0) if starts else None
        try:
            for index, chunk_start in enumerate(starts):
                assert upcoming is not None
                try:
                    result = await upcoming
                except FeatureError as exc:  # a column-level problem: no row of this input can be scored
                    return await self._done(JobStatus.FAILED, tally, error=exc.message)
                upcoming = scoring(index + 1) if index + 1 < len(starts) else None
                merged = tally.with_chunk(result, model)
                end = min(chunk_start + chunk_rows, table.num_rows)
                written = await commit_scored_chunk(
                    self.resources.engine,
                    self.job_id,
                    result.row_index,
                    result.eclo,
                    model_version=model.version,
                    summary=msgspec.to_builtins(merged),
                    progress=end,
                )
                if not written:  # cancelled: this chunk was not written, the summary stays at the last one that was
                    return await self._done(JobStatus.CANCELLED, tally)
                tally = merged
                count_job_rows(self.kind, end - chunk_start)
                count_predictions(model.version, PredictionSource.JOB, len(result.eclo))
        finally:
            if upcoming is not None and not upcoming.done():
                upcoming.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await upcoming
        return await self._done(JobStatus.SUCCEEDED, tally)
