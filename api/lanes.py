"""Hot routes answered ahead of Litestar's routing, when the request is a plain one (docs/decisions/0014).

On `POST /api/predict/eclo` (~40 µs of work) and a chat answer from the cache, Litestar's exception
middleware, router, authentication middleware, parameter extraction and response machinery cost as much as
the work or more. A lane answers the common case itself; anything else is handed, with whatever body the
lane has read, to Litestar unchanged, so the documented route and the one error mapper (api/errors.py) answer
it. A lane route must therefore accept only what its Litestar route accepts, and hand over (return None)
before it has stored anything:

* the runner hands over a request without a bearer token whose principal is in the process's cache (the
  authentication middleware decides those), with a Host header Litestar might refuse, under a root path, or
  whose body is incomplete or over the route's limit;
* the route (`LaneRoute`) returns None for anything it does not answer: refusals, misses, and faults raised
  before its store;
* an exception the route raises from its store on is answered here, by the handler Litestar would pick
  (api/errors.py `answer_outside_litestar`): handing it over would store twice.

What Litestar's layers give every request a lane gives its own: the request id (bound to the log lines,
returned as X-Request-ID), the Server-Timing header and the HTTP metrics under the route's path.
"""

from __future__ import annotations

import collections
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import msgspec
from litestar.serialization import encode_json
from litestar.types import (
    ASGIApp,
    HTTPRequestEvent,
    HTTPScope,
    LifeSpanScope,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)

from api.errors import answer_outside_litestar
from api.observability.http import (
    REQUEST_ID_HEADER,
    REQUEST_ID_STATE,
    STARTED_STATE,
    incoming_request_id,
    request_finished,
    response_started,
)
from api.observability.logs import REQUEST_ID
from api.resources import Resources
from api.users.auth import bearer_token
from api.users.services import Principal

# One request of a lane's routes (a row of features, a chat question) is far below this; larger bodies go to
# Litestar, which answers them with its own limits.
MAX_BODY_BYTES = 1024 * 1024
_JSON = (b"content-type", b"application/json")

LaneRoute = Callable[[Resources, Principal, bytes, Scope], Awaitable[msgspec.Struct | None]]


# Host values Litestar's router accepts without question (a subset of its check): anything else is its to refuse.
_PLAIN_HOST = re.compile(rb"[0-9A-Za-z.:\[\]-]*")


def _plain_host(scope: Scope) -> bool:
    host = next((value for name, value in scope["headers"] if name == b"host"), None)
    return host is None or _PLAIN_HOST.fullmatch(host) is not None


def _replaying(messages: list[ReceiveMessage], receive: Receive) -> Receive:
    """`receive` that first gives back the messages the lane already took."""
    taken = collections.deque(messages)

    async def replay() -> ReceiveMessage:
        return taken.popleft() if taken else await receive()

    return cast("Receive", replay)


async def _read_body(receive: Receive) -> tuple[list[ReceiveMessage], bytes | None]:
    """The body's messages as received, and the whole body; None when the client left before it ended or it
    is over the limit."""
    messages: list[ReceiveMessage] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        size += len(message.get("body", b""))
        if size > MAX_BODY_BYTES:
            return messages, None
        if not message.get("more_body", False):
            break
    chunks = [cast("HTTPRequestEvent", m).get("body", b"") for m in messages]
    return messages, chunks[0] if len(chunks) == 1 else b"".join(chunks)


class Lanes:
    """Takes `POST` to the paths of `routes`; `litestar` answers whatever a lane hands over."""

    def __init__(
        self, litestar: ASGIApp, resources: Callable[[], Resources | None], routes: Mapping[str, LaneRoute]
    ) -> None:
        self.litestar = litestar
        self.resources = resources
        self.routes = dict(routes)
        self.answered: collections.Counter[str] = collections.Counter()  # per path
        self.handed_over: collections.Counter[str] = collections.Counter()

    def takes(self, scope: Scope | LifeSpanScope) -> bool:
        return (
            scope["type"] == "http"
            and scope["path"] in self.routes
            and cast("HTTPScope", scope)["method"] == "POST"
            and not scope.get("root_path")  # Litestar strips a root path before routing: its routes decide
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        path = scope["path"]
        request_id = incoming_request_id(scope)
        # A request handed over keeps the lane's id and clock (api/observability/http.py reads them), so its log
        # lines and its Server-Timing are one request's, the lane's part included.
        state = scope.setdefault("state", {})
        state[REQUEST_ID_STATE], state[STARTED_STATE] = request_id, started
        resources = self.resources()  # None while the app is not started (or is stopping)
        token = bearer_token(scope)
        principal = None
        if resources is not None and token is not None and _plain_host(scope):
            principal = resources.principals.get(token)
        if resources is None or principal is None:
            await self._hand_over(path, scope, receive, send)
            return
        messages, body = await _read_body(receive)
        if body is None:
            await self._hand_over(path, scope, _replaying(messages, receive), send)
            return
        bound = REQUEST_ID.set(request_id)
        try:
            answered = await self._answer(self.routes[path], resources, principal, body, scope)
        except BaseException:  # cancelled: counted as the middleware counts a request that ends unanswered
            request_finished("POST", path, 500)
            raise
        finally:
            REQUEST_ID.reset(bound)
        if answered is None:
            await self._hand_over(path, scope, _replaying(messages, receive), send)
            return
        status, payload, headers = answered
        self.answered[path] += 1
        try:
            start = [_JSON, (b"content-length", b"%d" % len(payload))]
            start += [(name.lower().encode("latin-1"), str(value).encode("latin-1")) for name, value in headers.items()]
            start += [response_started("POST", path, started), (REQUEST_ID_HEADER, request_id.encode())]
            await send({"type": "http.response.start", "status": status, "headers": start})
            await send({"type": "http.response.body", "body": payload, "more_body": False})
        finally:
            request_finished("POST", path, status)

    @staticmethod
    async def _answer(
        route: LaneRoute, resources: Resources, principal: Principal, body: bytes, scope: Scope
    ) -> tuple[int, bytes, Mapping[str, Any]] | None:
        """Status, body and extra headers of the route's answer; None when it hands the request over."""
        try:
            answer = await route(resources, principal, body, scope)
            return None if answer is None else (200, encode_json(answer), {})
        except Exception as exc:  # raised by or after the route's store: answered as Litestar would
            error = answer_outside_litestar(exc, scope)
            return error.status_code or 500, encode_json(error.content), error.headers

    async def _hand_over(self, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        self.handed_over[path] += 1
        await self.litestar(scope, receive, send)
