"""Request and response bodies of the dataset API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec

from api.datasets.distribution import ColumnDistribution
from api.datasets.kinds import Visibility
from api.datasets.map_points import MapPoints
from api.datasets.profile import DatasetSummary
from api.schemas import Input, Output


class ColumnInfo(Output):
    name: str
    dtype: str
    missing_ratio: float


class CoordinatePair(Output):
    lat: str
    lon: str


class Dataset(Output):
    id: int
    name: str
    version: int
    kind: str
    rows: int
    columns: list[ColumnInfo]
    content_sha256: str
    size_bytes: int
    encoding: str
    owner: str
    owner_id: int
    visibility: Visibility
    is_demo: bool
    created_at: dt.datetime
    coordinates: CoordinatePair | None  # where the map finds latitude/longitude; None: not mappable


class DatasetDetail(Dataset):
    summary: DatasetSummary


class SharedDataset(Output):
    """What a share link shows: the dataset and its profile, without the owner's account details."""

    id: int
    name: str
    version: int
    kind: str
    rows: int
    columns: list[ColumnInfo]
    created_at: dt.datetime
    expires_at: dt.datetime | None
    summary: DatasetSummary


class RowsPage(Output):
    items: list[dict[str, Any]]
    total: int
    offset: int
    limit: int
    columns: list[str]


class ShareLinkCreate(Input):
    expires_in: Annotated[int, msgspec.Meta(ge=60, le=365 * 24 * 3600)] | None = None


class ShareLink(Output):
    id: int
    token: str
    url: str  # a read-only page of the UI (HAB_PUBLIC_URL), for people
    api_url: str  # the same dataset as JSON, for programs
    dataset_id: int
    expires_at: dt.datetime | None


class ShareLinkInfo(Output):
    """A share link as listed later: the token itself is stored hashed and never shown again."""

    id: int
    dataset_id: int
    created_by: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    status: Literal["active", "expired", "revoked"]


__all__ = [
    "ColumnDistribution",
    "ColumnInfo",
    "CoordinatePair",
    "Dataset",
    "DatasetDetail",
    "MapPoints",
    "RowsPage",
    "ShareLink",
    "ShareLinkCreate",
    "ShareLinkInfo",
    "SharedDataset",
    "Visibility",
]
