"""`hab run` as a supervisor: each part of the local stack killed outright is restarted, and the rest survives.

One stack for the module (embedded PostgreSQL and Redis in a temp folder, as on a fresh laptop). Every
test kills something real with SIGKILL, checks that the kill happened (the pid changed) and that what
users do kept working, so none of them can pass without its fault.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from api.demo.generate import generate_demo_datasets
from api.local.envfile import read_env_file
from tests.e2e.conftest import shared_temp_dir
from tests.e2e.test_processes import HAB, _free_port, _fresh_laptop_env
from tests.fakes.anthropic_server import FakeAnthropic
from tests.sample_rows import ACCIDENT_ROW
from tests.secret_scan import scan_for_secret

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.timeout(900)]

ROW = ACCIDENT_ROW


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.2) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # Passing trouble (a restarting server, a process between two states) means "not yet"; a failed
        # assertion inside `condition` ends the wait at once.
        with contextlib.suppress(httpx.HTTPError, OSError, LookupError, ValueError, psutil.Error):
            value = condition()
            if value:
                return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class LocalStack:
    folder: Path
    env: dict[str, str]
    api: str
    process: subprocess.Popen
    log: Path
    anthropic: FakeAnthropic

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def headers(self) -> dict[str, str]:
        token = read_env_file(self.folder / "env" / ".env")["HAB_API_TOKEN"]
        return {"Authorization": f"Bearer {token}"}

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def program_pid(self, marker: str) -> int:
        """The pid of the supervised program whose command line contains `marker`."""
        supervisord = int((self.data / "run" / "supervisord.pid").read_text().strip())
        for child in psutil.Process(supervisord).children():
            with contextlib.suppress(psutil.Error):
                if marker in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                    return child.pid
        raise LookupError(marker)

    def kill(self, marker: str, *, restarted_as: str) -> int:
        """SIGKILL a program, then wait until supervisord has started a new one and hab run has said so."""
        pid = self.program_pid(marker)
        said = self.output().count(restarted_as)
        psutil.Process(pid).kill()
        wait_for(lambda: self.program_pid(marker) != pid, 60, f"a new {marker}")
        wait_for(lambda: self.output().count(restarted_as) > said, 30, f"'{restarted_as}' in hab run's output")
        return pid

    def predict(self, client: httpx.Client) -> int:
        return client.post(f"{self.api}/api/predict/eclo", json=ROW, headers=self.headers).status_code


def _start(folder: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen([HAB, "run"], env=env, stdout=out, stderr=subprocess.STDOUT)


def _ready(stack: LocalStack, process: subprocess.Popen, timeout: float = 300) -> None:
    """Until this run (not an earlier one writing to the same log) says it is ready."""
    seen = stack.output().count("준비 완료")

    def ready() -> bool:
        assert process.poll() is None, f"hab run exited with {process.returncode}:\n{stack.output()[-3000:]}"
        return stack.output().count("준비 완료") > seen

    wait_for(ready, timeout, "hab run to be ready", interval=0.5)


def _ours(data: Path) -> list[psutil.Process]:
    """Every live process of this stack: started with its data folder in the environment or the command line."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            command = " ".join(process.info["cmdline"] or [])
            if (str(data) in command or process.environ().get("HAB_DATA_DIR") == str(data)) and (
                process.status() != psutil.STATUS_ZOMBIE
            ):
                found.append(process)
    return found


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with shared_temp_dir("hab-stack-") as folder, FakeAnthropic() as anthropic:
        api_port, ui_port = _free_port(), _free_port()
        env = _fresh_laptop_env(
            folder,
            HAB_API_PORT=str(api_port),
            HAB_UI_PORT=str(ui_port),
            HAB_DEMO_SCALE="0.05",
            HAB_SCORE_CHUNK_ROWS="5000",
            ANTHROPIC_BASE_URL=anthropic.url,
            HAB_MODEL_RECHECK_SECONDS="600",  # a model swap within seconds then comes from the Redis listener only
        )
        for name in ("HAB_ENV", "HAB_SECRET_KEY"):
            env.pop(name, None)  # as a user runs it: development, with a generated secret
        log = folder / "hab-run.log"
        process = _start(folder, env, log)
        running = LocalStack(folder, env, f"http://127.0.0.1:{api_port}", process, log, anthropic)
        try:
            _ready(running, process)
            yield running
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    process.kill()
            for leftover in _ours(running.data):
                leftover.kill()


def test_redis_killed_predictions_never_fail_and_jobs_come_back(stack):
    statuses: list[int] = []
    stop = threading.Event()

    def steady_predictions() -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                statuses.append(stack.predict(client))
                stop.wait(0.02)

    traffic = threading.Thread(target=steady_predictions)
    traffic.start()
    try:
        wait_for(lambda: len(statuses) >= 20, 30, "predictions before the kill")
        before = len(statuses)
        stack.kill("redis-server", restarted_as="Redis 다시 시작됨")
        wait_for(lambda: len(statuses) >= before + 50, 60, "predictions after the restart")
    finally:
        stop.set()
        traffic.join(timeout=30)
    assert [s for s in statuses if s >= 500] == [] and set(statuses) == {200}
    # Jobs are accepted again once Redis is back (the worker reconnected and runs them).
    job = httpx.post(f"{stack.api}/api/predict/jobs", json={"rows": [ROW] * 3}, headers=stack.headers, timeout=10)
    assert job.status_code == 202, job.text
    job_id = job.json()["job_id"]
    done = wait_for(
        lambda: (
            httpx.get(f"{stack.api}/api/jobs/{job_id}", headers=stack.headers, timeout=5).json()["status"]
            == "succeeded"
        ),
        60,
        "the job after Redis came back",
    )
    assert done
    assert stack.process.poll() is None


def _supervisor(stack: LocalStack):
    """The stack's own supervisord, over its control socket (to hold a part down for a while)."""
    from supervisor.childutils import getRPCInterface

    return getRPCInterface({"SUPERVISOR_SERVER_URL": f"unix://{stack.data / 'run' / 'supervisor.sock'}"}).supervisor


def test_while_redis_is_down_jobs_get_a_korean_503_and_chat_answers_uncached(stack):
    datasets = httpx.get(f"{stack.api}/api/datasets", headers=stack.headers, timeout=10).json()["items"]
    ask = {"dataset_ids": [datasets[0]["id"]], "message": "Redis 없이도 답하나요?"}
    key = {"X-Anthropic-API-Key": "sk-ant-api03-outage-" + "o" * 30}
    before = httpx.get(f"{stack.api}/api/jobs", headers=stack.headers, timeout=10).json()["total"]
    rpc = _supervisor(stack)
    rpc.stopProcess("redis")
    try:
        assert rpc.getProcessInfo("redis")["statename"] == "STOPPED"
        refused = httpx.post(f"{stack.api}/api/predict/jobs", json={"rows": [ROW]}, headers=stack.headers, timeout=10)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["detail"]["reason"] == "queue_unavailable" and "Redis" in refused.text
        assert httpx.get(f"{stack.api}/api/jobs", headers=stack.headers, timeout=10).json()["total"] == before
        for _ in range(2):  # no cache to read or fill: both questions reach Claude
            stack.anthropic.reply("캐시 없이 답합니다.")
            answer = httpx.post(f"{stack.api}/api/chat/message", json=ask, headers={**stack.headers, **key}, timeout=60)
            assert answer.status_code == 200, answer.text
            assert answer.json()["cache_hit"] is False
        with httpx.Client(timeout=10) as client:
            assert stack.predict(client) == 200
        assert stack.program_pid("api.cli worker")  # the worker waits for Redis instead of exiting
    finally:
        rpc.startProcess("redis")
    # The API's pooled connections to the old server fail once each (503, nothing stored), then it is back.
    accepted = wait_for(
        lambda: (
            (
                r := httpx.post(
                    f"{stack.api}/api/predict/jobs", json={"rows": [ROW]}, headers=stack.headers, timeout=10
                )
            ).status_code
            == 202
            and r
        ),
        30,
        "a submission accepted once Redis is back",
    )
    job_id = accepted.json()["job_id"]
    wait_for(
        lambda: (
            httpx.get(f"{stack.api}/api/jobs/{job_id}", headers=stack.headers, timeout=5).json()["status"]
            == "succeeded"
        ),
        60,
        "the job once Redis is back",
    )
    assert "Redis에 다시 연결되었습니다" in stack.output()

    # The model-swap listeners of the API and the worker reconnected: a new version is served within seconds.
    active = httpx.get(f"{stack.api}/api/models/active", headers=stack.headers, timeout=10).json()["version"]
    train_id = next(d["id"] for d in datasets if d["kind"] == "accident" and "학습" in d["name"])
    port = (stack.data / "redis" / "port").read_text().strip()
    cli_env = {
        **stack.env,
        "DATABASE_URL": f"postgresql://postgres:@/hab?host={stack.data / 'postgres'}",
        "REDIS_URL": f"redis://127.0.0.1:{port}/0",
    }
    trained = subprocess.run(
        [HAB, "train", "--dataset", str(train_id), "--activate"], env=cli_env, capture_output=True, text=True
    )
    assert trained.returncode == 0, trained.stderr
    wait_for(
        lambda: (
            httpx.get(f"{stack.api}/api/models/active", headers=stack.headers, timeout=5).json()["version"]
            == active + 1
        ),
        15,
        "the API to serve the new model (only the Redis listener can within 15 s)",
    )
    serving = f"serving model version {active + 1}"
    wait_for(
        lambda: any(line.startswith("worker") and serving in line for line in stack.output().splitlines()),
        15,
        "the worker to swap too",
    )


class Traffic:
    """Single predictions at a steady rate from a thread, each outcome recorded with its time."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.outcomes: list[tuple[float, int]] = []  # (monotonic time, status; 0 = no answer)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                try:
                    status = self.stack.predict(client)
                except httpx.HTTPError:
                    status = 0
                self.outcomes.append((time.monotonic(), status))
                self._stop.wait(0.02)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _job_rows(stack: LocalStack, job_id: int) -> list[int]:
    page = httpx.get(
        f"{stack.api}/api/predict/jobs/{job_id}/results", params={"limit": 10_000}, headers=stack.headers, timeout=30
    ).json()
    return [r["row_index"] for r in page["items"]]


def test_postgres_killed_under_load_recovers_and_loses_no_job(stack):
    jobs = [
        httpx.post(f"{stack.api}/api/predict/jobs", json={"rows": [ROW] * 2000}, headers=stack.headers, timeout=30)
        for _ in range(3)
    ]
    assert all(j.status_code == 202 for j in jobs), [j.text for j in jobs]
    with Traffic(stack) as traffic:
        wait_for(lambda: len(traffic.outcomes) >= 20, 30, "traffic before the kill")
        stack.kill("pginstall/bin/postgres", restarted_as="PostgreSQL 다시 시작됨")
        back = time.monotonic()  # PostgreSQL accepts connections again from about here
        wait_for(lambda: any(t > back + 10 and s == 200 for t, s in traffic.outcomes), 60, "answers 10 s after")
    failed = [(round(t - back, 1), s) for t, s in traffic.outcomes if s != 200]
    assert all(t <= 10 for t, _ in failed), failed  # only requests around the outage itself may fail
    late = [s for t, s in traffic.outcomes if t > back + 10]
    assert late and set(late) == {200}  # recovered by itself, without a restart
    for accepted in jobs:
        job_id = accepted.json()["job_id"]
        final = wait_for(
            lambda job_id=job_id: (
                (j := httpx.get(f"{stack.api}/api/jobs/{job_id}", headers=stack.headers, timeout=5).json())["finished"]
                and j
            ),
            120,
            f"job {job_id}",
        )
        assert final["status"] == "succeeded", final
        rows = _job_rows(stack, job_id)
        assert sorted(rows) == list(range(2000))  # none lost, none twice
    assert stack.process.poll() is None


def test_api_sigterm_under_load_finishes_what_it_accepted(stack):
    """uvicorn stops accepting, answers the requests it has, then exits; supervisord starts it again."""
    rows = {"rows": [ROW] * 5000}
    results: list[int] = []

    def batch() -> None:
        try:
            results.append(
                httpx.post(
                    f"{stack.api}/api/predict/eclo/batch", json=rows, headers=stack.headers, timeout=60
                ).status_code
            )
        except httpx.HTTPError:
            results.append(0)

    api = stack.program_pid("api.cli serve")
    port = int(stack.api.rsplit(":", 1)[1])

    def accepted() -> int:
        return sum(
            1
            for c in psutil.Process(api).net_connections(kind="tcp")
            if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED
        )

    senders = [threading.Thread(target=batch) for _ in range(4)]
    for sender in senders:
        sender.start()
    # SIGTERM while at least one batch is being answered (they take a moment each: 5,000 rows).
    wait_for(lambda: accepted() >= 1, 30, "a batch to be accepted", interval=0.005)
    in_flight = accepted()
    psutil.Process(api).terminate()
    for sender in senders:
        sender.join(timeout=90)
    assert set(results) <= {200, 0} and len(results) == 4, results  # never a 5xx or a cut-off answer
    # Requests uvicorn was answering were answered; a connection it had not read a request from yet may be
    # closed, which a client retries (no answer is cut off half-way or replaced by an error).
    assert in_flight >= 1 and results.count(200) >= 1, (results, in_flight)
    wait_for(lambda: stack.program_pid("api.cli serve") != api, 60, "the API started again")
    wait_for(lambda: httpx.get(f"{stack.api}/ready", timeout=5).status_code == 200, 120, "the new API ready")


def test_api_killed_is_restarted(stack):
    stack.kill("api.cli serve", restarted_as="API 다시 시작됨")
    wait_for(lambda: httpx.get(f"{stack.api}/ready", timeout=5).status_code == 200, 120, "the new API")
    with httpx.Client(timeout=10) as client:
        assert stack.predict(client) == 200


def test_worker_killed_mid_job_resumes_and_stores_each_row_once(stack):
    data = next(d for d in generate_demo_datasets(seed=11, scale=60_000 / 39_609) if d.key == "train")
    uploaded = httpx.post(
        f"{stack.api}/api/datasets/upload/csv",
        params={"name": "kill-test", "filename": "kill.csv"},
        content=data.csv_bytes,
        headers={**stack.headers, "Content-Type": "text/csv"},
        timeout=120,
    )
    assert uploaded.status_code == 201, uploaded.text
    dataset = uploaded.json()
    job_id = httpx.post(
        f"{stack.api}/api/predict/jobs", json={"dataset_id": dataset["id"]}, headers=stack.headers, timeout=10
    ).json()["job_id"]

    def job() -> dict:
        return httpx.get(f"{stack.api}/api/jobs/{job_id}", headers=stack.headers, timeout=5).json()

    mid = wait_for(lambda: (j := job())["status"] == "running" and 0 < j["progress"] < j["total"] and j, 120, "a run")
    killed_at = time.monotonic()
    stack.kill("api.cli worker", restarted_as="작업자(worker) 다시 시작됨")
    after_kill = job()
    assert after_kill["status"] == "running" and after_kill["progress"] < after_kill["total"]  # it was interrupted
    resumed = wait_for(lambda: (j := job())["attempts"] > mid["attempts"] and j, 60, "a second attempt")
    resumed_after = time.monotonic() - killed_at
    final = wait_for(lambda: (j := job())["status"] in ("succeeded", "failed") and j, 180, "the job's end")
    assert final["status"] == "succeeded", final
    rows = httpx.get(
        f"{stack.api}/api/predict/jobs/{job_id}/results", params={"limit": 10_000}, headers=stack.headers, timeout=30
    ).json()
    assert rows["total"] == final["summary"]["count"]
    assert rows["total"] + final["summary"]["error_count"] == dataset["rows"]
    indexes = []
    for offset in range(0, rows["total"], 10_000):
        page = httpx.get(
            f"{stack.api}/api/predict/jobs/{job_id}/results",
            params={"limit": 10_000, "offset": offset},
            headers=stack.headers,
            timeout=30,
        ).json()
        indexes += [r["row_index"] for r in page["items"]]
    assert len(indexes) == len(set(indexes)) == rows["total"]  # no row lost, none twice
    print(f"resumed {resumed_after:.1f} s after the kill (attempt {resumed['attempts']})")


def test_a_chat_job_leaves_no_recoverable_key_in_the_data_folder(stack):
    """The canary key goes through a background chat job (sealed in Redis for the worker); afterwards nothing
    in the data folder holds it in clear or opens with the old public default secret."""
    canary = "sk-ant-api03-canary-" + "k" * 40
    env_secret = read_env_file(stack.folder / "env" / ".env")["HAB_SECRET_KEY"]
    assert len(env_secret) >= 32 and env_secret != "dev-secret-change-me"
    assert (stack.folder / "env" / ".env").stat().st_mode & 0o077 == 0
    datasets = httpx.get(f"{stack.api}/api/datasets", headers=stack.headers, timeout=10).json()["items"]
    stack.anthropic.reply("백그라운드 답변입니다.")
    job = httpx.post(
        f"{stack.api}/api/chat/jobs",
        json={"dataset_ids": [datasets[0]["id"]], "message": "사고 건수는?"},
        headers={**stack.headers, "X-Anthropic-API-Key": canary},
        timeout=10,
    )
    assert job.status_code == 202, job.text
    job_id = job.json()["job_id"]
    final = wait_for(
        lambda: (
            (j := httpx.get(f"{stack.api}/api/jobs/{job_id}", headers=stack.headers, timeout=5).json())["status"]
            in ("succeeded", "failed")
            and j
        ),
        60,
        "the chat job",
    )
    assert final["status"] == "succeeded", final
    assert any(call.api_key == canary for call in stack.anthropic.calls)  # the key really travelled
    assert scan_for_secret(stack.data, canary) == []
    assert stack.data.stat().st_mode & 0o066 == 0  # nobody else may read or write the data folder


def test_sigkill_of_hab_run_leaves_nothing_and_a_second_run_takes_over(stack):
    stack.process.kill()
    stack.process.wait(timeout=10)
    wait_for(lambda: not _ours(stack.data), 90, "every process of the killed stack to stop")

    seen = stack.output().count("준비 완료")
    second = _start(stack.folder, stack.env, stack.log)
    stack.process = second  # the fixture stops it
    wait_for(lambda: second.poll() is None and stack.output().count("준비 완료") > seen, 300, "the second run")
    with httpx.Client(timeout=10) as client:
        assert stack.predict(client) == 200
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=120) == 0
    assert not _ours(stack.data)
