"""From uploaded bytes to a typed Arrow table: decoding, kind detection, kind-specific parsing, Parquet.

Pure functions (no I/O beyond memory) so the API, the workers and the CLI share them. Every rejection
raises a domain error with a Korean message; nothing here stores anything.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from api.datasets.kinds import ACCIDENT_SHAPED_KINDS, DatasetKind, detect_kind, find_coordinate_columns
from api.errors import InvalidInput, UnsupportedMediaType

ENCODINGS_TRIED = ("utf-8", "utf-8-sig", "cp949")
_UTF8_BOM = b"\xef\xbb\xbf"

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


def is_valid_utf8(data: bytes) -> bool:
    """UTF-8 validity without decoding into a Python str (Arrow validates the buffer in place)."""
    if data.isascii():
        return True
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64).tobytes())
    array = pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(data)])
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


def _header(utf8: bytes) -> list[str]:
    """Column names from the first record, parsed by Arrow so quoting rules match the full parse."""
    head = utf8[: 1 << 20]
    last_newline = head.rfind(b"\n")
    if 0 < last_newline < len(head) - 1:
        head = head[: last_newline + 1]  # never hand Arrow a half row
    first = pacsv.read_csv(
        io.BytesIO(head),
        read_options=pacsv.ReadOptions(use_threads=False),
        parse_options=pacsv.ParseOptions(invalid_row_handler=lambda _row: "skip"),
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


def _first_ragged_line(utf8: bytes, names_count: int) -> int | None:
    """Physical line number of the first row with the wrong number of fields (slow path, errors only)."""
    found: list[int | None] = []

    def handler(row: pacsv.InvalidRow) -> str:
        found.append(row.number)
        return "error"

    try:
        pacsv.read_csv(
            io.BytesIO(utf8),
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=handler),
        )
    except pa.ArrowInvalid:
        pass
    return found[0] if found else None


def _read_table(utf8: bytes, names: list[str], kind: DatasetKind) -> pa.Table:
    ragged: list[pacsv.InvalidRow] = []

    def on_invalid_row(row: pacsv.InvalidRow) -> str:
        ragged.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(utf8),
            read_options=pacsv.ReadOptions(block_size=8 << 20),
            parse_options=pacsv.ParseOptions(newlines_in_values=False, invalid_row_handler=on_invalid_row),
            convert_options=pacsv.ConvertOptions(
                column_types=_column_types(kind, names), strings_can_be_null=True, quoted_strings_can_be_null=True
            ),
        )
    except pa.ArrowInvalid as exc:
        raise InvalidInput(
            "CSV 파일을 읽을 수 없습니다. 쉼표로 구분된 표 형식인지 확인해 주세요.",
            detail={"reason": str(exc)[:300]},
        ) from None
    if ragged:
        line = ragged[0].number or _first_ragged_line(utf8, len(names))
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


def parse_csv(data: bytes, *, content_sha256: str | None = None) -> ParsedDataset:
    """Decode, parse and type an uploaded CSV; raise a domain error for anything that is not a usable table."""
    if not data.strip():
        raise InvalidInput("빈 파일입니다. 머리글과 데이터 행이 있는 CSV를 올려 주세요.", detail={"reason": "empty"})
    _reject_binary(data)
    utf8, encoding = decode_to_utf8(data)
    if b"\n" not in utf8.strip():
        raise InvalidInput("머리글만 있고 데이터 행이 없습니다.", detail={"reason": "header_only"})
    try:
        raw_names = _header(utf8)
    except pa.ArrowInvalid as exc:
        raise InvalidInput("CSV 머리글을 읽을 수 없습니다.", detail={"reason": str(exc)[:300]}) from None
    names = _clean_names(raw_names)
    kind = detect_kind(names)
    table = _read_table(utf8, raw_names, kind)
    if table.num_rows == 0:
        raise InvalidInput("머리글만 있고 데이터 행이 없습니다.", detail={"reason": "header_only", "columns": names})
    if names != raw_names:
        table = table.rename_columns(names)
    table = _normalise_columns(table, kind)
    return ParsedDataset(
        table=table,
        kind=kind,
        encoding=encoding,
        content_sha256=content_sha256 or sha256_hex(data),
        size_bytes=len(data),
    )


def to_parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", compression_level=3)
    return sink.getvalue().to_pybytes()


def from_parquet(data: bytes) -> pa.Table:
    return pq.read_table(pa.BufferReader(data))
