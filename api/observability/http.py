"""One ASGI middleware per request: the request id (taken from X-Request-ID or made, bound to every log
line, returned in the response), the Server-Timing header (so clients and benchmarks see server-side
time) and the HTTP metrics, labelled by route template.

It runs on every request, so it is kept to plain calls: one send wrapper for all three, the labelled
metric children looked up once per (method, route[, status]), the request id made without a system call
and bound to the logs through one ContextVar of our own (api/observability/logs.py) rather than
structlog's context manager (docs/decisions/0010).
"""

from __future__ import annotations

import functools
import logging
import random
import re
import time
from typing import Any, cast

from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from api.observability.logs import REQUEST_ID
from api.observability.metrics import HTTP_DURATION, HTTP_REQUESTS

REQUEST_ID_HEADER = b"x-request-id"
SERVER_TIMING_HEADER = b"server-timing"
REQUEST_ID_STATE = "hab_request_id"
STARTED_STATE = "hab_started"  # when api/lanes.py took a request it then handed over
# An incoming id is kept only when it is short and plain, so a client cannot inject text into the logs.
_VALID_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
_NOT_ROUTED = "unmatched"
_access = logging.getLogger("hab.access")


def incoming_request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER and _VALID_ID.match(value):
            return value.decode()
    # An id to find a request's log lines by, not a secret: no system call for it on every request.
    return f"{random.getrandbits(128):032x}"


# Methods (httptools parses only the standard ones), route templates and statuses are small closed sets; the
# bound is a guard, not a size anyone should reach.
@functools.lru_cache(maxsize=4096)
def _duration_child(method: str, route: str) -> Any:
    return HTTP_DURATION.labels(method, route)


@functools.lru_cache(maxsize=4096)
def _requests_child(method: str, route: str, status: int) -> Any:
    return HTTP_REQUESTS.labels(method, route, str(status))


def response_started(method: str, route: str, started: float) -> tuple[bytes, bytes]:
    """Observe the request's time to its response start; the Server-Timing header that says it."""
    elapsed = time.perf_counter() - started
    _duration_child(method, route).observe(elapsed)
    return SERVER_TIMING_HEADER, b"app;dur=%.1f" % (elapsed * 1000)


def request_finished(method: str, route: str, status: int) -> None:
    _requests_child(method, route, status).inc()
    if _access.isEnabledFor(logging.DEBUG):  # an access line costs ~20 µs: only when asked for
        _access.debug("%s %s %d", method, route, status)


def observability_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        started = state.get(STARTED_STATE) or time.perf_counter()
        method = cast("HTTPScope", scope)["method"]
        request_id = state.get(REQUEST_ID_STATE) or incoming_request_id(scope)
        # Read by `add_request_id`, which also sees the answers Litestar's exception handling sends from
        # outside this middleware (a 401 of the auth middleware, for one).
        state[REQUEST_ID_STATE] = request_id
        status = 500  # what the client sees when the app fails before answering

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                timing = response_started(method, scope.get("path_template") or _NOT_ROUTED, started)
                message = {**message, "headers": [*message.get("headers", ()), timing]}
            await send(message)

        bound = REQUEST_ID.set(request_id)
        try:
            await app(scope, receive, send_observed)
        except Exception as exc:  # answered by the exception handling outside: with the status it maps to
            status = int(getattr(exc, "status_code", 500))
            raise
        finally:
            request_finished(method, scope.get("path_template") or _NOT_ROUTED, status)
            REQUEST_ID.reset(bound)

    return middleware


async def add_request_id(message: Message, scope: Scope) -> None:
    """Litestar `before_send` hook: every answer carries its request's id, error answers included."""
    if message["type"] == "http.response.start":
        request_id = scope.get("state", {}).get(REQUEST_ID_STATE)
        if request_id:
            message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id.encode())]
