"""Map points: the rows with valid coordinates of an in-memory ``pyarrow.Table``, sampled, with labels.

Pure functions, no I/O; plain ints, floats, strings and None (never NaN or inf), ready for an API body.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

from api.datasets.column_values import column_by_name, coordinate_masks, dtype_of, find_table_coordinates, finite
from api.datasets.kinds import DatasetKind, detect_kind

# Map labels shown by default, by dataset kind (those present are used, in this order).
DEFAULT_LABEL_COLUMNS: dict[DatasetKind, tuple[str, ...]] = {
    DatasetKind.ACCIDENT: ("사고일시", "사고유형", "ECLO"),
    DatasetKind.ACCIDENT_TEST: ("사고일시", "사고유형", "도로형태"),
    DatasetKind.CCTV: ("설치장소", "제한속도", "소재지도로명주소"),
    DatasetKind.LIGHTS: ("보안등위치명", "설치개수", "설치형태"),
    DatasetKind.ZONES: ("대상시설명", "시설종류", "소재지도로명주소"),
    DatasetKind.PARKING: ("주차장명", "주차장구분", "주차구획수"),
}


class MapPoint(msgspec.Struct, kw_only=True):
    lat: float
    lon: float
    # `float` (ints included, JSON has one number type): with `int` too, the documented oneOf matched 0 twice.
    label: dict[str, str | float | None]


class MapPoints(msgspec.Struct, kw_only=True):
    lat_column: str
    lon_column: str
    label_columns: list[str]
    total_rows: int
    valid: int
    invalid: int
    missing: int
    returned: int
    sampled: bool  # True when only a random subset of the valid points is returned
    points: list[MapPoint]


def default_label_columns(table: pa.Table, kind: DatasetKind | None = None) -> list[str]:
    """Up to three columns worth showing next to a map point, chosen by dataset kind."""
    names = table.column_names
    kind = detect_kind(names) if kind is None else kind
    chosen = [c for c in DEFAULT_LABEL_COLUMNS.get(kind, ()) if c in names]
    if chosen:
        return chosen
    coords = find_table_coordinates(table)
    skip = {coords.lat, coords.lon} if coords else set()
    strings = [f.name for f in table.schema if dtype_of(f.type) == "string" and f.name not in skip]
    return list(dict.fromkeys(strings))[:2]


def _label_value(value: Any) -> str | int | float | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return finite(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    try:
        return finite(float(value))  # Decimal and friends
    except (TypeError, ValueError):
        return str(value)


def sample_points(
    table: pa.Table,
    *,
    max_points: int,
    label_columns: list[str] | None = None,
    seed: int = 0,
    kind: DatasetKind | None = None,
) -> MapPoints:
    """Rows with valid coordinates as map points, uniformly sampled down to ``max_points``.

    ``label_columns``: None for sensible defaults by kind (detected when not given); otherwise the
    given names that exist, in order. Raises ``ValueError`` when the table has no coordinate columns.
    """
    if max_points < 0:
        raise ValueError("max_points must not be negative")
    cols = find_table_coordinates(table)
    if cols is None:
        raise ValueError("This dataset has no latitude/longitude columns, so it cannot be shown on a map.")
    lat, lon, valid, missing = coordinate_masks(table, cols)
    rows = np.flatnonzero(valid)
    n_valid, n_missing = len(rows), int(missing.sum())
    sampled = n_valid > max_points
    if sampled:
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(rows, size=max_points, replace=False))

    if label_columns is None:
        labels = default_label_columns(table, kind)
    else:
        labels = list(dict.fromkeys(c for c in label_columns if c in table.column_names))
    indices = pa.array(rows, pa.int64())
    label_values = [[_label_value(v) for v in column_by_name(table, name).take(indices).to_pylist()] for name in labels]
    points = [
        MapPoint(lat=la, lon=lo, label=dict(zip(labels, values, strict=True)))
        for la, lo, *values in zip(lat[rows].tolist(), lon[rows].tolist(), *label_values, strict=True)
    ]
    return MapPoints(
        lat_column=cols.lat,
        lon_column=cols.lon,
        label_columns=labels,
        total_rows=table.num_rows,
        valid=n_valid,
        invalid=table.num_rows - n_valid - n_missing,
        missing=n_missing,
        returned=len(points),
        sampled=sampled,
        points=points,
    )
