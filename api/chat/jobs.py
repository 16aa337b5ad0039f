"""Long chats as background jobs, run by an arq worker (submitted by ChatService.submit_job).

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
from api.chat.services import INTERNAL_ERROR, ChatService
from api.db.tables import Job
from api.errors import DomainError
from api.jobs.locks import job_lock
from api.jobs.repository import TERMINAL, JobRepository
from api.jobs.services import finish_job, update_job
from api.resources import Resources
from api.users.repository import UserRepository
from api.users.services import Principal

logger = logging.getLogger("hab.chat.jobs")

HEARTBEAT_SECONDS = 5.0
KEY_EXPIRED = "API 키의 보관 시간이 지나 작업을 이어갈 수 없습니다. 질문을 다시 보내 주세요."


class ChatJobRun:
    def __init__(self, resources: Resources, job_id: int) -> None:
        self.resources = resources
        self.job_id = job_id
        self.steps: list[dict[str, Any]] = []
        self.cancelled_by_user = False

    async def run(self) -> str:
        async with job_lock(self.resources.engine, self.job_id) as held:
            return await self._run() if held else "busy"

    async def _set(self, **values: Any) -> None:
        await update_job(self.resources, self.job_id, **values)

    async def _finish(self, status: str, *, error: str | None = None, summary: dict[str, Any] | None = None) -> str:
        await finish_job(self.resources, self.job_id, status, error=error, summary=summary)
        await self._forget_key()
        return status

    async def _forget_key(self) -> None:
        with contextlib.suppress(Exception):  # the TTL removes it anyway
            await self.resources.redis.delete(keybox.redis_key(self.job_id))

    async def _load(self) -> tuple[Job, Principal] | None:
        async with self.resources.sessions() as session:
            job = await JobRepository(session=session).get_one_or_none(id=self.job_id)
            if job is None:
                return None
            owner = await UserRepository(session=session).get_one_or_none(id=job.owner_id)
            if owner is None:
                return None
            return job, Principal(id=owner.id, name=owner.name, role=owner.role)

    async def _open_key(self) -> str | None:
        sealed = await self.resources.redis.get(keybox.redis_key(self.job_id))
        if sealed is None:
            return None
        try:
            return keybox.unseal(self.resources.settings.sealing_secret(), self.job_id, sealed)
        except keybox.SealedKeyError:
            return None

    async def _run(self) -> str:
        loaded = await self._load()
        if loaded is None:
            await self._forget_key()
            return "missing"
        job, owner = loaded
        if job.status in TERMINAL:
            await self._forget_key()
            return job.status
        if job.cancel_requested:
            return await self._finish("cancelled")
        api_key = await self._open_key()
        if api_key is None:
            return await self._finish("failed", error=KEY_EXPIRED, summary={"steps": []})
        await self._set(
            status="running",
            attempts=Job.attempts + 1,
            started_at=func.coalesce(Job.started_at, func.now()),
            heartbeat_at=func.now(),
            progress=0,
            summary={"steps": []},
        )
        turn = asyncio.create_task(self._turn(owner, job.params, api_key))
        watcher = asyncio.create_task(self._heartbeat(turn))
        try:
            await turn
        except asyncio.CancelledError:
            if self.cancelled_by_user:
                return await self._finish("cancelled", summary={"steps": self.steps})
            raise  # worker shutdown: the sealed key stays for the retry
        except DomainError as exc:
            summary = {"steps": self.steps, "error": {"code": exc.code, "message": exc.message}}
            return await self._finish("failed", error=exc.message, summary=summary)
        except Exception as exc:
            logger.error("chat job %s failed: %s", self.job_id, type(exc).__name__)
            summary = {"steps": self.steps, "error": {"code": "internal_error", "message": INTERNAL_ERROR}}
            return await self._finish("failed", error=INTERNAL_ERROR, summary=summary)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        await self._forget_key()  # the job row was finished together with the stored turn
        return "succeeded"

    async def _turn(self, owner: Principal, params: dict[str, Any], api_key: str) -> s.ChatResponse:
        request = msgspec.convert(params, s.ChatRequest)

        async def progress(event: str, data: dict[str, Any]) -> None:
            if event != "tool_end":
                return
            self.steps.append(data)
            await self._set(progress=len(self.steps), summary={"steps": self.steps}, heartbeat_at=func.now())

        async def finish_job(session: AsyncSession, result: s.ChatResponse) -> None:
            await JobRepository(session=session).set_fields(
                self.job_id,
                status="succeeded",
                progress=len(self.steps),
                summary={**msgspec.to_builtins(result), "steps": self.steps},
                error=None,
                finished_at=func.now(),
            )

        async with self.resources.sessions() as session:
            service = ChatService(session, self.resources)
            prepared = await service.prepare(owner, request)
            return await service.answer(prepared, api_key, emit=progress, finalize=finish_job)

    async def _heartbeat(self, turn: asyncio.Task[Any]) -> None:
        """Keep the job alive for the stale-job sweeper; cancel the turn when the user cancels the job.

        A failed beat (database hiccup) is logged and retried: it must never fail a turn that is working.
        """
        while not turn.done():
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                async with self.resources.sessions() as session:
                    repository = JobRepository(session=session)
                    job = await repository.get_one_or_none(id=self.job_id)
                    if job is not None and job.cancel_requested:
                        self.cancelled_by_user = True
                        turn.cancel()
                        return
                    await repository.set_fields(self.job_id, heartbeat_at=func.now())
                    await session.commit()
            except Exception as exc:
                logger.warning("chat job %s heartbeat failed (%s); retrying", self.job_id, type(exc).__name__)
