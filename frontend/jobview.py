"""Background jobs on screen: waiting with a progress bar, and a finished scoring job's summary and results."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import streamlit as st

from frontend import charts, labels
from frontend.client import ApiError, HabClient
from frontend.tables import blank_missing
from frontend.ui import fetch, show_error

POLL_SECONDS = 0.5
WAIT_SECONDS = 600.0  # then the page says "still running" and offers a refresh
RESULT_ROWS = 1_000


def fraction(job: dict[str, Any]) -> float:
    if job["status"] == "succeeded":
        return 1.0
    total = job.get("total") or 0
    return min(1.0, job["progress"] / total) if total else 0.0


def progress_text(job: dict[str, Any]) -> str:
    label = labels.job_status(job)
    total = job.get("total")
    done = f"{job['progress']:,}/{total:,}행" if total else f"{job['progress']:,}행"
    return f"작업 #{job['id']} · {label} · {done} ({fraction(job) * 100:.0f}%)"


def wait_for(client: HabClient, job_id: int, *, timeout: float = WAIT_SECONDS) -> dict[str, Any] | None:
    """Poll the job with a progress bar until it ends (or `timeout`); the last state seen, None on API failure."""
    try:
        job = client.job(job_id)
    except ApiError as error:
        show_error(error, f"작업 #{job_id}")
        return None
    bar = st.progress(fraction(job), text=progress_text(job))
    deadline = time.monotonic() + timeout
    while not job["finished"] and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        try:
            job = client.job(job_id)
        except ApiError as error:  # a restarting server: keep the bar, say why, try again
            bar.progress(fraction(job), text=f"{progress_text(job)} · {error.message}")
            continue
        bar.progress(fraction(job), text=progress_text(job))
    if not job["finished"]:
        st.info("작업이 아직 진행 중입니다. 잠시 뒤 새로 고쳐 주세요. 작업 화면에서도 볼 수 있습니다.")
    return job


def render_outcome(client: HabClient, job: dict[str, Any]) -> None:
    """How a job ended: an error, a cancellation, or (scoring) the summary charts, table and CSV download."""
    status = job["status"]
    if status == "failed":
        st.error(f"작업 #{job['id']}이(가) 실패했습니다: {job.get('error') or '알 수 없는 오류'}")
    elif status == "cancelled":
        st.warning(f"작업 #{job['id']}은(는) 취소되었습니다. 취소 전까지 예측한 행은 남아 있습니다.")
    elif status == "succeeded":
        st.success(
            f"작업 #{job['id']} 완료" + (f" ({job['duration_seconds']:.1f}초)" if job["duration_seconds"] else "")
        )
    if job["kind"] == "score" and job.get("summary") and job["finished"]:
        render_score_summary(job["summary"])
        render_score_results(client, job)


def render_score_summary(summary: dict[str, Any]) -> None:
    cols = st.columns(4)
    cols[0].metric("예측한 행", f"{summary.get('count', 0):,}")
    mean, top = summary.get("mean_eclo"), summary.get("max_eclo")
    cols[1].metric("평균 ECLO", "-" if mean is None else f"{mean:.2f}")
    cols[2].metric("최대 ECLO", "-" if top is None else f"{top:.2f}")
    cols[3].metric("오류 행", f"{summary.get('error_count', 0):,}")
    left, right = st.columns(2)
    if summary.get("bands"):
        left.plotly_chart(charts.band_counts(summary["bands"]), width="stretch")
    if summary.get("top_districts"):
        right.plotly_chart(charts.top_districts(summary["top_districts"]), width="stretch")
    if summary.get("errors"):
        with st.expander(f"예측하지 못한 행 ({summary['error_count']:,}개 중 처음 {len(summary['errors'])}개)"):
            errors = pd.DataFrame(summary["errors"])
            keep = [c for c in ("row_index", "message") if c in errors.columns]
            st.dataframe(errors[keep].rename(columns={"row_index": "행 번호", "message": "이유"}), hide_index=True)


def render_score_results(client: HabClient, job: dict[str, Any]) -> None:
    page = fetch(client.job_results, job["id"], limit=RESULT_ROWS, context="결과 읽기")
    if page is None:
        return
    table = pd.DataFrame(page["items"]).rename(
        columns={"row_index": "행 번호", "id": "ID", "eclo": "예상 ECLO", "interpretation": "위험도"}
    )
    st.dataframe(blank_missing(table), hide_index=True, width="stretch")
    if page["total"] > len(page["items"]):
        st.caption(f"처음 {len(page['items']):,}행만 보입니다 (전체 {page['total']:,}행). 모두 보려면 CSV를 받으세요.")

    def csv_bytes() -> bytes:
        try:
            return client.job_results_csv(job["id"])
        except ApiError as error:
            return f"결과를 받지 못했습니다: {error.message}\n".encode()

    st.download_button(
        "결과 CSV 내려받기",
        data=csv_bytes,
        file_name=f"hab-job-{job['id']}-eclo.csv",
        mime="text/csv",
        on_click="ignore",
        key=f"download_job_{job['id']}",
        icon="⬇️",
    )
