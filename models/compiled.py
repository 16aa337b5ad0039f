"""A model version compiled to native code (treelite + tl2cgen), for batches and single rows.

LightGBM walks its trees in a generic interpreter; tl2cgen turns the same trees into C, compiled once per
model version, which predicts the same numbers several times faster on batches (figures in
docs/decisions/0009-compiled-predictor.md). LightGBM stays the reference and the fallback:
- on a machine without a C compiler (a student's laptop) nothing is compiled and LightGBM serves;
- a library is used only after it reproduced LightGBM on a probe matrix (every category of every
  categorical feature, missing values) to ``EQUALITY_TOLERANCE``;
- small batches (below ``COMPILED_MIN_ROWS`` rows) stay on LightGBM: a tl2cgen call pays for building its
  matrix. tl2cgen's ``Predictor.predict`` may be called by one thread at a time, so a loaded library keeps
  one ``Predictor`` per thread predicting at once (up to ``MAX_CONCURRENT``): a job's two scoring loops
  predict side by side on the compiled code instead of one of them falling back to LightGBM.
- one row (a single prediction) calls the library's own ``predict`` function through ctypes, with the row
  laid out as tl2cgen's ``union Entry`` array: no matrix, no predictor, no lock (the generated function
  reads only its arguments and constant tables). About half of LightGBM's single-row API per call, and
  checked against LightGBM on every probe row like the batch path (docs/decisions/0010).

Libraries are cached in a folder keyed by the SHA-256 of the model's trees (plus the tl2cgen version and the
machine), so each version is compiled once per folder; a lock file keeps two processes sharing the folder
from compiling the same version twice.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import logging
import os
import platform
import shutil
import tempfile
import threading
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from models.loaded import LoadedModel

logger = logging.getLogger(__name__)

COMPILED_MIN_ROWS = 8
# quantize: thresholds become indices into per-feature tables, so a split compares integers; outputs are
# unchanged and the v1.2.5 model predicts ~1.8x faster than without (docs/decisions/0009).
BUILD_PARAMS = {"quantize": 1}
BUILD_TAG = "q1"  # in the cache name: a library built with other parameters is another file
EQUALITY_TOLERANCE = 1e-9  # relative, on the model's raw output


class PredictorBackend(StrEnum):
    LIGHTGBM = "lightgbm"
    COMPILED = "compiled"


class CompileError(RuntimeError):
    """The model could not be compiled or the library did not reproduce LightGBM."""


def find_compiler() -> str | None:
    """The C compiler tl2cgen will call (``CC`` when set), or None when there is none."""
    for candidate in (os.environ.get("CC"), "gcc", "cc", "clang"):
        if candidate and shutil.which(candidate):
            return candidate
    return None


def _toolchain(compiler: str) -> str:
    return "clang" if "clang" in Path(compiler).name else "gcc"


def library_name(model_text: str) -> str:
    """The cache file of a model: what is compiled (the trees' text), with what, for which machine."""
    import tl2cgen

    digest = hashlib.sha256(model_text.encode()).hexdigest()[:32]
    return f"{digest}-tl2cgen{tl2cgen.__version__}-{BUILD_TAG}-{platform.machine()}.so"


def compile_library(model_text: str, directory: Path, *, threads: int = 1) -> Path:
    """The compiled library of a model, from the cache folder or compiled into it now (seconds to minutes)."""
    import lightgbm as lgb
    import tl2cgen
    import treelite

    compiler = find_compiler()
    if compiler is None:
        raise CompileError("no C compiler found")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = directory / library_name(model_text)
    if target.is_file():
        return target
    with open(directory / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
        if target.is_file():
            return target
        for leftover in directory.glob(f".build-{target.name}-*"):  # of a process that died while building
            shutil.rmtree(leftover, ignore_errors=True)
        tree_model = treelite.frontend.from_lightgbm(lgb.Booster(model_str=model_text))
        with tempfile.TemporaryDirectory(dir=directory, prefix=f".build-{target.name}-") as build:
            built = Path(build) / target.name
            try:
                tl2cgen.export_lib(
                    tree_model,
                    toolchain=_toolchain(compiler),
                    libpath=built,
                    params=BUILD_PARAMS | {"parallel_comp": max(1, threads)},
                    nthread=max(1, threads),
                )
            except Exception as exc:
                raise CompileError(f"tl2cgen could not build the library ({type(exc).__name__}: {exc})") from exc
            os.replace(built, target)  # atomic: other processes see no library or a whole one
    return target


class CompiledPredictor:
    """One loaded library. Each thread predicting at once gets a tl2cgen ``Predictor`` of its own (they share
    the mapped library; each keeps its own buffers); ``raw_predict`` answers None only past MAX_CONCURRENT."""

    MAX_CONCURRENT = 8

    def __init__(self, library: Path, n_features: int) -> None:
        self.library = library
        self._n_features = n_features
        self._lock = threading.Lock()
        self._free = [self._load()]
        self.loaded = 1
        self._row_predict = self._load_row_function()
        self._entries = ctypes.c_double * n_features  # one `union Entry` is 8 bytes: a double or an int

    def _load_row_function(self) -> Any:
        # The generated `void predict(union Entry* data, int pred_margin, double* result)`; the handle is the
        # one tl2cgen's Predictor opened (dlopen counts references), so the library stays mapped while used.
        library = ctypes.CDLL(str(self.library))
        # The row function writes one double per target and class: the one-slot result below is right only
        # for a single-output model (ECLO regression), so anything else is refused before it is called.
        library.get_num_target.restype = ctypes.c_int32
        classes = (ctypes.c_int32 * 1)()
        if library.get_num_target() != 1:
            raise CompileError(f"library has {library.get_num_target()} targets, the row function expects 1")
        library.get_num_class(classes)
        if classes[0] != 1:
            raise CompileError(f"library has {classes[0]} classes, the row function expects 1")
        function = library.predict
        function.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        function.restype = None
        return function

    def _load(self) -> Any:
        import tl2cgen

        predictor = tl2cgen.Predictor(self.library, nthread=1)
        if predictor.num_feature != self._n_features:
            raise CompileError(f"library has {predictor.num_feature} features, the model {self._n_features}")
        return predictor

    def _take(self) -> Any | None:
        with self._lock:
            if self._free:
                return self._free.pop()
            if self.loaded >= self.MAX_CONCURRENT:
                return None
            self.loaded += 1
        try:
            return self._load()
        except Exception:
            with self._lock:
                self.loaded -= 1
            raise

    def raw_predict(self, x: np.ndarray) -> np.ndarray | None:
        import tl2cgen

        predictor = self._take()
        if predictor is None:
            return None
        try:
            out = predictor.predict(tl2cgen.DMatrix(x, dtype="float64"), pred_margin=True)
        finally:
            with self._lock:
                self._free.append(predictor)
        return np.asarray(out, dtype=np.float64).reshape(len(x))

    def raw_predict_one(self, row: np.ndarray) -> float:
        """The raw output (pred_margin) of one row of n_features values, NaN meaning missing."""
        values = row.tolist()
        entries = self._entries(*values)  # written by `predict` (it quantizes in place): one per call
        if any(v != v for v in values):  # NaN: tl2cgen marks a missing entry by its int member set to -1
            as_ints = ctypes.cast(entries, ctypes.POINTER(ctypes.c_int32))
            for i, v in enumerate(values):
                if v != v:
                    as_ints[2 * i] = -1  # the int member is an Entry's first 4 bytes
        result = (ctypes.c_double * 1)()  # `predict` adds to it: it starts at 0.0
        self._row_predict(entries, 1, result)
        return result[0]


def probe_matrix(model: LoadedModel) -> np.ndarray:
    """Rows that visit every category code of every categorical feature, unknown codes and missing values,
    with numeric features over a spread of values: what a library must reproduce before it serves."""
    meta = model.metadata
    longest = max([len(v) for v in meta.categories.values()] + [32])
    rows = longest + 2
    rng = np.random.default_rng(20261202)
    columns = []
    for feature in meta.feature_order:
        vocabulary = meta.categories.get(feature)
        if vocabulary is not None:
            codes = np.arange(rows, dtype=np.float64) % (len(vocabulary) + 1)  # len(vocabulary): an unseen code
            columns.append(rng.permutation(codes))
        else:
            columns.append(rng.uniform(-1.0, 2100.0, rows).round())
    matrix = np.column_stack(columns)
    matrix[-1, :] = np.nan
    return np.vstack([matrix, np.zeros((1, len(meta.feature_order)))])


def verify(model: LoadedModel, predictor: CompiledPredictor) -> float:
    """The largest relative difference between the library (as a batch and row by row) and LightGBM on the
    probe matrix; raises when it exceeds the tolerance."""
    x = probe_matrix(model)
    reference = model.lightgbm_raw_predict(x)
    compiled = predictor.raw_predict(x)
    if compiled is None:  # nothing else can hold a predictor that is not attached yet
        raise CompileError("compiled predictor busy during verification")
    one_by_one = np.array([predictor.raw_predict_one(row) for row in x])
    scale = np.maximum(np.abs(reference), 1e-12)
    # One numpy max over both paths: a NaN anywhere makes the difference NaN, which the check below refuses.
    difference = float(np.max(np.abs(np.stack([compiled, one_by_one]) - reference) / scale))
    if not difference <= EQUALITY_TOLERANCE:
        raise CompileError(f"compiled outputs differ from LightGBM by {difference:.3g} (relative)")
    return difference


class ModelCompiler:
    """Attaches a verified compiled predictor to loaded models; disabled when there is no compiler."""

    def __init__(self, directory: Path, *, enabled: bool = True, threads: int = 1) -> None:
        self.directory = directory
        self.threads = threads
        self.enabled = enabled and find_compiler() is not None
        if enabled and not self.enabled:
            logger.info("no C compiler found: models are served by LightGBM only")

    def accelerate(self, model: LoadedModel) -> PredictorBackend:
        """Compile (or reuse) and attach; on any failure the model stays on LightGBM. Blocking: run it in a
        thread, off the request path."""
        if not self.enabled:
            return model.backend
        try:
            library = compile_library(model.artifact.model_text, self.directory, threads=self.threads)
            predictor = CompiledPredictor(library, len(model.metadata.feature_order))
            verify(model, predictor)
        except Exception as exc:
            logger.warning("model %s stays on LightGBM: %s", model.metadata.version, exc)
            with contextlib.suppress(Exception):
                self._discard(model.artifact.model_text)
            return model.backend
        model.attach_compiled(predictor)
        logger.info("model %s: compiled predictor in use (%s)", model.metadata.version, library.name)
        return model.backend

    def _discard(self, model_text: str) -> None:
        """A library that failed verification must not be picked up again from the cache."""
        (self.directory / library_name(model_text)).unlink(missing_ok=True)
