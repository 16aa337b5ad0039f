"""`hab score`'s flow: upload (or pick a dataset) → score as a job with a progress bar → save the CSV.

The HTTP calls are in score_client.py; this module decides what to do with them and what to tell people.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import httpx

from api.cli.score_client import ScoreClient, ScoreError, ScoreInterrupted


@dataclass
class ScoreOptions:
    server: str
    token: str
    input_csv: Path | None = None
    dataset_id: int | None = None
    output: Path | None = None
    visibility: str = "private"
    keep_columns: bool = False  # the result CSV carries every input column, not only ID
    poll_interval: float = 0.5
    timeout: float | None = 3600.0
    echo: Callable[[str], None] = field(default=click.echo)
    err: Callable[[str], None] = field(default=lambda line: click.echo(line, err=True))


def default_output(input_csv: Path | None, dataset_id: int | None) -> Path:
    if input_csv is not None:
        return input_csv.with_name(f"{input_csv.stem}_eclo.csv")
    return Path(f"dataset-{dataset_id}_eclo.csv")


def _check_output(output: Path, input_csv: Path | None) -> None:
    if output.exists() and output.is_dir():
        raise ScoreError(f"출력 경로가 폴더입니다: {output}. -o 로 파일 이름을 지정해 주세요.")
    if not output.resolve().parent.is_dir():
        raise ScoreError(f"출력 폴더가 없습니다: {output.resolve().parent}")
    if input_csv is not None and output.resolve() == input_csv.resolve():
        raise ScoreError("출력 파일이 입력 파일과 같습니다. -o 로 다른 파일 이름을 지정해 주세요.")


@contextlib.contextmanager
def _progress(total: int | None) -> Iterator[Callable[[dict[str, Any]], None]]:
    """A click progress bar on stderr, driven by the job's progress/total."""
    with click.progressbar(
        length=max(total or 0, 1),
        label="대기 중",
        file=sys.stderr,
        show_pos=True,
        show_eta=True,
    ) as bar:
        shown = 0

        def update(info: dict[str, Any]) -> None:
            nonlocal shown
            job_total = info.get("total")
            if job_total and job_total != bar.length:
                bar.length = int(job_total)
            bar.label = info.get("status_label") or info["status"]
            progress = min(int(info.get("progress") or 0), bar.length or 0)
            if info["status"] == "succeeded":
                progress = bar.length or progress
            if progress > shown:
                bar.update(progress - shown)
                shown = progress
            else:
                bar.render_progress()

        yield update


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{float(value):,.4f}"


def summary_lines(info: dict[str, Any], output: Path) -> list[str]:
    summary = info.get("summary") or {}
    count = int(summary.get("count") or 0)
    errors = int(summary.get("error_count") or 0)
    version = (info.get("params") or {}).get("model_version")
    seconds = info.get("duration_seconds")
    head = f"예측 완료: 작업 #{info['id']}"
    if version is not None:
        head += f", 모델 버전 {version}"
    if seconds is not None:
        head += f", {float(seconds):.1f}초"
    lines = [
        head,
        f"  예측한 행: {count:,}개",
        f"  평균 ECLO: {_fmt(summary.get('mean_eclo'))}   최대 ECLO: {_fmt(summary.get('max_eclo'))}",
    ]
    bands = summary.get("bands") or {}
    if bands:
        lines.append("  위험도 구간: " + ", ".join(f"{label} {n:,}개" for label, n in bands.items()))
    lines.append(f"  오류 행: {errors:,}개" + (" (예측할 수 없어 결과 CSV에 없습니다)" if errors else ""))
    for item in (summary.get("errors") or [])[:3]:
        message = str(item.get("message") or "").split(". ", 1)[0].rstrip(".") + "."  # first sentence only
        message = message if len(message) <= 120 else message[:119] + "…"
        lines.append(f"    - row_index {item.get('row_index')}: {message}")
    lines.append(f"결과를 {output} 에 저장했습니다.")
    return lines


def run_score(options: ScoreOptions, *, transport: httpx.BaseTransport | None = None) -> Path:
    """Upload (or pick) the data, score it as a job with a progress bar, download the results."""
    if (options.input_csv is None) == (options.dataset_id is None):
        raise ScoreError("입력 CSV 파일 또는 --dataset ID 중 하나만 지정해 주세요.")
    output = options.output or default_output(options.input_csv, options.dataset_id)
    _check_output(output, options.input_csv)
    started = time.monotonic()
    deadline = started + options.timeout if options.timeout else None
    job_id: int | None = None
    finished = False
    with ScoreClient(options.server, options.token, transport=transport) as client:
        try:
            client.me()  # a bad token or a down server fails here, before a large upload
            dataset_id = options.dataset_id
            uploaded = False
            if options.input_csv is not None:
                options.err(f"{options.input_csv.name} 업로드 중… ({client.server})")
                dataset = client.upload(options.input_csv, visibility=options.visibility)
                dataset_id, uploaded = int(dataset["id"]), True
                options.err(
                    f"데이터셋 #{dataset_id} '{dataset.get('name')}' 저장: {int(dataset.get('rows') or 0):,}행,"
                    f" 종류 {dataset.get('kind')}"
                )
            assert dataset_id is not None
            try:
                accepted = client.submit(dataset_id)
            except ScoreError as exc:
                if uploaded and exc.code == "not_accident":
                    # The upload existed only for this command: do not leave a useless dataset behind.
                    with contextlib.suppress(ScoreError):
                        client.delete_dataset(dataset_id)
                raise
            job_id = int(accepted["job_id"])
            options.err(f"예측 작업 #{job_id} 시작")
            first = client.job(job_id)
            with _progress(first.get("total")) as update:
                update(first)
                info = (
                    first
                    if first["finished"]
                    else client.wait(job_id, poll_interval=options.poll_interval, deadline=deadline, on_update=update)
                )
            finished = True
            if info["status"] == "failed":
                raise ScoreError(f"예측 작업 #{job_id}이(가) 실패했습니다: {info.get('error') or '원인 미상'}")
            if info["status"] == "cancelled":
                raise ScoreError(f"예측 작업 #{job_id}이(가) 취소되었습니다.")
            client.download_results(job_id, output, keep_columns=options.keep_columns)
        except TimeoutError:
            note = _cancel(client, job_id)
            raise ScoreError(
                f"시간 제한({options.timeout:g}초)을 넘었습니다. {note} 더 긴 --timeout 으로 다시 실행해 주세요."
            ) from None
        except KeyboardInterrupt:
            if job_id is None:
                raise ScoreInterrupted("중단했습니다. 예측 작업은 시작되지 않았습니다.") from None
            if finished:
                raise ScoreInterrupted(
                    f"중단했습니다. 작업 #{job_id}은(는) 끝났지만 결과 파일을 쓰지 않았습니다."
                ) from None
            raise ScoreInterrupted(f"중단했습니다. {_cancel(client, job_id)}") from None
    for line in summary_lines(info, output):
        options.echo(line)
    return output


def _cancel(client: ScoreClient, job_id: int | None) -> str:
    if job_id is None:
        return ""
    try:
        client.cancel(job_id)
        return f"작업 #{job_id} 취소를 요청했습니다."
    except ScoreError as exc:
        if exc.status == 409:
            return f"작업 #{job_id}은(는) 이미 끝났습니다."
        return f"작업 #{job_id} 취소 요청이 실패했습니다 ({exc.message})."
