"""Authenticated encryption of a user's Anthropic key on its way to a chat worker.

The key is sealed with AES-256-GCM under a key derived from HAB_SECRET_KEY (HKDF) and bound to the job id
(associated data), stored in Redis with a short TTL under the job's id, and deleted when the job ends. The
job's params, result and arq payload only ever carry the job id.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from api.jobs import sealed

_INFO = b"hab chat job api key v1"
_NONCE_BYTES = 12


class SealedKeyError(ValueError):
    """The sealed key is damaged, belongs to another job, or was sealed under another server secret."""


def _aead(secret: str) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret.encode())
    return AESGCM(derived)


def seal(secret: str, job_id: int, api_key: str) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    return base64.b64encode(nonce + _aead(secret).encrypt(nonce, api_key.encode(), str(job_id).encode()))


def unseal(secret: str, job_id: int, sealed: bytes) -> str:
    try:
        raw = base64.b64decode(sealed, validate=True)
        nonce, body = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        return _aead(secret).decrypt(nonce, body, str(job_id).encode()).decode()
    except (InvalidTag, ValueError) as exc:
        raise SealedKeyError("sealed API key cannot be opened") from exc


redis_key = sealed.redis_key  # where the sealed key waits: the jobs layer owns the name (api/jobs/sealed.py)


SEALED_KEY_TTL_SECONDS = 3600
