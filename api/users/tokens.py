"""Bearer and share-link tokens: random, shown once, stored only as SHA-256."""

from __future__ import annotations

import hashlib
import secrets


def new_token(prefix: str) -> str:
    # 32 random bytes: hashing with plain SHA-256 is enough, there is nothing to brute-force.
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
