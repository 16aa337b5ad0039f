"""Tables to Parquet bytes and back (zstd; the same settings for whole tables and streamed writes)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


def parquet_writer(schema: pa.Schema, sink: pa.BufferOutputStream) -> pq.ParquetWriter:
    """A Parquet writer with the settings `to_parquet` uses."""
    return pq.ParquetWriter(sink, schema, **_parquet_options(schema))


def _parquet_options(schema: pa.Schema) -> dict[str, Any]:
    # Min/max statistics of text columns are a large share of the write (docs/decisions/0002) and
    # nothing reads them: datasets are always loaded whole. Numbers and dates keep theirs.
    with_stats = [f.name for f in schema if not (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))]
    return {"compression": "zstd", "compression_level": 3, "write_statistics": with_stats or False}


def to_parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **_parquet_options(table.schema))
    return sink.getvalue().to_pybytes()


def from_parquet(data: bytes) -> pa.Table:
    return pq.read_table(pa.BufferReader(data))
