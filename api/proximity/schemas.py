"""Bodies of the proximity route."""

from __future__ import annotations

from api.schemas import BigId, Input, Output, Page


class ProximityRequest(Input):
    source_dataset_id: BigId
    target_dataset_id: BigId
    # 1–5,000 m: checked by the service (a Korean refusal naming the range), documented by api/openapi.py.
    radius_m: float


class SourceProximity(Output):
    row_index: int  # the source row (0-based, in the dataset's order)
    lat: float
    lon: float
    count: int  # target points within the radius
    nearest_m: float  # great-circle distance to the nearest target point


class ProximitySummary(Output):
    source_dataset_id: int
    target_dataset_id: int
    radius_m: float
    sources: int  # source rows with valid coordinates
    targets: int  # target rows with valid coordinates
    sources_with_target: int
    share_with_target: float  # percent of sources
    mean_count: float
    max_count: int
    median_nearest_m: float | None
    text: str  # one Korean sentence


class ProximityPage(Page[SourceProximity]):
    summary: ProximitySummary
