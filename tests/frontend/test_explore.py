"""데이터 탐색: metrics, paged rows and column charts of a dataset, by id or through a share link."""

from __future__ import annotations

import httpx

from tests.frontend.conftest import assert_clean, figure_title, metrics, open_page, plotly_figures, texts

PAGE = "views/explore.py"


def _dataset(stack, name_part: str) -> dict:
    items = stack.get("/api/datasets", limit=200).json()["items"]
    return next(d for d in items if name_part in d["name"])


def _open(stack, name_part: str):
    at = open_page(PAGE)
    box = at.selectbox(key="explore_dataset")
    index = next(i for i, option in enumerate(box.options) if name_part in option)
    box.select_index(index).run()
    assert_clean(at)
    return at


def test_metrics_rows_and_numeric_charts(frontend_env):
    dataset = _dataset(frontend_env, "학습 데이터")
    detail = frontend_env.get(f"/api/datasets/{dataset['id']}").json()["summary"]
    at = _open(frontend_env, "학습 데이터")
    shown = metrics(at)
    assert shown["행 수"] == f"{detail['rows']:,}" == "792"
    assert shown["열 수"] == "23"
    missing = sum(c["missing"] for c in detail["columns"]) / (detail["rows"] * detail["column_count"])
    assert shown["결측 비율"] == f"{missing * 100:.1f}%"
    assert shown["종류"] == "교통사고"

    # First 10 rows, then the next page.
    first = at.dataframe[0].value
    api_rows = frontend_env.get(f"/api/datasets/{dataset['id']}/rows", offset=0, limit=20).json()["items"]
    assert list(first["ID"]) == [r["ID"] for r in api_rows[:10]]
    assert "1–10행 / 전체 792행" in texts(at.caption)
    at.number_input(key=f"explore_page_/api/datasets/{dataset['id']}").set_value(2).run()
    assert_clean(at)
    assert list(at.dataframe[0].value["ID"]) == [r["ID"] for r in api_rows[10:20]]
    assert "11–20행 / 전체 792행" in texts(at.caption)

    # A numeric column: histogram, box and KDE from the distribution endpoint.
    at.selectbox(key=f"explore_column_/api/datasets/{dataset['id']}").select("ECLO").run()
    assert_clean(at)
    dist = frontend_env.get(f"/api/datasets/{dataset['id']}/columns/ECLO/distribution").json()
    figures = {figure_title(f): f for f in plotly_figures(at)}
    assert {"ECLO 히스토그램", "ECLO 상자 그림", "ECLO 밀도 추정 (KDE)"} <= set(figures)
    assert figures["ECLO 히스토그램"]["data"][0]["y"] == dist["histogram"]["counts"]
    box = figures["ECLO 상자 그림"]["data"][0]
    assert box["median"] == [dist["box"]["median"]] and box["q3"] == [dist["box"]["q3"]]
    assert len(figures["ECLO 밀도 추정 (KDE)"]["data"][0]["x"]) == len(dist["kde"]["x"])
    assert metrics(at)["값이 있는 행"] == f"{dist['count']:,}"

    # Scatter of two numeric columns.
    at.selectbox(key=f"explore_x_/api/datasets/{dataset['id']}").select("경상자수").run()
    at.selectbox(key=f"explore_y_/api/datasets/{dataset['id']}").select("ECLO").run()
    assert_clean(at)
    scatter = next(f for f in plotly_figures(at) if figure_title(f) == "경상자수 · ECLO 산점도")
    assert len(scatter["data"][0]["x"]) == 792


def test_categorical_and_datetime_columns(frontend_env):
    dataset = _dataset(frontend_env, "학습 데이터")
    at = _open(frontend_env, "학습 데이터")
    column = f"explore_column_/api/datasets/{dataset['id']}"
    at.selectbox(key=column).select("사고유형 - 세부분류").run()  # spaces in the path
    assert_clean(at)
    dist = frontend_env.get(f"/api/datasets/{dataset['id']}/columns/사고유형 - 세부분류/distribution").json()
    bars = next(f for f in plotly_figures(at) if figure_title(f) == "사고유형 - 세부분류 값별 행 수")
    assert bars["data"][0]["x"][: len(dist["values"])] == [v["value"] for v in dist["values"]]

    at.selectbox(key=column).select("사고일시").run()
    assert_clean(at)
    titles = {figure_title(f) for f in plotly_figures(at)}
    assert {"사고일시 월별 행 수", "사고일시 시각별 행 수", "사고일시 요일별 행 수"} <= titles


def test_columns_with_many_missing_values_are_flagged(frontend_env):
    at = _open(frontend_env, "CCTV")
    warning = next(w for w in texts(at.warning) if w.startswith("결측이 30% 이상인 열이 있습니다"))
    assert "도로노선번호" in warning and "단속구간위치구분" in warning
    assert "제한속도" not in warning
    dataset = _dataset(frontend_env, "CCTV")
    at.selectbox(key=f"explore_column_/api/datasets/{dataset['id']}").select("단속구간위치구분").run()
    assert_clean(at)
    assert any(w.startswith("'단속구간위치구분' 열은") for w in texts(at.warning))


def test_opening_a_share_link(frontend_env):
    dataset = _dataset(frontend_env, "어린이 보호 구역")
    link = httpx.post(
        f"{frontend_env.url}/api/datasets/{dataset['id']}/share",
        headers={"Authorization": f"Bearer {frontend_env.admin_token}"},
        timeout=10,
    ).json()
    at = open_page(PAGE)
    at.radio(key="explore_mode").set_value("공유 링크 열기").run()
    assert_clean(at)
    at.text_input(key="explore_share").input(f"이 링크 보세요: {link['url']}").run()
    assert_clean(at)
    assert any("공유 링크로 보는 중 · 데모 대구 어린이 보호 구역 정보 v1" in c for c in texts(at.caption))
    assert metrics(at)["행 수"] == f"{dataset['rows']:,}"
    assert len(at.dataframe[0].value) == min(10, dataset["rows"])
    assert plotly_figures(at)

    at.text_input(key="explore_share").input("shr_no-such-link").run()
    assert_clean(at)
    assert "공유 링크: 공유 링크를 찾을 수 없습니다." in texts(at.error)


def test_a_deep_link_opens_its_dataset(frontend_env):
    from streamlit.testing.v1 import AppTest

    from tests.frontend.conftest import APP, RUN_TIMEOUT

    # The last of the listing: not what the page would choose by itself (the newest).
    dataset = frontend_env.get("/api/datasets", limit=200).json()["items"][-1]
    at = AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT)
    at.run()
    at.query_params["dataset"] = str(dataset["id"])
    at.switch_page(PAGE).run()
    assert_clean(at)
    assert at.selectbox(key="explore_dataset").value["id"] == dataset["id"]
    assert metrics(at)["행 수"] == f"{dataset['rows']:,}"
