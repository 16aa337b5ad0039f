"""작업: the user's background jobs with status and progress; cancel the running ones; look at one."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from frontend import jobview, labels
from frontend.client import HabClient
from frontend.session import get_client
from frontend.ui import fetch, require


def describe_input(job: dict[str, Any]) -> str:
    params = job.get("params") or {}
    if "dataset_name" in params:
        return f"데이터셋 #{params.get('dataset_id')} {params['dataset_name']}"
    if "inline_rows" in params:
        return f"직접 보낸 {params['inline_rows']:,}행"
    return ""


def jobs_table(items: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "ID": j["id"],
                "종류": labels.job_kind(j),
                "입력": describe_input(j),
                "상태": labels.job_status(j),
                "진행률": jobview.fraction(j),
                "처리한 행": j["progress"],
                "전체 행": j["total"],
                "만든 때": j["created_at"][:19].replace("T", " "),
                "걸린 시간(초)": None if j["duration_seconds"] is None else round(j["duration_seconds"], 1),
            }
            for j in items
        ]
    )


def active_jobs(client: HabClient, items: list[dict[str, Any]]) -> None:
    running = [j for j in items if not j["finished"]]
    if not running:
        return
    st.subheader("진행 중인 작업")
    for job in running:
        left, right = st.columns([4, 1])
        left.progress(jobview.fraction(job), text=jobview.progress_text(job))
        if job["cancel_requested"]:
            right.caption("취소 요청됨")
        elif right.button("취소", key=f"cancel_job_{job['id']}"):
            if fetch(client.cancel_job, job["id"], context=f"작업 #{job['id']} 취소") is not None:
                st.toast(f"작업 #{job['id']} 취소를 요청했습니다.")
                st.rerun()


def _local_time(iso: str) -> str:
    return pd.Timestamp(iso).tz_convert("Asia/Seoul").strftime("%Y-%m-%d %H:%M:%S")


def workers_table(workers: list[dict[str, Any]]) -> pd.DataFrame:
    def running(w: dict[str, Any]) -> str:
        shown = ", ".join(f"#{j}" for j in w["job_ids"])
        others = f"다른 사용자의 작업 {w['other_jobs']}개" if w["other_jobs"] else ""
        return " · ".join(part for part in (shown, others) if part) or "쉬는 중"

    return pd.DataFrame(
        [
            {
                "호스트": w["host"],
                "PID": w["pid"],
                "시작한 때": _local_time(w["started_at"]),
                "마지막 보고": _local_time(w["heartbeat_at"]),
                "실행 중인 작업": running(w),
            }
            for w in workers
        ]
    )


def dashboard(client: HabClient) -> None:
    """What the workers report: who is alive and busy, the queue, and the last hour's outcomes."""
    overview = fetch(client.jobs_overview, context="작업 현황")
    if overview is None:
        return
    st.subheader("작업 현황")
    hours = overview["window_seconds"] // 3600
    cells = st.columns(5)
    cells[0].metric("살아 있는 워커", f"{len(overview['workers']):,}")
    cells[1].metric("대기열", f"{overview['queue_depth']:,}")
    cells[2].metric(f"최근 {hours}시간 완료", f"{overview['succeeded']:,}")
    cells[3].metric(f"최근 {hours}시간 실패", f"{overview['failed']:,}")
    cells[4].metric(f"최근 {hours}시간 취소", f"{overview['cancelled']:,}")
    st.caption(f"집계 대상: {overview['scope_label']} · 대기열은 모든 사용자의 작업입니다.")
    if overview["workers"]:
        # A table, not a dataframe: the job list below stays the page's first dataframe.
        st.table(workers_table(overview["workers"]).set_index("호스트"))
    else:
        st.warning("살아 있는 워커가 없습니다. 작업이 대기열에서 기다립니다 (`hab worker`로 시작하세요).")


client = get_client()
STATUS_FILTER = {"전체": None, **{label: status for status, label in labels.job_statuses(client).items()}}
st.title("작업")
top_left, top_right = st.columns([3, 1])
label = top_left.selectbox("상태", list(STATUS_FILTER), key="jobs_status")
top_right.button("새로 고침", key="jobs_refresh", width="stretch")
dashboard(client)
page = require(client.jobs, status=STATUS_FILTER[label], limit=100)
items = page["items"]
if not items:
    st.info("작업이 없습니다. ECLO 예측 화면의 배치 예측으로 작업을 만들 수 있습니다.")
    st.stop()

st.caption(f"모두 {page['total']:,}개 (최근 {len(items)}개 표시)")
st.dataframe(
    jobs_table(items),
    hide_index=True,
    width="stretch",
    column_config={"진행률": st.column_config.ProgressColumn("진행률", min_value=0.0, max_value=1.0, format="percent")},
)
active_jobs(client, items)

st.subheader("작업 자세히 보기")
chosen = st.selectbox(
    "작업",
    items,
    format_func=lambda j: f"#{j['id']} {labels.job_kind(j)} · {labels.job_status(j)}",
    key="jobs_detail",
)
job = fetch(client.job, chosen["id"], context=f"작업 #{chosen['id']}")
if job is not None:
    if not job["finished"]:
        st.progress(jobview.fraction(job), text=jobview.progress_text(job))
        st.caption("진행 중입니다. '새로 고침'으로 최신 상태를 볼 수 있습니다.")
    else:
        jobview.render_outcome(client, job)
