"""Base Structs shared by every domain's request and response bodies."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

import msgspec
from litestar.params import PathParameter, QueryParameter

T = TypeVar("T")


class Input(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Request bodies: unknown fields are a client bug, so they are refused rather than ignored."""


class Output(msgspec.Struct, kw_only=True):
    """Response bodies."""


class Page(Output, Generic[T]):
    """Every paged list answers this shape."""

    items: list[T]
    total: int
    offset: int
    limit: int


# ---- bounds of ids and offsets -------------------------------------------------------------------------------
# Ids are PostgreSQL bigint (model versions: integer). A value the column cannot hold used to reach the driver
# and come back as a 500; declared here, it is documented as the OpenAPI minimum/maximum and refused with 400.
INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1
# Litestar writes ge/le into the OpenAPI as floats, and float(2**63 - 1) is 2**63: the exact integers go in
# through schema_extra / extra_json_schema, so a fuzzer's 2**63 + 191 is not taken for a valid id.
_INT64_SCHEMA = {"minimum": 1, "maximum": INT64_MAX}
BIG_ID_SCHEMA = {"type": "integer", **_INT64_SCHEMA}  # for list items, which Litestar describes without their Meta
BigId = Annotated[int, msgspec.Meta(ge=1, le=INT64_MAX, extra_json_schema=_INT64_SCHEMA)]
"""A row id inside a request body."""

RowId = Annotated[int, PathParameter(ge=1, le=INT64_MAX, schema_extra=_INT64_SCHEMA)]
"""A bigint row id in the path (datasets, jobs, share links, conversations)."""
VersionId = Annotated[int, PathParameter(ge=1, le=INT32_MAX, schema_extra={"minimum": 1, "maximum": INT32_MAX})]
"""A model version in the path."""
VersionFilter = Annotated[
    int | None,
    QueryParameter(ge=1, le=INT32_MAX, description="모델 버전", schema_extra={"minimum": 1, "maximum": INT32_MAX}),
]
Offset = Annotated[
    int,
    QueryParameter(ge=0, le=INT64_MAX, description="건너뛸 항목 수", schema_extra={"minimum": 0, "maximum": INT64_MAX}),
]
PageLimit = Annotated[int, QueryParameter(ge=1, le=200, description="한 번에 받을 항목 수 (1~200)")]
