"""ECLO 예측: the schema-built form, one prediction, and batch scoring as a worker job."""

from __future__ import annotations

import httpx

from tests.frontend.conftest import assert_clean, figure_title, metrics, open_page, plotly_figures, texts

PAGE = "views/predict.py"
AUTO = "(자동 계산)"


def _predict(stack, body: dict) -> dict:
    response = httpx.post(
        f"{stack.url}/api/predict/eclo",
        headers={"Authorization": f"Bearer {stack.admin_token}"},
        json={**body, "explain": True},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_the_form_offers_exactly_the_schemas_values(frontend_env):
    schema = frontend_env.get("/api/predict/schema").json()
    at = open_page(PAGE)
    assert any(f"모델 버전 {schema['model_version']}" in c for c in texts(at.caption))
    for feature in schema["features"]:
        key = f"feature_{feature['name']}"
        if feature["type"] == "categorical":
            options = at.selectbox(key=key).options
            expected = ([AUTO] if feature["name"] in ("시간대", "요일") else []) + feature["values"]
            assert options == expected, feature["name"]
        else:
            widget = at.number_input(key=key)
            assert (widget.min, widget.max) == (feature["minimum"], feature["maximum"]), feature["name"]


def test_one_prediction_with_interpretation_percentile_and_contributions(frontend_env):
    schema = frontend_env.get("/api/predict/schema").json()
    choices = {f["name"]: f["values"][-1] for f in schema["features"] if f["type"] == "categorical"}
    numbers = {"사고연": 2022, "사고월": 3, "사고일": 15, "사고시": 18}
    at = open_page(PAGE)
    for name, value in choices.items():
        at.selectbox(key=f"feature_{name}").select(value)
    for name, value in numbers.items():
        at.number_input(key=f"feature_{name}").set_value(value)
    at.form_submit_button[0].click().run()
    assert_clean(at)

    expected = _predict(frontend_env, {**choices, **numbers})
    shown = metrics(at)
    assert shown["예상 ECLO"] == f"{expected['eclo']:.2f}"
    assert shown["위험도"] == expected["interpretation"]
    assert shown["백분위"] == f"{expected['percentile']:.1f}%"
    assert expected["detail"] in texts(at.info)
    chart = next(f for f in plotly_figures(at) if figure_title(f).startswith("특성별 기여도"))
    assert set(chart["data"][0]["y"]) == set(expected["contributions"])


def test_automatic_weekday_and_a_bad_date_gives_a_korean_message(frontend_env):
    at = open_page(PAGE)
    assert at.selectbox(key="feature_요일").value == AUTO
    at.number_input(key="feature_사고월").set_value(2)
    at.number_input(key="feature_사고일").set_value(31)  # 2월 31일: the API refuses the date
    at.form_submit_button[0].click().run()
    assert_clean(at)
    errors = texts(at.error)
    assert any(e.startswith("예측: ") and "사고일시" in e for e in errors), errors
    assert "예상 ECLO" not in metrics(at)


def test_batch_scoring_of_a_stored_dataset_runs_to_completion(frontend_env):
    items = frontend_env.get("/api/datasets", limit=200).json()["items"]
    target = next(d for d in items if d["kind"] == "accident_test")
    at = open_page(PAGE)
    box = at.selectbox(key="batch_dataset")
    assert all(("교통사고" in option) for option in box.options)  # only accident-shaped datasets can be scored
    box.select_index(next(i for i, o in enumerate(box.options) if o.startswith(f"#{target['id']} "))).run()
    at.button(key="batch_start").click().run(timeout=60)
    assert_clean(at)

    job_id = at.session_state["batch_job_id"]
    job = frontend_env.get(f"/api/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["total"] == target["rows"]
    assert at.progress[-1].value == 100
    assert f"작업 #{job_id} · ✅ 완료 · {target['rows']:,}/{target['rows']:,}행 (100%)" in [
        p.proto.text for p in at.progress
    ]
    summary = job["summary"]
    shown = metrics(at)
    assert shown["예측한 행"] == f"{summary['count']:,}"
    assert shown["평균 ECLO"] == f"{summary['mean_eclo']:.2f}"
    assert shown["오류 행"] == f"{summary['error_count']:,}"
    titles = {figure_title(f) for f in plotly_figures(at)}
    assert {"위험도 구간별 행 수", "평균 ECLO가 높은 시군구"} <= titles
    results = frontend_env.get(f"/api/predict/jobs/{job_id}/results", limit=1000).json()
    table = at.dataframe[-1].value
    assert len(table) == results["total"] == summary["count"]
    assert list(table["ID"][:5]) == [r["id"] for r in results["items"][:5]]
    assert at.get("download_button")[0].proto.label == "결과 CSV 내려받기"


def test_batch_scoring_of_an_uploaded_csv(frontend_env):
    csv = (
        "ID,사고일시,요일,기상상태,시군구,도로형태,노면상태,사고유형\n"
        "MY_1,2022-05-01 08,일요일,맑음,{district},{road},건조,차대차\n"
        "MY_2,2022-05-02 23,월요일,비,{district},{road},건조,차대사람\n"
    )
    schema = {f["name"]: f for f in frontend_env.get("/api/predict/schema").json()["features"]}
    body = csv.format(district=schema["시군구"]["values"][0], road=schema["도로형태"]["values"][0])
    at = open_page(PAGE)
    at.radio(key="batch_source").set_value("CSV 파일 올리기").run()
    at.file_uploader(key="batch_file").set_value(("내 사고 목록.csv", body.encode(), "text/csv")).run()
    at.button(key="batch_start").click().run(timeout=60)
    assert_clean(at)
    assert any("내 사고 목록 v1 (2행)으로 저장했습니다." in c for c in texts(at.caption))
    table = at.dataframe[-1].value
    assert list(table["ID"]) == ["MY_1", "MY_2"]
    assert metrics(at)["예측한 행"] == "2"


DEMO_WARNING = "합성(가상) 데모 데이터로 학습한 데모 모델"


def _warnings(at) -> list[str]:
    return [str(w.value) for w in at.warning]


def _serving(stack, version: int, timeout: float = 15) -> bool:
    """The server predicts with `version` (activation hot-swaps every process)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if frontend_schema(stack)["model_version"] == version:
            return True
        time.sleep(0.1)
    return False


def frontend_schema(stack) -> dict:
    return stack.get("/api/predict/schema").json()


def test_the_demo_model_is_called_a_demo_and_a_real_model_is_not(frontend_env):
    import subprocess

    from tests import legacy_model
    from tests.frontend.conftest import HAB

    first, _ = frontend_env.model_versions
    schema = frontend_schema(frontend_env)
    assert schema["model_version"] == first and schema["synthetic_data"] is True  # the seeded demo model
    at = open_page(PAGE)
    assert any(DEMO_WARNING in w for w in _warnings(at)), _warnings(at)

    if not legacy_model.available():
        import pytest

        pytest.skip(legacy_model.SKIP_REASON)
    # The v1.2.5 model (trained on real data), imported from a copy of its files and activated.
    imported = subprocess.run(
        [HAB, "models", "import-legacy", str(legacy_model.local_copy()), "--activate"],
        env=frontend_env.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert imported.returncode == 0, imported.stderr
    active = frontend_env.get("/api/models/active").json()
    try:
        assert active["version"] not in frontend_env.model_versions
        assert _serving(frontend_env, active["version"])
        assert frontend_schema(frontend_env)["synthetic_data"] is False
        at = open_page(PAGE)
        assert any(f"모델 버전 {active['version']}" in c for c in texts(at.caption))
        assert not any(DEMO_WARNING in w for w in _warnings(at)), _warnings(at)
    finally:  # the other pages' tests expect the seeded demo model
        headers = {"Authorization": f"Bearer {frontend_env.admin_token}"}
        httpx.post(f"{frontend_env.url}/api/models/{first}/activate", headers=headers, timeout=30)
        assert _serving(frontend_env, first)
