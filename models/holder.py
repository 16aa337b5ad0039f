"""The one model reference a process serves from, swapped atomically to a new version.

A swap loads and warms the new model first and only then replaces the reference, so requests that
already hold the old model finish on it and no request ever sees a half-loaded one. The model serves on
LightGBM at once; an optional ``accelerate`` step (compiling it, models/compiled.py) then runs in a daemon
thread and upgrades the served model in place when it succeeds, so activation never waits for a compiler
and a process that stops mid-compile is not held up by it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

from models.artifact import ModelArtifact
from models.loaded import LoadedModel
from models.metadata import VersionNumber

# Fetches (bundle bytes, expected sha256) of a version from wherever versions are kept.
FetchBundle = Callable[[VersionNumber], Awaitable[tuple[bytes, str]]]


def build_model(bundle: bytes, sha256: str) -> LoadedModel:
    """Verify, load and warm a model bundle (CPU work: call it in a thread)."""
    model = LoadedModel(ModelArtifact.from_bundle(bundle, expected_sha256=sha256))
    model.warm()
    return model


class ModelHolder:
    def __init__(self, accelerate: Callable[[LoadedModel], object] | None = None) -> None:
        self._accelerate = accelerate
        self.accelerating: threading.Thread | None = None
        self._model: LoadedModel | None = None
        self._version: VersionNumber | None = None
        self._lock = asyncio.Lock()
        self.swaps = 0

    @property
    def current(self) -> LoadedModel | None:
        return self._model

    @property
    def version(self) -> VersionNumber | None:
        return self._version

    async def ensure(self, version: VersionNumber | None, fetch: FetchBundle) -> bool:
        """Serve `version` (None: serve nothing). Returns True when the reference changed."""
        if version == self._version:
            return False
        async with self._lock:
            if version == self._version:
                return False
            if version is None:
                self._model, self._version = None, None
                return True
            bundle, sha256 = await fetch(version)
            model = await asyncio.to_thread(build_model, bundle, sha256)
            # One assignment each: readers see either the old pair or the new one.
            self._model, self._version = model, version
            self.swaps += 1
            if self._accelerate is not None:
                self.accelerating = threading.Thread(
                    target=self._accelerate, args=(model,), name=f"accelerate-model-{version}", daemon=True
                )
                self.accelerating.start()
            return True
