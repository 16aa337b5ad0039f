"""The body of `POST /api/predict/eclo`, read straight from ASGI (its answer: api/answers.py).

A single prediction is a few tens of microseconds of work, and on this route Litestar's generic request and
response handling cost more than that: reading the body through `Request.body()` builds the parsed header
map, `data` goes through the signature model, and a returned Struct becomes a `Response`, then an
`ASGIResponse` with its headers merged. Here the body is the request's ASGI messages joined and decoded by
msgspec, and the answer is an `ASGIResponse` of the encoded Struct (api/answers.py; docs/decisions/0010).
Errors answer as Litestar's own handling of a `JSONBody[dict[str, Any]]` did: the same statuses, codes and
error shapes. The body is consumed here and not kept in the scope: nothing on this route may call
`request.body()` afterwards (it would wait for messages that never come).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ClientException, ValidationException
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.status_codes import HTTP_413_REQUEST_ENTITY_TOO_LARGE

# One row of features or of a raw accident file (23 columns) is well under 4 KiB. The limit leaves room for
# whatever a client sends by mistake (answered with its error, a short prefix of a huge value echoed) without
# letting one request hold the app-wide upload limit in memory.
MAX_BODY_BYTES = 1024 * 1024

# Typed, so msgspec itself words a non-object body as Litestar's decoding did ("Expected `object`, got …").
decode_object = msgspec.json.Decoder(dict[str, Any]).decode


def _invalid(path: str, message: str) -> ValidationException:
    error = {"message": message, "key": "data", "source": "body"}
    return ValidationException(f"Validation failed for POST {path}", extra=[error])


async def read_object_body(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The JSON object of the request body. Raises 400 (malformed JSON, not an object), 413 (too large);
    invalid UTF-8 and too deep nesting raise msgspec's errors, which api/errors.py answers as `bad_json`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] != "http.request":  # the client went away before the body was complete
            raise ClientException("Malformed JSON body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ClientException(status_code=HTTP_413_REQUEST_ENTITY_TOO_LARGE, detail="Request Entity Too Large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if not body:
        raise _invalid(request.scope["path"], "Expected `object`, got nothing (an empty body)")
    try:
        return decode_object(body)
    except msgspec.ValidationError as exc:  # valid JSON, not an object
        raise _invalid(request.scope["path"], str(exc)) from None
    except msgspec.DecodeError:
        raise ClientException("Malformed JSON body") from None


@dataclass
class ObjectBodyOperation(Operation):
    """OpenAPI for the route, whose body is read by hand (so Litestar cannot describe it): any JSON object."""

    def __post_init__(self) -> None:
        schema = Schema(type=OpenAPIType.OBJECT, additional_properties=Schema())
        self.request_body = RequestBody(content={"application/json": OpenAPIMediaType(schema=schema)}, required=True)
