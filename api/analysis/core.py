"""Types shared by the analysis tools: the context a conversation gives, what a call returns, how it fails."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import pandas as pd

if TYPE_CHECKING:
    from models.loaded import LoadedModel


@dataclass(frozen=True)
class ToolContext:
    """What the tools may read: the conversation's datasets (label -> frame) and the served model, if any."""

    datasets: Mapping[str, pd.DataFrame]
    model: LoadedModel | None = None


class ToolRecord(msgspec.Struct, kw_only=True):
    """What a call did, for the UI and for reproducing it.

    ``rows_touched`` is the number of rows the result was computed from (after the call's conditions, if any);
    ``snippet`` is pandas code over ``df`` (the dataset) whose last line evaluates to the result.
    """

    tool: str
    args: dict[str, Any]
    ok: bool
    rows_touched: int
    duration_ms: float
    snippet: str
    summary: str
    dataset: str | None = None
    cached: bool = False


class ToolOutcome(msgspec.Struct, kw_only=True):
    text: str
    record: ToolRecord


class ToolError(Exception):
    """A problem the model can fix by changing its call; ``message`` is Korean and is shown to the model."""

    def __init__(self, message: str, *, summary: str | None = None, snippet: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.summary = summary
        self.snippet = snippet


@dataclass
class ToolResult:
    """A tool's answer before the registry adds notes, bounds the text and times the call."""

    text: str
    summary: str
    snippet: str
    rows_touched: int


@dataclass
class Call:
    """One validated call: parsed arguments and the (already filtered) frame with its snippet expression."""

    args: dict[str, Any]
    frame: pd.DataFrame
    source: str  # Python expression for ``frame`` in terms of ``df``: "df" or "df[<mask>]"
    total_rows: int  # rows of the whole dataset, before conditions
    model: LoadedModel | None = None
    notes: list[str] = field(default_factory=list)
    datasets: Mapping[str, pd.DataFrame] = field(default_factory=dict)  # every dataset, for cross-dataset tools

    @property
    def filtered(self) -> bool:
        return self.source != "df"
