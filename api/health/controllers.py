"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Request, Response, get
from sqlalchemy import text

from api.resources import Resources
from api.schemas import Output


class Health(Output):
    status: str


class Readiness(Output):
    status: str
    checks: dict[str, str]
    failed: list[str]


async def _check_postgres(resources: Resources) -> None:
    async with resources.engine.connect() as conn:
        await conn.execute(text("select 1"))


async def _check_redis(resources: Resources) -> None:
    await resources.redis.ping()


class HealthController(Controller):
    tags = ["health"]

    @get("/health", summary="프로세스 생존 확인")
    async def health(self) -> Health:
        return Health(status="ok")

    @get("/ready", summary="PostgreSQL·Redis 연결 확인")
    async def ready(self, request: Request[Any, Any, Any]) -> Response[Readiness]:
        resources: Resources = request.app.state.resources
        checks: dict[str, str] = {}
        for name, check in (("postgres", _check_postgres), ("redis", _check_redis)):
            try:
                await asyncio.wait_for(check(resources), timeout=2.0)
                checks[name] = "ok"
            except Exception as exc:  # any failure means "not ready"; the type says enough
                checks[name] = f"unreachable ({type(exc).__name__})"
        failed = [name for name, state in checks.items() if state != "ok"]
        body = Readiness(status="ok" if not failed else "unavailable", checks=checks, failed=failed)
        return Response(body, status_code=200 if not failed else 503)
