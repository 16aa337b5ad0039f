"""소개: what hab is, where its data comes from, what ECLO means, the assistant's tools (from the API) and the
architecture in one picture (st.graphviz_chart: rendered by Streamlit's own bundled renderer, no CDN)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from frontend.session import get_client
from frontend.ui import fetch

DATASETS = pd.DataFrame(
    [
        ("교통사고 (train)", "DACON 「대구 교통사고 피해 예측」 학습 데이터", "2019–2021 사고 39,609건, ECLO"),
        ("교통사고 (test)", "같은 대회의 평가 데이터", "2022년 사고 10,963건, 결과(사상자) 없음"),
        ("전국 교통사고", "같은 대회의 추가 데이터", "전국 사고 약 60만 건, train과 같은 열"),
        ("CCTV", "대구광역시 공공데이터", "단속 카메라 위치, 제한속도, 설치연도"),
        ("보안등", "대구광역시 공공데이터", "보안등 71,913곳의 위치와 설치 형태"),
        ("어린이 보호 구역", "대구광역시 공공데이터", "보호 구역 대상 시설과 위치"),
        ("주차장", "대구광역시 공공데이터", "주차장 위치, 구분, 주차 구획 수"),
    ],
    columns=["데이터", "출처", "내용"],
)

ARCHITECTURE = """
digraph hab {
  rankdir=LR; bgcolor="transparent";
  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", fontname="sans-serif", fontsize=11];
  edge [fontname="sans-serif", fontsize=9];
  browser [label="브라우저", shape=oval, fillcolor="#ffffff"];
  cli [label="hab score / curl", shape=oval, fillcolor="#ffffff"];
  ui [label="Streamlit 화면\\n(frontend/)"];
  api [label="API\\nLitestar (api/)"];
  worker [label="작업자\\narq (workers/)"];
  pg [label="PostgreSQL\\n데이터셋·예측·대화·모델", shape=cylinder, fillcolor="#fdf3e1"];
  redis [label="Redis\\n작업 큐·캐시", shape=cylinder, fillcolor="#fdf3e1"];
  claude [label="Anthropic API\\n(사용자의 키)", shape=oval, fillcolor="#f3eefb"];
  model [label="ECLO 모델\\nLightGBM", shape=component, fillcolor="#eaf7ee"];
  browser -> ui; ui -> api [label="HTTP"]; cli -> api [label="HTTP"];
  api -> pg; api -> redis [label="작업 ID"]; redis -> worker; worker -> pg;
  api -> claude [label="질의응답"]; worker -> claude;
  api -> model [style=dashed]; worker -> model [style=dashed];
}
"""

st.title("소개")
st.markdown(
    "**hab**은 대구의 교통안전 데이터를 올려서 살펴보고, 지도에 겹쳐 보고, Claude에게 물어보고, "
    "사고의 피해 정도(ECLO)를 예측하는 데이터 플랫폼입니다. v1.2.5의 한 파일짜리 앱을 API · 작업자 · 화면으로 "
    "나누어, 큰 파일과 여러 사용자도 견디도록 다시 만들었습니다."
)

st.header("데이터는 어디에서 오나요")
st.dataframe(DATASETS, hide_index=True, width="stretch")
st.caption(
    "처음 실행하면 같은 형식의 **합성(가상) 데모 데이터**가 들어 있습니다. 실제 파일은 '개요 / 업로드'에서 "
    "CSV(UTF-8 또는 CP949)로 올리면 종류를 알아서 판별합니다."
)

st.header("ECLO란")
st.markdown(
    "ECLO(Equivalent Casualty Loss Only)는 사고 한 건의 인명 피해를 하나의 수로 나타낸 값입니다. "
    "사망자는 10, 중상자는 5, 경상자는 3, 부상 신고자는 1로 환산해 더합니다."
)
st.latex(
    r"\mathrm{ECLO} = 10 \times \text{사망자수} + 5 \times \text{중상자수}"
    r" + 3 \times \text{경상자수} + 1 \times \text{부상자수}"
)
st.caption(
    "예측 모델은 날씨, 노면, 도로 형태, 사고 유형, 시간대, 장소, 요일과 사고 일시의 숫자로 ECLO를 예측하고, "
    "경미 · 보통 · 심각 · 매우 심각 중 하나로 해석해 줍니다."
)

st.header("질의응답의 분석 도구")
tools = fetch(get_client().analysis_tools, context="분석 도구 목록")
if tools is not None:
    st.markdown(
        f"Claude는 질문에 답할 때 아래 **{tools['count']}개 도구**로 데이터를 직접 계산합니다. "
        "도구마다 같은 결과를 내는 pandas 코드도 함께 보여 줍니다."
    )
    table = pd.DataFrame(
        [
            {"도구": t["name"], "설명": t["description"], "데이터셋 사용": "예" if t["uses_dataset"] else "아니요"}
            for t in tools["items"]
        ]
    )
    st.dataframe(table, hide_index=True, width="stretch")

st.header("구조")
st.graphviz_chart(ARCHITECTURE, width="stretch")
st.caption(
    "화면은 API와 HTTP로만 이야기합니다. 오래 걸리는 일(배치 예측, 백그라운드 질문)은 API가 작업으로 등록하고 "
    "작업자가 처리하며, 진행 상황과 결과는 PostgreSQL에 남습니다. "
    "Anthropic API 키는 요청마다 전달되고 저장되지 않습니다."
)
