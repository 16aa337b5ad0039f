"""Insights and comparisons computed from an Arrow table: pure, deterministic, no I/O.

Every sentence states the figures it rests on (counts, shares, means); ties are broken by value so that
the same table always gives the same text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from api.datasets.column_values import as_numbers, as_strings, column_by_name, dtype_of, value_counts
from api.datasets.kinds import ACCIDENT_SHAPED_KINDS, DatasetKind
from api.datasets.narration import WEEKDAY_NAMES, iga, num, pct, ro
from api.insights.schemas import Figure, Insight, InsightKind, SideFigures

# The columns whose dominant value is worth a sentence, by dataset kind (those present, in this order).
KEY_COLUMNS: dict[DatasetKind, tuple[str, ...]] = {
    DatasetKind.ACCIDENT: ("기상상태", "노면상태", "도로형태", "사고유형", "법규위반"),
    DatasetKind.ACCIDENT_TEST: ("기상상태", "노면상태", "도로형태", "사고유형"),
    DatasetKind.CCTV: ("시군구명", "도로종류"),
    DatasetKind.LIGHTS: ("설치형태",),
    DatasetKind.ZONES: ("시설종류", "관할경찰서명"),
    DatasetKind.PARKING: ("주차장구분", "주차장유형", "요금정보"),
}
ECLO_GROUP_COLUMNS = ("기상상태", "노면상태", "도로형태", "사고유형")
MIN_GROUP_ROWS = 30  # smaller groups make means too noisy to call "highest"
MISSING_WARN_RATIO = 0.05
MAX_MISSING_ITEMS = 5
MAX_FALLBACK_KEY_COLUMNS = 4
MAX_FALLBACK_DISTINCT = 30
WEEKDAY_COLUMN = "요일"


def repr_(value: str) -> str:
    """A data value quoted in a sentence."""
    return f"'{value}'"


def _share(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def _counts(col: pa.ChunkedArray) -> list[tuple[str, int]]:
    """(value, count) of the non-missing values, most frequent first, ties by value."""
    values, counts = value_counts(as_strings(col))
    pairs = zip(values.to_pylist(), counts.tolist(), strict=True)
    return sorted(((str(v), int(c)) for v, c in pairs), key=lambda p: (-p[1], p[0]))


def key_columns(table: pa.Table, kind: DatasetKind) -> list[str]:
    names = table.column_names
    chosen = [c for c in KEY_COLUMNS.get(kind, ()) if c in names]
    if chosen:
        return chosen
    fallback = []
    for field in table.schema:
        if dtype_of(field.type) != "string" or field.name in fallback:
            continue
        distinct = len(value_counts(as_strings(column_by_name(table, field.name)))[0])
        if 2 <= distinct <= MAX_FALLBACK_DISTINCT:
            fallback.append(field.name)
        if len(fallback) == MAX_FALLBACK_KEY_COLUMNS:
            break
    return fallback


def dominant_category(table: pa.Table, column: str) -> Insight | None:
    pairs = _counts(column_by_name(table, column))
    if not pairs:
        return None
    total = sum(c for _, c in pairs)
    value, count = pairs[0]
    text = f"'{column}'에서 가장 많은 값은 {ro(repr_(value))} {total:,}행 중 {count:,}행({pct(count, total)})입니다."
    figures: dict[str, Figure] = {"value": value, "count": count, "total": total, "share": _share(count, total)}
    if len(pairs) > 1:
        second, second_count = pairs[1]
        text += f" 두 번째는 '{second}' {second_count:,}행({pct(second_count, total)})입니다."
        figures |= {"second": second, "second_count": second_count}
    return Insight(kind=InsightKind.DOMINANT_CATEGORY, text=text, columns=[column], figures=figures)


def missing_values(table: pa.Table) -> list[Insight]:
    rows = table.num_rows
    if not rows:
        return []
    found = []
    for name in dict.fromkeys(table.column_names):
        col = column_by_name(table, name)
        missing = col.null_count
        if dtype_of(col.type) in ("integer", "float"):
            missing = as_numbers(col).null_count
        elif dtype_of(col.type) == "string":
            missing += int(pc.sum(pc.equal(pc.utf8_trim_whitespace(as_strings(col)), "")).as_py() or 0)
        if missing / rows >= MISSING_WARN_RATIO:
            found.append((name, missing))
    found.sort(key=lambda p: (-p[1], p[0]))
    return [
        Insight(
            kind=InsightKind.MISSING_VALUES,
            text=f"주의: '{name}' 열은 {rows:,}행 중 {missing:,}행({pct(missing, rows)})이 비어 있습니다.",
            columns=[name],
            figures={"missing": missing, "rows": rows, "share": _share(missing, rows)},
        )
        for name, missing in found[:MAX_MISSING_ITEMS]
    ]


def _time_column(table: pa.Table) -> str | None:
    for field in table.schema:
        if pa.types.is_timestamp(field.type):
            return field.name
    return None


def busiest_times(table: pa.Table) -> list[Insight]:
    out: list[Insight] = []
    time_column = _time_column(table)
    times = column_by_name(table, time_column).drop_null() if time_column else None
    if times is not None and len(times):
        if times.type.tz is not None:
            times = pc.local_timestamp(times)
        hours = np.bincount(np.asarray(pc.hour(times).to_numpy(zero_copy_only=False)), minlength=24)
        if hours[1:].sum():  # not plain dates stored as midnight
            total = int(hours.sum())
            hour = int(np.argmax(hours))  # the earliest of equally busy hours
            count = int(hours[hour])
            out.append(
                Insight(
                    kind=InsightKind.BUSIEST_HOUR,
                    text=f"'{time_column}' 기준으로 가장 많은 시간은 {hour}시로 {total:,}건 중 {count:,}건"
                    f"({pct(count, total)})입니다.",
                    columns=[str(time_column)],
                    figures={"hour": hour, "count": count, "total": total, "share": _share(count, total)},
                )
            )
    weekday: tuple[str, str, int, int] | None = None  # column, name, count, total
    if WEEKDAY_COLUMN in table.column_names:
        pairs = _counts(column_by_name(table, WEEKDAY_COLUMN))
        if pairs:
            weekday = (WEEKDAY_COLUMN, pairs[0][0], pairs[0][1], sum(c for _, c in pairs))
    elif times is not None and len(times):
        days = np.bincount(np.asarray(pc.day_of_week(times).to_numpy(zero_copy_only=False)), minlength=7)
        best = int(np.argmax(days))
        weekday = (str(time_column), WEEKDAY_NAMES[best], int(days[best]), int(days.sum()))
    if weekday is not None:
        column, name, count, total = weekday
        out.append(
            Insight(
                kind=InsightKind.BUSIEST_WEEKDAY,
                text=f"'{column}' 기준으로 가장 많은 요일은 {ro(name)} {total:,}건 중 "
                f"{count:,}건({pct(count, total)})입니다.",
                columns=[column],
                figures={"weekday": name, "count": count, "total": total, "share": _share(count, total)},
            )
        )
    return out


@dataclass(frozen=True)
class GroupMean:
    value: str
    mean: float
    count: int


def group_means(table: pa.Table, group: str, target: str, min_rows: int = MIN_GROUP_ROWS) -> list[GroupMean]:
    """Mean of ``target`` per value of ``group`` (rows missing either left out), groups of ``min_rows``+."""
    keys = as_strings(column_by_name(table, group))
    values = as_numbers(column_by_name(table, target)).cast(pa.float64())
    pairs = pa.table({"g": keys, "v": values}).filter(pc.and_(pc.is_valid(keys), pc.is_valid(values)))
    grouped = pairs.group_by("g").aggregate([("v", "mean"), ("v", "count")])
    out = [
        GroupMean(value=str(g), mean=float(m), count=int(n))
        for g, m, n in zip(
            grouped["g"].to_pylist(), grouped["v_mean"].to_pylist(), grouped["v_count"].to_pylist(), strict=True
        )
        if n >= min_rows
    ]
    return sorted(out, key=lambda g: (-g.mean, -g.count, g.value))


def eclo_by_group(table: pa.Table, group: str) -> Insight | None:
    groups = group_means(table, group, "ECLO")
    if len(groups) < 2:
        return None
    high, low = groups[0], groups[-1]
    overall = pc.mean(as_numbers(column_by_name(table, "ECLO"))).as_py()
    text = (
        f"{group}별 ECLO 평균은 {iga(repr_(high.value))} {num(high.mean)}({high.count:,}건)로 가장 높고, "
        f"{iga(repr_(low.value))} {num(low.mean)}({low.count:,}건)로 가장 낮습니다 (전체 평균 {num(overall)}, "
        f"{MIN_GROUP_ROWS}건 이상인 {len(groups)}개 그룹)."
    )
    return Insight(
        kind=InsightKind.ECLO_BY_GROUP,
        text=text,
        columns=[group, "ECLO"],
        figures={
            "highest": high.value,
            "highest_mean": round(high.mean, 4),
            "highest_count": high.count,
            "lowest": low.value,
            "lowest_mean": round(low.mean, 4),
            "lowest_count": low.count,
            "overall_mean": None if overall is None else round(float(overall), 4),
            "groups": len(groups),
        },
    )


def dataset_insights(table: pa.Table, kind: DatasetKind) -> list[Insight]:
    """Every insight of a table, in a fixed order: key columns, times, ECLO by group, missing values."""
    items = [i for c in key_columns(table, kind) if (i := dominant_category(table, c)) is not None]
    items += busiest_times(table)
    if kind in ACCIDENT_SHAPED_KINDS and "ECLO" in table.column_names:
        items += [i for c in ECLO_GROUP_COLUMNS if c in table.column_names and (i := eclo_by_group(table, c))]
    items += missing_values(table)
    return items


# ---- comparisons --------------------------------------------------------------------------------------


def is_numeric(table: pa.Table, column: str) -> bool:
    return dtype_of(column_by_name(table, column).type) in ("integer", "float")


def select_rows(table: pa.Table, column: str | None, value: str | None) -> pa.Table:
    if column is None:
        return table
    keys = as_strings(column_by_name(table, column))
    return table.filter(pc.fill_null(pc.equal(keys, value), False))


def side_figures(table: pa.Table, column: str, *, dataset_id: int, label: str, numeric: bool) -> SideFigures:
    col = column_by_name(table, column)
    if numeric:
        values = as_numbers(col).drop_null().cast(pa.float64())
        values_np = np.asarray(values.to_numpy(), dtype=np.float64) if len(values) else np.zeros(0)
        return SideFigures(
            dataset_id=dataset_id,
            label=label,
            rows=table.num_rows,
            count=len(values_np),
            mean=float(values_np.mean()) if len(values_np) else None,
            median=float(np.median(values_np)) if len(values_np) else None,
        )
    pairs = _counts(col)
    count = sum(c for _, c in pairs)
    return SideFigures(
        dataset_id=dataset_id,
        label=label,
        rows=table.num_rows,
        count=count,
        top_value=pairs[0][0] if pairs else None,
        top_share=_share(pairs[0][1], count) if pairs else None,
    )


def comparison_sentence(column: str, left: SideFigures, right: SideFigures) -> str:
    if left.mean is not None and right.mean is not None:
        diff = left.mean - right.mean
        if diff == 0:
            return (
                f"'{column}' 평균은 {left.label}({left.count:,}건)과 {right.label}({right.count:,}건)이 "
                f"{num(left.mean)}로 같습니다."
            )
        ratio = f", {abs(diff) / abs(right.mean) * 100:.1f}%" if right.mean else ""
        return (
            f"'{column}' 평균은 {iga(left.label)} {num(left.mean)}({left.count:,}건)로 {right.label}의 "
            f"{num(right.mean)}({right.count:,}건)보다 {num(abs(diff))}{ratio} "
            f"{'높습니다' if diff > 0 else '낮습니다'}."
        )
    if left.top_value is not None and right.top_value is not None:
        same = "같습니다" if left.top_value == right.top_value else "다릅니다"
        return (
            f"'{column}'에서 가장 많은 값은 {iga(left.label)} '{left.top_value}'({left.top_share:.1f}%, "
            f"{left.count:,}건 중), {iga(right.label)} '{right.top_value}'({right.top_share:.1f}%, "
            f"{right.count:,}건 중)로 {same}."
        )
    return (
        f"'{column}' 값이 없는 쪽이 있어 비교할 수 없습니다 "
        f"({left.label} {left.count:,}건, {right.label} {right.count:,}건)."
    )
