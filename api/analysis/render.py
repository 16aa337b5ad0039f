"""Bounded Korean text for the model: numbers, cells, compact tables and a hard cap on the total size."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

MAX_TEXT_CHARS = 4000
TABLE_BUDGET = 3000  # characters a single table may take, leaving room for the surrounding text
MAX_CELL_CHARS = 40
MAX_TABLE_COLUMNS = 14
MISSING = "(결측)"


def fmt_num(value: Any) -> str:
    """Readable number: integers with thousands separators, floats to 4 decimals without trailing zeros."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "참" if value else "거짓"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return MISSING
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        magnitude = abs(value)
        if magnitude >= 1e15 or (0 < magnitude < 1e-4):
            return f"{value:.4g}"
        if magnitude >= 1000:
            text = f"{value:,.2f}"
        else:
            text = f"{value:.4f}"
        text = text.rstrip("0").rstrip(".")
        return "0" if text == "-0" else text
    return fmt_cell(value)


def fmt_pct(part: float, whole: float) -> str:
    if not whole:
        return "-"
    return f"{100.0 * part / whole:.1f}%"


def fmt_time(value: pd.Timestamp | dt.datetime) -> str:
    if value.tzinfo is None and value.hour == value.minute == value.second == 0 and not value.microsecond:
        return value.strftime("%Y-%m-%d")
    if value.second == 0 and not value.microsecond:
        text = value.strftime("%Y-%m-%d %H:%M")
    else:
        text = value.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}{value.strftime('%z')}" if value.tzinfo is not None else text


def clip(text: str, limit: int = MAX_CELL_CHARS) -> str:
    """One line of at most ``limit`` characters; long text keeps its start and its end (codes, numbers)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = (limit * 2) // 3
    return text[:head] + "…" + text[len(text) - (limit - head - 1) :]


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # arrays and other containers are not scalars
        return False


def fmt_cell(value: Any, limit: int = MAX_CELL_CHARS) -> str:
    """One table cell: missing markers, numbers, times and text, shortened and without column separators."""
    if isinstance(value, list | tuple | dict | np.ndarray):
        return clip(str(value).replace("|", "¦"), limit)
    if is_missing(value):
        return MISSING
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | float):
        return fmt_num(value)
    if isinstance(value, pd.Timestamp | dt.datetime):
        return fmt_time(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return clip(str(value).replace("|", "¦"), limit)


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    total: int | None = None,
    budget: int = TABLE_BUDGET,
    unit: str = "행",
) -> str:
    """Pipe-separated table; rows stop at the character budget and "…외 N행" says how many were left out.

    ``total`` is the number of rows of the full result when ``rows`` is already a head of it.
    """
    total = len(rows) if total is None else total
    lines = [" | ".join(clip(str(h)) for h in headers)]
    used = len(lines[0])
    shown = 0
    for row in rows:
        line = " | ".join(fmt_cell(v) for v in row)
        if used + len(line) + 1 > budget and shown:
            break
        lines.append(line)
        used += len(line) + 1
        shown += 1
    if total > shown:
        lines.append(f"…외 {total - shown:,}{unit}")
    return "\n".join(lines)


def _label(key: Any) -> str:
    """Index labels: row numbers stay plain (no thousands separators) so they can be looked up again."""
    if isinstance(key, int | np.integer) and not isinstance(key, bool | np.bool_):
        return str(int(key))
    return fmt_cell(key)


def frame_table(
    frame: pd.DataFrame,
    *,
    index: bool = True,
    index_name: str | None = None,
    total: int | None = None,
    max_rows: int = 50,
    max_columns: int = MAX_TABLE_COLUMNS,
    budget: int = TABLE_BUDGET,
) -> str:
    """Render a (head of a) DataFrame; extra columns are dropped with a note."""
    total = len(frame) if total is None else total
    columns = list(frame.columns)
    hidden = max(0, len(columns) - max_columns)
    columns = columns[:max_columns]
    head = frame.iloc[:max_rows]
    headers = [str(c) for c in columns]
    if index:
        names = [n for n in head.index.names if n is not None]
        headers = [index_name or " / ".join(str(n) for n in names) or "", *headers]
    rows = []
    for position in range(len(head)):
        values = [head.iat[position, j] for j in range(len(columns))]
        if index:
            key = head.index[position]
            label = " / ".join(_label(k) for k in key) if isinstance(key, tuple) else _label(key)
            values = [label, *values]
        rows.append(values)
    text = table(headers, rows, total=total, budget=budget)
    if hidden:
        text += f"\n(열 {hidden}개 생략: columns 인자로 원하는 열을 고르세요)"
    return text


def series_lines(series: pd.Series, *, total: int | None = None, budget: int = TABLE_BUDGET) -> str:
    """ "label: value" lines for a short Series (statistics, one value per line)."""
    total = len(series) if total is None else total
    lines: list[str] = []
    used = 0
    for key, value in series.items():
        line = f"{fmt_cell(key)}: {fmt_cell(value)}"
        if used + len(line) + 1 > budget and lines:
            break
        lines.append(line)
        used += len(line) + 1
    if total > len(lines):
        lines.append(f"…외 {total - len(lines):,}행")
    return "\n".join(lines)


def bound(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """Cap the text the model sees; cut at a line break and say that the rest was left out."""
    if len(text) <= limit:
        return text
    tail = "\n…(결과가 길어 나머지를 생략했습니다. 조건을 좁히거나 limit·columns를 줄이세요)"
    cut = text.rfind("\n", 0, limit - len(tail))
    if cut < limit // 2:
        cut = limit - len(tail)
    return text[:cut] + tail
