"""api.analysis filters: every op against an independent pandas expression, coercion, and hostile conditions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from api.analysis import ToolContext, run_tool
from api.analysis.filters import OPS


def _frame() -> pd.DataFrame:
    """Typed like a Parquet-loaded dataset: str with NaN, datetime64[ms], int64, float64."""
    table = pa.table(
        {
            "사고일시": pa.array(
                pd.to_datetime(
                    [
                        "2021-01-01 08:00",
                        "2021-01-01 23:00",
                        "2021-02-14 18:00",
                        "2021-03-03 07:00",
                        "2021-12-31 22:00",
                        "2022-06-15 12:00",
                        "2020-07-04 03:00",
                        "2020-07-05 14:00",
                    ]
                ).astype("datetime64[ms]")
            ),
            "기상상태": ["맑음", "비", "비", "흐림", "맑음", "눈", None, "맑음"],
            "시군구": [
                "대구광역시 중구 대신동",
                "대구광역시 중구 동인동1가",
                "대구광역시 동구 신암동",
                "대구광역시 수성구 범어동",
                "대구광역시 달성군 화원읍",
                "대구광역시 북구 침산동",
                "대구광역시 서구 비산동",
                "대구광역시 남구 대명동",
            ],
            "메모": ["a(1)", None, "b.c", "x", "a(1)", None, "y", "A(1)"],
            "ECLO": [3, 8, 5, 1, 10, 6, 15, 3],
            "위도": [35.87, 35.86, 0.0, None, 35.80, 35.89, 35.87, 128.5],
        }
    )
    return table.to_pandas()


def _matched(conditions, combine=None, frame=None):
    frame = _frame() if frame is None else frame
    args = {"conditions": conditions, "limit": 100}
    if combine is not None:
        args["combine"] = combine
    out = run_tool("filter_dataframe", args, ToolContext(datasets={"d": frame}))
    return out


def _run_snippet(snippet: str, df: pd.DataFrame):
    lines = snippet.split("\n")
    namespace = {"pd": pd, "np": np, "df": df}
    exec(compile("\n".join(lines[:-1]), "<snippet>", "exec"), namespace)
    return eval(compile(lines[-1], "<snippet>", "eval"), namespace)


df = _frame()
T = df["사고일시"]
CASES = [
    ([{"column": "기상상태", "op": "==", "value": "비"}], df["기상상태"] == "비"),
    ([{"column": "기상상태", "op": "!=", "value": "맑음"}], df["기상상태"] != "맑음"),
    ([{"column": "ECLO", "op": ">", "value": 5}], df["ECLO"] > 5),
    ([{"column": "ECLO", "op": ">=", "value": "5"}], df["ECLO"] >= 5),  # numbers may arrive as strings
    ([{"column": "ECLO", "op": "<", "value": 3.5}], df["ECLO"] < 3.5),
    ([{"column": "ECLO", "op": "<=", "value": 3}], df["ECLO"] <= 3),
    ([{"column": "기상상태", "op": "in", "value": ["비", "눈"]}], df["기상상태"].isin(["비", "눈"])),
    ([{"column": "기상상태", "op": "not_in", "value": ["맑음"]}], ~df["기상상태"].isin(["맑음"])),
    ([{"column": "ECLO", "op": "in", "value": ["3", 10]}], df["ECLO"].isin([3, 10])),
    ([{"column": "메모", "op": "contains", "value": "a(1)"}], df["메모"].str.contains("a(1)", regex=False, na=False)),
    ([{"column": "메모", "op": "contains", "value": "."}], df["메모"].str.contains(".", regex=False, na=False)),
    ([{"column": "ECLO", "op": "between", "value": [3, 8]}], df["ECLO"].between(3, 8)),
    ([{"column": "위도", "op": "is_null"}], df["위도"].isna()),
    ([{"column": "기상상태", "op": "not_null"}], df["기상상태"].notna()),
    (
        [{"column": "사고일시", "op": ">=", "value": "2021-01-01"}, {"column": "ECLO", "op": ">", "value": 4}],
        (df["사고일시"] >= pd.Timestamp("2021-01-01")) & (df["ECLO"] > 4),
    ),
    # Partial dates mean the whole period.
    ([{"column": "사고일시", "op": "==", "value": "2021-01-01"}], T.dt.date == pd.Timestamp("2021-01-01").date()),
    ([{"column": "사고일시", "op": "==", "value": "2021"}], df["사고일시"].dt.year == 2021),
    ([{"column": "사고일시", "op": "!=", "value": "2021"}], df["사고일시"].dt.year != 2021),
    ([{"column": "사고일시", "op": "<=", "value": "2021-01-01"}], df["사고일시"] < pd.Timestamp("2021-01-02")),
    ([{"column": "사고일시", "op": ">", "value": "2021-01"}], df["사고일시"] >= pd.Timestamp("2021-02-01")),
    ([{"column": "사고일시", "op": "between", "value": ["2021-01", "2021-02"]}], T.between("2021-01", "2021-03")),
    ([{"column": "사고일시", "op": ">", "value": "2021-06-01 12:30"}], T > pd.Timestamp("2021-06-01 12:30")),
]  # fmt: skip


@pytest.mark.parametrize(("conditions", "expected"), CASES, ids=[str(c[0]) for c in CASES])
def test_each_op_matches_pandas(conditions, expected):
    out = _matched(conditions)
    assert out.record.ok, out.text
    assert out.record.rows_touched == int(expected.sum())
    assert f"→ {int(expected.sum())}행 / 전체 8행" in out.text
    shown = _run_snippet(out.record.snippet, _frame())
    assert list(shown.index) == list(df.index[expected.to_numpy()])


def test_or_combination_and_every_brief_op_listed():
    out = _matched(
        [{"column": "기상상태", "op": "==", "value": "눈"}, {"column": "ECLO", "op": ">=", "value": 10}], combine="OR"
    )
    expected = (df["기상상태"] == "눈") | (df["ECLO"] >= 10)
    assert out.record.ok and out.record.rows_touched == int(expected.sum()) == 3
    assert " | " in out.record.snippet
    assert OPS == ("==", "!=", ">", ">=", "<", "<=", "in", "not_in", "contains", "between", "is_null", "not_null")


def test_nullable_columns_are_filled_with_false():
    frame = pd.DataFrame({"n": pd.array([1, None, 3, 4], dtype="Int64"), "f": pd.array([0.5, 1.5, None, 2.5])})
    out = _matched([{"column": "n", "op": ">", "value": 1}], frame=frame)
    assert out.record.ok and out.record.rows_touched == 2
    assert ".fillna(False)" in out.record.snippet
    assert list(_run_snippet(out.record.snippet, frame).index) == [2, 3]


def test_timezone_aware_columns_compare_in_local_time():
    stamps = pd.to_datetime(["2021-01-01 08:00", "2021-01-02 08:00"]).tz_localize("Asia/Seoul")
    frame = pd.DataFrame({"t": stamps, "v": [1, 2]})
    out = _matched([{"column": "t", "op": "==", "value": "2021-01-02"}], frame=frame)
    assert out.record.ok and out.record.rows_touched == 1
    assert list(_run_snippet(out.record.snippet, frame).index) == [1]


def test_empty_result_explains_each_condition_and_suggests_real_values():
    out = _matched(
        [{"column": "기상상태", "op": "==", "value": "비 오는 날"}, {"column": "ECLO", "op": ">", "value": 1}]
    )
    assert not out.record.ok and out.record.rows_touched == 0
    assert "조건에 맞는 행이 없습니다" in out.text and "0행" in out.text and "'비'" in out.text
    assert "ECLO > 1: 7행" in out.text


HOSTILE = [
    ([{"column": "__class__", "op": "==", "value": 1}], "없습니다"),
    ([{"column": "; import os", "op": "==", "value": 1}], "없습니다"),
    ([{"column": "ECLO", "op": "=~", "value": 1}], "지원하지 않습니다"),
    ([{"column": "ECLO", "op": "__eq__", "value": 1}], "지원하지 않습니다"),
    ([{"column": "ECLO", "op": "eval", "value": "1"}], "지원하지 않습니다"),
    ([{"column": "ECLO", "op": None, "value": 1}], "지원하지 않습니다"),
    ([{"column": "ECLO", "op": ">", "value": "abc"}], "숫자 값이 필요"),
    ([{"column": "ECLO", "op": ">", "value": None}], "is_null"),
    ([{"column": "ECLO", "op": "==", "value": True}], "숫자 값이 필요"),
    ([{"column": "ECLO", "op": "==", "value": float("inf")}], "유한한"),
    ([{"column": "기상상태", "op": ">", "value": "비"}], "크기 비교"),
    ([{"column": "ECLO", "op": "contains", "value": "1"}], "문자열 열에만"),
    ([{"column": "메모", "op": "contains", "value": ""}], "찾을 글자"),
    ([{"column": "ECLO", "op": "between", "value": [1, 2, 3]}], "[최소, 최대]"),
    ([{"column": "ECLO", "op": "between", "value": [9, 2]}], "보다 큽니다"),
    ([{"column": "ECLO", "op": "in", "value": {"a": 1}}], "하나의 값"),
    ([{"column": "ECLO", "op": "in", "value": []}], "하나 이상"),
    ([{"column": "ECLO", "op": "in", "value": list(range(501))}], "최대 500"),
    ([{"column": "ECLO", "op": "==", "value": [[1]]}], "하나의 값"),
    ([{"column": "사고일시", "op": ">", "value": 2021}], "날짜 문자열"),
    ([{"column": "사고일시", "op": ">", "value": "어제"}], "날짜 문자열"),
    ([{"column": "ECLO", "op": "==", "value": 1, "query": "ECLO > 1"}], "알 수 없는 키"),
    ([{"op": "==", "value": 1}], "'column'이 없습니다"),
    ([{"column": {"nested": [1, {"x": None}]}, "op": "==", "value": 1}], "문자열"),
    ([[1, 2]], "객체가 아닙니다"),
    ("ECLO > 5", "배열"),
    (42, "배열"),
    ([{"column": "ECLO", "op": "==", "value": 1}] * 21, "최대 20"),
    ([], "하나 이상"),
]  # fmt: skip


@pytest.mark.parametrize(("conditions", "needle"), HOSTILE, ids=[repr(h[0])[:50] for h in HOSTILE])
def test_hostile_conditions_fail_with_a_korean_reason(conditions, needle):
    out = _matched(conditions)
    assert not out.record.ok
    assert needle in out.text
    assert out.record.rows_touched == 0 and out.record.summary


def test_bad_combine_and_conditions_as_json_text():
    out = _matched([{"column": "ECLO", "op": ">", "value": 1}], combine="xor")
    assert not out.record.ok and "combine" in out.text
    text_conditions = '[{"column": "ECLO", "op": ">", "value": 9}]'
    out = _matched(text_conditions)
    assert out.record.ok and out.record.rows_touched == 2


def test_close_column_names_are_suggested():
    out = _matched([{"column": "ECL0", "op": ">", "value": 1}])
    assert not out.record.ok and "'ECLO'" in out.text
    out = _matched([{"column": "eclo", "op": ">", "value": 1}])  # case and spacing are forgiven
    assert out.record.ok
