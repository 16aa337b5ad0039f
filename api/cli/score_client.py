"""`hab score`: batch ECLO scoring of a CSV file (or a stored dataset) through the HTTP API.

A thin client like the frontend's: it talks to a running `hab serve` (plus a `hab worker`) over HTTP
only and never touches the database or the services itself. Flow: check the token (GET /api/me) →
upload the CSV (POST /api/datasets/upload) → start a scoring job (POST /api/predict/jobs) → poll
GET /api/jobs/{id} with a progress bar → download GET /api/predict/jobs/{id}/results?format=csv.
Every failure becomes a ScoreError with a Korean message fit to show people (no traceback).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

DEFAULT_SERVER = "http://127.0.0.1:8000"
# How long polling tolerates an unreachable / restarting server before giving up.
POLL_OUTAGE_SECONDS = 30.0
_RETRYABLE_STATUS = frozenset({502, 503, 504})
TOKEN_HINT = "--token 옵션이나 HAB_API_TOKEN(환경 변수 또는 env/.env)을 확인해 주세요."


class ScoreError(Exception):
    """A failure with a Korean message fit to show people."""

    exit_code = 1

    def __init__(
        self, message: str, *, status: int = 0, code: str = "error", detail: dict[str, Any] | None = None
    ) -> None:
        self.message = message
        self.status = status
        self.code = code
        self.detail = detail or {}
        super().__init__(message)


class ScoreInterrupted(ScoreError):
    """Ctrl-C: the job (if any) was asked to cancel; the command exits with 130."""

    exit_code = 130


def normalise_server(url: str) -> str:
    url = url.strip().rstrip("/")
    return url if "://" in url else f"http://{url}"


def default_connection() -> tuple[str, str]:
    """(server URL, token): environment variables first, then env/.env (or HAB_ENV_FILE), then the default."""
    from api.local.envfile import read_env_file
    from api.settings import env_file_path

    values = read_env_file(env_file_path())
    server = os.environ.get("HAB_API_URL") or values.get("HAB_API_URL") or DEFAULT_SERVER
    token = os.environ.get("HAB_API_TOKEN") or values.get("HAB_API_TOKEN") or ""
    return server, token


def not_accident_message(detail: dict[str, Any], server_message: str) -> str:
    kind = str(detail.get("kind", "?"))
    label = detail.get("kind_label")  # the server names its kinds (GET /api/labels)
    shown = f"{kind}, {label}" if label else kind
    return f"교통사고 형식 데이터가 아닙니다 (종류: {shown}). {server_message}"


class ScoreClient:
    """The few API calls `hab score` needs; errors come out as ScoreError."""

    def __init__(
        self,
        server: str,
        token: str,
        *,
        timeout: float = 30.0,
        transfer_timeout: float = 600.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.server = normalise_server(server)
        self.token = token
        self.transfer_timeout = transfer_timeout
        self._http = httpx.Client(
            base_url=self.server,
            headers={"Authorization": f"Bearer {token}"} if token else {},
            timeout=httpx.Timeout(timeout, connect=5.0),
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ScoreClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ---- plumbing ------------------------------------------------------------------------------------

    def _unreachable(self) -> ScoreError:
        return ScoreError(
            f"서버에 연결할 수 없습니다: {self.server} — 서버(hab serve 또는 make run)가 실행 중인지, "
            "--server 주소(또는 HAB_API_URL)가 맞는지 확인해 주세요.",
            code="unreachable",
        )

    def _transport_error(self, exc: httpx.TransportError) -> ScoreError:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.UnsupportedProtocol):
            return self._unreachable()
        if isinstance(exc, httpx.TimeoutException):
            return ScoreError(f"서버 응답이 너무 늦습니다: {self.server}. 잠시 후 다시 시도해 주세요.", code="timeout")
        return ScoreError(
            f"서버와 통신하는 중 연결이 끊겼습니다: {self.server} ({type(exc).__name__})", code="transport"
        )

    def _api_error(self, response: httpx.Response, action: str) -> ScoreError:
        status = response.status_code
        try:
            error = response.json()["error"]
            message, code, detail = str(error["message"]), str(error.get("code", "error")), error.get("detail") or {}
        except (ValueError, KeyError, TypeError):
            message, code, detail = f"서버가 HTTP {status} 로 응답했습니다.", "http_error", {}
            if status == 404:
                message += " --server 주소가 hab API 서버인지 확인해 주세요."
        if status == 401:
            if not self.token:
                return ScoreError(f"API 토큰이 없습니다. {TOKEN_HINT}", status=status, code="unauthorized")
            return ScoreError(
                f"API 토큰이 올바르지 않습니다 (HTTP 401). {TOKEN_HINT}", status=status, code="unauthorized"
            )
        return ScoreError(f"{action} 실패 (HTTP {status}): {message}", status=status, code=code, detail=detail)

    def _request(self, method: str, path: str, action: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from None
        if response.status_code >= 400:
            raise self._api_error(response, action)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ScoreError(
                f"서버 응답을 이해할 수 없습니다 ({path}). --server 주소가 hab API 서버인지 확인해 주세요."
            ) from None

    # ---- the API calls ---------------------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        return self._request("GET", "/api/me", "사용자 확인")

    def upload(self, path: Path, *, visibility: str = "private", name: str | None = None) -> dict[str, Any]:
        """POST the file as the raw request body (/api/datasets/upload/csv), streamed from disk.

        A server without that route (older than this client) gets the multipart /api/datasets/upload instead.
        """
        params = {"visibility": visibility, "filename": path.name}
        if name:
            params["name"] = name
        timeout = httpx.Timeout(self.transfer_timeout, connect=5.0)
        try:
            return self._request(
                "POST",
                "/api/datasets/upload/csv",
                "CSV 업로드",
                params=params,
                content=_file_chunks(path),
                headers={"Content-Type": "text/csv", "Content-Length": str(path.stat().st_size)},
                timeout=timeout,
            )
        except ScoreError as exc:
            if exc.status not in (404, 405):
                raise
        form = {k: v for k, v in params.items() if k != "filename"}
        with path.open("rb") as handle:
            return self._request(
                "POST",
                "/api/datasets/upload",
                "CSV 업로드",
                files={"file": (path.name, handle, "text/csv")},
                data=form,
                timeout=timeout,
            )

    def delete_dataset(self, dataset_id: int) -> None:
        self._request("DELETE", f"/api/datasets/{dataset_id}", "데이터셋 삭제")

    def submit(self, dataset_id: int) -> dict[str, Any]:
        try:
            return self._request("POST", "/api/predict/jobs", "예측 작업 시작", json={"dataset_id": dataset_id})
        except ScoreError as exc:
            if exc.status == 422 and "kind" in exc.detail:
                raise ScoreError(
                    not_accident_message(exc.detail, exc.message.split(": ", 1)[-1]),
                    status=422,
                    code="not_accident",
                    detail=exc.detail,
                ) from None
            if exc.status == 404:
                raise ScoreError(
                    f"데이터셋 {dataset_id}을(를) 찾을 수 없습니다 (없거나 볼 권한이 없습니다).",
                    status=404,
                    code=exc.code,
                    detail=exc.detail,
                ) from None
            raise

    def job(self, job_id: int) -> dict[str, Any]:
        return self._request("GET", f"/api/jobs/{job_id}", "작업 상태 확인")

    def cancel(self, job_id: int) -> dict[str, Any]:
        return self._request("POST", f"/api/jobs/{job_id}/cancel", "작업 취소", timeout=5.0)

    def download_results(self, job_id: int, destination: Path, *, keep_columns: bool = False) -> int:
        """Stream the results CSV into `destination` (via a .part file, so a failure leaves no half file);
        `keep_columns`: with every column of the input rows."""
        partial = destination.with_name(destination.name + ".part")
        written = 0
        try:
            with self._http.stream(
                "GET",
                f"/api/predict/jobs/{job_id}/results",
                params={"format": "csv", **({"keep_columns": "true"} if keep_columns else {})},
                timeout=httpx.Timeout(self.transfer_timeout, connect=5.0),
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._api_error(response, "결과 내려받기")
                with partial.open("wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
                        written += len(chunk)
            partial.replace(destination)
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from None
        except OSError as exc:
            raise ScoreError(f"결과 파일을 쓸 수 없습니다: {destination} ({exc.strerror or exc})") from None
        finally:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
        return written

    def wait(
        self,
        job_id: int,
        *,
        poll_interval: float,
        deadline: float | None,
        on_update: Callable[[dict[str, Any]], None],
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict[str, Any]:
        """Poll the job until it ends; a short outage of the server (restart) is ridden out."""
        outage_since: float | None = None
        while True:
            try:
                info = self.job(job_id)
                outage_since = None
            except ScoreError as exc:
                transient = exc.code in ("unreachable", "timeout", "transport") or exc.status in _RETRYABLE_STATUS
                if not transient:
                    raise
                now = time.monotonic()
                outage_since = outage_since or now
                if now - outage_since > POLL_OUTAGE_SECONDS:
                    raise
            else:
                on_update(info)
                if info["finished"]:
                    return info
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError
            sleep(poll_interval)


def _file_chunks(path: Path, size: int = 1024 * 1024) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk


# ---- the command's flow ------------------------------------------------------------------------------
