"""One accident as a client sends it for a single ECLO prediction (Korean feature names, demo vocabulary)."""

from __future__ import annotations

ACCIDENT_ROW = {
    "사고일시": "2022-01-01 08",
    "기상상태": "맑음",
    "노면상태": "건조",
    "도로형태": "단일로 - 기타",
    "사고유형": "차대차",
    "시군구": "대구광역시 수성구 범어동",
    "요일": "토요일",
}
