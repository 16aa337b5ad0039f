"""ECLO 예측: one accident from a form built from /api/predict/schema, or a whole dataset/CSV as a job."""

from __future__ import annotations

from typing import Any

import streamlit as st

from frontend import charts, jobview, labels
from frontend.client import ApiError, HabClient
from frontend.forms import AUTO, AUTO_FEATURES, integer_default, request_body
from frontend.session import get_client
from frontend.ui import dataset_label, fetch, show_error

RESULT = "prediction_result"
BATCH_JOB = "batch_job_id"


def feature_widget(feature: dict[str, Any]) -> Any:
    name, help_text = feature["name"], feature.get("description") or None
    if feature["type"] == "categorical":
        options = list(feature["values"] or [])
        if name in AUTO_FEATURES:
            options = [AUTO, *options]
        return st.selectbox(name, options, key=f"feature_{name}", help=help_text)
    return st.number_input(
        name,
        min_value=feature.get("minimum"),
        max_value=feature.get("maximum"),
        value=integer_default(feature),
        step=1,
        key=f"feature_{name}",
        help=help_text,
    )


def single_prediction(client: HabClient, schema: dict[str, Any]) -> None:
    st.caption(f"모델 버전 {schema['model_version']} · 값은 모델이 학습한 범주에서만 고를 수 있습니다.")
    if schema.get("notice"):  # the active model was trained on the synthetic demo data
        st.warning(schema["notice"], icon="🧪")
    with st.form("predict_form"):
        values: dict[str, Any] = {}
        columns = st.columns(3)
        for i, feature in enumerate(schema["features"]):
            with columns[i % 3]:
                values[feature["name"]] = feature_widget(feature)
        submitted = st.form_submit_button("예측하기", type="primary")
    if submitted:
        try:
            st.session_state[RESULT] = client.predict(request_body(values), explain=True)
        except ApiError as error:
            st.session_state.pop(RESULT, None)
            show_error(error, "예측")
    if result := st.session_state.get(RESULT):
        show_prediction(result)


def show_prediction(result: dict[str, Any]) -> None:
    st.subheader("예측 결과")
    cols = st.columns(3)
    cols[0].metric("예상 ECLO", f"{result['eclo']:.2f}")
    cols[1].metric("위험도", result["interpretation"])
    cols[2].metric(
        "백분위", f"{result['percentile']:.1f}%", help="학습 데이터의 사고 가운데 이 값보다 ECLO가 낮았던 비율"
    )
    st.info(result["detail"], icon="🧭")
    if result.get("contributions"):
        st.plotly_chart(charts.contributions(result["contributions"]), width="stretch")
    st.caption(f"모델 버전 {result['model_version']} · 예측 번호 {result['prediction_id']}")


def batch_prediction(client: HabClient) -> None:
    st.caption("교통사고 형식(사고일시, 기상상태 등)의 데이터셋이나 CSV 전체를 작업자가 예측합니다.")
    source = st.radio("입력", ["저장된 데이터셋", "CSV 파일 올리기"], horizontal=True, key="batch_source")
    dataset_id: int | None = None
    upload = None
    if source == "저장된 데이터셋":
        page = fetch(client.datasets)
        scorable = [d for d in (page or {"items": []})["items"] if d["kind"] in labels.scorable_kinds(client)]
        if not scorable:
            st.info("교통사고 형식의 데이터셋이 없습니다. CSV를 올려 보세요.")
        else:
            choice = st.selectbox("데이터셋", scorable, format_func=dataset_label, key="batch_dataset")
            dataset_id = choice["id"]
    else:
        upload = st.file_uploader("교통사고 CSV (test.csv 형식)", type=["csv"], key="batch_file")
    if st.button("배치 예측 시작", type="primary", disabled=dataset_id is None and upload is None, key="batch_start"):
        start_batch(client, dataset_id, upload)
    job_id = st.session_state.get(BATCH_JOB)
    if job_id is None:
        return
    if st.button("이 작업 취소", key="batch_cancel"):
        fetch(client.cancel_job, job_id, context="작업 취소")
    job = jobview.wait_for(client, job_id)
    if job is not None:
        jobview.render_outcome(client, job)


def start_batch(client: HabClient, dataset_id: int | None, upload: Any) -> None:
    try:
        if upload is not None:
            with st.spinner(f"{upload.name} 올리는 중…"):
                stored = client.upload(upload.name, upload.getvalue(), visibility="private")
            st.caption(f"{stored['name']} v{stored['version']} ({stored['rows']:,}행)으로 저장했습니다.")
            dataset_id = stored["id"]
        accepted = client.submit_scoring(int(dataset_id))
    except ApiError as error:
        show_error(error, "배치 예측")
        return
    st.session_state[BATCH_JOB] = accepted["job_id"]


client = get_client()
st.title("ECLO 예측")
st.caption("ECLO = 사망 10 · 중상 5 · 경상 3 · 부상신고 1점으로 환산한 사고 피해 규모입니다.")
one, many = st.tabs(["한 건 예측", "배치 예측"])
with one:
    schema = fetch(client.predict_schema, context="예측 입력 정보")
    if schema is not None:
        single_prediction(client, schema)
with many:
    batch_prediction(client)
