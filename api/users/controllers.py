from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get

from api.schemas import Output
from api.users.services import Principal, Role


class Me(Output):
    id: int
    name: str
    role: Role


class UserController(Controller):
    path = "/api/me"
    tags = ["users"]

    @get("/", summary="현재 사용자")
    async def me(self, request: Request[Principal, Any, Any]) -> Me:
        return Me(id=request.user.id, name=request.user.name, role=Role(request.user.role))
