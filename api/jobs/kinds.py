"""What a job can be and where it can stand: the one place the kinds, statuses and their names live."""

from __future__ import annotations

import enum


class JobKind(enum.StrEnum):
    SCORE = "score"
    CHAT = "chat"


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})

KIND_LABELS = {JobKind.SCORE: "배치 ECLO 예측", JobKind.CHAT: "질의응답(AI)"}
STATUS_LABELS = {
    JobStatus.QUEUED: "대기 중",
    JobStatus.RUNNING: "실행 중",
    JobStatus.SUCCEEDED: "완료",
    JobStatus.FAILED: "실패",
    JobStatus.CANCELLED: "취소됨",
}


# The arq function of a scoring job's helper deliveries: other workers scoring free parts of a running job.
SCORE_PART_FUNCTION = "score_job_part"


def function_name(kind: JobKind) -> str:
    """The arq function that runs jobs of this kind (the API enqueues by it, the workers register it)."""
    return f"{kind.value}_job"


def kind_of_function(name: str) -> JobKind | None:
    return next((kind for kind in JobKind if function_name(kind) == name), None)
