"""`POST /api/predict/eclo` answered ahead of Litestar's routing, when the request is a plain one.

A single prediction is ~40 µs of work; Litestar's exception middleware, router, authentication middleware,
route handling and response machinery around it cost several times that (docs/decisions/0014). This lane
answers the common case itself: a bearer token whose principal is in the process's cache, a JSON object
body within the route's limit, features the active model accepts. For anything else it hands the request,
with whatever body it has read, to Litestar unchanged, so every refusal (401, 400, 413, 503 without a
model) is answered by the documented route (api/predictions/controllers.py) and the one error mapper
(api/errors.py). Nothing is stored before that decision: a handed-over request is scored and stored only by
Litestar's route. An error in or after the store is answered here, by api/errors.py's rules.

What Litestar's layers give every request the lane gives its own: the request id (bound to the log lines,
returned as X-Request-ID), the Server-Timing header and the HTTP metrics under the route's template.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
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
from api.observability.http import REQUEST_ID_HEADER, incoming_request_id, request_finished, response_started
from api.observability.logs import REQUEST_ID
from api.predictions.single import ScoredRow, SinglePredictionService
from api.predictions.single_http import MAX_BODY_BYTES
from api.resources import Resources
from api.users.auth import bearer_token

PATH = "/api/predict/eclo"
_decode_object = msgspec.json.Decoder(dict[str, Any]).decode
_JSON = (b"content-type", b"application/json")


def _replaying(messages: list[ReceiveMessage], receive: Receive) -> Receive:
    """`receive` that first gives back the messages the lane already took."""
    taken = collections.deque(messages)

    async def replay() -> ReceiveMessage:
        return taken.popleft() if taken else await receive()

    return cast("Receive", replay)


async def _read_body(receive: Receive) -> tuple[list[ReceiveMessage], bytes | None]:
    """The body's messages as received, and the whole body; None when the client left before it ended or it
    is over the route's limit (Litestar's route answers those)."""
    messages: list[ReceiveMessage] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        size += len(message["body"])
        if size > MAX_BODY_BYTES:
            return messages, None
        if not message.get("more_body", False):
            break
    chunks = [cast("HTTPRequestEvent", m)["body"] for m in messages]
    return messages, chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _scored(service: SinglePredictionService, body: bytes | None) -> ScoredRow | None:
    """The body scored, or None for anything the route refuses (or a fault it answers as a 500)."""
    if body is None:
        return None
    try:
        return service.score(_decode_object(body))
    except Exception:
        return None


class PredictionLane:
    """Takes `POST /api/predict/eclo`; `litestar` answers whatever the lane hands over."""

    def __init__(self, litestar: ASGIApp, resources: Callable[[], Resources]) -> None:
        self.litestar = litestar
        self.resources = resources
        self.answered = 0  # requests answered by the lane
        self.handed_over = 0  # requests of its route it gave to Litestar

    @staticmethod
    def takes(scope: Scope | LifeSpanScope) -> bool:
        return scope["type"] == "http" and scope["path"] == PATH and cast("HTTPScope", scope)["method"] == "POST"

    async def _hand_over(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.handed_over += 1
        await self.litestar(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        resources = self.resources()
        token = bearer_token(scope)
        principal = None if token is None else resources.principals.get(token)
        if principal is None:  # no token, or not yet looked up: the authentication middleware decides
            await self._hand_over(scope, receive, send)
            return
        messages, body = await _read_body(receive)
        service = SinglePredictionService(resources)
        scored = _scored(service, body)
        if scored is None:  # refused before anything was stored: Litestar's route answers it
            await self._hand_over(scope, _replaying(messages, receive), send)
            return
        self.answered += 1
        request_id = incoming_request_id(scope)
        bound = REQUEST_ID.set(request_id)
        status = 500  # recorded if the request ends before it was answered
        try:
            headers: dict[str, str] = {}
            try:
                payload, status = encode_json(await service.store(principal, scored)), 200
            except Exception as exc:
                status, error, headers = answer_outside_litestar(exc, "POST", PATH)
                payload = encode_json(error)
            start = [_JSON, (b"content-length", b"%d" % len(payload))]
            start += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
            start += [response_started("POST", PATH, started), (REQUEST_ID_HEADER, request_id.encode())]
            await send({"type": "http.response.start", "status": status, "headers": start})
            await send({"type": "http.response.body", "body": payload, "more_body": False})
        finally:
            request_finished("POST", PATH, status)
            REQUEST_ID.reset(bound)
