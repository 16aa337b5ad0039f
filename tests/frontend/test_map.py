"""지도: datasets with coordinates overlaid on one Folium map, capped at the sidebar's max points."""

from __future__ import annotations

import json

from tests.frontend.conftest import assert_clean, metrics, open_page, texts

PAGE = "views/map.py"


def _mappable(stack) -> dict[str, dict]:
    items = stack.get("/api/datasets", limit=200).json()["items"]
    return {d["kind"]: d for d in items if d["is_demo"] and d["kind"] in ("cctv", "lights", "zones", "parking")}


def _map_html(at) -> str:
    """The HTML and script streamlit-folium hands to the browser."""
    component = at.get("component_instance")
    assert len(component) == 1
    args = json.loads(component[0].proto.json_args)
    return args["html"] + args["script"]


def test_overlaid_datasets_with_legend_and_invalid_counts(frontend_env):
    demo = _mappable(frontend_env)
    at = open_page(PAGE)
    picker = at.multiselect(key="map_datasets")
    # Only datasets with coordinates are offered (no accident data).
    assert all("교통사고" not in option for option in picker.options)
    assert len(picker.value) == 1
    picker.set_value([demo["cctv"], demo["lights"]]).run()
    assert_clean(at)

    per_dataset = 5000 // 2
    points = {k: frontend_env.get(f"/api/datasets/{demo[k]['id']}/points", max_points=per_dataset).json()
              for k in ("cctv", "lights")}  # fmt: skip
    shown = metrics(at)
    assert shown["잘못된 좌표"] == f"{sum(p['invalid'] for p in points.values()):,}"
    assert shown["좌표 없는 행"] == f"{sum(p['missing'] for p in points.values()):,}"
    assert shown["지도에 표시한 점"] == f"{sum(p['returned'] for p in points.values()):,}"
    assert any("잘못된 좌표" in w and "지도에서 뺐습니다" in w for w in texts(at.warning))
    table = at.dataframe[0].value.set_index("데이터셋")
    assert table.loc[demo["lights"]["name"], "잘못된 좌표"] == points["lights"]["invalid"]
    assert table.loc[demo["cctv"]["name"], "유효 좌표"] == points["cctv"]["valid"]

    html = _map_html(at)
    assert "범례" in html  # the legend names every layer
    assert demo["cctv"]["name"] in html and demo["lights"]["name"] in html


def test_points_are_capped_at_the_max_points_setting(frontend_env):
    demo = _mappable(frontend_env)
    at = open_page(PAGE)
    at.sidebar.number_input(key="map_max_points").set_value(300).run()
    at.multiselect(key="map_datasets").set_value([demo["lights"], demo["parking"]]).run()
    assert_clean(at)
    table = at.dataframe[0].value
    assert table["지도에 표시"].sum() <= 300
    assert table.set_index("데이터셋").loc[demo["lights"]["name"], "지도에 표시"] == 150
    assert metrics(at)["지도에 표시한 점"] == f"{table['지도에 표시'].sum():,}"
    assert any("최대 점 수 300개" in c for c in texts(at.caption))


def test_a_deep_link_selects_its_layers(frontend_env):
    from streamlit.testing.v1 import AppTest

    from tests.frontend.conftest import APP, RUN_TIMEOUT

    demo = _mappable(frontend_env)
    at = AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT)
    at.run()
    at.query_params["dataset"] = [str(demo["zones"]["id"]), str(demo["parking"]["id"]), "999999"]
    at.switch_page(PAGE).run()
    assert_clean(at)
    assert [d["id"] for d in at.multiselect(key="map_datasets").value] == [demo["zones"]["id"], demo["parking"]["id"]]
    assert any("일부는 찾을 수 없거나" in w for w in texts(at.warning))  # the unknown id is said, not fatal
    assert set(at.dataframe[0].value["데이터셋"]) == {demo["zones"]["name"], demo["parking"]["name"]}
