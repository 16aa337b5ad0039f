"""The prediction form's rules, kept apart from the page script so they can be tested without Streamlit."""

from __future__ import annotations

import datetime as dt
from typing import Any

AUTO = "(자동 계산)"
AUTO_FEATURES = ("시간대", "요일")  # the API derives these from 사고시 / 사고일시 when they are left out
DATE_PARTS = ("사고연", "사고월", "사고일", "사고시")


def integer_default(feature: dict[str, Any], today: dt.date | None = None) -> int:
    """Today's date and 8 o'clock for the date parts, else the minimum; always within the feature's range."""
    today = today or dt.date.today()
    defaults = {"사고연": today.year, "사고월": today.month, "사고일": today.day, "사고시": 8}
    value = defaults.get(feature["name"], feature.get("minimum") or 0)
    low, high = feature.get("minimum"), feature.get("maximum")
    return max(low, min(high, value)) if low is not None and high is not None else value


def request_body(values: dict[str, Any]) -> dict[str, Any]:
    """The form's values as the API's input; an automatic 요일 needs the date, sent as 사고일시."""
    body = {k: v for k, v in values.items() if v != AUTO}
    if values.get("요일") == AUTO and all(k in values for k in DATE_PARTS):
        year, month, day, hour = (int(values[k]) for k in DATE_PARTS)
        body["사고일시"] = f"{year:04d}-{month:02d}-{day:02d} {hour:02d}"
    return {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in body.items()}
