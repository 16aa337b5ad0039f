"""Sync-batch request bodies, `{"rows": [...]}`, read straight into Arrow columns.

Litestar's body decoding builds one Python dict per row and then converts (copies) every row into the request
Struct, and `DataFrame.from_records` then walks the objects again. Here msgspec only validates the envelope
and slices out each row's JSON text (no objects), and pyarrow's JSON reader parses the rows into typed columns
in C, several times faster (docs/decisions/0006-sync-batch-arrow-rows.md).

The fast path hands on only columns whose values it keeps exactly as sent: strings, int64 and nulls. Anything
else (a column mixing types, floats, booleans, nested values, a key given twice in a row, invalid UTF-8 or a
number out of range, non-object rows) is decoded the old way, msgspec into dicts, so results and error reports
are the same whichever path a request takes.
"""

from __future__ import annotations

import io
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.json as pajson

from api.predictions.schemas import BatchPredictionRequest

_PLAIN_TYPES = (pa.string(), pa.int64(), pa.null())


class _AnyRows(msgspec.Struct):
    rows: list[Any]


_REQUEST = msgspec.json.Decoder(BatchPredictionRequest)
_ANY = msgspec.json.Decoder()
_ANY_ROWS = msgspec.json.Decoder(_AnyRows)


class BatchRows:
    """The rows of one sync-batch request: counted at once, parsed on demand (in a worker thread)."""

    def __init__(self, body: bytes, raw: list[msgspec.Raw]) -> None:
        self._body = body
        self._raw = raw
        self.count = len(raw)

    def table(self) -> pa.Table | None:
        """The rows as Arrow columns (a key missing from a row reads as null), or None when the fast path
        cannot keep every value exactly as sent: then use dicts()."""
        if not self._raw:
            return None
        try:
            first = _ANY.decode(self._raw[0])
        except (msgspec.MsgspecError, UnicodeDecodeError):
            return None
        if not isinstance(first, dict):
            return None
        lines = b"\n".join(self._raw)
        # The reader turns ISO-looking strings into timestamps, which 사고일시 must not skip past (its own format
        # check accepts less, e.g. no date without an hour). So the columns that are text in the first row are
        # read as text, and any other column that still came out as timestamps is read again as text.
        # A pretty-printed body has line breaks inside rows; the reader then has to look for them.
        text = [(key, pa.string()) for key, value in first.items() if isinstance(value, str)]
        options = pajson.ParseOptions(explicit_schema=pa.schema(text), newlines_in_values=b"\n" in lines)
        try:
            table = pajson.read_json(io.BytesIO(lines), parse_options=options)
            dates = [f.name for f in table.schema if pa.types.is_timestamp(f.type) or pa.types.is_date(f.type)]
            if dates:
                options.explicit_schema = pa.schema(text + [(name, pa.string()) for name in dates])
                table = pajson.read_json(io.BytesIO(lines), parse_options=options)
        except (pa.ArrowException, UnicodeDecodeError, ValueError):
            return None
        if table.num_rows != self.count or any(t not in _PLAIN_TYPES for t in table.schema.types):
            return None
        return table

    def dicts(self) -> list[Any]:
        """The rows as decoded JSON values (normally dicts); msgspec.MsgspecError or UnicodeDecodeError when
        a row holds invalid UTF-8 or a number out of range (the envelope check does not look inside strings
        and numbers)."""
        return _ANY_ROWS.decode(self._body).rows


def decode_batch_body(body: bytes) -> BatchRows:
    """Check the envelope (msgspec.ValidationError / DecodeError) and count the rows; the rows themselves are
    parsed later, by BatchRows.table() or dicts()."""
    return BatchRows(body, _REQUEST.decode(body).rows)
