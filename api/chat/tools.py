"""Running the analysis tools for a chat turn: lazy pandas frames and the Redis tool-result cache."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
import pandas as pd
import pyarrow as pa

from api.analysis import ToolContext, ToolOutcome, run_tool, tool_dataset_params, tool_uses_dataset, tool_version
from api.chat.cache import ChatCache, digest
from api.observability.metrics import PredictionSource, count_cache, count_predictions
from models.loaded import LoadedModel

# Tools whose answer depends on the served model: the model version is part of their cache key.
MODEL_TOOLS = frozenset({"predict_eclo", "predict_eclo_batch"})


class FrameCache:
    """The pandas frames of recently used datasets (converting a large Arrow table costs ~0.5 s)."""

    def __init__(self, max_frames: int = 6) -> None:
        self.max_frames = max_frames
        self._frames: OrderedDict[str, pd.DataFrame] = OrderedDict()
        self._lock = threading.Lock()

    def frame(self, sha: str, table: pa.Table) -> pd.DataFrame:
        with self._lock:
            cached = self._frames.get(sha)
            if cached is not None:
                self._frames.move_to_end(sha)
                return cached
        frame = table.to_pandas()
        with self._lock:
            self._frames[sha] = frame
            while len(self._frames) > self.max_frames:
                self._frames.popitem(last=False)
        return frame


@dataclass(frozen=True)
class TurnDataset:
    label: str
    sha: str
    table: pa.Table


class LazyFrames(Mapping[str, pd.DataFrame]):
    """label → DataFrame, converted from Arrow only when a tool first reads it."""

    def __init__(self, datasets: list[TurnDataset], cache: FrameCache) -> None:
        self._by_label = {d.label: d for d in datasets}
        self._cache = cache

    def __getitem__(self, label: str) -> pd.DataFrame:
        dataset = self._by_label[label]
        return self._cache.frame(dataset.sha, dataset.table)

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_label)

    def __len__(self) -> int:
        return len(self._by_label)


class TurnTools:
    """The tool runner of one turn: resolves the dataset, consults the cache, runs the tool in a thread."""

    def __init__(
        self, datasets: list[TurnDataset], frames: FrameCache, model: LoadedModel | None, cache: ChatCache
    ) -> None:
        self.datasets = {d.label: d for d in datasets}
        self.context = ToolContext(datasets=LazyFrames(datasets, frames), model=model)
        self.model = model
        self.cache = cache

    def _cache_key(self, name: str, args: dict[str, Any]) -> str | None:
        dataset_sha = None
        if tool_uses_dataset(name):
            label = args.get("dataset")
            if label is None and len(self.datasets) == 1:
                label = next(iter(self.datasets))
            if not isinstance(label, str) or label not in self.datasets:
                return None  # the tool will explain the problem; nothing worth caching
            dataset_sha = self.datasets[label].sha
        else:
            try:
                named = tool_dataset_params(name)
            except KeyError:
                return None
            if named:  # a cross-dataset tool: the datasets' contents, not their labels, key the result
                labels = [args.get(param) for param in named]
                if not all(isinstance(label, str) and label in self.datasets for label in labels):
                    return None
                dataset_sha = ",".join(self.datasets[str(label)].sha for label in labels)
        model_version = None
        if name in MODEL_TOOLS:
            if self.model is None:
                return None
            model_version = self.model.version
        try:
            version = tool_version(name)
        except KeyError:
            return None
        return digest([dataset_sha, name, args, version, model_version])

    async def __call__(self, name: str, args: dict[str, Any]) -> ToolOutcome:
        key = self._cache_key(name, args)
        if key is not None:
            raw = await self.cache.get_tool(key)
            if raw is not None:
                try:
                    outcome = msgspec.json.decode(raw, type=ToolOutcome)
                except msgspec.DecodeError:
                    outcome = None
                if outcome is not None:
                    count_cache("tool", hit=True)
                    record = msgspec.structs.replace(outcome.record, cached=True)
                    return msgspec.structs.replace(outcome, record=record)
            count_cache("tool", hit=False)
        outcome = await asyncio.to_thread(run_tool, name, args, self.context)
        if name in MODEL_TOOLS and outcome.record.ok and self.model is not None:
            count_predictions(self.model.version, PredictionSource.CHAT, outcome.record.rows_touched)
        if key is not None and outcome.record.ok:
            await self.cache.put_tool(key, msgspec.json.encode(outcome))
        return outcome
