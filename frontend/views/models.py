"""모델: registered ECLO model versions, their metrics, the active one; admins activate or roll back."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from frontend import charts
from frontend.client import ApiError, HabClient
from frontend.session import get_client
from frontend.tables import blank_missing
from frontend.ui import fetch, require, show_error

STATUS_LABELS = {"active": "✅ 사용 중", "inactive": "대기"}
SOURCE_LABELS = {
    "trained": "학습",
    "trained-synthetic": "데모(합성 데이터) 학습",
    "legacy-v1.2.5": "v1.2.5 가져옴",
    "uploaded": "업로드",
}
FLASH = "models_flash"


def _metric(model: dict[str, Any], name: str) -> float | None:
    value = model["metrics"].get(name)
    return None if value is None else round(float(value), 4)


def models_table(items: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "버전": m["version"],
                "상태": STATUS_LABELS.get(m["status"], m["status"]),
                "이름": m["name"],
                "출처": SOURCE_LABELS.get(m["source"], m["source"]),
                "학습 행": m.get("training_rows"),
                "RMSLE": _metric(m, "rmsle"),
                "RMSE": _metric(m, "rmse"),
                "MAE": _metric(m, "mae"),
                "기준 RMSLE": _metric(m, "baseline_rmsle"),
                "만든 때": m["created_at"][:16].replace("T", " "),
                "활성화한 때": (m["activated_at"] or "")[:16].replace("T", " "),
            }
            for m in items
        ]
    )


def admin_controls(client: HabClient, items: list[dict[str, Any]], active: int | None) -> None:
    st.subheader("활성화 · 롤백")
    others = [m for m in items if m["version"] != active]
    if not others:
        st.caption("바꿀 다른 버전이 없습니다.")
        return
    choice = st.selectbox(
        "사용할 버전",
        others,
        format_func=lambda m: (
            f"v{m['version']} {m['name']}"
            + (" (이전 버전으로 되돌리기)" if active is not None and m["version"] < active else "")
        ),
        key="models_target",
    )
    st.caption("활성화하면 API와 작업자가 중단 없이 새 버전으로 바뀝니다. 이전 버전을 고르면 롤백입니다.")
    if st.button(f"v{choice['version']} 활성화", type="primary", key="models_activate"):
        try:
            client.activate_model(choice["version"])
        except ApiError as error:
            show_error(error, "활성화")
            return
        st.session_state[FLASH] = f"모델 v{choice['version']}을(를) 활성화했습니다."
        st.rerun()


def importance_section(active: dict[str, Any] | None) -> None:
    st.subheader("특성 중요도")
    if active is None:
        st.info("활성화된 모델이 없습니다.")
    elif active.get("feature_importance"):
        st.plotly_chart(charts.feature_importance(active["feature_importance"]), width="stretch")
        st.caption(f"사용 중인 모델 v{active['version']} 기준")
    else:
        st.info(f"사용 중인 모델 v{active['version']}의 특성 중요도를 서버가 아직 제공하지 않습니다.")


client = get_client()
st.title("모델")
if flash := st.session_state.pop(FLASH, None):
    st.success(flash)
items = require(client.models)["items"]
if not items:
    st.info("등록된 모델이 없습니다. 관리자가 `hab train --activate`로 모델을 학습해 등록할 수 있습니다.")
    st.stop()
active_version = next((m["version"] for m in items if m["status"] == "active"), None)
st.metric("사용 중인 버전", "없음" if active_version is None else f"v{active_version}")
st.dataframe(blank_missing(models_table(items)), hide_index=True, width="stretch")
st.caption("RMSLE·RMSE·MAE는 학습에 쓰지 않은 검증 구간의 오차입니다 (낮을수록 좋음). 기준은 평균으로만 예측한 값.")

ordered = sorted(items, key=lambda m: m["version"])
left, right = st.columns(2)
left.plotly_chart(charts.model_metrics(ordered, "rmsle", "baseline_rmsle"), width="stretch")
right.plotly_chart(charts.model_metrics(ordered, "mae", "baseline_mae"), width="stretch")

importance_section(fetch(client.active_model, context="사용 중인 모델") if active_version is not None else None)

me = fetch(client.me)
if me is not None and me.get("role") == "admin":
    admin_controls(client, items, active_version)
else:
    st.caption("모델 활성화·롤백은 관리자만 할 수 있습니다.")
