"""Base Structs shared by every domain's request and response bodies."""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

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
