"""Every metric hab exports, in one place. Services record; controllers never do.

Labels are small closed sets (route templates, kinds, statuses, model names from the settings): never a
user id, a token, a dataset name or a key. With several uvicorn processes, prometheus-client's
multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by `hab serve --workers N`) aggregates them.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import ParamSpec, TypeVar

from prometheus_client import Counter, Gauge, Histogram

P = ParamSpec("P")
R = TypeVar("R")


class PredictionSource(StrEnum):
    SINGLE = "single"
    BATCH = "batch"
    JOB = "job"
    CHAT = "chat"


class ScoringStage(StrEnum):
    """Where a batch-scoring job's time goes (hab_scoring_stage_seconds)."""

    LOAD_INPUT = "load_input"  # the dataset's Parquet from PostgreSQL (or the cache) into an Arrow table
    ENCODE = "encode"  # input columns to the model's matrix
    PREDICT = "predict"
    WRITE = "write"  # a part's COPY, its summary and its commit


class CacheResult(StrEnum):
    HIT = "hit"
    MISS = "miss"


HTTP_REQUESTS = Counter("hab_http_requests", "HTTP requests answered, by route template", ["method", "route", "status"])
HTTP_DURATION = Histogram(
    "hab_http_request_duration_seconds",
    "Time from request to the response's start, by route template",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
PREDICTIONS = Counter("hab_predictions", "ECLO predictions made", ["model_version", "source"])
JOBS = Counter("hab_jobs", "Background jobs finished, by final status", ["kind", "status"])
JOB_DURATION = Histogram(
    "hab_job_duration_seconds",
    "Wall time of one job run (one delivery) that finished the job",
    ["kind"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
SCORING_STAGE_SECONDS = Counter(
    "hab_scoring_stage_seconds", "Seconds batch-scoring jobs spent, by stage (summed over parts)", ["stage"]
)
JOB_ROWS = Counter("hab_job_rows", "Input rows processed by background jobs", ["kind"])
QUEUE_DEPTH = Gauge(
    "hab_queue_depth", "Jobs waiting on the arq queue (sampled by each worker)", multiprocess_mode="mostrecent"
)
CACHE_REQUESTS = Counter("hab_cache_requests", "Cache lookups", ["cache", "result"])
LLM_REQUESTS = Counter("hab_llm_requests", "Calls to the Anthropic Messages API", ["model", "outcome"])
LLM_TOKENS = Counter("hab_llm_tokens", "Tokens of Anthropic calls", ["model", "direction"])
DATASET_UPLOADS = Counter("hab_dataset_uploads", "Dataset uploads, by outcome", ["outcome"])
MODEL_ACTIVE_VERSION = Gauge(
    "hab_model_active_version", "The ECLO model version this process serves", multiprocess_mode="mostrecent"
)
# 1 while batches are predicted by the served model compiled to native code (models/compiled.py), 0 on LightGBM.
MODEL_COMPILED = Gauge(
    "hab_model_compiled",
    "Whether this process predicts batches with the compiled model (1) or LightGBM (0)",
    multiprocess_mode="mostrecent",
)


@functools.lru_cache(maxsize=256)  # model versions x sources: a single prediction counts without a label lookup
def prediction_counter(model_version: int | None, source: PredictionSource) -> Counter:
    """The labelled child, for callers that count many times against one model (cheap: no label lookup)."""
    return PREDICTIONS.labels(model_version=str(model_version or 0), source=source.value)


def count_predictions(model_version: int | None, source: PredictionSource, count: int = 1) -> None:
    if count > 0:
        prediction_counter(model_version, source).inc(count)


def count_cache(cache: str, hit: bool) -> None:
    _cache_counter(cache, hit).inc()


@functools.lru_cache(maxsize=64)  # a few cache names x hit/miss; a chat cache hit counts without a label lookup
def _cache_counter(cache: str, hit: bool) -> Counter:
    return CACHE_REQUESTS.labels(cache=cache, result=CacheResult.HIT if hit else CacheResult.MISS)


def count_llm_call(model: str, outcome: str, input_tokens: int = 0, output_tokens: int = 0) -> None:
    LLM_REQUESTS.labels(model=model, outcome=outcome).inc()
    if input_tokens:
        LLM_TOKENS.labels(model=model, direction="input").inc(input_tokens)
    if output_tokens:
        LLM_TOKENS.labels(model=model, direction="output").inc(output_tokens)


def count_job(kind: str, status: str, seconds: float | None) -> None:
    JOBS.labels(kind=kind, status=status).inc()
    if seconds is not None:
        JOB_DURATION.labels(kind=kind).observe(seconds)


def count_job_rows(kind: str, rows: int) -> None:
    if rows > 0:
        JOB_ROWS.labels(kind=kind).inc(rows)


def count_scoring_stage(stage: ScoringStage, seconds: float) -> None:
    SCORING_STAGE_SECONDS.labels(stage=stage.value).inc(max(seconds, 0.0))


def count_upload(outcome: str) -> None:
    DATASET_UPLOADS.labels(outcome=outcome).inc()


def set_active_model(version: int | None) -> None:
    MODEL_ACTIVE_VERSION.set(version or 0)


def set_model_compiled(compiled: bool) -> None:
    MODEL_COMPILED.set(1 if compiled else 0)


def upload_failures_counted(receive: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Count an upload step's failure under the error code it answers with (a closed set), then re-raise."""

    @functools.wraps(receive)
    async def counted(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await receive(*args, **kwargs)
        except Exception as exc:
            count_upload(getattr(exc, "code", None) or "error")
            raise

    return counted
