"""hab's model artifact: a LightGBM native text model plus JSON metadata, verified by SHA-256, never pickled.

A bundle is one deterministic ZIP file holding ``model.txt``, ``metadata.json`` and ``SHA256SUMS`` (the
hashes of the other two, in ``sha256sum`` format). ``bundle_sha256`` is the hash of the bundle bytes: the
registry stores it next to the bytes and passes it back to ``from_bundle(..., expected_sha256=...)``. The
hash describes the stored bytes; compute it once (DEFLATE output may differ between zlib builds).
What the metadata holds is defined in models.metadata; this module checks it and reads and writes bundles.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import itertools
import math
import zipfile
import zlib
from pathlib import Path
from typing import Any

import msgspec

from models.features.schema import CATEGORICAL_FEATURES, FEATURE_ORDER, NUMERIC_FEATURES
from models.metadata import SCHEMA_VERSION, ModelMetadata, VersionNumber, version_text

MODEL_FILE, METADATA_FILE, SUMS_FILE = "model.txt", "metadata.json", "SHA256SUMS"
_MAX_MODEL_BYTES = 256 * 1024 * 1024
_MAX_METADATA_BYTES = 16 * 1024 * 1024
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class ArtifactError(ValueError):
    """A model artifact cannot be used."""


class ArtifactIntegrityError(ArtifactError):
    """The bytes are not the ones that were registered (hash mismatch, corrupt or foreign file)."""


class ArtifactFormatError(ArtifactError):
    """The bytes are intact but the metadata or model does not describe a usable hab ECLO model."""


def _fail(message: str) -> None:
    raise ArtifactFormatError(f"모델 메타데이터가 올바르지 않습니다: {message}")


def validate_metadata(meta: ModelMetadata) -> None:
    """Check the invariants the feature encoder, predictor and interpreter rely on."""
    if meta.schema_version != SCHEMA_VERSION:
        _fail(f"지원하지 않는 형식 버전 {meta.schema_version} (지원: {SCHEMA_VERSION})")
    order = meta.feature_order
    if not order or len(set(order)) != len(order) or not set(order) <= set(FEATURE_ORDER):
        _fail(f"feature_order {order}는 {', '.join(FEATURE_ORDER)} 중에서 중복 없이 골라야 합니다")
    cats, nums = set(meta.categorical_features), set(meta.numeric_features)
    if cats & nums or cats | nums != set(order) or not cats <= set(CATEGORICAL_FEATURES):
        _fail("categorical_features와 numeric_features가 feature_order를 나누지 않습니다")
    if not nums <= set(NUMERIC_FEATURES):
        _fail(f"numeric_features {sorted(nums)}에 숫자 특성이 아닌 항목이 있습니다")
    if set(meta.categories) != cats:
        _fail("categories의 키가 categorical_features와 다릅니다")
    for feature, values in meta.categories.items():
        if not values or len(set(values)) != len(values) or not all(isinstance(v, str) and v for v in values):
            _fail(f"{feature}의 범주 목록이 비었거나 중복/빈 값이 있습니다")
    if set(meta.hour_bands) != {str(h) for h in range(24)}:
        _fail("hour_bands에는 '0'부터 '23'까지 24개 시각이 모두 있어야 합니다")
    if "시간대" in cats and not set(meta.hour_bands.values()) <= set(meta.categories["시간대"]):
        _fail("hour_bands의 시간대 이름이 시간대 범주 목록에 없습니다")
    if not all(math.isfinite(v) for v in meta.metrics.values()):
        _fail("metrics에 유한하지 않은 값이 있습니다")
    q = meta.target_quantiles
    if len(q) != 101 or not all(math.isfinite(v) for v in q) or any(b < a for a, b in itertools.pairwise(q)):
        _fail("target_quantiles는 감소하지 않는 유한한 값 101개여야 합니다")
    bands = meta.bands
    if not bands or bands[-1].upper is not None:
        _fail("bands가 비었거나 마지막 구간에 상한이 있습니다")
    for left, right in itertools.pairwise(bands):
        if left.upper is None or left.upper != right.lower or not left.lower < left.upper:
            _fail("bands는 겹치거나 빈틈 없이 이어져야 합니다")
    try:
        dt.datetime.fromisoformat(meta.created_at)
    except ValueError:
        _fail(f"created_at '{meta.created_at}'이 ISO 8601 형식이 아닙니다")
    if meta.training_rows < 0:
        _fail("training_rows가 음수입니다")


def _model_header(model_text: str) -> dict[str, str]:
    head = model_text[: model_text.find("\nTree=")] if "\nTree=" in model_text else model_text[:65536]
    return dict(line.split("=", 1) for line in head.splitlines() if "=" in line)


def validate_model_text(model_text: str, meta: ModelMetadata) -> None:
    """The LightGBM text model must be a single-output tree model over exactly meta.feature_order."""
    if not model_text.startswith("tree\n"):
        _fail("model.txt가 LightGBM 텍스트 모델이 아닙니다")
    header = _model_header(model_text)
    names = header.get("feature_names", "").split()
    if names != list(meta.feature_order):
        _fail(f"모델의 특성 {names}이(가) feature_order {meta.feature_order}와 다릅니다")
    if header.get("num_class", "1") != "1" or header.get("num_tree_per_iteration", "1") != "1":
        _fail("ECLO 회귀 모델은 출력이 하나여야 합니다")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ModelArtifact:
    """A model version as bytes-to-be: metadata plus LightGBM text. Validated on construction."""

    __slots__ = ("_bundle", "metadata", "model_text")

    def __init__(self, metadata: ModelMetadata, model_text: str) -> None:
        validate_metadata(metadata)
        validate_model_text(model_text, metadata)
        self.metadata = metadata
        self.model_text = model_text
        self._bundle: bytes | None = None

    def __repr__(self) -> str:
        return f"ModelArtifact(name={self.metadata.name!r}, version={self.metadata.version!r})"

    def with_metadata(self, **changes: Any) -> ModelArtifact:
        """A copy with some metadata fields replaced."""
        return ModelArtifact(msgspec.structs.replace(self.metadata, **changes), self.model_text)

    def with_version(self, version: VersionNumber) -> ModelArtifact:
        """A copy carrying the version the registry assigns (the bundle, and so its hash, changes with it)."""
        return self.with_metadata(version=version_text(version))

    def metadata_dict(self) -> dict[str, Any]:
        """The metadata as JSON-ready builtins (what metadata.json holds)."""
        return msgspec.to_builtins(self.metadata)

    # ---- files -------------------------------------------------------------------------------------------
    def _files(self) -> dict[str, bytes]:
        metadata = msgspec.json.format(msgspec.json.encode(self.metadata, order="deterministic"), indent=2) + b"\n"
        model = self.model_text.encode("utf-8")
        sums = f"{_sha256(metadata)}  {METADATA_FILE}\n{_sha256(model)}  {MODEL_FILE}\n".encode()
        return {METADATA_FILE: metadata, MODEL_FILE: model, SUMS_FILE: sums}

    def to_bundle(self) -> bytes:
        """The artifact as one deterministic ZIP file (same artifact, same library versions -> same bytes)."""
        if self._bundle is None:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as archive:
                for name, data in self._files().items():
                    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
                    info.compress_type, info.create_system, info.external_attr = zipfile.ZIP_DEFLATED, 3, 0o644 << 16
                    archive.writestr(info, data, compresslevel=6)
            self._bundle = buffer.getvalue()
        return self._bundle

    @property
    def bundle_sha256(self) -> str:
        return _sha256(self.to_bundle())

    @classmethod
    def from_bundle(cls, data: bytes, *, expected_sha256: str | None = None) -> ModelArtifact:
        """Read a bundle, refusing it (ArtifactIntegrityError) when its hash or inner checksums do not match."""
        if expected_sha256 is not None and _sha256(data) != expected_sha256.strip().lower():
            raise ArtifactIntegrityError(
                f"모델 파일의 SHA-256({_sha256(data)[:12]}…)이 등록된 값({expected_sha256[:12]}…)과 다릅니다."
            )
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                infos = {info.filename: info for info in archive.infolist()}
                if set(infos) != {MODEL_FILE, METADATA_FILE, SUMS_FILE}:
                    raise ArtifactIntegrityError(f"모델 번들의 파일 구성이 다릅니다: {sorted(infos)}")
                sizes = infos[MODEL_FILE].file_size, infos[METADATA_FILE].file_size
                if sizes[0] > _MAX_MODEL_BYTES or sizes[1] > _MAX_METADATA_BYTES:
                    raise ArtifactIntegrityError("모델 번들의 파일이 너무 큽니다.")
                files = {name: archive.read(name) for name in infos}
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError) as exc:
            if isinstance(exc, ArtifactError):
                raise
            raise ArtifactIntegrityError(f"모델 번들을 읽을 수 없습니다(손상된 파일): {exc}") from exc
        return cls._from_files(files)

    @classmethod
    def _from_files(cls, files: dict[str, bytes]) -> ModelArtifact:
        expected: dict[str, str] = {}
        for line in files[SUMS_FILE].decode("ascii", "replace").splitlines():
            digest, _, name = line.partition("  ")
            expected[name.strip()] = digest.strip()
        for name in (METADATA_FILE, MODEL_FILE):
            if expected.get(name) != _sha256(files[name]):
                raise ArtifactIntegrityError(f"{name}의 SHA-256이 {SUMS_FILE}와 다릅니다(파일이 바뀌었거나 손상됨).")
        try:
            metadata = msgspec.json.decode(files[METADATA_FILE], type=ModelMetadata)
            model_text = files[MODEL_FILE].decode("utf-8")
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
            raise ArtifactFormatError(f"모델 메타데이터를 해석할 수 없습니다: {exc}") from exc
        return cls(metadata, model_text)

    # ---- directories -------------------------------------------------------------------------------------
    def save(self, directory: Path | str) -> Path:
        """Write model.txt, metadata.json and SHA256SUMS into a directory (created if needed)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in self._files().items():
            (directory / name).write_bytes(data)
        return directory

    @classmethod
    def load(cls, directory: Path | str) -> ModelArtifact:
        """Read a directory written by save(), verifying SHA256SUMS."""
        directory = Path(directory)
        files = {}
        for name in (MODEL_FILE, METADATA_FILE, SUMS_FILE):
            path = directory / name
            if not path.is_file():
                raise ArtifactIntegrityError(f"모델 디렉터리 {directory}에 {name} 파일이 없습니다.")
            files[name] = path.read_bytes()
        return cls._from_files(files)
