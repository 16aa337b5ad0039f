"""작업: the job list with status and progress, a finished job's results, and cancelling a queued job."""

from __future__ import annotations

import signal
import time

import httpx

from tests.frontend.conftest import assert_clean, metrics, open_page, texts
from tests.waiting import wait_until

PAGE = "views/jobs.py"


def _submit(stack, dataset_id: int) -> int:
    response = httpx.post(
        f"{stack.url}/api/predict/jobs",
        headers={"Authorization": f"Bearer {stack.admin_token}"},
        json={"dataset_id": dataset_id},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def _wait(stack, job_id: int, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = stack.get(f"/api/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def _dataset(stack, kind: str) -> dict:
    return next(d for d in stack.get("/api/datasets", limit=200).json()["items"] if d["kind"] == kind)


def test_finished_job_is_listed_with_its_results(frontend_env):
    dataset = _dataset(frontend_env, "accident_test")
    job_id = _submit(frontend_env, dataset["id"])
    job = _wait(frontend_env, job_id)
    assert job["status"] == "succeeded"

    at = open_page(PAGE)
    table = at.dataframe[0].value.set_index("ID")
    row = table.loc[job_id]
    assert row["상태"] == "✅ 완료" and row["진행률"] == 1.0
    assert row["처리한 행"] == row["전체 행"] == dataset["rows"]
    assert row["입력"] == f"데이터셋 #{dataset['id']} {dataset['name']}"
    assert row["종류"] == "배치 ECLO 예측"

    box = at.selectbox(key="jobs_detail")
    box.select_index(next(i for i, o in enumerate(box.options) if o.startswith(f"#{job_id} "))).run()
    assert_clean(at)
    assert any(s.startswith(f"작업 #{job_id} 완료") for s in texts(at.success))
    assert metrics(at)["예측한 행"] == f"{job['summary']['count']:,}"
    assert len(at.dataframe[-1].value) == job["summary"]["count"]

    at.selectbox(key="jobs_status").select("❌ 실패").run()  # the filter asks the API for failed jobs only
    assert_clean(at)
    assert not at.dataframe or job_id not in set(at.dataframe[0].value["ID"])


def test_cancel_a_queued_job(frontend_env):
    dataset = _dataset(frontend_env, "accident_test")
    worker = frontend_env.worker.proc
    worker.send_signal(signal.SIGSTOP)  # nobody picks the job up while the page shows it
    try:
        job_id = _submit(frontend_env, dataset["id"])
        at = open_page(PAGE)
        bars = [p.proto.text for p in at.progress]
        assert any(text.startswith(f"작업 #{job_id} · ⏳ 대기 중 · 0/{dataset['rows']:,}행") for text in bars), bars
        at.button(key=f"cancel_job_{job_id}").click().run()
        assert_clean(at)
        job = frontend_env.get(f"/api/jobs/{job_id}").json()
        assert job["status"] == "cancelled" and job["cancel_requested"]
        assert at.dataframe[0].value.set_index("ID").loc[job_id, "상태"] == "⛔ 취소됨"
        assert f"cancel_job_{job_id}" not in [b.key for b in at.button]
    finally:
        worker.send_signal(signal.SIGCONT)


def test_dashboard_shows_the_live_worker_the_queue_and_the_last_hour(frontend_env):
    dataset = _dataset(frontend_env, "accident_test")
    job = _wait(frontend_env, _submit(frontend_env, dataset["id"]))
    assert job["status"] == "succeeded"

    # The job's helper deliveries (other workers invited to score its parts) leave the queue a moment after
    # it ends: compare the page with a settled queue.
    def settled() -> dict | None:
        found = frontend_env.get("/api/jobs/overview").json()
        return found if found["queue_depth"] == 0 and not found["running"] else None

    overview = wait_until(settled, seconds=60, what="the queue is empty")
    assert overview["succeeded"] >= 1

    at = open_page(PAGE)
    shown = metrics(at)
    assert shown["살아 있는 워커"] == f"{len(overview['workers'])}"
    assert shown["대기열"] == f"{overview['queue_depth']:,}"
    assert shown["최근 1시간 완료"] == f"{overview['succeeded']:,}"
    assert shown["최근 1시간 실패"] == f"{overview['failed']:,}"
    assert any("모든 사용자의 작업" in t for t in texts(at.caption))  # the admin's scope
    workers = at.table[0].value
    assert frontend_env.worker.proc.pid in set(workers["PID"])
    row = workers[workers["PID"] == frontend_env.worker.proc.pid].iloc[0]
    assert row["마지막 보고"] >= row["시작한 때"] and row["실행 중인 작업"]


def test_dashboard_says_when_no_worker_is_alive(frontend_env):
    worker = frontend_env.worker.proc
    worker.send_signal(signal.SIGSTOP)  # a frozen worker stops reporting: its record expires
    try:
        deadline = time.monotonic() + 60
        while frontend_env.get("/api/jobs/overview").json()["workers"]:
            assert time.monotonic() < deadline, "the frozen worker's record did not expire"
            time.sleep(0.2)
        at = open_page(PAGE)
        assert metrics(at)["살아 있는 워커"] == "0"
        assert any("살아 있는 워커가 없습니다" in t for t in texts(at.warning))
    finally:
        worker.send_signal(signal.SIGCONT)
