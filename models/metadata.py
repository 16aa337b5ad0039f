"""What describes one model version: its metadata (metadata.json of a bundle), its version number, the
fingerprint of its training data, and a cache of objects derived from a metadata object.

This module imports nothing else of ``models``; every other module may import it.

Versions. A model version is identified by its registry number, ``VersionNumber`` (an ``int``, the
``model_versions.version`` column); that is the type everywhere in Python. Only the ``version`` field of the
stored metadata (metadata.json inside the hash-verified bundle, and the ``model_versions.metadata`` JSON)
is text: the registry writes its number there as a string ("3"), and an artifact that was never registered
carries a build label such as "20261124-153000-ab12cd" (``make_version``). That field stays a string so
that stored bundles and their hashes keep their format; ``ModelMetadata.version_number()`` reads it back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any, Generic, Literal, Protocol, TypeAlias, TypeVar

import msgspec
import numpy as np

SCHEMA_VERSION = 1

VersionNumber: TypeAlias = int
"""The registry's number of a model version (``model_versions.version``)."""


# The source of a model trained on hab's synthetic demo datasets: its predictions say so (LoadedModel).
SYNTHETIC_SOURCE = "trained-synthetic"
SYNTHETIC_NOTE = (
    " 주의: 지금 활성 모델은 합성(가상) 데모 데이터로 학습한 데모 모델이라 실제 사고 위험을 나타내지 않습니다."
    " 실제 데이터로 학습한 모델이나 v1.2.5 모델을 활성화하면 이 안내가 사라집니다."
)


class _Derived(Protocol):
    meta: ModelMetadata  # the metadata it was built from (PerMetadata checks it against id() reuse)


T = TypeVar("T", bound=_Derived)


class InterpretationBand(msgspec.Struct, kw_only=True, frozen=True):
    """ECLO range [lower, upper) with a Korean label and the reasoning behind it."""

    label: str
    lower: float
    upper: float | None
    description: str

    def to_dict(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)


class ModelMetadata(msgspec.Struct, kw_only=True, frozen=True):
    """Everything needed to encode inputs for, run and explain one model version (stored as metadata.json)."""

    name: str
    version: str  # the registry number as text once registered, else a build label (see the module docstring)
    feature_order: list[str]
    categorical_features: list[str]
    numeric_features: list[str]
    categories: dict[str, list[str]]  # model input for a category = its index here, as a float
    hour_bands: dict[str, str]  # "0".."23" -> 시간대 label
    target_transform: Literal["log1p", "none"]
    metrics: dict[str, float]
    target_quantiles: list[float]  # 101 quantiles (0 %, 1 %, …, 100 %) of the training ECLO
    bands: list[InterpretationBand]
    training_fingerprint: str
    training_rows: int
    created_at: str
    lightgbm_version: str
    source: str  # "trained" | SYNTHETIC_SOURCE (trained on the synthetic demo data) | "legacy-v1.2.5"
    notes: str = ""
    schema_version: int = SCHEMA_VERSION

    def version_number(self) -> VersionNumber:
        """The registry number stamped into this metadata; ValueError if it was never registered."""
        if not self.version.isascii() or not self.version.isdecimal():
            raise ValueError(f"model {self.name!r} has no registry version (version label {self.version!r})")
        return int(self.version)


def version_text(version: VersionNumber) -> str:
    """How a registry number is written into ModelMetadata.version."""
    return str(int(version))


def make_version(created_at: dt.datetime, content: str) -> str:
    """A sortable, unique-enough build label such as 20261124-153000-ab12cd, for a not yet registered model."""
    digest = hashlib.sha256(content.encode()).hexdigest()[:6]
    return f"{created_at.strftime('%Y%m%d-%H%M%S')}-{digest}"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def fingerprint_training_data(matrix: np.ndarray, target: np.ndarray, categories: Mapping[str, list[str]]) -> str:
    """SHA-256 of what the model learns from: the encoded rows, their targets and the vocabularies."""
    digest = hashlib.sha256(b"hab-eclo-training/1\n")
    digest.update(json.dumps(categories, ensure_ascii=False, sort_keys=True).encode())
    digest.update(np.ascontiguousarray(matrix, dtype="<f8").tobytes())
    digest.update(np.ascontiguousarray(target, dtype="<f8").tobytes())
    return digest.hexdigest()


class PerMetadata(Generic[T]):
    """Objects derived from a model's metadata, built once per metadata object and kept for a few models.

    Keyed by id(); each entry holds its metadata (as `.meta`), so an id is never reused while it is cached.
    """

    def __init__(self, build: Callable[[ModelMetadata], T], size: int) -> None:
        self._build = build
        self._size = size
        self._entries: dict[int, T] = {}
        self._lock = threading.Lock()

    def __call__(self, meta: ModelMetadata) -> T:
        entry = self._entries.get(id(meta))
        if entry is None or entry.meta is not meta:
            with self._lock:
                while len(self._entries) >= self._size:
                    self._entries.pop(next(iter(self._entries)))
                entry = self._entries[id(meta)] = self._build(meta)
        return entry
