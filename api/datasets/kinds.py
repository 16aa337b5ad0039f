"""What kind of dataset a table is, judged from its columns (see DATA.md), and where its coordinates are."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class DatasetKind(enum.StrEnum):
    ACCIDENT = "accident"  # train.csv / countrywide_accident.csv: with casualties and ECLO
    ACCIDENT_TEST = "accident_test"  # test.csv: the accident features, no outcomes
    CCTV = "cctv"
    LIGHTS = "lights"
    ZONES = "zones"
    PARKING = "parking"
    GENERIC = "generic"


class Visibility(enum.StrEnum):
    PRIVATE = "private"  # its owner (and admins) only
    TEAM = "team"  # every signed-in user


ACCIDENT_FEATURE_COLUMNS = ("사고일시", "요일", "기상상태", "시군구", "도로형태", "노면상태", "사고유형")
ACCIDENT_OUTCOME_COLUMNS = ("사망자수", "중상자수", "경상자수", "부상자수", "ECLO")

# Each kind is recognised by columns that only its files carry; all of a rule's columns must be present.
_KIND_RULES: tuple[tuple[DatasetKind, tuple[str, ...]], ...] = (
    (DatasetKind.ACCIDENT, (*ACCIDENT_FEATURE_COLUMNS, "ECLO")),
    (DatasetKind.ACCIDENT_TEST, ACCIDENT_FEATURE_COLUMNS),
    (DatasetKind.CCTV, ("무인교통단속카메라관리번호",)),
    (DatasetKind.CCTV, ("단속구분", "제한속도")),
    (DatasetKind.LIGHTS, ("보안등위치명",)),
    (DatasetKind.LIGHTS, ("설치개수", "설치형태")),
    (DatasetKind.ZONES, ("시설종류", "대상시설명")),
    (DatasetKind.PARKING, ("주차장관리번호",)),
    (DatasetKind.PARKING, ("주차장명", "주차구획수")),
)

# Kinds whose rows can be scored by the ECLO model.
ACCIDENT_SHAPED_KINDS = frozenset({DatasetKind.ACCIDENT, DatasetKind.ACCIDENT_TEST})

KIND_LABELS = {
    DatasetKind.ACCIDENT: "교통사고",
    DatasetKind.ACCIDENT_TEST: "교통사고(평가)",
    DatasetKind.CCTV: "CCTV",
    DatasetKind.LIGHTS: "보안등",
    DatasetKind.ZONES: "어린이 보호구역",
    DatasetKind.PARKING: "주차장",
    DatasetKind.GENERIC: "일반",
}

# Latitude/longitude column pairs as they appear in public files, most specific first.
_COORDINATE_PAIRS: tuple[tuple[str, str], ...] = (
    ("위도", "경도"),
    ("latitude", "longitude"),
    ("lat", "lng"),
    ("lat", "lon"),
    ("y", "x"),
)

# Pairs whose names do not say "degrees": x좌표/y좌표 and friends also hold projected metres (TM, UTM) in public
# files, so they count as latitude/longitude only when their values lie in WGS84 ranges (column_values.
# find_table_coordinates). Compared after lower-casing and dropping spaces, '_', '-' and '.'.
VALUE_CHECKED_PAIRS: tuple[tuple[str, str], ...] = (
    ("y좌표", "x좌표"),
    ("좌표y", "좌표x"),
    ("y좌표값", "x좌표값"),
    ("ycoord", "xcoord"),
    ("ycoordinate", "xcoordinate"),
    ("pointy", "pointx"),
    ("posy", "posx"),
    ("lati", "longi"),
    ("latitudey", "longitudex"),
    ("위도y", "경도x"),
    ("위도좌표", "경도좌표"),
)
WGS84_LAT_RANGE = (-90.0, 90.0)
WGS84_LON_RANGE = (-180.0, 180.0)

# Points outside this box (or exactly zero) are bad data: counted, reported, left off maps.
KOREA_LAT_RANGE = (33.0, 39.0)
KOREA_LON_RANGE = (124.0, 132.0)


def detect_kind(columns: Iterable[str]) -> DatasetKind:
    """Return the dataset kind whose identifying columns are all present."""
    present = {c.strip() for c in columns}
    for kind, required in _KIND_RULES:
        if all(col in present for col in required):
            return kind
    return DatasetKind.GENERIC


@dataclass(frozen=True, slots=True)
class CoordinateColumns:
    lat: str
    lon: str


def find_coordinate_columns(columns: Iterable[str]) -> CoordinateColumns | None:
    """Find the latitude/longitude columns by name (case-insensitive), or None."""
    by_lower = {c.strip().lower(): c for c in columns}
    for lat, lon in _COORDINATE_PAIRS:
        if lat in by_lower and lon in by_lower:
            return CoordinateColumns(lat=by_lower[lat], lon=by_lower[lon])
    return None


def _squeezed(name: str) -> str:
    return "".join(ch for ch in name.strip().lower() if ch not in " _-.()[]")


def coordinate_candidates(columns: Iterable[str]) -> CoordinateColumns | None:
    """A pair named like coordinates that may hold degrees or metres (see VALUE_CHECKED_PAIRS), or None."""
    by_name = {_squeezed(c): c for c in columns}
    for lat, lon in VALUE_CHECKED_PAIRS:
        if lat in by_name and lon in by_name:
            return CoordinateColumns(lat=by_name[lat], lon=by_name[lon])
    return None
