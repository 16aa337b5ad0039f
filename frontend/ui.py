"""Small UI helpers shared by the pages: Korean labels, API error display, dataset choices."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from frontend import labels
from frontend.client import ApiError
from frontend.session import get_anonymous_client, get_client

T = TypeVar("T")

# Latitude/longitude column pairs the API recognises (api/datasets/kinds.py), compared case-insensitively.
COORDINATE_PAIRS = (("위도", "경도"), ("latitude", "longitude"), ("lat", "lng"), ("lat", "lon"), ("y", "x"))
MISSING_WARN_RATIO = 0.3
_SHARE_TOKEN = re.compile(r"shr_[A-Za-z0-9_-]+")


def show_error(error: ApiError, context: str | None = None) -> None:
    """An API failure as a readable Korean message (the API's own `error.message`), never a traceback."""
    st.error(f"{context}: {error.message}" if context else error.message, icon="⚠️")


def fetch(call: Callable[..., T], *args: Any, context: str | None = None, **kwargs: Any) -> T | None:
    """Call the API; on failure show the message and return None so the rest of the page still renders."""
    try:
        return call(*args, **kwargs)
    except ApiError as error:
        show_error(error, context)
        return None


def require(call: Callable[..., T], *args: Any, context: str | None = None, **kwargs: Any) -> T:
    """Call the API; on failure show the message and stop this page's run (the sidebar stays)."""
    try:
        return call(*args, **kwargs)
    except ApiError as error:
        show_error(error, context)
        st.stop()
        raise  # unreachable: st.stop() raises


def kind_label(kind: str) -> str:
    # A share link's page sends no token (the labels are public).
    client = get_anonymous_client() if st.query_params.get("share") else get_client()
    return labels.dataset_kind(client, kind)


def dataset_label(dataset: dict[str, Any]) -> str:
    demo = "🧪 " if dataset.get("is_demo") else ""
    return f"#{dataset['id']} {demo}{dataset['name']} v{dataset['version']} · {kind_label(dataset['kind'])}"


def coordinate_columns(columns: list[dict[str, Any]] | list[str]) -> tuple[str, str] | None:
    names = {(c["name"] if isinstance(c, dict) else c).strip().lower() for c in columns}
    for lat, lon in COORDINATE_PAIRS:
        if lat in names and lon in names:
            return lat, lon
    return None


def is_mappable(dataset: dict[str, Any]) -> bool:
    """Whether the API found coordinates (its `coordinates` field; by column names for older answers)."""
    if "coordinates" in dataset:
        return dataset["coordinates"] is not None
    if "summary" in dataset:  # a share link's detail
        return dataset["summary"].get("coordinates") is not None
    return coordinate_columns(dataset["columns"]) is not None


def query_dataset_ids() -> list[int]:
    """The `?dataset=ID` values of the page's address (repeatable), in order, invalid ones left out."""
    ids = []
    for value in st.query_params.get_all("dataset"):
        if value.strip().isdigit() and int(value) not in ids:
            ids.append(int(value))
    return ids


def share_token_from(text: str) -> str | None:
    """The `shr_…` token in a pasted share URL or token, if any."""
    match = _SHARE_TOKEN.search(text or "")
    return match.group(0) if match else None


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"
