"""Long chats as background jobs, run by an arq worker (submitted by TurnService.submit_job).

The job's params hold the question, datasets, conversation and model, never the key. The key is sealed
(api.chat.keybox) and parked in Redis under the job id with a TTL; the worker opens it, runs the turn with
progress (tool steps so far) written to the job, and deletes it when the job ends. The turn is stored and the
job marked succeeded in ONE transaction, so a re-delivery after that point finds a finished job and neither
calls Claude again nor stores the turn twice. A worker stopped mid-turn leaves the sealed key for the retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import msgspec
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from api.chat import keybox
from api.chat import schemas as s
from api.chat.turns import INTERNAL_ERROR, TurnService
from api.db.tables import Job
from api.errors import DomainError
from api.jobs.kinds import JobKind, JobStatus
from api.jobs.repository import JobRepository
from api.jobs.run import JobRun
from api.jobs.schemas import JobError
from api.resources import Resources
from api.users.repository import UserRepository
from api.users.services import Principal

logger = logging.getLogger("hab.chat.jobs")

CANCEL_CHECK_SECONDS = 2.0
KEY_EXPIRED = "API 키의 보관 시간이 지나 작업을 이어갈 수 없습니다. 질문을 다시 보내 주세요."


class ChatJobRun(JobRun):
    kind = JobKind.CHAT

    def __init__(self, resources: Resources, job_id: int) -> None:
        super().__init__(resources, job_id)
        self.steps: list[dict[str, Any]] = []
        self.cancelled_by_user = False
        self.owner: Principal | None = None
        self.api_key: str | None = None

    async def release(self) -> None:
        with contextlib.suppress(Exception):  # the TTL removes it anyway
            await self.resources.redis.delete(keybox.redis_key(self.job_id))

    async def load(self) -> Job | None:
        async with self.resources.sessions() as session:
            job = await JobRepository(session=session).get_one_or_none(id=self.job_id)
            if job is None:
                return None
            owner = await UserRepository(session=session).get_one_or_none(id=job.owner_id)
            if owner is None:
                return None
            self.owner = Principal(id=owner.id, name=owner.name, role=owner.role)
            return job

    async def prepare(self, job: Job) -> str | None:
        self.api_key = await self._open_key()
        if self.api_key is None:
            return await self.finish(JobStatus.FAILED, error=KEY_EXPIRED, summary={"steps": []})
        return None

    def running_fields(self) -> dict[str, Any]:
        return {"progress": 0, "summary": {"steps": []}}

    async def _open_key(self) -> str | None:
        sealed = await self.resources.redis.get(keybox.redis_key(self.job_id))
        if sealed is None:
            return None
        try:
            return keybox.unseal(self.resources.settings.sealing_secret(), self.job_id, sealed)
        except keybox.SealedKeyError:
            return None

    async def execute(self, job: Job) -> str:
        assert self.owner is not None and self.api_key is not None
        turn = asyncio.create_task(self._turn(self.owner, job.params, self.api_key))
        watcher = asyncio.create_task(self._watch_cancel(turn))
        try:
            await turn
        except asyncio.CancelledError:
            if self.cancelled_by_user:
                return await self.finish(JobStatus.CANCELLED, summary={"steps": self.steps})
            raise  # worker shutdown: the sealed key stays for the retry
        except DomainError as exc:
            summary = {"steps": self.steps, "error": msgspec.to_builtins(JobError(code=exc.code, message=exc.message))}
            return await self.finish(JobStatus.FAILED, error=exc.message, summary=summary)
        except Exception as exc:
            logger.error("chat job %s failed: %s", self.job_id, type(exc).__name__)
            failure = JobError(code="internal_error", message=INTERNAL_ERROR)
            summary = {"steps": self.steps, "error": msgspec.to_builtins(failure)}
            return await self.finish(JobStatus.FAILED, error=INTERNAL_ERROR, summary=summary)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        await self.release()  # the job row was finished together with the stored turn
        return JobStatus.SUCCEEDED

    async def _turn(self, owner: Principal, params: dict[str, Any], api_key: str) -> s.ChatResponse:
        request = msgspec.convert(params, s.ChatRequest)

        async def progress(event: str, data: dict[str, Any]) -> None:
            if event != "tool_end":
                return
            self.steps.append(data)
            await self.set(progress=len(self.steps), summary={"steps": self.steps}, heartbeat_at=func.now())

        async def finish_job(session: AsyncSession, result: s.ChatResponse) -> None:
            await JobRepository(session=session).set_fields(
                self.job_id,
                status=JobStatus.SUCCEEDED,
                progress=len(self.steps),
                summary={**msgspec.to_builtins(result), "steps": self.steps},
                error=None,
                finished_at=func.now(),
            )

        async with self.resources.sessions() as session:
            service = TurnService(session, self.resources)
            prepared = await service.prepare(owner, request)
            return await service.answer(prepared, api_key, emit=progress, finalize=finish_job)

    async def _watch_cancel(self, turn: asyncio.Task[Any]) -> None:
        """Cancel the turn when the user cancels the job (the lease keeps the heartbeat).

        A failed check (database hiccup) is logged and retried: it must never fail a turn that is working.
        """
        while not turn.done():
            await asyncio.sleep(CANCEL_CHECK_SECONDS)
            try:
                async with self.resources.sessions() as session:
                    job = await JobRepository(session=session).get_one_or_none(id=self.job_id)
                if job is not None and job.cancel_requested:
                    self.cancelled_by_user = True
                    turn.cancel()
                    return
            except Exception as exc:
                logger.warning("chat job %s cancel check failed (%s); retrying", self.job_id, type(exc).__name__)
