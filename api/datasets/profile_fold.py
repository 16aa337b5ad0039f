"""The costly parts of an upload's profile, folded piece by piece while the pieces arrive.

Hashing every value (distinct counts, value counts of text columns) is most of `profile.summarize`'s time
on a large table. Both fold exactly: the distinct values of a column are the distinct values of its pieces'
distinct values, and a value's count is the sum of its counts in the pieces. So each parsed piece is
reduced here, on its own thread, while the next one is received; at the end the reductions are merged and
handed to `summarize`, which computes the rest (missing values, quantiles, means, date ranges,
coordinates: fast vectorised passes) from the whole table as before. The summary is the same as a
whole-table `summarize`.

A text column whose first piece has no repeated value is not folded any further: it is most likely an
identifier, which `summarize` recognises from a sample of the whole column without counting its values
(and if the sample says otherwise, it counts the whole column itself).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from api.datasets.column_values import as_numbers, as_strings, dtype_of, value_counts
from api.datasets.profile import CATEGORICAL_MAX_DISTINCT, FoldedColumn


class _ColumnFold:
    def __init__(self, type_: pa.DataType) -> None:
        self.dtype = dtype_of(type_)
        self.active = True
        self._parts: list[pa.Array] = []  # distinct values per piece (numbers, dates) or values seen
        self._counts: list[np.ndarray] = []
        self._pieces = 0

    def add(self, col: pa.ChunkedArray) -> None:
        if not self.active:
            return
        if self.dtype in ("integer", "float"):
            self._parts.append(pc.unique(as_numbers(col)))
        elif self.dtype == "datetime":
            if pa.types.is_dictionary(col.type):
                col = col.cast(col.type.value_type)
            self._parts.append(pc.unique(col))
        else:
            strings = as_strings(col)
            values, counts = value_counts(strings)
            first = self._pieces == 0
            if first and self.dtype != "boolean" and len(values) > CATEGORICAL_MAX_DISTINCT:
                if len(values) == len(strings) - strings.null_count:  # no repeats: identifier-like
                    self.active = False
                    return
            if len(values):  # (an all-missing piece's empty counts may not have the column's string type)
                self._parts.append(values)
                self._counts.append(counts)
        self._pieces += 1

    def result(self) -> FoldedColumn:
        if not self.active:
            return FoldedColumn()
        if not self._parts:  # no piece had a value
            if self.dtype in ("integer", "float", "datetime"):
                return FoldedColumn(unique=0)
            return FoldedColumn(counts=(pa.array([], pa.large_string()), np.zeros(0, dtype=np.int64)))
        if self.dtype in ("integer", "float", "datetime"):
            distinct = pc.count_distinct(pa.chunked_array(self._parts)).as_py()
            return FoldedColumn(unique=int(distinct))
        if len(self._parts) == 1:
            return FoldedColumn(counts=(self._parts[0], self._counts[0]))
        # Sum each value's counts over the pieces (no Table.group_by: its first call imports Acero, ~0.2 s).
        encoded = pa.concat_arrays(self._parts).dictionary_encode()
        counts = np.bincount(
            encoded.indices.to_numpy(), weights=np.concatenate(self._counts), minlength=len(encoded.dictionary)
        )
        values = encoded.dictionary
        return FoldedColumn(counts=(values, counts.astype(np.int64)))  # exact: counts stay far below 2**53


class ProfileFold:
    """Takes an upload's parsed pieces in order (one thread); `result()` gives `summarize`'s `folded`.

    Pieces must all have the first one's schema; one that does not stops the fold (`result()` is then None).
    """

    def __init__(self) -> None:
        self._schema: pa.Schema | None = None
        self._columns: list[_ColumnFold] = []
        self.failed = False

    def add(self, table: pa.Table) -> None:
        if self.failed:
            return
        if self._schema is None:
            self._schema = table.schema
            self._columns = [_ColumnFold(t) for t in table.schema.types]
        elif table.schema != self._schema:
            self.failed = True
            return
        try:
            for fold, col in zip(self._columns, table.columns, strict=True):
                fold.add(col)
        except BaseException:
            self.failed = True
            raise

    def result(self) -> list[FoldedColumn] | None:
        if self.failed or self._schema is None:
            return None
        return [fold.result() for fold in self._columns]
