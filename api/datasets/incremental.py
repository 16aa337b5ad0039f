"""Parsing an uploaded CSV while it is still arriving.

A 133 MB upload reaches the server in chunks over ~0.3 s. Rather than wait for the last byte and then
parse, `StreamingUpload` cuts the body into newline-aligned pieces of `PIECE_BYTES` as it arrives, parses
each piece in one worker thread and Parquet-encodes it in another, while the event loop keeps receiving.
When the last chunk is in, only the tail piece is left to do.

The first piece fixes the names, kind, encoding and every column's type (`parse_first_piece`); later
pieces are read with those types. Anything the pieces cannot settle on their own (not UTF-8, a column
whose type would change later in the file, ragged rows, bad values) makes the stream give up quietly,
and the service parses the whole body with `parse_csv`, which produces the same table or the proper
Korean error. A cut may land inside a quoted value that holds a newline; the piece then ends in an
unterminated quote, which `parse_*_piece(more_follows=True)` notices, and the stream gives up.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

import pyarrow as pa
import pyarrow.parquet as pq

from api.datasets.csv_pieces import CannotParseInPieces, PieceLayout, parse_first_piece, parse_next_piece
from api.datasets.csv_reader import Unreadable
from api.datasets.ingest import ParsedDataset, sha256_hex
from api.datasets.parquet import parquet_writer
from api.errors import DomainError, PayloadTooLarge

logger = logging.getLogger("hab.datasets")

PIECE_BYTES = 8 << 20


def upload_too_large(limit: int, **sizes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"파일이 너무 큽니다. 최대 {limit // (1024 * 1024)} MB까지 올릴 수 있습니다.",
        detail={**sizes, "limit_bytes": limit},
    )


class UploadedCsv:
    """An upload's bytes, kept as the pieces they arrived in, with their size and SHA-256.

    `early` is the table and its Parquet encoding when they were made while the body arrived.
    """

    def __init__(
        self,
        pieces: list[bytes],
        *,
        size: int,
        sha256: str | None,
        early: tuple[ParsedDataset, bytes] | None = None,
    ) -> None:
        self.pieces = pieces
        self.size = size
        self._sha256 = sha256
        self.early = early

    @classmethod
    def from_bytes(cls, data: bytes) -> UploadedCsv:
        return cls([data], size=len(data), sha256=None)

    def release(self) -> None:
        """Drop the raw bytes once the early table is used (a streamed upload knows its hash already)."""
        self.pieces = []

    def content(self) -> bytes:
        """The whole body as one bytes object (joined once, on first use)."""
        if len(self.pieces) != 1:
            self.pieces = [b"".join(self.pieces)]
        return self.pieces[0]

    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = sha256_hex(self.content())
        return self._sha256


class _PieceWork:
    """The thread side: pieces parsed in order on one thread, written to Parquet in order on another."""

    def __init__(self) -> None:
        self.failed = False
        self._lock = threading.Lock()  # give_up() (event loop) against write() (the Parquet thread)
        self._layout: PieceLayout | None = None
        self._tables: list[pa.Table] = []
        self._sink = pa.BufferOutputStream()
        self._writer: pq.ParquetWriter | None = None

    def give_up(self) -> None:
        """Stop, and drop what was parsed and encoded so far (a piece still being parsed is dropped when done)."""
        with self._lock:
            self.failed = True
            self._tables = []
        self._sink = pa.BufferOutputStream()

    def parse(self, piece: bytes, first: bool, last: bool) -> pa.Table | None:
        if self.failed:
            return None
        try:
            if first:
                table, self._layout = parse_first_piece(piece, more_follows=not last)
                return table
            if self._layout is None:
                raise CannotParseInPieces("no layout")
            return parse_next_piece(piece, self._layout, more_follows=not last)
        except (CannotParseInPieces, Unreadable, DomainError, pa.ArrowException, UnicodeError):
            self.failed = True  # the whole-body parse decides, and words the error
        except Exception:
            logger.exception("parsing an upload in pieces failed unexpectedly; parsing it whole instead")
            self.failed = True
        return None

    def write(self, parsed: Future[pa.Table | None]) -> None:
        table = parsed.result()
        if table is None or self.failed:
            return
        try:
            if self._writer is None:
                self._writer = parquet_writer(table.schema, self._sink)
            elif table.schema != self._writer.schema:
                self.failed = True
                return
            self._writer.write_table(table)
            with self._lock:
                if not self.failed:  # given up meanwhile: keep nothing
                    self._tables.append(table)
        except BaseException:
            self.failed = True  # never a table with a piece missing
            raise

    def result(self, size: int, sha256: str) -> tuple[ParsedDataset, bytes] | None:
        writer, self._writer = self._writer, None
        if writer is None:
            return None
        writer.close()
        if self.failed or self._layout is None:
            return None
        table = pa.concat_tables(self._tables)
        if table.num_rows == 0:
            return None  # header only: parse_csv words that error
        parsed = ParsedDataset(
            table=table, kind=self._layout.kind, encoding=self._layout.encoding, content_sha256=sha256, size_bytes=size
        )
        return parsed, self._sink.getvalue().to_pybytes()


class StreamingUpload:
    """Takes an upload chunk by chunk: counts and hashes it, enforces the size limit and parses it on the side.

    Use as `async with StreamingUpload(limit) as stream:` — `feed()` every chunk (on the event loop), then
    `await stream.finish()`. Leaving the block without finishing (an error, a client gone) stops the work.
    """

    def __init__(self, limit: int, *, piece_bytes: int = PIECE_BYTES) -> None:
        self.limit = limit
        self.size = 0
        self._piece_bytes = piece_bytes
        self._digest = hashlib.sha256()
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._pieces: list[bytes] = []
        self._work = _PieceWork()
        self._parse_thread: ThreadPoolExecutor | None = None
        self._write_thread: ThreadPoolExecutor | None = None
        self._finished = False

    async def __aenter__(self) -> StreamingUpload:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._finished:
            self.abort()

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise upload_too_large(self.limit, size_bytes_at_least=self.size)
        self._digest.update(chunk)
        self._pending.append(bytes(chunk))
        self._pending_size += len(chunk)
        if self._pending_size >= self._piece_bytes:
            self._cut_piece()

    def _cut_piece(self) -> None:
        """Emit everything pending up to the last newline of the newest chunk (a long line waits for more)."""
        last = self._pending[-1]
        newline = last.rfind(b"\n")
        if newline == -1:
            return
        rest = last[newline + 1 :]
        self._pending[-1] = last[: newline + 1]
        piece = b"".join(self._pending)
        self._pending, self._pending_size = ([rest], len(rest)) if rest else ([], 0)
        self._emit(piece)

    def _emit(self, piece: bytes, *, last: bool = False) -> None:
        first = not self._pieces
        self._pieces.append(piece)
        if self._work.failed:
            return
        if self._parse_thread is None or self._write_thread is None:
            self._parse_thread = ThreadPoolExecutor(1, thread_name_prefix="upload-parse")
            self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="upload-parquet")
        parsed = self._parse_thread.submit(self._work.parse, piece, first, last)
        self._write_thread.submit(self._work.write, parsed)

    async def finish(self) -> UploadedCsv:
        """Wait for the last piece; the body with, when the pieces all parsed cleanly, its table and Parquet."""
        if self._pending:
            self._emit(b"".join(self._pending), last=True)
            self._pending, self._pending_size = [], 0
        sha = self._digest.hexdigest()
        early = None
        try:
            if self._write_thread is not None:
                # The write thread takes tasks in order: once this no-op has run, every piece is done.
                await asyncio.wrap_future(self._write_thread.submit(lambda: None))
                early = await asyncio.to_thread(self._work.result, self.size, sha)
        finally:
            self._finished = True
            self._shutdown()
        return UploadedCsv(self._pieces, size=self.size, sha256=sha, early=early)

    def abort(self) -> None:
        """Stop the work and drop the body received so far. A refused upload's exception and its traceback
        form a reference cycle with this object's frame, which lives until the cyclic GC next runs: what it
        holds must not be hundreds of MB."""
        self._work.give_up()
        self._shutdown()
        self._pieces, self._pending, self._pending_size = [], [], 0

    def _shutdown(self) -> None:
        for pool in (self._parse_thread, self._write_thread):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
