"""Parsing a CSV that arrives in newline-aligned pieces (see incremental.py), exactly as parse_csv would.

The first piece fixes names, kind, encoding and every column's type; later pieces are read with those.
Whatever a piece cannot settle raises CannotParseInPieces, and parse_csv on the whole body decides.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from api.datasets.column_types import normalise_columns
from api.datasets.csv_reader import is_binary_type, read_layout, read_table
from api.datasets.decoding import as_utf8_text, reject_binary, utf8_head_ok
from api.datasets.kinds import DatasetKind

_PIECE_BLOCK_BYTES = 4 << 20  # Arrow's parallel unit within a piece of a file arriving in pieces


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
    reject_binary(piece)
    text, encoding = as_utf8_text(piece)
    if not utf8_head_ok(text):
        if encoding == "utf-8-sig":
            raise CannotParseInPieces("a BOM but not UTF-8")
        # CP949 never uses the newline byte inside a character, so pieces cut at newlines decode on their own.
        text, encoding = pa.py_buffer(piece.decode("cp949").encode("utf-8")), "cp949"
    raw_names, names, kind = read_layout(text)
    table = read_table(text, raw_names, kind, block_size=_PIECE_BLOCK_BYTES)
    if any(is_binary_type(t) or pa.types.is_null(t) for t in table.schema.types):
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
    table = read_table(
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
    return normalise_columns(table, layout.kind)
