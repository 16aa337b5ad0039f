"""Python source for the reproducible snippets: literals rendered with repr, so every snippet compiles."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd


def lit(value: Any) -> str:
    """A Python literal for a JSON-like value (plus Timestamps); strings prefer double quotes, like the docs."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return f"float({str(value)!r})"
        return repr(value)
    if isinstance(value, str):
        text = repr(value)
        if text.startswith("'") and '"' not in value:
            return f'"{text[1:-1]}"'
        return text
    if isinstance(value, pd.Timestamp):
        return f"pd.{value!r}"
    if isinstance(value, dt.datetime):
        return f"pd.Timestamp({value.isoformat()!r})"
    if isinstance(value, list | tuple):
        return f"[{', '.join(lit(v) for v in value)}]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{lit(k)}: {lit(v)}" for k, v in value.items()) + "}"
    return repr(str(value))


def lits(values: Iterable[Any]) -> str:
    return lit(list(values))


def col(source: str, column: Any) -> str:
    """``source["column"]`` for a frame expression."""
    return f"{source}[{lit(column)}]"


def kwargs(**items: Any) -> str:
    return ", ".join(f"{k}={lit(v)}" for k, v in items.items())
