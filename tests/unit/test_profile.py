"""Unit tests for api.datasets.profile (summaries), api.datasets.map_points and api.datasets.distribution."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from decimal import Decimal

import msgspec
import numpy as np
import pyarrow as pa
import pytest

from api.datasets.distribution import (
    CategoricalDistribution,
    ColumnDistribution,
    DatetimeDistribution,
    NumericDistribution,
    column_distribution,
)
from api.datasets.kinds import DatasetKind
from api.datasets.map_points import MapPoints, sample_points
from api.datasets.profile import DatasetSummary, summarize


def _floats(value: object) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for v in value.values() for f in _floats(v)]
    if isinstance(value, list):
        return [f for v in value for f in _floats(v)]
    return []


def _no_nan(obj: object) -> bytes:
    """Encode as the API does; no float anywhere may be NaN or infinite (msgspec would hide them as null)."""
    assert all(math.isfinite(f) for f in _floats(msgspec.to_builtins(obj)))
    body = msgspec.json.encode(obj)
    assert b"NaN" not in body and b"Infinity" not in body
    return body


def accident_table(n: int = 200, seed: int = 3) -> pa.Table:
    rng = np.random.default_rng(seed)
    start = datetime(2021, 1, 1)
    eclo = rng.integers(1, 20, n)
    victim = [None if i % 10 == 0 else ["남", "여"][i % 2] for i in range(n)]
    return pa.table(
        {
            "ID": pa.array([f"ACCIDENT_{i:05d}" for i in range(n)], pa.large_string()),
            "사고일시": pa.array(
                [start + timedelta(hours=int(h)) for h in rng.integers(0, 24 * 60, n)], pa.timestamp("s")
            ),
            "요일": pa.array([["월요일", "화요일", "수요일"][i % 3] for i in range(n)], pa.string()),
            "기상상태": pa.array(["맑음"] * (n - 10) + ["비"] * 10, pa.large_string()),
            "시군구": pa.array(["대구광역시 중구 대신동"] * n, pa.large_string()),
            "도로형태": pa.array(["단일로 - 기타"] * n, pa.large_string()),
            "노면상태": pa.array(["건조"] * n, pa.large_string()),
            "사고유형": pa.array([["차대차", "차대사람"][i % 2] for i in range(n)], pa.large_string()),
            "피해운전자 성별": pa.array(victim, pa.large_string()),
            "ECLO": pa.array(eclo, pa.int64()),
            "속도": pa.array(np.where(np.arange(n) % 4 == 0, np.nan, rng.normal(50, 10, n)), pa.float64()),
        }
    )


# ------------------------------------------------------------------------------------- summarize


def test_summary_columns_dtypes_roles_and_missing() -> None:
    table = accident_table()
    s = summarize(table, DatasetKind.ACCIDENT)
    assert isinstance(s, DatasetSummary)
    assert (s.rows, s.column_count, s.kind) == (200, 11, DatasetKind.ACCIDENT)
    cols = {c.name: c for c in s.columns}
    assert [c.name for c in s.columns] == table.column_names
    assert (cols["ID"].dtype, cols["ID"].role, cols["ID"].unique) == ("string", "text", 200)
    assert (cols["요일"].dtype, cols["요일"].role, cols["요일"].unique) == ("string", "categorical", 3)
    assert (cols["사고일시"].dtype, cols["사고일시"].role) == ("datetime", "datetime")
    assert (cols["ECLO"].dtype, cols["ECLO"].role) == ("integer", "numeric")
    assert (cols["속도"].dtype, cols["속도"].role) == ("float", "numeric")
    assert cols["피해운전자 성별"].missing == 20 and cols["피해운전자 성별"].missing_ratio == 0.1
    assert cols["속도"].missing == 50 and cols["속도"].missing_ratio == 0.25  # NaN counts as missing
    assert cols["ECLO"].missing == 0 and cols["ECLO"].missing_ratio == 0.0
    assert s.coordinates is None
    _no_nan(s)


def test_missing_ratio_rounded_to_four_places() -> None:
    table = pa.table({"a": pa.array([None] + [1] * 6, pa.int64())})
    col = summarize(table, DatasetKind.GENERIC).columns[0]
    assert col.missing_ratio == round(1 / 7, 4) == 0.1429


def test_numeric_describe_matches_numpy() -> None:
    table = accident_table()
    s = summarize(table, DatasetKind.ACCIDENT)
    num = {n.column: n for n in s.numeric}
    assert set(num) == {"ECLO", "속도"}
    for name in ("ECLO", "속도"):
        values = table[name].to_numpy().astype(float)
        values = values[~np.isnan(values)]
        d = num[name]
        assert d.count == len(values)
        assert d.mean == pytest.approx(values.mean())
        assert d.std == pytest.approx(values.std(ddof=1))
        assert d.min == pytest.approx(values.min()) and d.max == pytest.approx(values.max())
        p25, p50, p75 = np.percentile(values, [25, 50, 75])
        assert (d.p25, d.p50, d.p75) == (pytest.approx(p25), pytest.approx(p50), pytest.approx(p75))


def test_year_column_with_nulls_is_numeric() -> None:
    table = pa.table({"설치연도": pa.array([2010, None, 2015, 2020, None], pa.int64())})
    s = summarize(table, DatasetKind.GENERIC)
    assert (s.columns[0].role, s.columns[0].missing, s.columns[0].unique) == ("numeric", 2, 3)
    assert s.numeric[0].count == 3 and s.numeric[0].p50 == 2015.0


def test_top_values_and_other_count() -> None:
    values = [f"v{i:02d}" for i in range(25) for _ in range(i + 1)]  # v24 most frequent (25 times)
    table = pa.table({"c": pa.array([*values, None, None], pa.large_string())})
    s = summarize(table, DatasetKind.GENERIC)
    (cat,) = s.categorical
    assert [v.value for v in cat.values] == [f"v{i:02d}" for i in range(24, 4, -1)]
    assert [v.count for v in cat.values] == list(range(25, 5, -1))
    assert cat.other_count == sum(range(1, 6))
    assert sum(v.count for v in cat.values) + cat.other_count == len(values)


def test_top_value_ties_broken_by_value() -> None:
    table = pa.table({"c": pa.array(["b", "a", "c", "a", "b", "c"])})
    cat = summarize(table, DatasetKind.GENERIC).categorical[0]
    assert [(v.value, v.count) for v in cat.values] == [("a", 2), ("b", 2), ("c", 2)]


def test_high_cardinality_strings_are_text_without_top_values() -> None:
    n = 500
    table = pa.table({"addr": [f"주소 {i}" for i in range(n)], "gu": [f"g{i % 250}" for i in range(n)]})
    s = summarize(table, DatasetKind.GENERIC)
    roles = {c.name: c.role for c in s.columns}
    assert roles == {"addr": "text", "gu": "categorical"}  # 250 distinct = 50 % of rows
    assert [c.column for c in s.categorical] == ["gu"]


def test_long_identifier_columns_are_text_with_approximate_unique() -> None:
    n = 120_000
    table = pa.table(
        {
            "id": pa.array([f"ID_{i:06d}" for i in range(n)], pa.large_string()),
            "pairs": pa.array([f"P_{i // 2:06d}" for i in range(n)], pa.large_string()),  # each value twice
            "few": pa.array([f"F_{i % 300}" for i in range(n)], pa.large_string()),
        }
    )
    cols = {c.name: c for c in summarize(table, DatasetKind.GENERIC).columns}
    assert (cols["id"].role, cols["id"].unique) == ("text", n)
    assert (cols["pairs"].role, cols["pairs"].unique) == ("categorical", n // 2)  # exactly 50 % distinct
    assert (cols["few"].role, cols["few"].unique) == ("categorical", 300)


def test_small_tables_roles() -> None:
    table = pa.table(
        {
            "id": ["a", "b", "c", "d"],  # every value distinct: text even though few
            "day": ["월", "화", "월", "수"],  # repeats: categorical
            "flag": [True, False, None, None],  # booleans are always categorical
        }
    )
    roles = {c.name: c.role for c in summarize(table, DatasetKind.GENERIC).columns}
    assert roles == {"id": "text", "day": "categorical", "flag": "categorical"}


def test_boolean_and_dictionary_columns() -> None:
    table = pa.table(
        {
            "flag": pa.array([True, False, True, None]),
            "dict": pa.array(["x", "y", "x", "x"]).dictionary_encode(),
        }
    )
    s = summarize(table, DatasetKind.GENERIC)
    cols = {c.name: c for c in s.columns}
    assert (cols["flag"].dtype, cols["flag"].role, cols["flag"].missing) == ("boolean", "categorical", 1)
    assert (cols["dict"].dtype, cols["dict"].role) == ("string", "categorical")
    cats = {c.column: c for c in s.categorical}
    assert [(v.value, v.count) for v in cats["flag"].values] == [("true", 2), ("false", 1)]
    assert [(v.value, v.count) for v in cats["dict"].values] == [("x", 3), ("y", 1)]


def test_date_ranges() -> None:
    table = pa.table(
        {
            "t": pa.array([datetime(2019, 1, 1, 0), None, datetime(2021, 12, 31, 23)], pa.timestamp("s")),
            "d": pa.array([None, None, None], pa.timestamp("s")),
        }
    )
    dates = {d.column: d for d in summarize(table, DatasetKind.GENERIC).dates}
    assert dates["t"].min == "2019-01-01T00:00:00" and dates["t"].max == "2021-12-31T23:00:00"
    assert dates["t"].days == 1096
    assert (dates["d"].min, dates["d"].max, dates["d"].days) == (None, None, None)


def _coord_table(lat: list, lon: list, lat_type: pa.DataType = pa.float64()) -> pa.Table:
    return pa.table({"위도": pa.array(lat, lat_type), "경도": pa.array(lon), "설치장소": ["p"] * len(lat)})


def test_coordinate_quality_counts() -> None:
    lat = [35.87, 35.8, 0.0, 40.0, None, float("nan"), 35.9, 35.9]
    lon = [128.6, 128.5, 0.0, 128.6, 128.6, 128.6, None, 0.0]
    s = summarize(_coord_table(lat, lon), DatasetKind.CCTV)
    c = s.coordinates
    assert c is not None and (c.lat_column, c.lon_column) == ("위도", "경도")
    assert (c.valid, c.invalid, c.missing) == (2, 3, 3)
    assert c.valid + c.invalid + c.missing == s.rows
    _no_nan(s)


def test_string_typed_coordinates_are_cast() -> None:
    lat = ["35.87", " 35.80 ", "abc", "", None, "0", "1e1"]
    lon = [128.6, 128.5, 128.5, 128.5, 128.5, 128.5, 128.5]
    c = summarize(_coord_table(lat, lon, pa.large_string()), DatasetKind.GENERIC).coordinates
    assert c is not None and (c.valid, c.invalid, c.missing) == (2, 2, 3)


def test_empty_table_summary() -> None:
    table = accident_table().slice(0, 0)
    s = summarize(table, DatasetKind.ACCIDENT)
    assert s.rows == 0 and all(c.missing == 0 and c.missing_ratio == 0.0 for c in s.columns)
    assert all(n.count == 0 and n.mean is None for n in s.numeric)
    _no_nan(s)


def test_all_null_and_infinite_values_stay_out_of_json() -> None:
    table = pa.table(
        {
            "nulls": pa.array([None, None], pa.float64()),
            "inf": pa.array([float("inf"), 1.0], pa.float64()),
            "nan": pa.array([float("nan"), float("nan")]),
            "none": pa.array([None, None]),
        }
    )
    s = summarize(table, DatasetKind.GENERIC)
    cols = {c.name: c for c in s.columns}
    assert cols["inf"].missing == 1 and cols["nan"].missing == 2 and cols["none"].missing == 2
    num = {n.column: n for n in s.numeric}
    assert num["inf"].max == 1.0 and num["inf"].std is None and num["nulls"].mean is None
    body = _no_nan(s)
    assert b"null" in body


def test_large_table_uses_threads_and_matches_serial() -> None:
    big = pa.concat_tables([accident_table(n=1000, seed=s) for s in range(60)])  # 60k rows, 60 chunks
    s = summarize(big, DatasetKind.ACCIDENT)
    assert s.rows == 60_000
    eclo = next(n for n in s.numeric if n.column == "ECLO")
    assert eclo.mean == pytest.approx(big["ECLO"].to_numpy().mean())
    assert next(c for c in s.columns if c.name == "ID").unique == 1000


# --------------------------------------------------------------------------------- distributions


def test_numeric_distribution_histogram_box_kde() -> None:
    table = accident_table(n=500)
    d = column_distribution(table, "속도", bins=12, kde_points=64)
    assert isinstance(d, NumericDistribution)
    values = table["속도"].to_numpy()
    values = values[~np.isnan(values)]
    assert (d.count, d.missing) == (len(values), 125)
    assert len(d.histogram.edges) == 13 and len(d.histogram.counts) == 12
    assert sum(d.histogram.counts) == d.count
    assert d.histogram.edges[0] == pytest.approx(values.min()) and d.histogram.edges[-1] == pytest.approx(values.max())
    box = d.box
    assert box is not None
    q1, med, q3 = np.percentile(values, [25, 50, 75])
    assert (box.q1, box.median, box.q3) == (pytest.approx(q1), pytest.approx(med), pytest.approx(q3))
    iqr = q3 - q1
    outliers = values[(values < q1 - 1.5 * iqr) | (values > q3 + 1.5 * iqr)]
    assert box.outlier_count == len(outliers)
    inside = values[(values >= q1 - 1.5 * iqr) & (values <= q3 + 1.5 * iqr)]
    assert (box.whisker_low, box.whisker_high) == (inside.min(), inside.max())
    assert d.kde is not None and len(d.kde.x) == len(d.kde.y) == 64
    assert all(y >= 0 for y in d.kde.y) and d.kde.x[0] == pytest.approx(values.min())
    _no_nan(d)


def test_outliers_sample_is_capped_and_includes_extremes() -> None:
    values = np.concatenate([np.full(1000, 10.0), np.arange(200, 300, dtype=float)])
    d = column_distribution(pa.table({"x": values}), "x")
    assert isinstance(d, NumericDistribution) and d.box is not None
    assert d.box.outlier_count == 100 and len(d.box.outliers_sample) == 50
    assert d.box.outliers_sample[0] == 200.0 and d.box.outliers_sample[-1] == 299.0
    assert d.box.whisker_low == d.box.whisker_high == 10.0


def test_kde_is_deterministic_and_sampled_for_large_columns() -> None:
    rng = np.random.default_rng(0)
    table = pa.table({"x": rng.normal(size=50_000)})
    a, b = column_distribution(table, "x"), column_distribution(table, "x")
    assert isinstance(a, NumericDistribution) and a.kde is not None
    assert a.kde == b.kde and len(a.kde.x) == 100
    assert sum(a.histogram.counts) == 50_000


def test_single_value_numeric_column_has_no_kde() -> None:
    d = column_distribution(pa.table({"x": pa.array([7, 7, 7, None], pa.int64())}), "x")
    assert isinstance(d, NumericDistribution)
    assert d.kde is None and d.box is not None and d.box.median == 7.0 and d.box.outlier_count == 0
    assert sum(d.histogram.counts) == 3 and d.missing == 1


def test_all_null_numeric_column() -> None:
    d = column_distribution(pa.table({"x": pa.array([None, None, float("nan")], pa.float64())}), "x")
    assert isinstance(d, NumericDistribution)
    assert (d.count, d.missing) == (0, 3)
    assert d.histogram.edges == [] and d.histogram.counts == [] and d.box is None and d.kde is None
    _no_nan(d)


def test_empty_after_filter_distributions() -> None:
    table = accident_table().slice(0, 0)
    for name in ("ECLO", "요일", "사고일시"):
        d = column_distribution(table, name)
        assert d.count == 0 and d.missing == 0
        _no_nan(d)
    dt = column_distribution(table, "사고일시")
    assert isinstance(dt, DatetimeDistribution) and len(dt.by_hour) == 24 and dt.by_day == []


def test_categorical_distribution_other_count() -> None:
    table = pa.table({"c": pa.array(["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"] + [None] * 4)})
    d = column_distribution(table, "c", top=2)
    assert isinstance(d, CategoricalDistribution)
    assert [(v.value, v.count) for v in d.values] == [("a", 5), ("b", 3)]
    assert (d.count, d.missing, d.other_count) == (11, 4, 3)


def test_datetime_distribution() -> None:
    times = [
        datetime(2021, 3, 1, 8),
        datetime(2021, 3, 1, 8),
        datetime(2021, 3, 2, 23),
        datetime(2021, 4, 4, 0),
    ]
    table = pa.table({"사고일시": pa.array([*times, None], pa.timestamp("s"))})
    d = column_distribution(table, "사고일시")
    assert isinstance(d, DatetimeDistribution)
    assert (d.count, d.missing) == (4, 1)
    assert [(p.key, p.count) for p in d.by_day] == [("2021-03-01", 2), ("2021-03-02", 1), ("2021-04-04", 1)]
    assert [(p.key, p.count) for p in d.by_month] == [("2021-03", 3), ("2021-04", 1)]
    assert [h.key for h in d.by_hour] == list(range(24))
    assert {h.key: h.count for h in d.by_hour if h.count} == {0: 1, 8: 2, 23: 1}
    # 2021-03-01 is a Monday, 2021-03-02 a Tuesday, 2021-04-04 a Sunday
    assert [w.count for w in d.by_weekday] == [2, 1, 0, 0, 0, 0, 1]


def test_datetime_distribution_uses_local_time_of_zone() -> None:
    utc = pa.array([datetime(2021, 3, 1, 20)], pa.timestamp("s", tz="UTC"))
    seoul = utc.cast(pa.timestamp("s", tz="Asia/Seoul"))
    d = column_distribution(pa.table({"t": seoul}), "t")
    assert isinstance(d, DatetimeDistribution)
    assert d.by_day[0].key == "2021-03-02" and d.by_hour[5].count == 1


def test_distribution_is_a_tagged_union() -> None:
    table = accident_table()
    for name, tag in (("ECLO", "numeric"), ("요일", "categorical"), ("사고일시", "datetime")):
        body = msgspec.json.encode(column_distribution(table, name))
        decoded = msgspec.json.decode(body, type=ColumnDistribution)
        assert msgspec.json.decode(body)["type"] == tag
        assert decoded == column_distribution(table, name)


def test_unknown_column_raises_key_error() -> None:
    with pytest.raises(KeyError) as err:
        column_distribution(accident_table(), "없는열")
    assert err.value.args == ("없는열",)


# ---------------------------------------------------------------------------------------- points


def lights_table(n: int = 1000) -> pa.Table:
    rng = np.random.default_rng(5)
    lat = rng.uniform(35.6, 36.0, n)
    lon = rng.uniform(128.35, 128.77, n)
    lat[::10] = np.nan  # 100 missing
    lon[5::50] = 0.0  # 20 invalid
    return pa.table(
        {
            "보안등위치명": [f"대명{i}" for i in range(n)],
            "설치개수": pa.array(rng.integers(1, 4, n)),
            "소재지지번주소": [f"주소{i}" for i in range(n)],
            "위도": lat,
            "경도": lon,
            "설치연도": pa.array([None if i % 3 else 2010.0 for i in range(n)], pa.float64()),
            "설치형태": ["한전주"] * n,
        }
    )


def test_points_counts_sampling_and_order() -> None:
    table = lights_table()
    p = sample_points(table, max_points=300, seed=7)
    assert isinstance(p, MapPoints)
    assert (p.total_rows, p.valid, p.invalid, p.missing) == (1000, 880, 20, 100)
    assert p.returned == len(p.points) == 300 and p.sampled
    names = [pt.label["보안등위치명"] for pt in p.points]
    indices = [int(str(n).removeprefix("대명")) for n in names]
    assert indices == sorted(indices) and len(set(indices)) == 300  # original row order, no repeats
    assert p.label_columns == ["보안등위치명", "설치개수", "설치형태"]
    assert all(35.6 <= pt.lat <= 36.0 and 128.35 <= pt.lon <= 128.77 for pt in p.points)
    again = sample_points(table, max_points=300, seed=7)
    assert again == p
    assert sample_points(table, max_points=300, seed=8) != p
    _no_nan(p)


def test_points_not_sampled_when_under_limit() -> None:
    p = sample_points(lights_table(), max_points=5000)
    assert not p.sampled and p.returned == p.valid == 880


def test_points_with_given_labels() -> None:
    p = sample_points(lights_table(), max_points=10, label_columns=["설치연도", "없는열", "위도"])
    assert p.label_columns == ["설치연도", "위도"]
    assert all(set(pt.label) == {"설치연도", "위도"} for pt in p.points)
    assert any(pt.label["설치연도"] is None for pt in p.points)
    assert sample_points(lights_table(), max_points=10, label_columns=[]).points[0].label == {}


def test_points_string_coordinates_and_generic_labels() -> None:
    table = pa.table(
        {
            "name": ["a", "b", "c", "d"],
            "note": ["x", "y", "z", "w"],
            "lat": pa.array(["35.87", "n/a", "35.9", "35.8"], pa.large_string()),
            "lng": pa.array(["128.6", "128.6", "200", "128.5"], pa.large_string()),
            "when": pa.array([datetime(2021, 1, 1)] * 4, pa.timestamp("s")),
        }
    )
    p = sample_points(table, max_points=10, label_columns=None)
    assert (p.valid, p.invalid, p.missing) == (2, 1, 1)
    assert p.label_columns == ["name", "note"]
    assert [(pt.lat, pt.lon, pt.label["name"]) for pt in p.points] == [
        (35.87, 128.6, "a"),
        (35.8, 128.5, "d"),
    ]
    timed = sample_points(table, max_points=1, label_columns=["when"])
    assert timed.points[0].label == {"when": "2021-01-01T00:00:00"} and timed.returned == 1


def test_points_all_invalid_and_zero_limit() -> None:
    table = _coord_table([0.0, None], [0.0, 128.0])
    p = sample_points(table, max_points=100)
    assert (p.valid, p.invalid, p.missing, p.returned, p.points) == (0, 1, 1, 0, [])
    z = sample_points(lights_table(), max_points=0)
    assert z.returned == 0 and z.sampled and z.valid == 880


def test_points_without_coordinates_raise_value_error() -> None:
    with pytest.raises(ValueError, match="latitude/longitude"):
        sample_points(accident_table(), max_points=100)


def test_date_and_decimal_columns() -> None:
    table = pa.table(
        {
            "day": pa.array([date(2022, 1, 3), date(2022, 1, 3), None], pa.date32()),
            "fee": pa.array([Decimal("1.50"), None, Decimal("2.50")], pa.decimal128(5, 2)),
        }
    )
    s = summarize(table, DatasetKind.GENERIC)
    assert [(c.dtype, c.role) for c in s.columns] == [("datetime", "datetime"), ("float", "numeric")]
    assert (s.dates[0].min, s.dates[0].days) == ("2022-01-03", 1)
    assert s.numeric[0].mean == 2.0
    d = column_distribution(table, "day")
    assert isinstance(d, DatetimeDistribution) and d.by_hour[0].count == 2 and d.by_weekday[0].count == 2
    f = column_distribution(table, "fee")
    assert isinstance(f, NumericDistribution) and sum(f.histogram.counts) == 2
