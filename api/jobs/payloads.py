"""arq payloads as MessagePack instead of pickle: nothing read from Redis can execute code.

Used by both ends of the queue: the API enqueues with it, the workers decode with it."""

from __future__ import annotations

from typing import Any

import msgspec


def _encode_unknown(obj: Any) -> Any:
    # A failed job's result is the exception; keep only its type, since messages can carry user input.
    if isinstance(obj, BaseException):
        return {"exception": type(obj).__name__}
    raise NotImplementedError(f"cannot serialise {type(obj).__name__} into a job payload")


_encoder = msgspec.msgpack.Encoder(enc_hook=_encode_unknown)
_decoder = msgspec.msgpack.Decoder()


def serialize_job(data: Any) -> bytes:
    return _encoder.encode(data)


def deserialize_job(data: bytes) -> Any:
    return _decoder.decode(data)
