"""api.analysis tools: numbers against independent pandas computations, and snippets that reproduce them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from api.analysis import ToolContext, run_tool


def _frame() -> pd.DataFrame:
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
            "노면상태": ["건조", "젖음/습기", "젖음/습기", "건조", "건조", "서리/결빙", "건조", "건조"],
            "사고유형": ["차대차", "차대사람", "차대차", "차대차", "차량단독", "차대차", "차대사람", "차대차"],
            "ECLO": [3, 8, 5, 1, 10, 6, 15, 3],
            "중상자수": [0, 1, 1, 0, 2, 0, 3, 0],
            "위도": [35.87, 35.86, 0.0, None, 35.80, 35.89, 35.87, 128.5],
            "경도": [128.60, 128.61, 0.0, None, 128.50, 128.58, 128.56, 35.8],
            "기준일자": ["2022-06-30", "2022-06-30", "2022-07-01", None, "2022-06-30", "2022-06-30", "2022-06-30", "x"],
            "빈열": pa.array([None] * 8, pa.string()),
        }
    )
    return table.to_pandas()


DF = _frame()
CTX = ToolContext(datasets={"사고": DF})


def run(name: str, **args):
    return run_tool(name, args, CTX)


def ok(name: str, **args):
    out = run(name, **args)
    assert out.record.ok, out.text
    assert out.record.tool == name and out.record.dataset == "사고" and out.record.duration_ms >= 0
    compile(out.record.snippet, "<snippet>", "exec")
    return out


def reproduce(out) -> object:
    """Execute a snippet the way a user would: statements, then the last line as the result."""
    lines = out.record.snippet.split("\n")
    namespace = {"pd": pd, "np": np, "df": _frame()}
    exec(compile("\n".join(lines[:-1]), "<snippet>", "exec"), namespace)
    return eval(compile(lines[-1], "<snippet>", "eval"), namespace)


def test_dataframe_info():
    out = ok("get_dataframe_info")
    assert out.text.startswith("행 8개, 열 10개")
    assert "위도 | 실수 | 1 | 35.87" in out.text and "빈열 | 문자열 | 8 | (결측)" in out.text
    assert "사고일시 | 날짜시각 | 0 | 2021-01-01 08:00" in out.text
    shape, _, nulls = reproduce(out)
    assert shape == (8, 10) and nulls["빈열"] == 8


def test_column_statistics_with_conditions():
    out = ok("get_column_statistics", column="ECLO", conditions=[{"column": "기상상태", "op": "==", "value": "비"}])
    assert "평균: 6.5" in out.text and "개수: 2" in out.text and "최댓값: 8" in out.text and "합계: 13" in out.text
    assert out.record.rows_touched == 2
    assert out.record.snippet == 'd = df[(df["기상상태"] == "비")]\nd["ECLO"].describe()'
    expected = DF[DF["기상상태"] == "비"]["ECLO"].describe()
    pd.testing.assert_series_equal(reproduce(out), expected)
    text = ok("get_column_statistics", column="기상상태").text
    assert "고유값 수: 4" in text and "최빈값: 맑음" in text and "최빈값 빈도: 3" in text and "결측 1 (12.5%)" in text


def test_statistics_of_an_all_missing_column_is_an_empty_result():
    out = run("get_column_statistics", column="빈열")
    assert not out.record.ok and "모두 결측" in out.text


def test_missing_values_and_pattern():
    out = ok("get_missing_values")
    assert "빈열 | 8 | 100.0%" in out.text and "기상상태 | 1 | 12.5%" in out.text and "위도 | 1 | 12.5%" in out.text
    assert "결측이 하나라도 있는 행: 8 (100.0%)" in out.text
    pd.testing.assert_series_equal(reproduce(out), DF.isna().sum())
    out = ok("analyze_missing_pattern", columns=["기상상태", "위도", "경도", "기준일자"])
    assert "항상 함께 결측인 열 묶음: 위도 + 경도 + 기준일자" in out.text
    assert "(결측 없음) | 6 | 75.0%" in out.text
    pd.testing.assert_series_equal(reproduce(out), DF[["기상상태", "위도", "경도", "기준일자"]].isna().value_counts())
    assert "결측값이 없습니다" in ok("analyze_missing_pattern", columns=["ECLO"]).text


def test_value_counts_include_missing():
    out = ok("get_value_counts", column="기상상태", limit=2)
    assert "맑음 | 3 | 37.5%" in out.text and "비 | 2 | 25.0%" in out.text and "…외 3개 값" in out.text
    pd.testing.assert_series_equal(reproduce(out), DF["기상상태"].value_counts(dropna=False).head(2))
    full = ok("get_value_counts", column="기상상태").text
    assert "(결측) | 1 | 12.5%" in full


def test_sort_dataframe():
    out = ok("sort_dataframe", by=["ECLO"], limit=3, columns=["ECLO", "기상상태"])
    lines = out.text.split("\n")
    assert lines[1] == "행 | ECLO | 기상상태" and lines[2] == "6 | 15 | (결측)" and lines[3] == "4 | 10 | 맑음"
    expected = DF.sort_values("ECLO", ascending=False, kind="stable")[["ECLO", "기상상태"]].head(3)
    pd.testing.assert_frame_equal(reproduce(out), expected)
    ascending = ok("sort_dataframe", by="ECLO", ascending=True, limit=1)
    assert ascending.text.split("\n")[2].startswith("3 | 1 |")


def test_correlation():
    out = ok("get_correlation", columns=["ECLO", "중상자수", "위도"])
    expected = DF[["ECLO", "중상자수", "위도"]].corr()
    pd.testing.assert_frame_equal(reproduce(out), expected)
    r = expected.loc["ECLO", "중상자수"]
    assert f"ECLO | 중상자수 | {r:.4f}".rstrip("0") in out.text
    spearman = ok("get_correlation", columns=["ECLO", "중상자수"], method="spearman")
    pd.testing.assert_frame_equal(reproduce(spearman), DF[["ECLO", "중상자수"]].corr(method="spearman"))
    bad = run("get_correlation", columns=["ECLO", "기상상태"])
    assert not bad.record.ok and "문자열 형식" in bad.text and "ECLO" in bad.text


def test_group_by_aggregate():
    out = ok("group_by_aggregate", group_by=["기상상태"], column="ECLO", agg=["mean", "max"])
    lines = out.text.split("\n")
    assert lines[1] == "기상상태 | 평균 | 최댓값 | 개수"
    assert (
        lines[2] == "(결측) | 15 | 15 | 1" and lines[3] == "비 | 6.5 | 8 | 2" and lines[5] == "맑음 | 5.3333 | 10 | 3"
    )
    expected = DF.groupby("기상상태", dropna=False)["ECLO"].agg(["mean", "max", "count"])
    result = reproduce(out)
    pd.testing.assert_frame_equal(result.sort_index(), expected.sort_index(), check_names=False)
    assert list(result["mean"]) == sorted(expected["mean"], reverse=True)
    assert "전체: 평균 6.375" in out.text
    sizes = ok("group_by_aggregate", group_by=["사고유형", "노면상태"], sort="group")
    assert "차대차 / 건조 | 3" in sizes.text
    pd.testing.assert_series_equal(reproduce(sizes), DF.groupby(["사고유형", "노면상태"]).size())
    text_mean = run("group_by_aggregate", group_by=["사고유형"], column="기상상태", agg="mean")
    assert not text_mean.record.ok and "평균(mean)을(를) 구할 수 없습니다" in text_mean.text
    unknown_agg = run("group_by_aggregate", group_by=["사고유형"], column="ECLO", agg="__import__('os')")
    assert not unknown_agg.record.ok and "mean" in unknown_agg.text
    no_column = run("group_by_aggregate", group_by=["사고유형"], agg="sum")
    assert not no_column.record.ok and "'column'이 필요" in no_column.text


def test_unique_values():
    out = ok("get_unique_values", column="노면상태")
    assert "고유값 3개" in out.text and "건조, 서리/결빙, 젖음/습기" in out.text
    assert reproduce(out) == sorted(DF["노면상태"].unique())
    limited = ok("get_unique_values", column="ECLO", limit=2).text
    assert "1, 3 …외 5개" in limited


def test_date_range_and_text_dates():
    out = ok("get_date_range")
    assert "2020-07-04 03:00 ~ 2022-06-15 12:00 (711일)" in out.text
    assert "연도별 행 수: 2020년 2, 2021년 5, 2022년 1" in out.text
    low, high, count, _ = reproduce(out)
    assert (low, high, count) == (DF["사고일시"].min(), DF["사고일시"].max(), 8)
    parsed = ok("get_date_range", column="기준일자")
    assert "날짜로 변환" in parsed.text and "변환 실패 1행" in parsed.text and "2022-06-30 ~ 2022-07-01" in parsed.text
    assert reproduce(parsed)[2] == 6
    numeric = run("get_date_range", column="ECLO")
    assert not numeric.record.ok and "날짜로 볼 수 없습니다" in numeric.text


def test_outliers_iqr_and_zscore():
    assert "이상치 0개" in ok("get_outliers", column="ECLO").text  # Q1 3, Q3 8.5: 15 is inside 1.5 IQR
    out = ok("get_outliers", column="ECLO", threshold=1, columns=["기상상태"])
    q1, q3 = DF["ECLO"].quantile([0.25, 0.75])
    expected = DF[(DF["ECLO"] < q1 - 1.0 * (q3 - q1)) | (DF["ECLO"] > q3 + 1.0 * (q3 - q1))]
    assert list(reproduce(out).index) == list(expected.index) == [6]
    assert "범위 [-2.5, 14] 밖" in out.text
    assert "이상치 1개 / 값 8개 (12.5%)" in out.text and "6 | 15 | (결측)" in out.text
    z = ok("get_outliers", column="ECLO", method="zscore", threshold=1.5)
    scores = (DF["ECLO"] - DF["ECLO"].mean()) / DF["ECLO"].std()
    assert list(reproduce(z).index) == list(DF.index[scores.abs() > 1.5])
    assert not run("get_outliers", column="사고유형").record.ok
    assert not run("get_outliers", column="ECLO", threshold=-1).record.ok


def test_sample_rows():
    head = ok("get_sample_rows", n=3, columns=["ECLO"])
    assert [line.split(" | ")[0] for line in head.text.split("\n")[2:]] == ["0", "1", "2"]
    sample = ok("get_sample_rows", n=4, method="random", seed=7)
    pd.testing.assert_frame_equal(reproduce(sample), DF.sample(n=4, random_state=7))
    shown = [int(line.split(" | ")[0]) for line in sample.text.split("\n")[2:6]]
    assert shown == list(DF.sample(n=4, random_state=7).index)
    assert ok("get_sample_rows", n=500).record.rows_touched == 8  # clamped to 50, then to the frame


def test_percentiles():
    out = ok("calculate_percentile", column="ECLO", percentiles=[50, 90], value=6)
    quantiles, share = reproduce(out)
    expected = DF["ECLO"].quantile([0.5, 0.9])
    pd.testing.assert_series_equal(quantiles, expected)
    assert f"50% | {expected[0.5]:g}" in out.text and f"90% | {expected[0.9]:g}" in out.text
    assert share == pytest.approx(62.5) and "값 6 이하인 비율: 62.5% (즉 상위 37.5%)" in out.text
    assert not run("calculate_percentile", column="ECLO", percentiles=[150]).record.ok
    assert not run("calculate_percentile", column="노면상태").record.ok


def test_geo_bounds_counts_bad_coordinates():
    out = ok("get_geo_bounds")
    assert "유효 좌표 5 (62.5%), 한국 범위 밖·0 좌표 2 (25.0%), 결측 1 (12.5%)" in out.text
    assert "범위: 위도 35.8 ~ 35.89, 경도 128.5 ~ 128.61" in out.text
    valid = DF["위도"].between(33, 39) & DF["경도"].between(124, 132)
    expected = DF.loc[valid, ["위도", "경도"]].agg(["min", "max", "mean", "median", "count"])
    pd.testing.assert_frame_equal(reproduce(out), expected)
    assert "2 | 0 | 0" in out.text and "7 | 128.5 | 35.8" in out.text


def test_cross_tabulation():
    out = ok("cross_tabulation", row="사고유형", column="노면상태")
    expected = pd.crosstab(DF["사고유형"], DF["노면상태"], margins=True, margins_name="합계")
    pd.testing.assert_frame_equal(reproduce(out), expected)
    assert "차대차 | 3 | 1 | 1 | 5" in out.text and "합계 | 5 | 1 | 2 | 8" in out.text
    assert out.text.startswith("사고유형 × 노면상태 교차표: 행 수, 8행")
    share = ok("cross_tabulation", row="사고유형", column="노면상태", normalize="index")
    assert "차대사람 | 50.0% | 0.0% | 50.0%" in share.text
    mean = ok("cross_tabulation", row="사고유형", column="노면상태", values="ECLO", agg="mean")
    expected_mean = pd.crosstab(
        DF["사고유형"], DF["노면상태"], values=DF["ECLO"], aggfunc="mean", margins=True, margins_name="전체"
    )
    pd.testing.assert_frame_equal(reproduce(mean), expected_mean)
    assert "차대사람 | 15 | (결측) | 8 | 11.5" in mean.text and "전체 | 6.4 | 6 | 6.5 | 6.375" in mean.text
    assert not run("cross_tabulation", row="사고유형", column="노면상태", agg="mean").record.ok
    assert not run("cross_tabulation", row="사고유형", column="사고유형").record.ok


def test_correlation_with_target():
    out = ok("get_column_correlation_with_target", columns=["중상자수", "사고유형", "노면상태", "사고일시"])
    result = reproduce(out)
    assert result["중상자수"] == pytest.approx(DF["중상자수"].corr(DF["ECLO"]))
    group_means = DF.groupby("사고유형")["ECLO"].transform("mean")
    eta = np.sqrt(((group_means - DF["ECLO"].mean()) ** 2).mean() / DF["ECLO"].var(ddof=0))
    assert result["사고유형"] == pytest.approx(eta)
    assert f"사고유형 | eta(범주) | {eta:.4f}".rstrip("0") in out.text
    assert "제외한 열" in out.text and "사고일시" in out.text and "ECLO 계산에 직접" in out.text
    text_target = run("get_column_correlation_with_target", target="사고유형")
    assert not text_target.record.ok and "목표 열" in text_target.text


def test_detect_data_types():
    frame = pd.DataFrame(
        {
            "id": [f"A{i:03d}" for i in range(30)],
            "age": [f"{20 + i}세" for i in range(30)],
            "when": ["2021-01-01 08:00"] * 30,
            "num": [str(i) for i in range(30)],
            "설치연도": [2010.0, None] * 15,
            "위도": [35.8] * 30,
        }
    )
    out = run_tool("detect_data_types", {}, ToolContext(datasets={"x": frame}))
    assert out.record.ok
    for needle in ("식별자", "숫자+단위 문자열", "날짜 문자열", "숫자로 바꿀 수 있는 문자열", "연도", "위도"):
        assert needle in out.text, needle


def test_times_of_day_are_not_taken_for_dates():
    frame = pd.DataFrame({"운영시작시각": ["09:00:00", "10:00:00"], "요금": [500, 0]})
    out = run_tool("get_date_range", {}, ToolContext(datasets={"주차장": frame}))
    assert not out.record.ok and "날짜시각 열을 찾지 못했습니다" in out.text
    out = run_tool("get_temporal_pattern", {"column": "운영시작시각"}, ToolContext(datasets={"주차장": frame}))
    assert not out.record.ok and "날짜로 해석할 수 없습니다" in out.text


def test_temporal_pattern():
    out = ok("get_temporal_pattern", by="year", value_column="ECLO")
    assert "2020연도 | 9 | 2" in out.text and "2021연도 | 5.4 | 5" in out.text and "2022연도 | 6 | 1" in out.text
    expected = DF.groupby(DF["사고일시"].dt.year)["ECLO"].agg(["mean", "count"])
    pd.testing.assert_frame_equal(reproduce(out), expected)
    weekday = ok("get_temporal_pattern", by="weekday")
    assert "금요일 | 3 | 37.5%" in weekday.text and "가장 큰 요일: 금요일 (3)" in weekday.text
    pd.testing.assert_series_equal(reproduce(weekday), DF.groupby(DF["사고일시"].dt.day_of_week).size())
    months = ok(
        "get_temporal_pattern", by="year_month", conditions=[{"column": "사고일시", "op": "==", "value": "2021"}]
    )
    assert "2021-01 | 2" in months.text and months.record.rows_touched == 5
    bad = run("get_temporal_pattern", by="minute")
    assert not bad.record.ok and "hour" in bad.text


def test_categorical_summary():
    out = ok("summarize_categorical_distribution", columns=["기상상태", "사고유형"], top=2)
    assert "■ 기상상태: 고유값 4개, 결측 1 (12.5%), 상위 2개가 62.5%" in out.text
    assert "차대차 5 (62.5%), 차대사람 2 (25.0%)" in out.text
    result = reproduce(out)
    pd.testing.assert_series_equal(result["사고유형"], DF["사고유형"].value_counts(dropna=False).head(2))


def test_text_is_bounded_and_truncation_is_announced():
    wide = pd.DataFrame({f"열{i}": [f"값 {'가나다라' * 10} {j % (150 + i)}" for j in range(3000)] for i in range(30)})
    ctx = ToolContext(datasets={"wide": wide})
    for name, args in [
        ("get_value_counts", {"column": "열0", "limit": 200}),
        ("get_unique_values", {"column": "열1", "limit": 500}),
        ("get_sample_rows", {"n": 50, "columns": [f"열{i}" for i in range(30)]}),
        ("summarize_categorical_distribution", {"top": 20, "conditions": [{"column": "열4", "op": "not_null"}]}),
        ("group_by_aggregate", {"group_by": ["열2"], "limit": 200}),
        ("filter_dataframe", {"conditions": [{"column": "열3", "op": "contains", "value": "값"}], "limit": 100}),
    ]:
        out = run_tool(name, args, ctx)
        assert out.record.ok, out.text
        assert len(out.text) <= 4000, (name, len(out.text))
        assert "…외" in out.text or "생략" in out.text, name


def test_limits_are_clamped_with_a_note():
    out = ok("get_value_counts", column="ECLO", limit=10**12)
    assert "200(으)로 조정" in out.text and ".head(200)" in out.record.snippet
    out = ok("get_value_counts", column="ECLO", limit=-5)
    assert "1(으)로 조정" in out.text and ".head(1)" in out.record.snippet
    out = ok("get_value_counts", column="ECLO", limit="3")
    assert "조정" not in out.text and ".head(3)" in out.record.snippet
