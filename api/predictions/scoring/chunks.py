"""Scoring one chunk of a job's input, and the running summary folded from chunk to chunk.

The running summary is stored with each part's rows (so a resumed job's summary is exact, and parts
scored by several workers fold into one); the final summary is what the job shows when it ends. Both are
JSON in `jobs.summary`, so their keys are a format.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

from models.features import FeatureError, encode_frame
from models.loaded import LoadedModel

MAX_ERRORS_KEPT = 100
TOP_DISTRICTS = 10


@dataclass
class ChunkResult:
    row_index: np.ndarray
    eclo: np.ndarray
    errors: list[tuple[int, FeatureError]]
    districts: pa.Array | None  # 시군구 of each scored row, beside `eclo`
    encode_s: float = 0.0
    predict_s: float = 0.0


def score_chunk(chunk: pa.Table, model: LoadedModel, start: int) -> ChunkResult:
    """Encode and predict one chunk (CPU work: runs in a thread so the worker's loop stays responsive)."""
    started = time.perf_counter()
    batch = encode_frame(chunk, model.metadata, ignore_unknown=True)
    encoded = time.perf_counter()
    eclo = model.predict(batch.matrix) if len(batch.row_index) else np.empty(0)
    predicted = time.perf_counter()
    districts = None
    if "시군구" in chunk.column_names and len(batch.row_index):
        districts = chunk.column("시군구").take(pa.array(batch.row_index)).combine_chunks()
    return ChunkResult(
        row_index=batch.row_index + start,
        eclo=eclo,
        errors=[(start + i, e) for i, e in batch.errors],
        districts=districts,
        encode_s=encoded - started,
        predict_s=predicted - encoded,
    )


class ScoringTally(msgspec.Struct, kw_only=True):
    """The running summary, stored with each chunk's rows (so a resumed job's summary is exact)."""

    count: int = 0
    eclo_sum: float = 0.0
    eclo_max: float | None = None
    bands: dict[str, int] = msgspec.field(default_factory=dict)
    districts: dict[str, tuple[int, float]] = msgspec.field(default_factory=dict)  # 시군구 -> (count, ECLO sum)
    error_count: int = 0
    errors: list[dict[str, Any]] = msgspec.field(default_factory=list)  # the first MAX_ERRORS_KEPT rows refused

    @classmethod
    def resumed(cls, stored: dict[str, Any] | None) -> ScoringTally:
        """The tally a previous run of the job stored, or a fresh one (a job's summary holds other shapes too)."""
        return msgspec.convert(stored, cls) if stored and "eclo_sum" in stored else cls()

    def with_chunk(self, result: ChunkResult, model: LoadedModel) -> ScoringTally:
        """A new tally with one more chunk folded in (this one stays as it was, for a chunk that is not written)."""
        bands, districts = dict(self.bands), dict(self.districts)
        count, eclo_sum, eclo_max = self.count, self.eclo_sum, self.eclo_max
        if len(result.eclo):
            count += len(result.eclo)
            eclo_sum += float(result.eclo.sum())
            chunk_max = float(result.eclo.max())
            eclo_max = chunk_max if eclo_max is None else max(eclo_max, chunk_max)
            for label, n in _band_counts(result.eclo, model).items():
                bands[label] = bands.get(label, 0) + n
            if result.districts is not None:
                for district, n, chunk_sum in _district_sums(result.districts, result.eclo):
                    seen, total = districts.get(district, (0, 0.0))
                    districts[district] = (seen + n, total + chunk_sum)
        # Parts may commit in any order: keep the first MAX_ERRORS_KEPT refused rows by row, as one worker would.
        errors = self.errors + [
            {"row_index": index, "message": error.message, **error.to_detail()}
            for index, error in result.errors[:MAX_ERRORS_KEPT]
        ]
        if result.errors:
            errors = sorted(errors, key=lambda e: int(e["row_index"]))[:MAX_ERRORS_KEPT]
        return ScoringTally(
            count=count,
            eclo_sum=eclo_sum,
            eclo_max=eclo_max,
            bands=bands,
            districts=districts,
            error_count=self.error_count + len(result.errors),
            errors=errors,
        )

    def final(self) -> ScoringSummary:
        top = sorted(
            (DistrictMean(시군구=d, count=c, mean_eclo=round(s / c, 4)) for d, (c, s) in self.districts.items()),
            key=lambda item: (-item.mean_eclo, item.시군구),
        )[:TOP_DISTRICTS]
        return ScoringSummary(
            count=self.count,
            mean_eclo=round(self.eclo_sum / self.count, 4) if self.count else None,
            max_eclo=self.eclo_max,
            bands=self.bands,
            top_districts=top,
            error_count=self.error_count,
            errors=self.errors,
        )


def _band_counts(eclo: np.ndarray, model: LoadedModel) -> dict[str, int]:
    """How many values fall in each of the model's bands (counted in numpy, not per row in Python)."""
    bands = model.metadata.bands
    uppers = np.asarray([band.upper for band in bands[:-1]], dtype=np.float64)
    counts = np.bincount(np.searchsorted(uppers, eclo, side="right"), minlength=len(bands))
    return {bands[i].label: int(n) for i, n in enumerate(counts.tolist()) if n}


def _district_sums(districts: pa.Array, eclo: np.ndarray) -> list[tuple[Any, int, float]]:
    """(시군구, rows, ECLO sum) per district of one chunk, grouped by Arrow: a few hundred groups, not a row each."""
    grouped = (
        pa.table({"d": districts, "e": pa.array(eclo, pa.float64())})
        .group_by("d")
        .aggregate([("e", "count"), ("e", "sum")])
    )
    return list(
        zip(
            grouped.column("d").to_pylist(),
            grouped.column("e_count").to_pylist(),
            grouped.column("e_sum").to_pylist(),
            strict=True,
        )
    )


class DistrictMean(msgspec.Struct, kw_only=True):
    시군구: str
    count: int
    mean_eclo: float


class ScoringSummary(msgspec.Struct, kw_only=True):
    """What a finished scoring job shows (jobs.summary)."""

    count: int
    mean_eclo: float | None
    max_eclo: float | None
    bands: dict[str, int]
    top_districts: list[DistrictMean]
    error_count: int
    errors: list[dict[str, Any]]
