"""Arrow's CSV reader over UTF-8 text: the header and cleaned names, the typed read, ragged rows named by line."""

from __future__ import annotations

import io
from collections import Counter

import pyarrow as pa
import pyarrow.csv as pacsv

from api.datasets.column_types import pinned_column_types
from api.datasets.kinds import DatasetKind, detect_kind
from api.errors import InvalidInput


class Unreadable(Exception):
    """Arrow could not read the text as CSV; the argument is Arrow's reason."""


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


def read_table(
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
        column_types = pinned_column_types(kind, names)
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


def _clean_names(names: list[str]) -> list[str]:
    cleaned = [n.strip() or f"열{i + 1}" for i, n in enumerate(names)]
    duplicates = sorted(n for n, count in Counter(cleaned).items() if count > 1)
    if duplicates:
        raise InvalidInput(
            "머리글에 같은 열 이름이 두 번 이상 있습니다: " + ", ".join(duplicates),
            detail={"duplicate_columns": duplicates},
        )
    return cleaned


def read_layout(text: pa.Buffer) -> tuple[list[str], list[str], DatasetKind]:
    """Column names as written, as used (cleaned) and the dataset kind they imply."""
    try:
        raw_names = _header(text)
    except pa.ArrowInvalid as exc:
        raise InvalidInput("CSV 머리글을 읽을 수 없습니다.", detail={"reason": str(exc)[:300]}) from None
    names = _clean_names(raw_names)
    return raw_names, names, detect_kind(names)


def is_binary_type(type_: pa.DataType) -> bool:
    return pa.types.is_binary(type_) or pa.types.is_large_binary(type_)
