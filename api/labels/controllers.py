from __future__ import annotations

from litestar import Controller, get

from api.datasets.kinds import ACCIDENT_SHAPED_KINDS, KIND_LABELS, DatasetKind
from api.jobs.kinds import KIND_LABELS as JOB_KIND_LABELS
from api.jobs.kinds import STATUS_LABELS, TERMINAL, JobKind, JobStatus
from api.schemas import Output


class DatasetKindLabel(Output):
    value: DatasetKind
    label: str
    scorable: bool


class JobKindLabel(Output):
    value: JobKind
    label: str


class JobStatusLabel(Output):
    value: JobStatus
    label: str
    finished: bool


class Labels(Output):
    dataset_kinds: list[DatasetKindLabel]
    job_kinds: list[JobKindLabel]
    job_statuses: list[JobStatusLabel]


LABELS = Labels(
    dataset_kinds=[
        DatasetKindLabel(value=k, label=KIND_LABELS[k], scorable=k in ACCIDENT_SHAPED_KINDS) for k in DatasetKind
    ],
    job_kinds=[JobKindLabel(value=k, label=JOB_KIND_LABELS[k]) for k in JobKind],
    job_statuses=[JobStatusLabel(value=s, label=STATUS_LABELS[s], finished=s in TERMINAL) for s in JobStatus],
)


class LabelController(Controller):
    path = "/api/labels"
    tags = ["meta"]

    # Public: a share link's page (a viewer without an account) names the dataset's kind with it; the labels
    # are the fixed vocabulary of the API's enums, nothing about users or their data.
    @get("/", summary="화면에 쓰는 한국어 이름 (데이터셋 종류, 작업 종류·상태)", exclude_from_auth=True)
    async def labels(self) -> Labels:
        return LABELS
