"""Scoring one chunk of a job's input, and the running summary folded from chunk to chunk.

The running summary is stored with each chunk's rows (so a resumed job's summary is exact); the final
summary is what the job shows when it ends. Both are JSON in `jobs.summary`, so their keys are a format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    districts: list[str] | None


def score_chunk(chunk: pa.Table, model: LoadedModel, start: int) -> ChunkResult:
    """Encode and predict one chunk (CPU work: runs in a thread so the worker's loop stays responsive)."""
    batch = encode_frame(chunk, model.metadata, ignore_unknown=True)
    eclo = model.predict(batch.matrix) if len(batch.row_index) else np.empty(0)
    districts = None
    if "시군구" in chunk.column_names and len(batch.row_index):
        districts = chunk.column("시군구").take(pa.array(batch.row_index)).to_pylist()
    return ChunkResult(
        row_index=batch.row_index + start,
        eclo=eclo,
        errors=[(start + i, e) for i, e in batch.errors],
        districts=districts,
    )


def empty_summary() -> dict[str, Any]:
    return {"count": 0, "eclo_sum": 0.0, "eclo_max": None, "bands": {}, "districts": {}, "error_count": 0, "errors": []}


def merge_chunk(summary: dict[str, Any], result: ChunkResult, model: LoadedModel) -> dict[str, Any]:
    """Fold one chunk into the running summary (stored with the chunk, so a resumed job's summary is exact)."""
    if len(result.eclo):
        summary["count"] += len(result.eclo)
        summary["eclo_sum"] += float(result.eclo.sum())
        chunk_max = float(result.eclo.max())
        summary["eclo_max"] = chunk_max if summary["eclo_max"] is None else max(summary["eclo_max"], chunk_max)
        labels, counts = np.unique(np.asarray(model.labels(result.eclo), dtype=object), return_counts=True)
        for label, count in zip(labels.tolist(), counts.tolist(), strict=True):
            summary["bands"][label] = summary["bands"].get(label, 0) + int(count)
        if result.districts is not None:
            per = summary["districts"]
            for district, value in zip(result.districts, result.eclo.tolist(), strict=True):
                entry = per.setdefault(district, [0, 0.0])
                entry[0] += 1
                entry[1] += value
    summary["error_count"] += len(result.errors)
    room = MAX_ERRORS_KEPT - len(summary["errors"])
    for index, error in result.errors[: max(room, 0)]:
        summary["errors"].append({"row_index": index, "message": error.message, **error.to_detail()})
    return summary


def final_summary(summary: dict[str, Any]) -> dict[str, Any]:
    count = summary["count"]
    top = sorted(
        ({"시군구": d, "count": c, "mean_eclo": round(s / c, 4)} for d, (c, s) in summary["districts"].items()),
        key=lambda item: (-item["mean_eclo"], item["시군구"]),
    )[:TOP_DISTRICTS]
    return {
        "count": count,
        "mean_eclo": round(summary["eclo_sum"] / count, 4) if count else None,
        "max_eclo": summary["eclo_max"],
        "bands": summary["bands"],
        "top_districts": top,
        "error_count": summary["error_count"],
        "errors": summary["errors"],
    }
