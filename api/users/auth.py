"""Bearer-token authentication for /api routes (share-link reads excepted) and the admin guard."""

from __future__ import annotations

import warnings
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult, DefineMiddleware
from litestar.types import Scope

from api.errors import Forbidden
from api.users.services import Principal, UserService

# Everything outside /api is public; inside it, handlers opt out with `exclude_from_auth=True`
# (share-link reads), so that e.g. revoking a share link still needs a token.
PUBLIC_PATHS = [r"^(?!/api/)"]
# Litestar flags any pattern that matches "/" as "excludes everything"; this one deliberately excludes
# every non-/api path and nothing under /api.
warnings.filterwarnings("ignore", message=r"Middleware 'BearerAuthMiddleware' exclude pattern")


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        token = bearer_token(connection.scope)
        if token is None:
            raise NotAuthorizedException()
        resources = connection.app.state.resources
        principal = resources.principals.get(token)
        if principal is None:

            async def lookup(token: str) -> Principal | None:
                async with resources.sessions() as session:
                    return await UserService(session).authenticate(token)

            principal = await resources.principals.get_or_load(token, lookup)
            if principal is None:
                raise NotAuthorizedException()
        return AuthenticationResult(user=principal, auth=None)


def bearer_token(scope: Scope) -> str | None:
    """The token of an `Authorization: Bearer …` header, else None. Read from the raw header list: this runs
    on every request, and building Litestar's Headers parses them all."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


auth_middleware = DefineMiddleware(BearerAuthMiddleware, exclude=PUBLIC_PATHS)


def admin_only(connection: ASGIConnection[Any, Principal, Any, Any], _: BaseRouteHandler) -> None:
    if not connection.user.is_admin:
        raise Forbidden("관리자만 할 수 있는 작업입니다.")
