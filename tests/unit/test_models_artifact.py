"""models.artifact: deterministic bundles, SHA-256 verification, metadata validation, no pickle anywhere."""

from __future__ import annotations

import hashlib
import io
import pickle
import zipfile

import msgspec
import numpy as np
import pytest

from api.datasets.ingest import parse_csv
from api.demo.generate import generate_demo_datasets
from models.artifact import ArtifactFormatError, ArtifactIntegrityError, ModelArtifact
from models.features import encode_frame
from models.loaded import LoadedModel
from models.metadata import InterpretationBand
from models.train import train_eclo


@pytest.fixture(scope="module")
def table():
    train = next(d for d in generate_demo_datasets(scale=0.05) if d.key == "train")
    return parse_csv(train.csv_bytes).table


@pytest.fixture(scope="module")
def artifact(table):
    return train_eclo(table, num_boost_round=40)


@pytest.fixture(scope="module")
def matrix(table, artifact):
    return encode_frame(table, artifact.metadata, ignore_unknown=True).matrix


def rezip(bundle: bytes, change) -> bytes:
    """A new, well-formed ZIP whose members went through change(name, data) -> data | None (None drops)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(bundle)) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            data = change(name, source.read(name))
            if data is not None:
                target.writestr(name, data)
    return out.getvalue()


def test_round_trip_gives_identical_predictions(artifact, matrix):
    bundle = artifact.to_bundle()
    restored = ModelArtifact.from_bundle(bundle, expected_sha256=artifact.bundle_sha256)
    assert restored.metadata == artifact.metadata and restored.model_text == artifact.model_text
    before, after = LoadedModel(artifact).predict(matrix), LoadedModel(restored).predict(matrix)
    assert np.array_equal(before, after)


def test_bundle_is_deterministic(artifact):
    again = ModelArtifact(msgspec.json.decode(msgspec.json.encode(artifact.metadata), type=type(artifact.metadata)),
                          artifact.model_text)  # fmt: skip
    assert again.to_bundle() == artifact.to_bundle()
    assert again.bundle_sha256 == artifact.bundle_sha256
    with zipfile.ZipFile(io.BytesIO(artifact.to_bundle())) as archive:
        assert sorted(archive.namelist()) == ["SHA256SUMS", "metadata.json", "model.txt"]


def test_with_version_changes_the_bundle(artifact):
    versioned = artifact.with_version(7)
    assert versioned.metadata.version == "7" and versioned.bundle_sha256 != artifact.bundle_sha256
    assert versioned.metadata_dict()["version"] == "7"  # stored as text: the bundle format is unchanged
    assert versioned.metadata.version_number() == 7 and LoadedModel(versioned).version == 7
    with pytest.raises(ValueError, match="no registry version"):  # a fresh artifact has only a build label
        LoadedModel(artifact).version  # noqa: B018


def test_hash_mismatch_is_refused(artifact):
    with pytest.raises(ArtifactIntegrityError):
        ModelArtifact.from_bundle(artifact.to_bundle(), expected_sha256="0" * 64)


def test_tampered_bytes_are_refused(artifact):
    bundle = bytearray(artifact.to_bundle())
    bundle[len(bundle) // 2] ^= 0xFF  # inside model.txt's compressed data
    with pytest.raises(ArtifactIntegrityError):
        ModelArtifact.from_bundle(bytes(bundle), expected_sha256=artifact.bundle_sha256)
    with pytest.raises(ArtifactIntegrityError):  # even without the registered hash: CRC / inner checksums
        ModelArtifact.from_bundle(bytes(bundle))


def test_edited_member_with_stale_checksums_is_refused(artifact):
    def edit(name, data):
        return data.replace(b'"rmse"', b'"RMSE"') if name == "metadata.json" else data

    with pytest.raises(ArtifactIntegrityError, match="SHA256SUMS"):
        ModelArtifact.from_bundle(rezip(artifact.to_bundle(), edit))


def test_foreign_files_are_refused(artifact):
    with pytest.raises(ArtifactIntegrityError):
        ModelArtifact.from_bundle(b"not a zip at all")
    with pytest.raises(ArtifactIntegrityError):
        ModelArtifact.from_bundle(rezip(artifact.to_bundle(), lambda n, d: None if n == "SHA256SUMS" else d))


def test_from_bundle_never_unpickles(artifact, matrix, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pickle used while loading a bundle")

    for name in ("load", "loads"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(pickle, "_Unpickler", refuse)
    model = LoadedModel(ModelArtifact.from_bundle(artifact.to_bundle(), expected_sha256=artifact.bundle_sha256))
    model.warm()
    assert len(model.predict(matrix)) == len(matrix)


def test_metadata_is_validated(artifact):
    meta = artifact.metadata
    broken = [
        {"bands": [InterpretationBand(label="a", lower=0, upper=4, description=""),
                   InterpretationBand(label="b", lower=5, upper=None, description="")]},
        {"target_quantiles": [1.0] * 100},
        {"target_quantiles": [2.0, 1.0] + [3.0] * 99},
        {"hour_bands": {**meta.hour_bands, "3": "새벽"}},
        {"categories": {**meta.categories, "기상상태": ["맑음", "맑음"]}},
        {"feature_order": [*meta.feature_order[:-1], "사고분"]},
        {"metrics": {"rmse": float("nan")}},
        {"created_at": "어제"},
    ]  # fmt: skip
    for change in broken:
        with pytest.raises(ArtifactFormatError):
            artifact.with_metadata(**change)
    with pytest.raises(ArtifactFormatError):  # model trained on other features than the metadata says
        ModelArtifact(meta, artifact.model_text.replace("feature_names=기상상태", "feature_names=날씨", 1))


def test_bad_metadata_json_is_a_format_error(artifact):
    bundle = artifact.to_bundle()
    # Rebuild a consistent bundle around metadata with a wrong type: checksums match, the schema does not.
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        files = {n: archive.read(n) for n in archive.namelist()}
    files["metadata.json"] = files["metadata.json"].replace(b'"training_rows": ', b'"training_rows": "x', 1)
    sums = "".join(f"{hashlib.sha256(files[n]).hexdigest()}  {n}\n" for n in ("metadata.json", "model.txt"))
    files["SHA256SUMS"] = sums.encode()
    with pytest.raises(ArtifactFormatError):
        ModelArtifact.from_bundle(rezip(bundle, lambda n, d: files[n]))


def test_save_and_load_directory(artifact, matrix, tmp_path):
    artifact.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["SHA256SUMS", "metadata.json", "model.txt"]
    loaded = ModelArtifact.load(tmp_path / "m")
    assert np.array_equal(LoadedModel(loaded).predict(matrix), LoadedModel(artifact).predict(matrix))
    model_file = tmp_path / "m" / "model.txt"
    model_file.write_text(model_file.read_text().replace("shrinkage=", "shrinkage= ", 1))
    with pytest.raises(ArtifactIntegrityError):
        ModelArtifact.load(tmp_path / "m")
