"""Uploaded bytes to UTF-8 text: refusing binary files, and telling UTF-8, UTF-8 with BOM and CP949 apart."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from api.errors import InvalidInput, UnsupportedMediaType

ENCODINGS_TRIED = ("utf-8", "utf-8-sig", "cp949")
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF8_PROBE_BYTES = 1 << 20  # checked up front; Arrow validates the rest while it parses

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


def reject_binary(data: bytes) -> None:
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


def utf8_head_ok(text: pa.Buffer) -> bool:
    """Whether the first MB is UTF-8 (a character cut at the probe's end is fine)."""
    head = text[:_UTF8_PROBE_BYTES].to_pybytes()
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return len(head) == _UTF8_PROBE_BYTES and exc.reason == "unexpected end of data"
    return True


def as_utf8_text(data: bytes) -> tuple[pa.Buffer, str]:
    """The bytes as an Arrow buffer without a UTF-8 BOM (no copy), and their encoding if they are UTF-8."""
    if data.startswith(_UTF8_BOM):
        return pa.py_buffer(data)[len(_UTF8_BOM) :], "utf-8-sig"
    return pa.py_buffer(data), "utf-8"
