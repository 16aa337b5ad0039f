"""`hab score`'s HTTP client against a fake API (httpx.MockTransport): the flow and every error message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from api.cli import main, score_flow
from api.cli.score_client import ScoreError, ScoreInterrupted, default_connection
from api.cli.score_flow import ScoreOptions, run_score

RESULTS = b'\xef\xbb\xbf"row_index","ID","eclo","interpretation"\n0,"A_1",3.5,"x"\n1,"A_2",4.5,"y"\n'


class FakeApi:
    """Just enough of the hab API; `statuses` is what successive GET /api/jobs/1 answer."""

    def __init__(self, *, statuses: list[str] | None = None, submit_error: tuple[int, dict] | None = None) -> None:
        self.statuses = statuses or ["queued", "running", "succeeded"]
        self.submit_error = submit_error
        self.calls: list[tuple[str, str]] = []
        self.polls = 0
        self.interrupt_on_poll: int | None = None
        self.legacy_upload = False  # a server older than the raw-body upload route

    def error(self, status: int, message: str, code: str = "x", detail: dict | None = None) -> httpx.Response:
        return httpx.Response(status, json={"error": {"code": code, "message": message, "detail": detail or {}}})

    def job(self, status: str) -> dict[str, Any]:
        done = status == "succeeded"
        return {
            "id": 1,
            "kind": "score",
            "status": status,
            "finished": status in ("succeeded", "failed", "cancelled"),
            "progress": 2 if done else 1 if status == "running" else 0,
            "total": 2,
            "error": "활성화된 ECLO 모델이 없습니다." if status == "failed" else None,
            "params": {"dataset_id": 7, "model_version": 3},
            "duration_seconds": 0.4,
            "summary": {
                "count": 2,
                "mean_eclo": 4.0,
                "max_eclo": 4.5,
                "bands": {"경미": 1, "보통": 1},
                "error_count": 1,
                "errors": [{"row_index": 2, "message": "시군구 값 'X'은(는) 올바르지 않습니다. 가능한 값: …"}],
            }
            if done
            else None,
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((request.method, request.url.path))
        if request.headers.get("Authorization") != "Bearer good":
            return self.error(401, "인증이 필요합니다.", "unauthorized")
        path = request.url.path
        if path == "/api/me":
            return httpx.Response(200, json={"id": 1, "name": "me", "role": "admin"})
        if path == "/api/datasets/upload/csv" and not self.legacy_upload:
            assert request.headers["content-type"] == "text/csv" and request.url.params["filename"] == "in.csv"
            assert request.read() == b"ID,a\nA_1,1\n" and request.headers["content-length"] == "11"
            return httpx.Response(201, json={"id": 7, "name": "in", "kind": "lights", "rows": 2})
        if path == "/api/datasets/upload":
            assert b'filename="in.csv"' in request.read()
            return httpx.Response(201, json={"id": 7, "name": "in", "kind": "lights", "rows": 2})
        if path == "/api/datasets/7" and request.method == "DELETE":
            return httpx.Response(204)
        if path == "/api/predict/jobs":
            assert json.loads(request.content) == {"dataset_id": 7}
            if self.submit_error:
                status, body = self.submit_error
                return httpx.Response(status, json=body)
            return httpx.Response(202, json={"job_id": 1, "status": "queued"})
        if path == "/api/jobs/1":
            self.polls += 1
            if self.interrupt_on_poll == self.polls:
                raise KeyboardInterrupt
            return httpx.Response(200, json=self.job(self.statuses[min(self.polls - 1, len(self.statuses) - 1)]))
        if path == "/api/jobs/1/cancel":
            return httpx.Response(200, json=self.job("cancelled"))
        if path == "/api/predict/jobs/1/results":
            assert request.url.params["format"] == "csv"
            return httpx.Response(200, content=RESULTS, headers={"content-type": "text/csv"})
        return self.error(404, "없음", "not_found")


def _options(tmp_path: Path, **kwargs: Any) -> tuple[ScoreOptions, list[str]]:
    source = tmp_path / "in.csv"
    source.write_text("ID,a\nA_1,1\n", encoding="utf-8")
    lines: list[str] = []
    defaults: dict[str, Any] = {
        "server": "http://hab.test",
        "token": "good",
        "input_csv": source,
        "poll_interval": 0.001,
        "echo": lines.append,
        "err": lines.append,
    }
    return ScoreOptions(**{**defaults, **kwargs}), lines


def test_file_is_uploaded_scored_and_downloaded(tmp_path: Path) -> None:
    api = FakeApi()
    options, lines = _options(tmp_path)
    output = run_score(options, transport=httpx.MockTransport(api))
    assert output == tmp_path / "in_eclo.csv"
    assert output.read_bytes() == RESULTS
    assert not list(tmp_path.glob("*.part"))
    text = "\n".join(lines)
    assert "예측 완료: 작업 #1, 모델 버전 3" in text and "평균 ECLO: 4.0000" in text and "경미 1개" in text
    assert "오류 행: 1개" in text and "row_index 2: 시군구 값 'X'은(는) 올바르지 않습니다." in text
    assert "가능한 값" not in text
    assert ("POST", "/api/datasets/upload/csv") in api.calls and ("GET", "/api/predict/jobs/1/results") in api.calls


def test_stored_dataset_needs_no_upload(tmp_path: Path) -> None:
    api = FakeApi()
    options, _ = _options(tmp_path, input_csv=None, dataset_id=7, output=tmp_path / "o.csv")
    run_score(options, transport=httpx.MockTransport(api))
    assert (tmp_path / "o.csv").read_bytes() == RESULTS
    assert not any(path.startswith("/api/datasets/upload") for _, path in api.calls)


def test_upload_falls_back_to_multipart_on_an_older_server(tmp_path: Path) -> None:
    api = FakeApi()
    api.legacy_upload = True
    options, _ = _options(tmp_path)
    run_score(options, transport=httpx.MockTransport(api))
    assert api.calls[1:3] == [("POST", "/api/datasets/upload/csv"), ("POST", "/api/datasets/upload")]
    assert (tmp_path / "in_eclo.csv").read_bytes() == RESULTS


@pytest.mark.parametrize(("token", "expected"), [("wrong", "토큰이 올바르지 않습니다"), ("", "토큰이 없습니다")])
def test_bad_or_missing_token(tmp_path: Path, token: str, expected: str) -> None:
    api = FakeApi()
    options, _ = _options(tmp_path, token=token)
    with pytest.raises(ScoreError, match=expected) as caught:
        run_score(options, transport=httpx.MockTransport(api))
    assert "HAB_API_TOKEN" in caught.value.message
    assert api.calls == [("GET", "/api/me")]  # nothing was uploaded


def test_server_down(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    options, _ = _options(tmp_path, server="127.0.0.1:9")
    with pytest.raises(ScoreError, match=r"서버에 연결할 수 없습니다: http://127\.0\.0\.1:9"):
        run_score(options, transport=httpx.MockTransport(refuse))


def test_not_accident_shaped_is_refused_and_the_upload_removed(tmp_path: Path) -> None:
    body = {
        "error": {
            "code": "invalid_input",
            "message": "ECLO 예측은 교통사고 형식(사고일시, 기상상태 등) 데이터셋에만 할 수 있습니다.",
            "detail": {
                "dataset_id": 7,
                "kind": "lights",
                "kind_label": "보안등",
                "valid_kinds": ["accident", "accident_test"],
            },
        }
    }
    api = FakeApi(submit_error=(422, body))
    options, _ = _options(tmp_path)
    with pytest.raises(ScoreError) as caught:
        run_score(options, transport=httpx.MockTransport(api))
    assert caught.value.message.startswith("교통사고 형식 데이터가 아닙니다 (종류: lights, 보안등).")
    assert "사고일시" in caught.value.message
    assert ("DELETE", "/api/datasets/7") in api.calls


def test_other_upload_errors_show_the_server_message(tmp_path: Path) -> None:
    api = FakeApi(submit_error=(413, {"error": {"code": "payload_too_large", "message": "파일이 너무 큽니다."}}))
    options, _ = _options(tmp_path)
    with pytest.raises(ScoreError, match=r"예측 작업 시작 실패 \(HTTP 413\): 파일이 너무 큽니다\."):
        run_score(options, transport=httpx.MockTransport(api))
    assert ("DELETE", "/api/datasets/7") not in api.calls


def test_failed_job_reports_its_error(tmp_path: Path) -> None:
    options, _ = _options(tmp_path)
    with pytest.raises(ScoreError, match="실패했습니다: 활성화된 ECLO 모델이 없습니다"):
        run_score(options, transport=httpx.MockTransport(FakeApi(statuses=["running", "failed"])))
    assert not (tmp_path / "in_eclo.csv").exists()


def test_ctrl_c_cancels_the_job(tmp_path: Path) -> None:
    api = FakeApi(statuses=["running"])
    api.interrupt_on_poll = 3
    options, _ = _options(tmp_path)
    with pytest.raises(ScoreInterrupted, match="작업 #1 취소를 요청했습니다") as caught:
        run_score(options, transport=httpx.MockTransport(api))
    assert caught.value.exit_code == 130
    assert api.calls[-1] == ("POST", "/api/jobs/1/cancel")


def test_overall_timeout_cancels_the_job(tmp_path: Path) -> None:
    api = FakeApi(statuses=["running"])
    options, _ = _options(tmp_path, timeout=0.05, poll_interval=0.01)
    with pytest.raises(ScoreError, match=r"시간 제한\(0\.05초\)"):
        run_score(options, transport=httpx.MockTransport(api))
    assert api.calls[-1] == ("POST", "/api/jobs/1/cancel")


def test_polling_rides_out_a_short_outage(tmp_path: Path) -> None:
    api = FakeApi()
    flaky = {"left": 2}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/jobs/1" and api.polls == 1 and flaky["left"]:
            flaky["left"] -= 1
            raise httpx.ConnectError("refused", request=request)
        return api(request)

    options, _ = _options(tmp_path)
    run_score(options, transport=httpx.MockTransport(handler))
    assert (tmp_path / "in_eclo.csv").exists()


def test_defaults_come_from_the_environment_then_the_env_file(tmp_path: Path, monkeypatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("HAB_API_URL=http://from-file:1\nHAB_API_TOKEN='hab_file'\n", encoding="utf-8")
    monkeypatch.setenv("HAB_ENV_FILE", str(env_file))
    monkeypatch.delenv("HAB_API_URL", raising=False)
    monkeypatch.delenv("HAB_API_TOKEN", raising=False)
    assert default_connection() == ("http://from-file:1", "hab_file")
    monkeypatch.setenv("HAB_API_TOKEN", "hab_env")
    assert default_connection() == ("http://from-file:1", "hab_env")
    monkeypatch.setenv("HAB_ENV_FILE", str(tmp_path / "missing"))
    monkeypatch.delenv("HAB_API_TOKEN")
    assert default_connection() == ("http://127.0.0.1:8000", "")


def test_cli_maps_errors_and_ctrl_c_to_exit_codes(tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "in.csv"
    source.write_text("a\n1\n", encoding="utf-8")
    monkeypatch.setenv("HAB_ENV_FILE", str(tmp_path / "missing"))
    seen: list[ScoreOptions] = []

    def interrupted(options: ScoreOptions) -> None:
        seen.append(options)
        raise ScoreInterrupted("중단했습니다. 작업 #1 취소를 요청했습니다.")

    monkeypatch.setattr(score_flow, "run_score", interrupted)
    result = CliRunner().invoke(main, ["score", str(source), "--token", "t", "--timeout", "0"])
    assert result.exit_code == 130 and "취소를 요청했습니다" in result.output
    assert seen[0].server == "http://127.0.0.1:8000" and seen[0].token == "t" and seen[0].timeout is None

    def failing(options: ScoreOptions) -> None:
        raise ScoreError("서버에 연결할 수 없습니다: http://x")

    monkeypatch.setattr(score_flow, "run_score", failing)
    result = CliRunner().invoke(main, ["score", str(source)])
    assert result.exit_code == 1 and "Error: 서버에 연결할 수 없습니다" in result.output

    neither = CliRunner().invoke(main, ["score"])
    assert neither.exit_code == 2 and "하나만 지정" in neither.output
