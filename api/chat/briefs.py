"""The dataset briefs a chat turn's cache key is made of, remembered per process for cache hits
(docs/decisions/0013).

A brief read here may be stale: the dataset deleted, or its name, content or visibility changed by hand since.
It is only ever used where staleness cannot leak: a cache hit's store statement re-checks every brief it used
(`store_turn_sql(..., recheck=...)`, `_DATASETS_AS_READ` in api/chat/repository.py) and stores nothing when one
no longer holds, and the hit then starts over from fresh reads; a miss never runs the LLM on remembered briefs
(api/chat/hits.py).
"""

from __future__ import annotations

from collections import OrderedDict

from api.datasets.repository import DatasetBrief
from api.users.services import Principal

# Per (caller, selection): about 0.6 KB for one dataset with a short name, up to about 4 KB for five datasets
# with 200-character names (measured with tracemalloc), so at most ~16 MB per process.
MAX_ENTRIES = 4_096

_Key = tuple[int, bool, tuple[int, ...]]


class BriefCache:
    """(caller, requested dataset ids) → the briefs of those datasets, all visible when they were read."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[_Key, tuple[DatasetBrief, ...]] = OrderedDict()

    @staticmethod
    def _key(user: Principal, dataset_ids: list[int]) -> _Key:
        return user.id, user.is_admin, tuple(dataset_ids)

    def get(self, user: Principal, dataset_ids: list[int]) -> tuple[DatasetBrief, ...] | None:
        key = self._key(user, dataset_ids)
        briefs = self._entries.get(key)
        if briefs is not None:
            self._entries.move_to_end(key)
        return briefs

    def put(self, user: Principal, dataset_ids: list[int], briefs: tuple[DatasetBrief, ...]) -> None:
        key = self._key(user, dataset_ids)
        self._entries[key] = briefs
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, user: Principal, dataset_ids: list[int]) -> None:
        self._entries.pop(self._key(user, dataset_ids), None)
