"""This worker's record on the dashboard (api/jobs/presence.py): who it is, since when, which jobs it runs."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from typing import Any

from api.jobs import presence

logger = logging.getLogger("hab.worker")


class Presence:
    """The running jobs of one worker process, reported to Redis every third of the TTL."""

    def __init__(self, resources: Any) -> None:
        self.resources = resources
        self.queue_name: str = resources.settings.queue_name
        self.ttl: float = resources.settings.worker_ttl_seconds
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.started_at = time.time()
        self.running: dict[int, int] = {}  # job id → deliveries of it running here (a re-delivery returns busy)

    def started(self, job_id: int) -> None:
        self.running[job_id] = self.running.get(job_id, 0) + 1

    def ended(self, job_id: int) -> None:
        left = self.running.get(job_id, 0) - 1
        if left > 0:
            self.running[job_id] = left
        else:
            self.running.pop(job_id, None)

    def record(self) -> presence.WorkerPresence:
        return presence.WorkerPresence(
            worker_id=self.worker_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=self.started_at,
            heartbeat_at=time.time(),
            job_ids=sorted(self.running),
        )

    async def report_forever(self) -> None:
        failing = False
        while True:
            try:
                await presence.publish(self.resources.redis, self.queue_name, self.record(), ttl_seconds=self.ttl)
                failing = False
            except Exception as exc:  # Redis away: the record expires, and comes back with Redis
                if not failing:
                    logger.warning("could not report this worker's presence (%s)", type(exc).__name__)
                failing = True
            await asyncio.sleep(self.ttl / 3)

    async def withdraw(self) -> None:
        try:
            await presence.withdraw(self.resources.redis, self.queue_name, self.worker_id)
        except Exception as exc:  # Redis away: the record expires by itself
            logger.warning("could not withdraw this worker's presence (%s)", type(exc).__name__)
