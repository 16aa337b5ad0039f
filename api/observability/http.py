"""One ASGI middleware per request: the request id (taken from X-Request-ID or made, bound to every log
line, returned in the response) and the HTTP metrics, labelled by route template."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import cast

from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send
from structlog.contextvars import bound_contextvars

from api.observability.metrics import HTTP_DURATION, HTTP_REQUESTS

REQUEST_ID_HEADER = b"x-request-id"
REQUEST_ID_STATE = "hab_request_id"
# An incoming id is kept only when it is short and plain, so a client cannot inject text into the logs.
_VALID_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
_NOT_ROUTED = "unmatched"
_access = logging.getLogger("hab.access")


def _incoming_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER and _VALID_ID.match(value):
            return value.decode()
    return uuid.uuid4().hex


def observability_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        method = cast("HTTPScope", scope)["method"]
        request_id = _incoming_id(scope)
        # Read by `add_request_id`, which also sees the answers Litestar's exception handling sends from
        # outside this middleware (a 401 of the auth middleware, for one).
        scope.setdefault("state", {})[REQUEST_ID_STATE] = request_id
        status = 500  # what the client sees when the app fails before answering

        async def send_and_time(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                route = scope.get("path_template") or _NOT_ROUTED
                HTTP_DURATION.labels(method, route).observe(time.perf_counter() - started)
            await send(message)

        try:
            with bound_contextvars(request_id=request_id):
                await app(scope, receive, send_and_time)
        except Exception as exc:  # answered by the exception handling outside: with the status it maps to
            status = int(getattr(exc, "status_code", 500))
            raise
        finally:
            route = scope.get("path_template") or _NOT_ROUTED
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            if _access.isEnabledFor(logging.DEBUG):  # an access line costs ~20 µs: only when asked for
                with bound_contextvars(request_id=request_id):
                    _access.debug("%s %s %d", method, route, status)

    return middleware


async def add_request_id(message: Message, scope: Scope) -> None:
    """Litestar `before_send` hook: every answer carries its request's id, error answers included."""
    if message["type"] == "http.response.start":
        request_id = scope.get("state", {}).get(REQUEST_ID_STATE)
        if request_id:
            message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id.encode())]
