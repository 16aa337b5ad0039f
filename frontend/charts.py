"""Plotly figures built from the API's JSON (distributions, predictions, job summaries, models)."""

from __future__ import annotations

import itertools
from typing import Any

import plotly.graph_objects as go

WEEKDAY_NAMES = ("월", "화", "수", "목", "금", "토", "일")
BAND_COLORS = {"경미": "#4caf50", "보통": "#ffb300", "심각": "#f4511e", "매우 심각": "#b71c1c"}
_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "height": 360}


def _figure(title: str, x_title: str | None = None, y_title: str | None = None) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, **_LAYOUT)
    return fig


def histogram(dist: dict[str, Any]) -> go.Figure:
    """Bars over the API's equal-width bins (edges has one more value than counts)."""
    edges, counts = dist["histogram"]["edges"], dist["histogram"]["counts"]
    fig = _figure(f"{dist['column']} 히스토그램", dist["column"], "행 수")
    if counts:
        centres = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
        widths = [b - a for a, b in itertools.pairwise(edges)]
        fig.add_bar(x=centres, y=counts, width=widths, name="행 수", marker_line_width=0)
    return fig


def box(dist: dict[str, Any]) -> go.Figure:
    """A box from the API's precomputed statistics (Tukey whiskers) plus its sample of outliers."""
    stats = dist["box"]
    fig = _figure(f"{dist['column']} 상자 그림", None, dist["column"])
    fig.add_box(
        name=dist["column"],
        q1=[stats["q1"]],
        median=[stats["median"]],
        q3=[stats["q3"]],
        lowerfence=[stats["whisker_low"]],
        upperfence=[stats["whisker_high"]],
        boxpoints=False,
    )
    if stats["outliers_sample"]:
        fig.add_scatter(
            x=[dist["column"]] * len(stats["outliers_sample"]),
            y=stats["outliers_sample"],
            mode="markers",
            name=f"이상값 (전체 {stats['outlier_count']:,}개 중 일부)",
            marker={"size": 6, "opacity": 0.6},
        )
    return fig


def kde(dist: dict[str, Any]) -> go.Figure:
    curve = dist["kde"]
    fig = _figure(f"{dist['column']} 밀도 추정 (KDE)", dist["column"], "밀도")
    fig.add_scatter(x=curve["x"], y=curve["y"], mode="lines", fill="tozeroy", name="밀도")
    return fig


def categories(dist: dict[str, Any]) -> go.Figure:
    values = [v["value"] for v in dist["values"]]
    counts = [v["count"] for v in dist["values"]]
    if dist.get("other_count"):
        values.append("(그 밖의 값)")
        counts.append(dist["other_count"])
    fig = _figure(f"{dist['column']} 값별 행 수", None, "행 수")
    fig.add_bar(x=values, y=counts, name="행 수")
    return fig


def by_period(dist: dict[str, Any], which: str) -> go.Figure:
    """Counts of a datetime column by month, hour of day or weekday."""
    items = dist[which]
    if which == "by_month":
        title, x = "월별 행 수", [i["key"] for i in items]
    elif which == "by_hour":
        title, x = "시각별 행 수", [f"{i['key']}시" for i in items]
    else:
        title, x = "요일별 행 수", [WEEKDAY_NAMES[i["key"]] for i in items]
    fig = _figure(f"{dist['column']} {title}", None, "행 수")
    fig.add_bar(x=x, y=[i["count"] for i in items], name="행 수")
    return fig


def scatter(x: list[Any], y: list[Any], x_name: str, y_name: str) -> go.Figure:
    fig = _figure(f"{x_name} · {y_name} 산점도", x_name, y_name)
    fig.add_scattergl(x=x, y=y, mode="markers", marker={"size": 5, "opacity": 0.6}, name="행")
    return fig


def contributions(values: dict[str, float]) -> go.Figure:
    """Each feature's push on the prediction (model output scale), largest magnitude on top."""
    items = sorted(values.items(), key=lambda kv: abs(kv[1]))
    fig = _figure("특성별 기여도 (양수: ECLO를 높임, 음수: 낮춤)", "기여도", None)
    fig.add_bar(
        x=[v for _, v in items],
        y=[k for k, _ in items],
        orientation="h",
        marker_color=["#e53935" if v > 0 else "#1e88e5" for _, v in items],
        name="기여도",
    )
    return fig


def band_counts(bands: dict[str, int]) -> go.Figure:
    order = [b for b in BAND_COLORS if b in bands] + [b for b in bands if b not in BAND_COLORS]
    fig = _figure("위험도 구간별 행 수", None, "행 수")
    fig.add_bar(
        x=order,
        y=[bands[b] for b in order],
        marker_color=[BAND_COLORS.get(b, "#757575") for b in order],
        name="행 수",
    )
    return fig


def top_districts(items: list[dict[str, Any]]) -> go.Figure:
    ordered = sorted(items, key=lambda i: i["mean_eclo"])
    fig = _figure("평균 ECLO가 높은 시군구", "평균 ECLO", None)
    fig.add_bar(
        x=[i["mean_eclo"] for i in ordered],
        y=[i["시군구"] for i in ordered],
        orientation="h",
        text=[f"{i['count']:,}건" for i in ordered],
        name="평균 ECLO",
    )
    return fig


def feature_importance(values: dict[str, float]) -> go.Figure:
    items = sorted(values.items(), key=lambda kv: kv[1])
    fig = _figure("특성 중요도 (분할 이득 비율)", "비율", None)
    fig.add_bar(x=[v for _, v in items], y=[k for k, _ in items], orientation="h", name="중요도")
    fig.update_xaxes(tickformat=".0%")
    return fig


def model_metrics(models: list[dict[str, Any]], metric: str, baseline: str | None = None) -> go.Figure:
    versions = [f"v{m['version']}" for m in models]
    fig = _figure(f"버전별 검증 {metric.upper()} (낮을수록 좋음)", None, metric.upper())
    fig.add_bar(x=versions, y=[m["metrics"].get(metric) for m in models], name=metric.upper())
    if baseline:
        fig.add_bar(x=versions, y=[m["metrics"].get(baseline) for m in models], name="기준(평균 예측)")
    fig.update_layout(barmode="group")
    return fig
