"""One Korean sentence describing a column distribution, from the figures the distribution already holds.

Shared by the distribution answers and the insights package (which builds on it), so both speak alike.
"""

from __future__ import annotations

import math
from typing import Any

WEEKDAY_NAMES = ("월요일", "화요일", "수요일", "목요일", "금요일", "토요일", "일요일")


def pct(part: float, whole: float) -> str:
    """A share as "12.3%" (one decimal); "0.0%" for an empty whole."""
    return f"{100.0 * part / whole:.1f}%" if whole else "0.0%"


def num(value: float | int | None) -> str:
    """A figure for a sentence: integers with separators, other numbers to two decimals."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def missing_clause(count: int, missing: int) -> str:
    total = count + missing
    return f" 결측은 {missing:,}행({pct(missing, total)})입니다." if missing else " 결측은 없습니다."


def numeric_sentence(column: str, count: int, missing: int, box: Any) -> str:
    if count == 0 or box is None:
        return f"'{column}' 열에는 숫자 값이 없습니다." + missing_clause(count, missing)
    return (
        f"'{column}' 값 {count:,}개의 중앙값은 {num(box.median)}이고, 가운데 50%는 {num(box.q1)}~{num(box.q3)}, "
        f"전체 범위는 {num(box.min)}~{num(box.max)}입니다. 이상치는 {box.outlier_count:,}개입니다."
        + missing_clause(count, missing)
    )


def categorical_sentence(column: str, count: int, missing: int, values: list[Any], distinct_shown: int) -> str:
    if count == 0 or not values:
        return f"'{column}' 열에는 값이 없습니다." + missing_clause(count, missing)
    top = values[0]
    quoted = f"'{top.value}'"
    text = f"'{column}'에서 가장 많은 값은 {ro(quoted)} {top.count:,}행({pct(top.count, count)})입니다."
    if distinct_shown > 1:
        second = values[1]
        text += f" 다음은 '{second.value}' {second.count:,}행({pct(second.count, count)})입니다."
    return text + missing_clause(count, missing)


def datetime_sentence(column: str, count: int, missing: int, by_hour: list[Any], by_weekday: list[Any]) -> str:
    if count == 0:
        return f"'{column}' 열에는 날짜 값이 없습니다." + missing_clause(count, missing)
    hour = min(by_hour, key=lambda s: (-s.count, s.key))
    weekday = min(by_weekday, key=lambda s: (-s.count, s.key))
    day = WEEKDAY_NAMES[weekday.key]
    text = f"'{column}' 기준으로 가장 많은 요일은 {day} {weekday.count:,}건({pct(weekday.count, count)})"
    if sum(s.count for s in by_hour if s.key != 0):  # plain dates carry no hour
        text += f", 가장 많은 시간은 {hour.key}시 {hour.count:,}건({pct(hour.count, count)})"
    return text + "입니다." + missing_clause(count, missing)


def _has_batchim(word: str) -> bool | None:
    last = word.rstrip("')\" ")[-1:] if word.rstrip("')\" ") else ""
    if "가" <= last <= "힣":
        return (ord(last) - 0xAC00) % 28 != 0
    return None


def ro(word: str) -> str:
    """``word`` with the particle 으로/로 that fits it ("맑음으로", "비로"; "(으)로" when unknown)."""
    batchim = _has_batchim(word)
    if batchim is None:
        return f"{word}(으)로"
    last = word.rstrip("')\" ")[-1]
    rieul = (ord(last) - 0xAC00) % 28 == 8
    return f"{word}{'으로' if batchim and not rieul else '로'}"


def iga(word: str) -> str:
    """``word`` with the subject particle 이/가 that fits it."""
    batchim = _has_batchim(word)
    return f"{word}{'이(가)' if batchim is None else ('이' if batchim else '가')}"
