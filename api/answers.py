"""A route's JSON answer encoded once, for hot routes that skip Litestar's generic response handling.

Returning a Struct makes Litestar build a `Response`, merge its headers and cookies, encode, then build an
`ASGIResponse`; on a route that answers in a few hundred microseconds that is a measurable share
(docs/decisions/0010). A handler annotated `-> ASGIResponse` returns `json_answer(payload)` instead and
documents its body with `ok_response(Struct)`.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.response.base import ASGIResponse
from litestar.serialization import encode_json


def json_answer(payload: msgspec.Struct, status_code: int = 200) -> ASGIResponse:
    """The payload as Litestar would encode it (its default serializer for types msgspec lacks)."""
    return ASGIResponse(body=encode_json(payload), media_type="application/json", status_code=status_code)


def ok_response(payload_type: type[Any], status_code: int = 200) -> dict[int, ResponseSpec]:
    """The `responses=` of such a route: its success body as the Struct it encodes (as Litestar would say)."""
    spec = ResponseSpec(
        data_container=payload_type,
        description="Request fulfilled, document follows",
        generate_examples=False,  # random examples would land on the shared component schema
    )
    return {status_code: spec}
