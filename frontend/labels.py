"""The Korean names the API serves (GET /api/labels), fetched once per session: no page writes its own.

Only the icons next to job statuses are the frontend's. Without the API (it is restarting) the raw values
show instead, which is still readable and never wrong.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from frontend.client import ApiError, HabClient

STATUS_ICONS = {"queued": "⏳", "running": "🔄", "succeeded": "✅", "failed": "❌", "cancelled": "⛔"}


@st.cache_data(ttl=3600, show_spinner=False)
def _labels(api_url: str, _client: HabClient) -> dict[str, Any]:
    return _client.labels()


def labels(client: HabClient) -> dict[str, Any]:
    try:
        return _labels(client.base_url, client)
    except ApiError:
        return {"dataset_kinds": [], "job_kinds": [], "job_statuses": []}


def _names(client: HabClient, group: str) -> dict[str, str]:
    return {item["value"]: item["label"] for item in labels(client)[group]}


def dataset_kind(client: HabClient, kind: str) -> str:
    return _names(client, "dataset_kinds").get(kind, kind)


def scorable_kinds(client: HabClient) -> frozenset[str]:
    return frozenset(item["value"] for item in labels(client)["dataset_kinds"] if item["scorable"])


def job_statuses(client: HabClient) -> dict[str, str]:
    """status -> "icon label", in the API's order (for filters)."""
    return {
        value: f"{STATUS_ICONS.get(value, '')} {label}".strip()
        for value, label in _names(client, "job_statuses").items()
    }


def job_status(job: dict[str, Any]) -> str:
    """A job's status as shown: the label the API sent with the job, with its icon."""
    return f"{STATUS_ICONS.get(job['status'], '')} {job.get('status_label') or job['status']}".strip()


def job_kind(job: dict[str, Any]) -> str:
    return job.get("kind_label") or job["kind"]
