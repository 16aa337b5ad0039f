"""From uploaded bytes to a typed Arrow table, in one go: decode, read the CSV, type the columns.

Pure functions (no I/O beyond memory) so the API, the workers and the CLI share them. Every rejection
raises a domain error with a Korean message; nothing here stores anything. The steps live in
decoding.py, csv_reader.py and column_types.py; a file arriving in pieces is parsed by csv_pieces.py,
and Parquet is written and read by parquet.py.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pyarrow as pa

from api.datasets.column_types import normalise_columns
from api.datasets.csv_reader import Unreadable, is_binary_type, read_layout, read_table
from api.datasets.decoding import as_utf8_text, decode_to_utf8, is_valid_utf8, reject_binary, utf8_head_ok
from api.datasets.kinds import DatasetKind
from api.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class ParsedDataset:
    table: pa.Table
    kind: DatasetKind
    encoding: str
    content_sha256: str
    size_bytes: int


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _NotUtf8(Exception):
    """Bytes that looked like UTF-8 turned out not to be: read them again as CP949."""


def _parse_text(text: pa.Buffer, *, utf8_verified: bool) -> tuple[pa.Table, DatasetKind]:
    """Header, kind and typed table of CSV text.

    With ``utf8_verified`` false the text has only had its first MB checked: Arrow validates the rest
    while it converts (invalid bytes fail a string column or turn an inferred one into binary), and
    those signs raise `_NotUtf8` once a full check confirms them.
    """
    raw_names, names, kind = read_layout(text)
    try:
        table = read_table(text, raw_names, kind)
    except Unreadable as exc:
        if not utf8_verified and not is_valid_utf8(text):
            raise _NotUtf8 from None
        raise InvalidInput(
            "CSV 파일을 읽을 수 없습니다. 쉼표로 구분된 표 형식인지 확인해 주세요.",
            detail={"reason": str(exc)[:300]},
        ) from None
    if not utf8_verified and any(is_binary_type(f.type) for f in table.schema) and not is_valid_utf8(text):
        raise _NotUtf8
    if table.num_rows == 0:
        raise InvalidInput("머리글만 있고 데이터 행이 없습니다.", detail={"reason": "header_only", "columns": names})
    if names != raw_names:
        table = table.rename_columns(names)
    return normalise_columns(table, kind), kind


def _empty_file() -> InvalidInput:
    return InvalidInput("빈 파일입니다. 머리글과 데이터 행이 있는 CSV를 올려 주세요.", detail={"reason": "empty"})


def parse_csv(data: bytes, *, content_sha256: str | None = None) -> ParsedDataset:
    """Decode, parse and type an uploaded CSV; raise a domain error for anything that is not a usable table.

    UTF-8 (with or without BOM) is read in place, with no decoding pass of its own; anything else is
    transcoded from CP949 first.
    """
    if not data or data.isspace():
        raise _empty_file()
    reject_binary(data)
    if data.find(b"\n") == -1 and data.find(b"\r") == -1:
        raise InvalidInput("머리글만 있고 데이터 행이 없습니다.", detail={"reason": "header_only"})
    text, encoding = as_utf8_text(data)
    try:
        if not utf8_head_ok(text):
            raise _NotUtf8
        table, kind = _parse_text(text, utf8_verified=False)
    except _NotUtf8:
        utf8, encoding = decode_to_utf8(data)
        if not utf8 or utf8.isspace():
            raise _empty_file() from None
        table, kind = _parse_text(pa.py_buffer(utf8), utf8_verified=True)
    return ParsedDataset(
        table=table,
        kind=kind,
        encoding=encoding,
        content_sha256=content_sha256 or sha256_hex(data),
        size_bytes=len(data),
    )
