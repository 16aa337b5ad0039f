"""Small UI helpers shared by the pages: Korean labels, API error display, dataset choices."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from frontend.client import ApiError

T = TypeVar("T")

KIND_LABELS = {
    "accident": "교통사고",
    "accident_test": "교통사고(평가)",
    "cctv": "CCTV",
    "lights": "보안등",
    "zones": "어린이 보호구역",
    "parking": "주차장",
    "generic": "일반",
}
# Kinds the ECLO model can score (the API refuses the others with a Korean message anyway).
SCORABLE_KINDS = frozenset({"accident", "accident_test"})
JOB_STATUS_LABELS = {
    "queued": "⏳ 대기 중",
    "running": "🔄 실행 중",
    "succeeded": "✅ 완료",
    "failed": "❌ 실패",
    "cancelled": "⛔ 취소됨",
}
ACTIVE_JOB_STATUSES = frozenset({"queued", "running"})
JOB_KIND_LABELS = {"score": "배치 ECLO 예측"}
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
    return KIND_LABELS.get(kind, kind)


def dataset_label(dataset: dict[str, Any]) -> str:
    demo = "🧪 " if dataset.get("is_demo") else ""
    return f"#{dataset['id']} {demo}{dataset['name']} v{dataset['version']} · {kind_label(dataset['kind'])}"


def coordinate_columns(columns: list[dict[str, Any]] | list[str]) -> tuple[str, str] | None:
    names = {(c["name"] if isinstance(c, dict) else c).strip().lower() for c in columns}
    for lat, lon in COORDINATE_PAIRS:
        if lat in names and lon in names:
            return lat, lon
    return None


def share_token_from(text: str) -> str | None:
    """The `shr_…` token in a pasted share URL or token, if any."""
    match = _SHARE_TOKEN.search(text or "")
    return match.group(0) if match else None


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"
