"""Receiving an uploaded CSV: the request body streamed into memory and hashed while it arrives.

Litestar's own form parsing spools a file part to a temporary file on disk (one thread hop per chunk) and
the upload then needs a second pass to hash it; the way below is measurably faster, hashing included
(docs/decisions/0002-streamed-upload-parsing.md). Here the
multipart stream goes through `multipart.PushMultipartParser` (the incremental parser Litestar uses too)
as chunks arrive: the file part goes to a `StreamingUpload` (hashed, size-limited and parsed while it
arrives; see incremental.py), a few short text fields are collected, and the size limit ends the
transfer as soon as it is passed. The raw-body route feeds the same `StreamingUpload`.

Memory: every upload being received holds its body (up to the limit) and its parse, so `UploadSlots` lets
only `HAB_UPLOAD_SLOTS` of them in at once per process; the others wait (then get a 503) before a byte of
their body is read. When the last one in is done, the allocators are asked to return their free pages. An upload
refused part-way answers with `Connection: close`, so the server drops the rest instead of reading it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from litestar import Request
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from multipart import MultipartSegment, ParserError, ParserLimitReached, PushMultipartParser

from api.datasets.incremental import StreamingUpload, UploadedCsv, upload_too_large
from api.datasets.kinds import Visibility
from api.errors import BadRequest, DomainError, ServiceUnavailable, UnsupportedMediaType
from api.observability.metrics import upload_failures_counted

logger = logging.getLogger("hab.datasets")

FILE_FIELD = "file"
TEXT_FIELDS = ("name", "visibility")
MAX_TEXT_FIELD_BYTES = 4096
MAX_FORM_PARTS = 16


@dataclass(slots=True)
class ReceivedFile:
    upload: UploadedCsv
    filename: str | None = None
    fields: dict[str, str] = field(default_factory=dict)


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def _give_back_freed_memory() -> None:
    """glibc and Arrow's allocator keep freed memory for reuse (api/runtime.py); once no upload is in, return
    their free pages.

    A cyclic collection goes first: a refused upload's exception, its traceback and the request's frames form
    cycles that keep the request's objects alive until the GC next runs, which an idle server may not do for
    minutes. Then glibc's free heap pages go back at once (`malloc_trim`); Arrow's jemalloc pool is asked to
    purge, and its background thread returns the rest within its decay time (`HAB_MEMORY_REUSE_SECONDS`).
    """
    import pyarrow as pa

    before = _rss_mb()
    collected = gc.collect()
    pa.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).malloc_trim(0)
    logger.info(
        "uploads done: RSS %.0f -> %.0f MB (%d objects collected, Arrow holds %.0f MB)",
        before,
        _rss_mb(),
        collected,
        pa.total_allocated_bytes() / 2**20,
    )


class UploadSlots:
    """At most `slots` uploads of this process are received at once; the rest wait up to `wait_seconds`."""

    def __init__(self, slots: int, wait_seconds: float) -> None:
        self.slots = slots
        self.wait_seconds = wait_seconds
        self._semaphore = asyncio.Semaphore(slots)
        self.active = 0

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        try:
            await asyncio.wait_for(self._semaphore.acquire(), timeout=self.wait_seconds)
        except TimeoutError:
            raise ServiceUnavailable(
                "지금은 다른 업로드를 처리하고 있습니다. 잠시 후 다시 올려 주세요.",
                detail={"reason": "upload_slots_busy", "slots": self.slots},
                headers={"Retry-After": "5", "Connection": "close"},
            ) from None
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1
            self._semaphore.release()
            if self.active == 0:  # a moment later: the request's own references to the body go first
                asyncio.get_running_loop().call_later(1.0, self._trim_if_idle)

    def _trim_if_idle(self) -> None:
        if self.active == 0:
            asyncio.get_running_loop().run_in_executor(None, _give_back_freed_memory)


def upload_slots(request: Request[Any, Any, Any]) -> UploadSlots:
    """This app's slots (made on first use, in the server's event loop). The upload routes hold one from before
    the body is read until the dataset is stored."""
    state = request.app.state
    slots = state.get("upload_slots")
    if slots is None:
        settings = request.app.state.resources.settings
        slots = UploadSlots(settings.upload_slots, settings.upload_slot_wait_seconds)
        state["upload_slots"] = slots
    return slots


@contextlib.asynccontextmanager
async def _receiving() -> AsyncIterator[None]:
    """An error before the body is read through closes the connection (rather than reading the rest)."""
    try:
        yield
    except DomainError as exc:
        exc.headers.setdefault("Connection", "close")
        raise


@upload_failures_counted
async def receive_body(request: Request[Any, Any, Any], limit: int) -> ReceivedFile:
    """The whole request body as the file (Content-Type text/csv uploads)."""
    async with _receiving(), StreamingUpload(limit) as stream:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:  # refused before a byte of it is read
            raise upload_too_large(limit, size_bytes=int(declared))
        async for chunk in request.stream():
            if chunk:
                stream.feed(chunk)
        return ReceivedFile(upload=await stream.finish())


def _boundary(request: Request[Any, Any, Any]) -> str:
    media_type, options = request.content_type
    if media_type != "multipart/form-data":
        raise UnsupportedMediaType(
            "업로드는 multipart/form-data 형식으로, CSV 파일을 file 필드에 담아 보내 주세요.",
            detail={"content_type": media_type or None, "expected": "multipart/form-data"},
        )
    boundary = options.get("boundary")
    if not boundary:
        raise BadRequest("multipart 경계(boundary)가 Content-Type에 없습니다.", detail={"reason": "no_boundary"})
    return boundary


class _FormReader:
    """Collects the parts the multipart parser yields: the file into a sink, short text fields as text."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.file: StreamingUpload | None = None
        self.filename: str | None = None
        self.fields: dict[str, str] = {}
        self._segment: MultipartSegment | None = None
        self._text = bytearray()

    def abort(self) -> None:
        if self.file is not None:
            self.file.abort()

    def feed(self, part: MultipartSegment | bytes | bytearray | memoryview | None) -> None:
        if isinstance(part, MultipartSegment):
            self._start(part)
        elif part:
            self._data(part)
        elif self._segment is not None:  # the end of a part
            if self._segment.name in TEXT_FIELDS:
                self.fields[self._segment.name] = _text_value(self._segment.name, self._text)
            self._segment = None

    def _start(self, segment: MultipartSegment) -> None:
        self._segment, self._text = segment, bytearray()
        if segment.name == FILE_FIELD:
            if self.file is not None:
                raise BadRequest("파일은 한 번에 하나만 올릴 수 있습니다.", detail={"field": FILE_FIELD})
            self.file, self.filename = StreamingUpload(self.limit), segment.filename

    def _data(self, chunk: bytes | bytearray | memoryview) -> None:
        segment = self._segment
        if segment is not None and segment.name == FILE_FIELD and self.file is not None:
            self.file.feed(chunk)
            return
        self._text += chunk
        if len(self._text) > MAX_TEXT_FIELD_BYTES:
            raise BadRequest(
                "폼 필드 값이 너무 깁니다.",
                detail={"field": segment.name if segment else None, "limit_bytes": MAX_TEXT_FIELD_BYTES},
            )


@upload_failures_counted
async def receive_form(request: Request[Any, Any, Any], limit: int) -> ReceivedFile:
    """The `file` part of a multipart form (hashed and parsed while it arrives) and its short text fields."""
    boundary = _boundary(request)
    async with _receiving():
        return await _read_form(request, boundary, limit)


async def _read_form(request: Request[Any, Any, Any], boundary: str, limit: int) -> ReceivedFile:
    reader = _FormReader(limit)
    try:
        with PushMultipartParser(boundary, max_segment_count=MAX_FORM_PARTS) as parser:
            async for chunk in request.stream():
                if chunk:  # an empty chunk would tell the parser that the stream has ended
                    for part in parser.parse(chunk):
                        reader.feed(part)
            for part in parser.parse(b""):  # the end of the stream: an unfinished form raises here
                reader.feed(part)
        if reader.file is None:
            raise BadRequest(
                "file 필드에 CSV 파일이 없습니다. 올릴 파일을 file 필드에 담아 보내 주세요.",
                detail={"field": FILE_FIELD, "fields": sorted(reader.fields)},
            )
        upload = await reader.file.finish()
    except (ParserError, ParserLimitReached) as exc:
        reader.abort()
        raise BadRequest("multipart 본문의 형식이 올바르지 않습니다.", detail={"reason": str(exc)[:200]}) from None
    except BaseException:
        reader.abort()
        raise
    return ReceivedFile(upload=upload, filename=reader.filename, fields=reader.fields)


def _text_value(name: str, raw: bytearray) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"{name} 필드는 UTF-8 텍스트여야 합니다.", detail={"field": name}) from None


@dataclass
class MultipartUploadOperation(Operation):
    """OpenAPI for the upload route, whose body is read by `receive_form` rather than by Litestar."""

    def __post_init__(self) -> None:
        schema = Schema(
            type=OpenAPIType.OBJECT,
            required=[FILE_FIELD],
            properties={
                FILE_FIELD: Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, description="CSV 파일"),
                "name": Schema(type=OpenAPIType.STRING, description="데이터셋 이름 (기본: 파일 이름)"),
                "visibility": Schema(
                    type=OpenAPIType.STRING,
                    enum=[str(v) for v in Visibility],
                    default=str(Visibility.PRIVATE),
                    description="공개 범위",
                ),
            },
        )
        self.request_body = RequestBody(content={"multipart/form-data": OpenAPIMediaType(schema=schema)}, required=True)


@dataclass
class CsvBodyUploadOperation(Operation):
    """OpenAPI for the raw-body upload route, whose body is read by `receive_body`."""

    def __post_init__(self) -> None:
        schema = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, description="CSV 파일 내용 그대로")
        self.request_body = RequestBody(content={"text/csv": OpenAPIMediaType(schema=schema)}, required=True)
