"""`hab score` against real `hab serve` + `hab worker` processes on embedded services (fresh-laptop path)."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api.cli.score_client import ScoreError
from api.cli.score_flow import ScoreOptions, run_score
from api.demo.generate import generate_demo_datasets
from api.local.embedded import EmbeddedPostgres, EmbeddedRedis
from tests.e2e.conftest import shared_temp_dir
from tests.e2e.proxy import Proxy, Rule
from tests.e2e.test_processes import HAB, _free_port, _fresh_laptop_env, _postgres_running, _stop, _wait_ready
from tests.waiting import wait_until

# The module's first test pays for the stack (embedded services, migrations, a trained model): 160 s
# measured on a busy 2-core machine, so the suite's 300 s default is too tight here.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


@dataclass(frozen=True)
class Stack:
    url: str
    token: str
    env: dict[str, str]
    root: Path
    worker: subprocess.Popen


def _hab(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HAB, *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with shared_temp_dir("hab-e2e-score-") as root:
        yield from _stack(root)


def _stack(root: Path) -> Iterator[Stack]:
    port = _free_port()
    # Small chunks so that the job reports progress several times.
    env = _fresh_laptop_env(root, HAB_SCORE_CHUNK_ROWS="100", HAB_LOG_LEVEL="WARNING")
    logs = root / "logs"
    logs.mkdir()
    processes: list[subprocess.Popen] = []
    try:
        with (logs / "serve.log").open("w") as log:
            serve = subprocess.Popen([HAB, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
        processes.append(serve)
        url = f"http://127.0.0.1:{port}"
        _wait_ready(f"{url}/ready", serve)
        # serve owns the embedded servers; these CLI processes attach to them.
        migrated = _hab(env, "migrate")
        assert migrated.returncode == 0, migrated.stderr
        created = _hab(env, "users", "create", "채점자", "--admin")
        assert created.returncode == 0, created.stderr
        token = created.stdout.strip().splitlines()[-1]
        train = next(d for d in generate_demo_datasets(scale=0.1) if d.key == "train")
        (root / "train.csv").write_bytes(train.csv_bytes)
        trained = _hab(env, "train", "--csv", str(root / "train.csv"), "--activate")
        assert trained.returncode == 0, trained.stderr
        with (logs / "worker.log").open("w") as log:
            worker = subprocess.Popen([HAB, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT)
        processes.append(worker)
        yield Stack(url=url, token=token, env=env, root=root, worker=worker)
    finally:
        for process in reversed(processes):  # the worker first, then serve (which stops the embedded servers)
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)  # in case a test paused it and then failed
                _stop(process)
        data = root / "data"
        if _postgres_running(data):  # serve died early: never leave a server behind
            EmbeddedPostgres(data / "postgres").stop()
        EmbeddedRedis(data / "redis").stop()
        assert not _postgres_running(data)


def _demo(key: str, scale: float) -> bytes:
    return next(d for d in generate_demo_datasets(scale=scale) if d.key == key).csv_bytes


def _read_csv(data: bytes, encoding: str = "utf-8-sig") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode(encoding))))


def _score(stack: Stack, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    return _hab(stack.env, "score", *args, "--server", stack.url, "--token", stack.token if token is None else token)


def test_score_a_csv_file(stack: Stack) -> None:
    source = stack.root / "사고_test.csv"
    source.write_bytes(_demo("test", 0.05))
    out = stack.root / "out.csv"
    done = _score(stack, str(source), "-o", str(out), "--poll-interval", "0.2")
    assert done.returncode == 0, done.stderr
    assert "예측 완료" in done.stdout and "평균 ECLO" in done.stdout and "위험도 구간" in done.stdout
    assert str(out) in done.stdout and "업로드" in done.stderr and "작업 #" in done.stderr
    errors = int(re.search(r"오류 행: (\d+)개", done.stdout).group(1))  # 시군구 values the model never saw

    inputs = _read_csv(source.read_bytes())
    rows = _read_csv(out.read_bytes())
    assert list(rows[0]) == ["row_index", "ID", "eclo", "interpretation"]
    assert len(inputs) == 548 and len(rows) + errors == len(inputs) and errors <= 5
    by_index = {int(r["row_index"]): r for r in rows}
    assert all(inputs[i]["ID"] == r["ID"] for i, r in by_index.items())  # each result row names its input row
    assert all(float(r["eclo"]) >= 0 and r["interpretation"] for r in rows)
    assert f"예측한 행: {len(rows):,}개" in done.stdout
    assert not list(stack.root.glob("*.part"))


def test_keep_columns_keeps_the_input_and_neutralises_formulas(stack: Stack, tmp_path: Path) -> None:
    source = tmp_path / "with_notes.csv"
    rows = _read_csv(_demo("test", 0.01))[:20]
    rows[0]["ID"], rows[1]["ID"] = "=1+2", "@SUM(A1)"
    with source.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "out.csv"
    done = _score(stack, str(source), "-o", str(out), "--keep-columns", "--poll-interval", "0.2")
    assert done.returncode == 0, done.stderr
    scored = _read_csv(out.read_bytes())
    assert list(scored[0]) == ["row_index", *rows[0], "eclo", "interpretation"]
    by_index = {int(r["row_index"]): r for r in scored}
    assert by_index[0]["ID"] == "'=1+2" and by_index[1]["ID"] == "'@SUM(A1)"
    text_columns = ("ID", "요일", "기상상태", "시군구", "도로형태", "노면상태", "사고유형")  # kept as sent
    for index, row in by_index.items():
        if index > 1:
            assert all(row[name] == rows[index][name] for name in text_columns), (row, rows[index])
        assert row["사고일시"].startswith(rows[index]["사고일시"][:10])  # stored typed: the same moment


def test_score_a_stored_dataset(stack: Stack, tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {stack.token}"}
    uploaded = httpx.post(
        f"{stack.url}/api/datasets/upload",
        headers=headers,
        files={"file": ("daegu.csv", _demo("train", 0.02), "text/csv")},
        data={"name": "대구 사고 (ECLO 있음)"},
        timeout=60,
    )
    assert uploaded.status_code == 201, uploaded.text
    dataset = uploaded.json()
    assert dataset["kind"] == "accident"

    out = tmp_path / "stored.csv"
    done = _score(stack, "--dataset", str(dataset["id"]), "-o", str(out))
    assert done.returncode == 0, done.stderr
    errors = int(re.search(r"오류 행: (\d+)개", done.stdout).group(1))
    rows = _read_csv(out.read_bytes())
    assert len(rows) + errors == dataset["rows"] == 792 and errors <= 10
    assert all(r["ID"].startswith("ACCIDENT_") for r in rows)

    missing = _score(stack, "--dataset", "99999", "-o", str(tmp_path / "none.csv"))
    assert missing.returncode != 0 and "99999" in missing.stderr and "Traceback" not in missing.stderr


def test_score_errors_are_clear(stack: Stack, tmp_path: Path) -> None:
    source = tmp_path / "small.csv"
    source.write_bytes(_demo("test", 0.02))

    bad_token = _score(stack, str(source), "-o", str(tmp_path / "a.csv"), token="hab_not-a-real-token")
    assert bad_token.returncode == 1
    assert "토큰" in bad_token.stderr and "401" in bad_token.stderr and "Traceback" not in bad_token.stderr

    down_url = f"http://127.0.0.1:{_free_port()}"
    down = _hab(stack.env, "score", str(source), "--server", down_url, "--token", stack.token)
    assert down.returncode == 1
    assert "서버에 연결할 수 없습니다" in down.stderr and down_url in down.stderr and "Traceback" not in down.stderr

    lights = tmp_path / "lights.csv"
    lights.write_bytes(_demo("lights", 0.02))
    refused = _score(stack, str(lights), "-o", str(tmp_path / "b.csv"))
    assert refused.returncode == 1, refused.stderr
    assert "교통사고 형식 데이터가 아닙니다" in refused.stderr and "lights" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (tmp_path / "a.csv").exists() and not (tmp_path / "b.csv").exists()
    # The refused upload was removed again rather than left behind as a stray dataset.
    listed = httpx.get(
        f"{stack.url}/api/datasets", headers={"Authorization": f"Bearer {stack.token}"}, params={"kind": "lights"}
    ).json()
    assert listed["total"] == 0

    # Defaults come from HAB_ENV_FILE (env/.env) when --server/--token are not given.
    env_file = Path(stack.env["HAB_ENV_FILE"])
    env_file.parent.mkdir(parents=True, exist_ok=True)
    env_file.write_text(f"HAB_API_URL={stack.url}\nHAB_API_TOKEN=hab_wrong\n", encoding="utf-8")
    try:
        from_file = _hab(stack.env, "score", str(source))
    finally:
        env_file.unlink()
    assert from_file.returncode == 1 and "토큰이 올바르지 않습니다" in from_file.stderr


def test_ctrl_c_cancels_the_job(stack: Stack, tmp_path: Path) -> None:
    """Ctrl-C while waiting: the job is cancelled on the server and the command exits with 130."""
    source = tmp_path / "wait.csv"
    source.write_bytes(_demo("test", 0.02))
    out = tmp_path / "never.csv"
    headers = {"Authorization": f"Bearer {stack.token}"}
    stack.worker.send_signal(signal.SIGSTOP)  # the job stays queued however fast the worker is
    try:
        command = [HAB, "score", str(source), "-o", str(out), "--server", stack.url, "--token", stack.token]
        process = subprocess.Popen(command, env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            started = ""
            deadline = time.monotonic() + 30
            while "예측 작업 #" not in started and time.monotonic() < deadline and process.poll() is None:
                started += process.stderr.readline() if process.stderr else ""
            job_id = int(re.search(r"예측 작업 #(\d+)", started).group(1))
            # The command prints that line once the job exists; from then on Ctrl-C cancels it.
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    finally:
        stack.worker.send_signal(signal.SIGCONT)
    assert process.returncode == 130, stderr
    assert f"작업 #{job_id} 취소를 요청했습니다" in stderr and "Traceback" not in stderr
    job = httpx.get(f"{stack.url}/api/jobs/{job_id}", headers=headers, timeout=10).json()
    assert job["status"] == "cancelled" and job["cancel_requested"] is True
    assert not out.exists()


# ---- the client's rarer paths against the real server (tests/unit/test_score_client.py fakes the API) ----


def _options(stack: Stack, tmp_path: Path, **kwargs) -> tuple[ScoreOptions, list[str]]:
    lines: list[str] = []
    defaults = {"server": stack.url, "token": stack.token, "poll_interval": 0.1, "echo": lines.append}
    return ScoreOptions(**{**defaults, "err": lines.append, **kwargs}), lines


def _api(stack: Stack, method: str, path: str, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {stack.token}"}
    return httpx.request(method, f"{stack.url}{path}", headers=headers, timeout=60, **kwargs)


def _totals(stack: Stack) -> tuple[int, int]:
    """(datasets, jobs) the user can see: what a refused command must leave unchanged."""
    return _api(stack, "GET", "/api/datasets").json()["total"], _api(stack, "GET", "/api/jobs").json()["total"]


def _job_id(lines: list[str]) -> int:
    return int(re.search(r"예측 작업 #(\d+) 시작", "\n".join(lines)).group(1))


@contextlib.contextmanager
def _worker_paused(stack: Stack) -> Iterator[None]:
    """Jobs stay queued (however fast the worker is) until the block ends."""
    stack.worker.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        stack.worker.send_signal(signal.SIGCONT)


def test_upload_falls_back_to_multipart_on_an_older_server(stack: Stack, tmp_path: Path) -> None:
    source = tmp_path / "older.csv"
    source.write_bytes(_demo("test", 0.01))
    # An older server has no raw-body route: the proxy sends that request where the real server has no route.
    old_server = [Rule("POST", "/api/datasets/upload/csv", "forward:/api/datasets/upload/csv/no-such-route")]
    with Proxy(stack.url, rules=old_server) as proxy:
        options, lines = _options(stack, tmp_path, server=proxy.url, input_csv=source)
        output = run_score(options)
    uploads = [(method, path, status) for method, path, status in proxy.seen if path.startswith("/api/datasets")]
    assert uploads == [("POST", "/api/datasets/upload/csv", 404), ("POST", "/api/datasets/upload", 201)]
    rows = _read_csv(output.read_bytes())
    errors = int(re.search(r"오류 행: (\d+)개", "\n".join(lines)).group(1))
    assert len(rows) + errors == len(_read_csv(source.read_bytes())) and rows
    job = _api(stack, "GET", f"/api/jobs/{_job_id(lines)}").json()
    dataset = _api(stack, "GET", f"/api/datasets/{job['params']['dataset_id']}").json()
    assert dataset["size_bytes"] == source.stat().st_size and dataset["kind"] == "accident_test"
    assert dataset["name"].startswith("older")


def test_other_upload_errors_show_the_server_message(stack: Stack, tmp_path: Path) -> None:
    source = tmp_path / "header_only.csv"
    source.write_text("ID,사고일시,요일,기상상태,시군구,도로형태,노면상태,사고유형\n", encoding="utf-8")
    direct = _api(stack, "POST", "/api/datasets/upload/csv", params={"filename": "x.csv"}, content=source.read_bytes())
    assert direct.status_code == 422
    before = _totals(stack)
    options, _ = _options(stack, tmp_path, input_csv=source)
    with pytest.raises(ScoreError) as caught:
        run_score(options)
    assert caught.value.message == f"CSV 업로드 실패 (HTTP 422): {direct.json()['error']['message']}"
    assert _totals(stack) == before and not (tmp_path / "header_only_eclo.csv").exists()


def test_failed_job_reports_its_error(stack: Stack, tmp_path: Path) -> None:
    uploaded = _api(
        stack, "POST", "/api/datasets/upload", files={"file": ("gone.csv", _demo("test", 0.01), "text/csv")}
    )
    assert uploaded.status_code == 201, uploaded.text
    dataset_id = uploaded.json()["id"]
    out = tmp_path / "gone.csv"
    options, lines = _options(stack, tmp_path, dataset_id=dataset_id, output=out)
    started = threading.Event()

    def err(line: str) -> None:
        lines.append(line)
        if "예측 작업 #" in line:
            started.set()

    with _worker_paused(stack):
        command, outcome = _in_thread(run_score, dataclasses.replace(options, err=err))
        assert started.wait(30), lines
        # The job is queued; its dataset goes away before a worker takes it: the run fails on its own.
        assert _api(stack, "DELETE", f"/api/datasets/{dataset_id}").status_code == 204
    command.join(60)
    assert not command.is_alive()
    job = _api(stack, "GET", f"/api/jobs/{_job_id(lines)}").json()
    assert job["status"] == "failed" and job["error"], job
    assert outcome["error"].message == f"예측 작업 #{job['id']}이(가) 실패했습니다: {job['error']}"
    assert "삭제" in job["error"] and not out.exists()


def test_overall_timeout_cancels_the_job(stack: Stack, tmp_path: Path) -> None:
    source = tmp_path / "slow.csv"
    source.write_bytes(_demo("test", 0.01))
    options, lines = _options(stack, tmp_path, input_csv=source, timeout=1.5)
    with _worker_paused(stack), pytest.raises(ScoreError, match=r"시간 제한\(1\.5초\)을 넘었습니다") as caught:
        run_score(options)
    job_id = _job_id(lines)
    assert f"작업 #{job_id} 취소를 요청했습니다" in caught.value.message
    job = _api(stack, "GET", f"/api/jobs/{job_id}").json()
    assert job["status"] == "cancelled" and job["cancel_requested"] is True and job["progress"] == 0
    assert not (tmp_path / "slow_eclo.csv").exists()


def test_polling_rides_out_a_short_outage(stack: Stack, tmp_path: Path) -> None:
    source = tmp_path / "outage.csv"
    source.write_bytes(_demo("test", 0.01))
    # While the server restarts, a proxy in front of it answers 502, or the connection just closes. The
    # command's first status read passes (the outage begins while it polls).
    jobs = r"/api/jobs/\d+"
    bad_gateway, dropped = Rule("GET", jobs, "502"), Rule("GET", jobs, "drop")
    with Proxy(stack.url, rules=[Rule("GET", jobs, "pass"), bad_gateway, dropped]) as proxy:
        options, lines = _options(stack, tmp_path, server=proxy.url, input_csv=source)
        with _worker_paused(stack):  # the job waits (and the command polls) until the outage is over
            command, outcome = _in_thread(run_score, options)
            wait_until(lambda: dropped.used == 1 or not command.is_alive(), seconds=60, what="the outage")
        command.join(60)
    assert not command.is_alive() and "error" not in outcome, outcome
    statuses = [status for method, path, status in proxy.seen if re.fullmatch(jobs, path)]
    assert statuses[:3] == [200, 502, "drop"] and statuses[3:] and set(statuses[3:]) == {200}
    rows = _read_csv(outcome["result"].read_bytes())
    assert rows and _api(stack, "GET", f"/api/jobs/{_job_id(lines)}").json()["status"] == "succeeded"


def _in_thread(function, *args) -> tuple[threading.Thread, dict]:
    """Run `function(*args)` in a thread; the dict gets its "result" or its ScoreError as "error"."""
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["result"] = function(*args)
        except ScoreError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="hab-score")
    thread.start()
    return thread, outcome
