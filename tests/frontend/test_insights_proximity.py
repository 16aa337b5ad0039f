"""인사이트 on the explore page and 근접 분석 on the map page, against the live API's own answers."""

from __future__ import annotations

import json

import httpx

from tests.frontend.conftest import assert_clean, metrics, open_page, texts


def _demo(stack, kind: str) -> dict:
    items = stack.get("/api/datasets", limit=200).json()["items"]
    return next(d for d in items if d["is_demo"] and d["kind"] == kind)


def test_explore_shows_the_insights_and_the_column_narration(frontend_env):
    dataset = _demo(frontend_env, "accident")
    at = open_page("views/explore.py")
    box = at.selectbox(key="explore_dataset")
    box.select_index(next(i for i, o in enumerate(box.options) if dataset["name"] in o)).run()
    assert_clean(at)
    expected = [i["text"] for i in frontend_env.get(f"/api/datasets/{dataset['id']}/insights").json()["items"]]
    shown = texts(at.markdown)
    assert expected and all(any(text in line for line in shown) for text in expected)
    column = at.selectbox(key=f"explore_column_/api/datasets/{dataset['id']}").value
    dist = frontend_env.get(f"/api/datasets/{dataset['id']}/columns/{column}/distribution").json()
    assert dist["narration"] in texts(at.caption)


def test_the_map_page_runs_a_proximity_analysis(frontend_env):
    zones, cctv = _demo(frontend_env, "zones"), _demo(frontend_env, "cctv")
    at = open_page("views/map.py")
    source, target = at.selectbox(key="proximity_source"), at.selectbox(key="proximity_target")
    source.select_index(next(i for i, o in enumerate(source.options) if zones["name"] in o))
    target.select_index(next(i for i, o in enumerate(target.options) if cctv["name"] in o))
    at.slider(key="proximity_radius").set_value(500)
    at.toggle(key="proximity_on").set_value(True).run()
    assert_clean(at)
    body = {"source_dataset_id": zones["id"], "target_dataset_id": cctv["id"], "radius_m": 500.0}
    answer = httpx.post(
        f"{frontend_env.url}/api/analysis/proximity",
        json=body,
        params={"limit": 1000},
        headers={"Authorization": f"Bearer {frontend_env.admin_token}"},
        timeout=30,
    ).json()
    assert answer["summary"]["text"] in texts(at.info)
    assert metrics(at)["기준 지점"] == f"{answer['summary']['sources']:,}"
    table = at.dataframe[-1].value
    assert list(table["반경 안 개수"]) == [i["count"] for i in answer["items"]]
    components = at.get("component_instance")
    drawn = json.loads(components[-1].proto.json_args)
    script = drawn["html"] + drawn["script"]
    assert script.count("L.circle(") == len(answer["items"])  # one radius circle per source
