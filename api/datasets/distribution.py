"""The distribution of one column of an in-memory ``pyarrow.Table``.

Histogram, box statistics and KDE; top values; or calendar counts.

``column_distribution`` returns one of three Structs tagged by ``type`` ("numeric", "categorical",
"datetime"). Plain ints, floats, strings and None only (never NaN or inf).
"""

from __future__ import annotations

from collections import Counter
from datetime import date

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.stats import gaussian_kde

from api.datasets import narration
from api.datasets.column_values import (
    ValueCount,
    as_numbers,
    as_strings,
    column_by_name,
    dtype_of,
    top_values,
    value_counts,
)

KDE_MAX_SAMPLE = 20_000
KDE_SEED = 0
OUTLIERS_SAMPLE = 50
WHISKER_IQR = 1.5  # Tukey's fences


class Histogram(msgspec.Struct, kw_only=True):
    edges: list[float]  # bins + 1 edges, equal width from min to max (empty when no values)
    counts: list[int]  # bins counts; the last bin includes its right edge


class BoxStats(msgspec.Struct, kw_only=True):
    min: float
    q1: float
    median: float
    q3: float
    max: float
    whisker_low: float  # smallest value >= q1 - 1.5·IQR
    whisker_high: float  # largest value <= q3 + 1.5·IQR
    outlier_count: int
    outliers_sample: list[float]  # <= 50 outliers spread evenly over their sorted order (extremes included)


class KdeCurve(msgspec.Struct, kw_only=True):
    x: list[float]  # evenly spaced from min to max
    y: list[float]  # estimated density


class NumericDistribution(msgspec.Struct, kw_only=True, tag_field="type", tag="numeric"):
    column: str
    count: int
    missing: int
    histogram: Histogram
    box: BoxStats | None
    kde: KdeCurve | None  # None when fewer than two distinct values
    narration: str = ""  # one Korean sentence stating what the figures show


class CategoricalDistribution(msgspec.Struct, kw_only=True, tag_field="type", tag="categorical"):
    column: str
    count: int
    missing: int
    values: list[ValueCount]
    other_count: int
    narration: str = ""


class PeriodCount(msgspec.Struct, kw_only=True):
    key: str  # 'YYYY-MM-DD' or 'YYYY-MM'
    count: int


class SlotCount(msgspec.Struct, kw_only=True):
    key: int  # hour 0..23 or weekday 0..6 (Monday = 0)
    count: int


class DatetimeDistribution(msgspec.Struct, kw_only=True, tag_field="type", tag="datetime"):
    column: str
    count: int
    missing: int
    by_day: list[PeriodCount]  # days that occur, in order
    by_month: list[PeriodCount]  # months that occur, in order
    by_hour: list[SlotCount]  # all 24 hours
    by_weekday: list[SlotCount]  # all 7 weekdays
    narration: str = ""


ColumnDistribution = NumericDistribution | CategoricalDistribution | DatetimeDistribution


def column_distribution(
    table: pa.Table, column: str, *, bins: int = 30, top: int = 20, kde_points: int = 100
) -> ColumnDistribution:
    """The distribution of ``column``; ``KeyError(column)`` when the table has no such column."""
    if bins < 1 or top < 0 or kde_points < 2:
        raise ValueError("bins must be >= 1, top >= 0 and kde_points >= 2")
    col = column_by_name(table, column)
    dtype = dtype_of(col.type)
    if dtype in ("integer", "float"):
        return _numeric(column, col, bins, kde_points)
    if dtype == "datetime":
        return _datetime(column, col)
    strings = as_strings(col)
    values, counts = value_counts(strings)
    shown, other = top_values(values, counts, top)
    count = len(strings) - strings.null_count
    return CategoricalDistribution(
        column=column,
        count=count,
        missing=strings.null_count,
        values=shown,
        other_count=other,
        narration=narration.categorical_sentence(column, count, strings.null_count, shown, len(values)),
    )


def _numeric(column: str, col: pa.ChunkedArray, bins: int, kde_points: int) -> NumericDistribution:
    col = as_numbers(col)
    missing = col.null_count
    present = col.drop_null()
    values = np.asarray(present.to_numpy(), dtype=np.float64) if len(present) else np.zeros(0)
    if len(values) == 0:
        return NumericDistribution(
            column=column,
            count=0,
            missing=missing,
            histogram=Histogram(edges=[], counts=[]),
            box=None,
            kde=None,
            narration=narration.numeric_sentence(column, 0, missing, None),
        )
    counts, edges = np.histogram(values, bins=bins)
    box = _box(values)
    return NumericDistribution(
        column=column,
        count=len(values),
        missing=missing,
        histogram=Histogram(edges=edges.tolist(), counts=counts.tolist()),
        box=box,
        kde=_kde(values, kde_points),
        narration=narration.numeric_sentence(column, len(values), missing, box),
    )


def _box(values: np.ndarray) -> BoxStats:
    low, q1, median, q3, high = np.percentile(values, [0, 25, 50, 75, 100]).tolist()
    reach = WHISKER_IQR * (q3 - q1)
    inside = (values >= q1 - reach) & (values <= q3 + reach)
    outliers = np.sort(values[~inside])
    if len(outliers) > OUTLIERS_SAMPLE:
        outliers = outliers[np.linspace(0, len(outliers) - 1, OUTLIERS_SAMPLE).round().astype(np.int64)]
    within = values[inside]  # never empty: the median lies within the fences
    return BoxStats(
        min=low,
        q1=q1,
        median=median,
        q3=q3,
        max=high,
        whisker_low=float(within.min()),
        whisker_high=float(within.max()),
        outlier_count=int((~inside).sum()),
        outliers_sample=outliers.tolist(),
    )


def _kde(values: np.ndarray, points: int) -> KdeCurve | None:
    low, high = float(values.min()), float(values.max())
    if low == high:
        return None
    sample = values
    if len(values) > KDE_MAX_SAMPLE:
        rng = np.random.default_rng(KDE_SEED)
        sample = rng.choice(values, size=KDE_MAX_SAMPLE, replace=False)
    if sample.min() == sample.max():
        return None
    try:
        kde = gaussian_kde(sample)
        x = np.linspace(low, high, points)
        y = kde(x)
    except (np.linalg.LinAlgError, ValueError):
        return None
    if not np.all(np.isfinite(y)):
        return None
    return KdeCurve(x=x.tolist(), y=y.tolist())


def _datetime(column: str, col: pa.ChunkedArray) -> DatetimeDistribution:
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    missing = col.null_count
    present = col.drop_null()
    days: list[tuple[date, int]] = []
    hours = [0] * 24
    if len(present):
        if pa.types.is_timestamp(present.type) and present.type.tz is not None:
            present = pc.local_timestamp(present)  # calendar and clock of the stored time zone
        vc = pc.value_counts(present.cast(pa.date32()))
        days = sorted(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True))
        if pa.types.is_timestamp(present.type):
            hc = pc.value_counts(pc.hour(present))
            for hour, n in zip(hc.field("values").to_pylist(), hc.field("counts").to_pylist(), strict=True):
                hours[hour] = n
        else:
            hours[0] = len(present)  # plain dates carry no time of day
    months: Counter[str] = Counter()
    weekdays = [0] * 7
    for day, n in days:
        months[day.strftime("%Y-%m")] += n
        weekdays[day.weekday()] += n
    by_hour = [SlotCount(key=h, count=n) for h, n in enumerate(hours)]
    by_weekday = [SlotCount(key=d, count=n) for d, n in enumerate(weekdays)]
    return DatetimeDistribution(
        column=column,
        count=len(present),
        missing=missing,
        by_day=[PeriodCount(key=day.isoformat(), count=n) for day, n in days],
        by_month=[PeriodCount(key=k, count=n) for k, n in sorted(months.items())],
        by_hour=by_hour,
        by_weekday=by_weekday,
        narration=narration.datetime_sentence(column, len(present), missing, by_hour, by_weekday),
    )
