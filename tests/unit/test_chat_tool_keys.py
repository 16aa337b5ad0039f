"""Tool-result cache keys of cross-dataset tools follow the datasets' contents, not their labels."""

from __future__ import annotations

import pyarrow as pa
from redis.asyncio import Redis

from api.chat.cache import ChatCache
from api.chat.tools import FrameCache, TurnDataset, TurnTools

TABLE = pa.table({"위도": [35.87], "경도": [128.6]})


def tools(**shas: str) -> TurnTools:
    datasets = [TurnDataset(label=label, sha=sha, table=TABLE) for label, sha in shas.items()]
    # The Redis client is never contacted: only the key is computed here.
    cache = ChatCache(Redis.from_url("redis://127.0.0.1:1"), ttl_seconds=60)
    return TurnTools(datasets, FrameCache(), None, cache)


ARGS = {"source_dataset": "구역", "target_dataset": "CCTV", "radius_m": 300}


def test_the_same_labels_over_other_contents_get_another_key():
    first = tools(구역="a" * 64, CCTV="b" * 64)._cache_key("proximity_analysis", ARGS)
    other = tools(구역="a" * 64, CCTV="c" * 64)._cache_key("proximity_analysis", ARGS)
    swapped = tools(구역="b" * 64, CCTV="a" * 64)._cache_key("proximity_analysis", ARGS)
    assert first is not None and len({first, other, swapped}) == 3
    assert tools(구역="a" * 64, CCTV="b" * 64)._cache_key("proximity_analysis", ARGS) == first


def test_an_unknown_dataset_is_not_cached():
    assert tools(구역="a" * 64)._cache_key("proximity_analysis", ARGS) is None
