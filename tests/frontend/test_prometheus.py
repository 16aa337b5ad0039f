"""Metrics end to end: Debian's real Prometheus scrapes a real `hab serve --workers 2` and the stack's real
`hab worker`, and after traffic every PromQL expression of the Grafana dashboard returns data.

The rendered config is deploy/prometheus/prometheus.yml with only the targets (compose's service names) and
the scrape interval replaced. The same API process shows that two uvicorn processes are summed on one
/metrics, and its JSON logs (captured from the real process) carry request ids and never the canaries.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import yaml

from tests.frontend.conftest import REPO_ROOT, Process, Stack, _wait_ready, free_port
from tests.sample_rows import ACCIDENT_ROW

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
CONFIG = REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "dashboards" / "hab.json"
CANARY_KEY = f"sk-ant-canary-{secrets.token_hex(12)}"
T = TypeVar("T")

pytestmark = pytest.mark.skipif(
    not (Path(PROMETHEUS).exists() and Path(PROMTOOL).exists()),
    reason="Debian's prometheus is not installed (.ci/run installs it)",
)


def _until(what: str, probe: Callable[[], T | None], timeout: float = 90) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            found = probe()
            if found is not None:
                return found
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


@dataclass
class Api:
    url: str
    process: Process
    data_dir: Path
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def api(stack: Stack) -> Iterator[Api]:
    """A second API on the stack's database: two uvicorn processes, JSON logs at DEBUG (so the SDKs log too)."""
    port = free_port()
    data_dir = stack.root / f"api2-{port}"
    data_dir.mkdir()
    env = {**stack.env, "HAB_LOG_FORMAT": "json", "HAB_LOG_LEVEL": "DEBUG", "TMPDIR": str(data_dir)}
    args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    process = Process(f"serve2-{port}", args, env, stack.root)
    try:
        _wait_ready(f"http://127.0.0.1:{port}", process)
        yield Api(f"http://127.0.0.1:{port}", process, data_dir, stack.admin_token)
    finally:
        process.stop()


@dataclass
class Worker:
    process: Process
    metrics: str  # host:port


@pytest.fixture(scope="module")
def worker(stack: Stack) -> Iterator[Worker]:
    """A second worker on the stack's queue, JSON logs at DEBUG: jobs run on either worker."""
    port = free_port()
    env = {**stack.env, "HAB_LOG_FORMAT": "json", "HAB_LOG_LEVEL": "DEBUG", "HAB_WORKER_METRICS_PORT": str(port)}
    process = Process(f"worker2-{port}", ["worker"], env, stack.root)
    try:
        _until("the second worker's /metrics", lambda: (process.alive() and httpx.get(
            f"http://127.0.0.1:{port}/metrics", timeout=2).status_code == 200) or None, timeout=180)  # fmt: skip
        yield Worker(process, f"127.0.0.1:{port}")
    finally:
        process.stop()


def test_promtool_accepts_the_shipped_config() -> None:
    checked = subprocess.run([PROMTOOL, "check", "config", str(CONFIG)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_two_uvicorn_processes_are_summed_on_one_metrics(api: Api) -> None:
    def health(_: int) -> int:
        return httpx.get(f"{api.url}/health", timeout=10).status_code  # a new connection each: either process

    before = _sample(httpx.get(f"{api.url}/metrics", timeout=10).text, "hab_http_requests_total", route="/health")
    folders = list(api.data_dir.glob("hab-metrics-*"))
    assert len(folders) == 1
    sent = 0

    def both_processes_counted() -> bool:
        # The kernel hands new connections to either process; keep sending until both have counted some.
        nonlocal sent
        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(health, range(40))) == {200}
        sent += 40
        return len(list(folders[0].glob("counter_*.db"))) == 2  # one file per uvicorn process

    _until("both uvicorn processes answered", lambda: both_processes_counted() or None, timeout=120)
    after = _sample(httpx.get(f"{api.url}/metrics", timeout=10).text, "hab_http_requests_total", route="/health")
    assert after - before == sent  # summed over both processes' files


def _sample(text: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def _render_config(path: Path, api: str, workers: list[str]) -> Path:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    config["global"]["scrape_interval"] = "1s"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"hab-api", "hab-worker"}
    jobs["hab-api"]["static_configs"] = [{"targets": [api]}]
    jobs["hab-worker"].pop("dns_sd_configs")
    jobs["hab-worker"]["static_configs"] = [{"targets": workers}]
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def prometheus(api: Api, worker: Worker, stack: Stack) -> Iterator[str]:
    root = stack.root / f"prometheus-{free_port()}"
    root.mkdir()
    first = stack.worker_metrics_url.removeprefix("http://").removesuffix("/metrics")
    config = _render_config(root / "prometheus.yml", api.url.removeprefix("http://"), [first, worker.metrics])
    checked = subprocess.run([PROMTOOL, "check", "config", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (root / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={root / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:

        def all_up() -> bool | None:
            targets = httpx.get(f"{url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
            return True if len(targets) == 3 and all(t["health"] == "up" for t in targets) else None

        _until("both hab targets scraped", all_up)
        yield url
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def _traffic(api: Api, stack: Stack, round_: int) -> None:
    """Predictions (single, batch, job), a failed job, a cached chat, an upstream 5xx and an upload."""
    h = api.headers
    key = {**h, "X-Anthropic-API-Key": CANARY_KEY}
    assert httpx.post(f"{api.url}/api/predict/eclo", json=ACCIDENT_ROW, headers=h, timeout=10).status_code == 200
    batch = httpx.post(f"{api.url}/api/predict/eclo/batch", json={"rows": [ACCIDENT_ROW] * 3}, headers=h, timeout=10)
    assert batch.status_code == 200, batch.text
    job = httpx.post(f"{api.url}/api/predict/jobs", json={"rows": [ACCIDENT_ROW] * 5}, headers=h, timeout=10)
    assert job.status_code == 202, job.text
    dataset_id = next(d["id"] for d in stack.get("/api/datasets", limit=200).json()["items"] if d["kind"] == "accident")

    stack.anthropic.reply("캐시될 답변입니다.", input_tokens=120, output_tokens=30)
    ask = {"dataset_ids": [dataset_id], "message": f"지표 시험 질문 {round_} {secrets.token_hex(4)}"}
    for expected_hit in (False, True):
        answered = httpx.post(f"{api.url}/api/chat/message", json=ask, headers=key, timeout=30)
        assert answered.status_code == 200, answered.text
        assert answered.json()["cache_hit"] is expected_hit
    stack.anthropic.fail(529, "overloaded_error")
    overloaded = httpx.post(f"{api.url}/api/chat/message", json={**ask, "message": f"과부하 {ask['message']}"},
                            headers=key, timeout=30)  # fmt: skip
    assert overloaded.status_code == 503

    stack.anthropic.invalid_keys.add(CANARY_KEY)
    chat_job = httpx.post(f"{api.url}/api/chat/jobs", json={**ask, "message": f"작업 {ask['message']}"}, headers=key,
                          timeout=10)  # fmt: skip
    assert chat_job.status_code == 202, chat_job.text
    for job_id, status in ((job.json()["job_id"], "succeeded"), (chat_job.json()["job_id"], "failed")):
        finished = _until(f"job {job_id}", lambda j=job_id: _finished(stack, j))
        assert finished["status"] == status, finished
    stack.anthropic.invalid_keys.discard(CANARY_KEY)

    csv = f"구분,값\n가,{round_}\n나,{secrets.randbelow(1000)}\n".encode()
    uploaded = httpx.post(f"{api.url}/api/datasets/upload/csv", params={"name": f"지표 시험 {secrets.token_hex(3)}"},
                          content=csv, headers={**h, "Content-Type": "text/csv"}, timeout=30)  # fmt: skip
    assert uploaded.status_code == 201, uploaded.text


def _finished(stack: Stack, job_id: int) -> dict | None:
    job = stack.get(f"/api/jobs/{job_id}").json()
    return job if job["status"] not in ("queued", "running") else None


def _dashboard_expressions() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    found = [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", ())]
    assert len(found) >= 12
    return found


def test_every_dashboard_query_returns_data_from_hab(prometheus: str, api: Api, stack: Stack) -> None:
    # The stack's own worker (WARNING logs) is paused, so the jobs run on the second one, whose log is checked below.
    stack.worker.proc.send_signal(signal.SIGSTOP)
    try:
        for round_ in range(2):  # the second round moves counters Prometheus has already seen, so rates are > 0
            _traffic(api, stack, round_)
            if round_ == 0:
                _wait_for_scrape(prometheus)
    finally:
        stack.worker.proc.send_signal(signal.SIGCONT)
        stack.anthropic.reset()

    def answers(expr: str) -> list | None:
        response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert response["status"] == "success", response
        result = response["data"]["result"]
        finite = [r for r in result if not math.isnan(float(r["value"][1]))]
        return finite or None

    for title, expr in _dashboard_expressions():
        _until(f"panel {title!r} ({expr})", lambda e=expr: answers(e), timeout=60)


def _wait_for_scrape(prometheus: str) -> None:
    """Until Prometheus has the round's counters (a later increase then shows as a rate, not a new series)."""
    _until("the first round scraped", lambda: httpx.get(
        f"{prometheus}/api/v1/query", params={"query": 'hab_jobs_total{status="failed"}'}, timeout=5
    ).json()["data"]["result"] or None)  # fmt: skip


def test_the_real_logs_hold_request_ids_job_ids_and_no_canary(
    prometheus: str, api: Api, worker: Worker, stack: Stack
) -> None:
    """After the traffic above (the canary key went through succeeding, failing and job requests)."""
    request_id = f"obs-{secrets.token_hex(6)}"
    answered = httpx.get(f"{api.url}/api/me", headers={**api.headers, "X-Request-ID": request_id}, timeout=10)
    assert answered.headers["x-request-id"] == request_id
    made = httpx.get(f"{api.url}/api/me", headers={"Authorization": f"Bearer hab_{'x' * 40}"}, timeout=10)
    assert made.status_code == 401 and len(made.headers["x-request-id"]) == 32

    api_log = api.process.log_path.read_text(encoding="utf-8", errors="replace")
    worker_log = "".join(
        w.log_path.read_text(encoding="utf-8", errors="replace") for w in (stack.worker, worker.process)
    )
    for secret in (CANARY_KEY, api.token, stack.admin_token):
        assert secret not in api_log
        assert secret not in worker_log
    lines = [json.loads(line) for line in api_log.splitlines() if line.startswith("{")]
    assert lines, api_log[-2000:]
    # (That the redaction processor rewrites a key it meets is tests/unit/test_logs.py's; here: none got through.)
    assert all("event" in line and "level" in line and "timestamp" in line for line in lines)
    assert any(line.get("request_id") == request_id for line in lines)
    # Jobs run on either worker: the JSON one's lines carry job_id/job_kind fields, the stack's console lines
    # show them as key=value.
    worker_lines = worker.process.log_path.read_text(encoding="utf-8").splitlines()
    jobs_logged = [json.loads(line) for line in worker_lines if line.startswith("{")]
    console = stack.worker.log_path.read_text(encoding="utf-8", errors="replace")
    assert any(isinstance(line.get("job_id"), int) and line.get("job_kind") for line in jobs_logged) or (
        re.search(r"job_id=\d+", console) and "job_kind=" in console
    ), console[-3000:]
