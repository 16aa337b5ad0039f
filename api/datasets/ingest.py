"""From uploaded bytes to a typed Arrow table: decoding, kind detection, kind-specific parsing, Parquet.

Pure functions (no I/O beyond memory) so the API, the workers and the CLI share them. Every rejection
raises a domain error with a Korean message; nothing here stores anything.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from api.datasets.kinds import ACCIDENT_SHAPED_KINDS, DatasetKind, detect_kind, find_coordinate_columns
from api.errors import InvalidInput, UnsupportedMediaType

ENCODINGS_TRIED = ("utf-8", "utf-8-sig", "cp949")
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF8_PROBE_BYTES = 1 << 20  # checked up front; Arrow validates the rest while it parses
_PIECE_BLOCK_BYTES = 4 << 20  # Arrow's parallel unit within a piece of a file arriving in pieces

# File signatures of formats people upload by mistake instead of CSV.
_BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "ZIP/XLSX"),
    (b"\xd0\xcf\x11\xe0", "XLS"),
    (b"%PDF", "PDF"),
    (b"\x89PNG", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x1f\x8b", "GZIP"),
    (b"PAR1", "Parquet"),
)

# Columns that hold calendar years (written as floats like 2010.0 in public files) and must stay integers.
_YEAR_COLUMNS = ("설치연도",)
ACCIDENT_TIME_COLUMN = "사고일시"
ACCIDENT_TIME_FORMAT = "%Y-%m-%d %H"
_ACCIDENT_TIME_FALLBACKS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M")


_SECOND_UNIT_TYPES = {pa.time32("s"): pa.time32("ms"), pa.timestamp("s"): pa.timestamp("ms")}


@dataclass(frozen=True, slots=True)
class ParsedDataset:
    table: pa.Table
    kind: DatasetKind
    encoding: str
    content_sha256: str
    size_bytes: int


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _reject_binary(data: bytes) -> None:
    for signature, label in _BINARY_SIGNATURES:
        if data.startswith(signature):
            raise UnsupportedMediaType(
                f"CSV 파일이 아닙니다({label} 형식으로 보입니다). CSV로 저장한 뒤 다시 올려 주세요.",
                detail={"detected": label},
            )
    if b"\x00" in data[:65536]:
        raise UnsupportedMediaType(
            "CSV 텍스트 파일이 아닌 이진(binary) 파일입니다. CSV로 저장한 뒤 다시 올려 주세요.",
            detail={"detected": "binary"},
        )


def is_valid_utf8(data: bytes | pa.Buffer) -> bool:
    """UTF-8 validity without decoding into a Python str (Arrow validates the buffer in place)."""
    buffer = data if isinstance(data, pa.Buffer) else pa.py_buffer(data)
    offsets = pa.py_buffer(np.array([0, buffer.size], dtype=np.int64).tobytes())
    array = pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, buffer])
    try:
        array.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def decode_to_utf8(data: bytes) -> tuple[bytes, str]:
    """Return UTF-8 bytes (no BOM) and the encoding the file was in: UTF-8, UTF-8 with BOM, then CP949."""
    if data.startswith(_UTF8_BOM):
        body = data[len(_UTF8_BOM) :]
        if is_valid_utf8(body):
            return body, "utf-8-sig"
    elif is_valid_utf8(data):
        return data, "utf-8"
    try:
        # CP949 is a superset of EUC-KR, so this covers both.
        return data.decode("cp949").encode("utf-8"), "cp949"
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            "파일의 문자 인코딩을 알 수 없습니다. UTF-8, UTF-8(BOM), CP949/EUC-KR 중 하나로 저장해 주세요.",
            detail={"encodings_tried": list(ENCODINGS_TRIED), "byte_offset": exc.start},
        ) from None


def _header(text: pa.Buffer) -> list[str]:
    """Column names from the first record, parsed by Arrow so quoting rules match the full parse."""
    head = text[: 1 << 20].to_pybytes()
    last_newline = head.rfind(b"\n")
    if 0 < last_newline < len(head) - 1:
        head = head[: last_newline + 1]  # never hand Arrow a half row
    first = pacsv.read_csv(
        io.BytesIO(head),
        read_options=pacsv.ReadOptions(use_threads=False),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=lambda _row: "skip"),
    )
    return list(first.column_names)


def _column_types(kind: DatasetKind, names: list[str]) -> dict[str, pa.DataType]:
    """Columns that must not be left to type inference."""
    types: dict[str, pa.DataType] = {}
    if kind in ACCIDENT_SHAPED_KINDS:
        # Every accident column except the casualty counts is text; 사고일시 is parsed afterwards so that
        # a bad value is reported by row rather than failing inference for the whole file.
        numeric = {"사망자수", "중상자수", "경상자수", "부상자수", "ECLO"}
        types.update({n: pa.string() for n in names if n not in numeric})
    coords = find_coordinate_columns(names)
    if coords:
        types[coords.lat] = pa.string()
        types[coords.lon] = pa.string()
    for year_col in _YEAR_COLUMNS:
        if year_col in names:
            types[year_col] = pa.string()
    return types


def _first_ragged_line(text: pa.Buffer) -> int | None:
    """Physical line number of the first row with the wrong number of fields (slow path, errors only)."""
    found: list[int | None] = []

    def handler(row: pacsv.InvalidRow) -> str:
        found.append(row.number)
        return "error"

    try:
        pacsv.read_csv(
            pa.BufferReader(text),
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=handler),
        )
    except pa.ArrowInvalid:
        pass
    return found[0] if found else None


def _read_table(
    text: pa.Buffer,
    names: list[str],
    kind: DatasetKind,
    *,
    continuation_types: dict[str, pa.DataType] | None = None,
    block_size: int = 8 << 20,
) -> pa.Table:
    """The CSV text as a table. With `continuation_types` the text is a later piece of a file (no header
    line) whose every column type is already known from the first piece."""
    ragged: list[pacsv.InvalidRow] = []

    def on_invalid_row(row: pacsv.InvalidRow) -> str:
        ragged.append(row)
        return "skip"

    if continuation_types is None:
        read_options = pacsv.ReadOptions(block_size=block_size)
        column_types = _column_types(kind, names)
    else:
        read_options = pacsv.ReadOptions(block_size=block_size, column_names=names)
        column_types = continuation_types
    try:
        table = pacsv.read_csv(
            pa.BufferReader(text),
            read_options=read_options,
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid_row),
            convert_options=pacsv.ConvertOptions(
                column_types=column_types, strings_can_be_null=True, quoted_strings_can_be_null=True
            ),
        )
    except pa.ArrowInvalid as exc:
        raise Unreadable(str(exc)) from None
    if ragged:
        line = ragged[0].number or _first_ragged_line(text)
        raise InvalidInput(
            f"{line}번째 줄의 열 개수가 머리글과 다릅니다(머리글 {ragged[0].expected_columns}개, "
            f"해당 줄 {ragged[0].actual_columns}개).",
            detail={
                "line": line,
                "expected_columns": ragged[0].expected_columns,
                "actual_columns": ragged[0].actual_columns,
                "bad_rows": len(ragged),
            },
        )
    return table


def _normalise_columns(table: pa.Table, kind: DatasetKind) -> pa.Table:
    names = table.column_names
    coords = find_coordinate_columns(names)
    columns: list[pa.Array | pa.ChunkedArray] = []
    for name in names:
        col = table.column(name)
        if pa.types.is_null(col.type):
            col = col.cast(pa.string())  # an all-empty column is still a text column
        elif col.type in _SECOND_UNIT_TYPES:
            # Parquet has no seconds unit: store what a reload gives, so fresh and reloaded tables match.
            col = col.cast(_SECOND_UNIT_TYPES[col.type])
        if name == ACCIDENT_TIME_COLUMN and kind in ACCIDENT_SHAPED_KINDS:
            col = _parse_accident_time(col)
        elif name in _YEAR_COLUMNS:
            col = _parse_year(name, col)
        elif coords and name in (coords.lat, coords.lon):
            # Non-numeric coordinates become missing; the profile counts them as such.
            col = _to_float_or_null(col)
        columns.append(col)
    return pa.table(columns, names=names)


def _to_float_or_null(col: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
        return col.cast(pa.float64())
    text = pc.utf8_trim_whitespace(col)
    numeric_like = pc.match_substring_regex(text, r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
    return pc.if_else(numeric_like, text, pa.scalar(None, pa.string())).cast(pa.float64())


def _parse_accident_time(col: pa.ChunkedArray) -> pa.ChunkedArray:
    # Milliseconds: Parquet has no seconds unit, and a table must look the same fresh and reloaded.
    parsed = pc.strptime(col, format=ACCIDENT_TIME_FORMAT, unit="ms", error_is_null=True)
    if pc.any(pc.and_(pc.is_valid(col), pc.is_null(parsed))).as_py():
        # Files re-saved by spreadsheets carry minutes/seconds ("2019-01-01 00:00:00.000"): accept those too.
        head = pc.utf8_slice_codeunits(col, 0, 19)
        for fmt in _ACCIDENT_TIME_FALLBACKS:
            parsed = pc.coalesce(parsed, pc.strptime(head, format=fmt, unit="ms", error_is_null=True))
    bad = pc.and_(pc.is_valid(col), pc.is_null(parsed))
    bad_count = pc.sum(bad).as_py() or 0
    if bad_count:
        first = pc.index(bad, True).as_py()
        raise InvalidInput(
            f"사고일시 값 '{col[first].as_py()}'(데이터 {first + 1}번째 행)을 읽을 수 없습니다. "
            "'YYYY-MM-DD HH' 형식(예: 2019-01-01 00)이어야 합니다.",
            detail={
                "column": ACCIDENT_TIME_COLUMN,
                "row": first + 1,
                "value": col[first].as_py(),
                "invalid_count": bad_count,
            },
        )
    return parsed


def _parse_year(name: str, col: pa.ChunkedArray) -> pa.ChunkedArray:
    """'2010.0' → 2010 (an integer year, never a timestamp)."""
    as_float = _to_float_or_null(col)
    fractional = pc.and_(pc.is_valid(as_float), pc.not_equal(pc.floor(as_float), as_float))
    if pc.any(fractional).as_py():
        first = pc.index(fractional, True).as_py()
        raise InvalidInput(
            f"{name} 열의 값 '{col[first].as_py()}'은 연도가 아닙니다.",
            detail={"column": name, "row": first + 1, "value": col[first].as_py()},
        )
    return as_float.cast(pa.int64())


def _clean_names(names: list[str]) -> list[str]:
    cleaned = [n.strip() or f"열{i + 1}" for i, n in enumerate(names)]
    seen: set[str] = set()
    duplicates = sorted({n for n in cleaned if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if duplicates:
        raise InvalidInput(
            "머리글에 같은 열 이름이 두 번 이상 있습니다: " + ", ".join(duplicates),
            detail={"duplicate_columns": duplicates},
        )
    return cleaned


class Unreadable(Exception):
    """Arrow could not read the text as CSV; the argument is Arrow's reason."""


class _NotUtf8(Exception):
    """Bytes that looked like UTF-8 turned out not to be: read them again as CP949."""


def _utf8_head_ok(text: pa.Buffer) -> bool:
    """Whether the first MB is UTF-8 (a character cut at the probe's end is fine)."""
    head = text[:_UTF8_PROBE_BYTES].to_pybytes()
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return len(head) == _UTF8_PROBE_BYTES and exc.reason == "unexpected end of data"
    return True


def _layout(text: pa.Buffer) -> tuple[list[str], list[str], DatasetKind]:
    """Column names as written, as used (cleaned) and the dataset kind they imply."""
    try:
        raw_names = _header(text)
    except pa.ArrowInvalid as exc:
        raise InvalidInput("CSV 머리글을 읽을 수 없습니다.", detail={"reason": str(exc)[:300]}) from None
    names = _clean_names(raw_names)
    return raw_names, names, detect_kind(names)


def _parse_text(text: pa.Buffer, *, utf8_verified: bool) -> tuple[pa.Table, DatasetKind]:
    """Header, kind and typed table of CSV text.

    With ``utf8_verified`` false the text has only had its first MB checked: Arrow validates the rest
    while it converts (invalid bytes fail a string column or turn an inferred one into binary), and
    those signs raise `_NotUtf8` once a full check confirms them.
    """
    raw_names, names, kind = _layout(text)
    try:
        table = _read_table(text, raw_names, kind)
    except Unreadable as exc:
        if not utf8_verified and not is_valid_utf8(text):
            raise _NotUtf8 from None
        raise InvalidInput(
            "CSV 파일을 읽을 수 없습니다. 쉼표로 구분된 표 형식인지 확인해 주세요.",
            detail={"reason": str(exc)[:300]},
        ) from None
    if not utf8_verified and any(_is_binary(f.type) for f in table.schema) and not is_valid_utf8(text):
        raise _NotUtf8
    if table.num_rows == 0:
        raise InvalidInput("머리글만 있고 데이터 행이 없습니다.", detail={"reason": "header_only", "columns": names})
    if names != raw_names:
        table = table.rename_columns(names)
    return _normalise_columns(table, kind), kind


def _is_binary(type_: pa.DataType) -> bool:
    return pa.types.is_binary(type_) or pa.types.is_large_binary(type_)


def _empty_file() -> InvalidInput:
    return InvalidInput("빈 파일입니다. 머리글과 데이터 행이 있는 CSV를 올려 주세요.", detail={"reason": "empty"})


def _as_utf8_text(data: bytes) -> tuple[pa.Buffer, str]:
    """The bytes as an Arrow buffer without a UTF-8 BOM (no copy), and their encoding if they are UTF-8."""
    if data.startswith(_UTF8_BOM):
        return pa.py_buffer(data)[len(_UTF8_BOM) :], "utf-8-sig"
    return pa.py_buffer(data), "utf-8"


def parse_csv(data: bytes, *, content_sha256: str | None = None) -> ParsedDataset:
    """Decode, parse and type an uploaded CSV; raise a domain error for anything that is not a usable table.

    UTF-8 (with or without BOM) is read in place, with no decoding pass of its own; anything else is
    transcoded from CP949 first.
    """
    if not data or data.isspace():
        raise _empty_file()
    _reject_binary(data)
    if data.find(b"\n") == -1 and data.find(b"\r") == -1:
        raise InvalidInput("머리글만 있고 데이터 행이 없습니다.", detail={"reason": "header_only"})
    text, encoding = _as_utf8_text(data)
    try:
        if not _utf8_head_ok(text):
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


# ---- a file arriving in pieces (see api/datasets/incremental.py) ------------------------------------


class CannotParseInPieces(Exception):
    """This file must be judged whole: parse_csv on the complete body decides (and words any error)."""


@dataclass(frozen=True, slots=True)
class PieceLayout:
    """What the first piece of a file fixes for the rest: names, kind, encoding and every column's type."""

    raw_names: list[str]
    names: list[str]
    kind: DatasetKind
    encoding: str
    read_types: dict[str, pa.DataType]


def parse_first_piece(piece: bytes, *, more_follows: bool) -> tuple[pa.Table, PieceLayout]:
    """The first newline-aligned piece of a CSV, parsed and typed exactly as parse_csv would parse it.

    Raises CannotParseInPieces (or a domain or decoding error) for anything that needs the whole file:
    bytes valid in neither UTF-8 nor CP949, a column whose type is not settled yet (all empty, or not
    UTF-8 after a UTF-8 start), ragged rows, bad values.
    """
    if not piece or piece.isspace():
        raise CannotParseInPieces("blank start")
    _reject_binary(piece)
    text, encoding = _as_utf8_text(piece)
    if not _utf8_head_ok(text):
        if encoding == "utf-8-sig":
            raise CannotParseInPieces("a BOM but not UTF-8")
        # CP949 never uses the newline byte inside a character, so pieces cut at newlines decode on their own.
        text, encoding = pa.py_buffer(piece.decode("cp949").encode("utf-8")), "cp949"
    raw_names, names, kind = _layout(text)
    table = _read_table(text, raw_names, kind, block_size=_PIECE_BLOCK_BYTES)
    if any(_is_binary(t) or pa.types.is_null(t) for t in table.schema.types):
        raise CannotParseInPieces("a column type is not settled by the first piece")
    if more_follows:
        _check_cut(table)
    layout = PieceLayout(
        raw_names=raw_names,
        names=names,
        kind=kind,
        encoding=encoding,
        read_types=dict(zip(raw_names, table.schema.types, strict=True)),
    )
    return _finish_piece(table, layout), layout


def parse_next_piece(piece: bytes, layout: PieceLayout, *, more_follows: bool) -> pa.Table:
    """A later piece (no header line), read with the types the first piece fixed."""
    if layout.encoding == "cp949":
        piece = piece.decode("cp949").encode("utf-8")
    table = _read_table(
        pa.py_buffer(piece),
        layout.raw_names,
        layout.kind,
        continuation_types=layout.read_types,
        block_size=_PIECE_BLOCK_BYTES,
    )
    if more_follows:
        _check_cut(table)
    return _finish_piece(table, layout)


def _check_cut(table: pa.Table) -> None:
    """Refuse a piece that was cut inside a quoted value.

    Pieces are cut after a newline, and a quoted value may hold newlines. Cut inside one, the piece ends in
    an unterminated quote, which Arrow reads as a value running to the end of the piece, so it ends with the
    newline the cut followed (a quoted numeric value fails conversion, and a row left short is ragged, which
    fail earlier). A value that really ends with a newline is refused too: the whole-body parse then decides.
    """
    if table.num_rows == 0:
        return
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            last = column[-1].as_py()
            if last is not None and last.endswith(("\n", "\r")):
                raise CannotParseInPieces("the piece may end inside a quoted value")


def _finish_piece(table: pa.Table, layout: PieceLayout) -> pa.Table:
    if layout.names != layout.raw_names:
        table = table.rename_columns(layout.names)
    return _normalise_columns(table, layout.kind)


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
