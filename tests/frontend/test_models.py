"""모델: versions with metrics and the active one marked; admins activate and roll back."""

from __future__ import annotations

import time

import pytest

from tests.frontend.conftest import assert_clean, figure_title, metrics, open_page, plotly_figures, texts

PAGE = "views/models.py"


def _active_rows(at) -> list[int]:
    table = at.dataframe[0].value
    return list(table[table["상태"] == "✅ 사용 중"]["버전"])


def _serving(stack, version: int, timeout: float = 10) -> bool:
    """The server predicts with `version` (activation hot-swaps every process)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.get("/api/predict/schema").json()["model_version"] == version:
            return True
        time.sleep(0.1)
    return False


def test_versions_metrics_and_the_active_one(frontend_env):
    api = frontend_env.get("/api/models").json()["items"]
    active = frontend_env.get("/api/models/active").json()
    at = open_page(PAGE)
    table = at.dataframe[0].value.set_index("버전")
    assert sorted(table.index) == sorted(m["version"] for m in api)
    assert _active_rows(at) == [active["version"]]
    assert metrics(at)["사용 중인 버전"] == f"v{active['version']}"
    for model in api:
        assert table.loc[model["version"], "RMSLE"] == round(model["metrics"]["rmsle"], 4)
        assert table.loc[model["version"], "이름"] == model["name"]
    titles = {figure_title(f) for f in plotly_figures(at)}
    assert {"버전별 검증 RMSLE (낮을수록 좋음)", "버전별 검증 MAE (낮을수록 좋음)"} <= titles
    # The API gives the served model's gain shares; the page draws exactly those, smallest first.
    shares = active["feature_importance"]
    assert set(shares) == set(active["feature_order"]) and sum(shares.values()) == pytest.approx(1.0)
    importance = [f for f in plotly_figures(at) if figure_title(f).startswith("특성 중요도")]
    assert len(importance) == 1, titles
    bars = importance[0]["data"][0]
    drawn = dict(zip(bars["y"], bars["x"], strict=True))
    assert drawn == pytest.approx(shares) and bars["x"] == sorted(bars["x"])
    assert f"사용 중인 모델 v{active['version']} 기준" in texts(at.caption)


def test_admin_activates_and_rolls_back(frontend_env):
    first, second = frontend_env.model_versions
    at = open_page(PAGE)
    assert _active_rows(at) == [first]
    target = at.selectbox(key="models_target")
    assert [o.split()[0] for o in target.options] == [f"v{second}"]  # the active one is not offered
    at.button(key="models_activate").click().run()
    assert_clean(at)
    assert f"모델 v{second}을(를) 활성화했습니다." in texts(at.success)
    assert _active_rows(at) == [second]
    assert frontend_env.get("/api/models/active").json()["version"] == second
    assert _serving(frontend_env, second)

    # Roll back: the older version is labelled as such.
    option = at.selectbox(key="models_target").options[0]
    assert option.startswith(f"v{first}") and "이전 버전으로 되돌리기" in option
    at.button(key="models_activate").click().run()
    assert_clean(at)
    assert _active_rows(at) == [first]
    assert frontend_env.get("/api/models/active").json()["version"] == first
    assert _serving(frontend_env, first)


def test_regular_users_see_models_but_cannot_activate(frontend_env, monkeypatch):
    monkeypatch.setenv("HAB_API_TOKEN", frontend_env.user_token)
    at = open_page(PAGE)
    assert _active_rows(at) == [frontend_env.model_versions[0]]
    assert "models_activate" not in [b.key for b in at.button]
    assert "모델 활성화·롤백은 관리자만 할 수 있습니다." in texts(at.caption)
