"""Look through a folder for an Anthropic key: in clear, or sealed in a way a reader of the folder can open.

The leak this guards against: a chat job's key, sealed by api.chat.keybox under HKDF(HAB_SECRET_KEY), was
written by the embedded Redis to its append-only file, and HAB_SECRET_KEY was the public default. Anyone
who could read the file could open the blob. So besides the clear text (raw, and base64 at every alignment)
the scanner collects every base64 run long enough to be a sealed key and tries to open it with the
placeholder secret(s), under every job id named in the folder (`hab:chat:sealed-key:<id>`) and under the
ids 1..max_job_id (an RDB or a log may keep the value without its key name nearby).

Limits: values Redis stored LZF-compressed in an RDB are not decompressed (random base64 does not compress,
so Redis keeps it raw), and files the scanning user cannot read are reported, not skipped silently.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from api.chat import keybox

PLACEHOLDER = "dev-secret-change-me"
_SEALED_NAME = re.compile(rb"hab:chat:sealed-key:(\d+)")
_NONCE = 12
_TAG = 16
# A sealed key is base64(nonce + ciphertext + tag); keys shorter than this are not Anthropic keys (and
# the bound keeps SHA-256 hex digests, which PostgreSQL files are full of, out of the candidates).
_MIN_KEY_BYTES = 32
_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/]{%d,}={0,2}" % (4 * (_NONCE + _MIN_KEY_BYTES + _TAG) // 3))


def _clear_forms(canary: str) -> list[bytes]:
    """The canary as bytes, and the part of its base64 text that is the same whatever precedes it."""
    raw = canary.encode()
    forms = [raw]
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        start = (shift * 4 + 2) // 3 + 1 if shift else 0  # characters touched by the padding bytes
        stable = encoded[start : len(encoded) - 4]  # the tail depends on what follows
        if len(stable) >= 16:
            forms.append(stable)
    return forms


def _files(folder: Path) -> Iterator[Path]:
    for root, _dirs, names in os.walk(folder, followlinks=False):
        for name in names:
            path = Path(root) / name
            if path.is_file() and not path.is_symlink():
                yield path


def _blobs(run: bytes) -> Iterator[bytes]:
    """Whole base64 strings a run may hold: it can carry a neighbouring length byte or two (RDB) that
    happen to be base64 letters, so every start offset is tried, cut to whole 4-character groups."""
    for offset in range(4):
        candidate = run[offset:]
        candidate = candidate[: len(candidate) - len(candidate) % 4]
        try:
            raw = base64.b64decode(candidate, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(raw) >= _NONCE + _MIN_KEY_BYTES + _TAG:
            yield raw


def _open(raw: bytes, aeads: list[AESGCM], job_ids: list[int]) -> tuple[int, str] | None:
    # keybox's own derivation (HKDF over the secret) and layout (nonce + AES-GCM body, job id as associated
    # data), with the key derived once per secret: the scan tries thousands of (blob, job id) pairs.
    # tests/unit/test_secret_scan.py seals with keybox.seal, so a change of format there fails it.
    nonce, body = raw[:_NONCE], raw[_NONCE:]
    for job_id in job_ids:
        for aead in aeads:
            try:
                return job_id, aead.decrypt(nonce, body, str(job_id).encode()).decode(errors="replace")
            except InvalidTag:
                continue
    return None


def _read(path: Path, findings: list[str]) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError as exc:
        findings.append(f"{path}: could not be read ({exc.strerror}), so it was not checked")
        return None


def scan_for_secret(
    folder: Path,
    canary: str,
    placeholder_secret: str | Iterable[str] = PLACEHOLDER,
    *,
    max_job_id: int = 200,
) -> list[str]:
    """Findings (one line each, naming the file) for `canary` readable from `folder`; empty means none.

    A finding is the canary in clear text, or any sealed key (the canary or another) that opens with one
    of the placeholder secrets.
    """
    secrets = [placeholder_secret] if isinstance(placeholder_secret, str) else list(placeholder_secret)
    aeads = [keybox._aead(secret) for secret in secrets]
    findings: list[str] = []
    named: set[int] = set()
    for path in _files(folder):  # first pass: the job ids whose sealed keys Redis wrote down
        data = _read(path, [])
        if data is not None:
            named.update(int(m) for m in _SEALED_NAME.findall(data))
    job_ids = [*sorted(named), *(i for i in range(1, max_job_id + 1) if i not in named)]
    forms = _clear_forms(canary)
    for path in _files(folder):
        data = _read(path, findings)
        if data is None:
            continue
        if any(form in data for form in forms):
            findings.append(f"{path}: the key in clear text")
        opened_here: set[tuple[int, str]] = set()
        for run in set(_BASE64_RUN.findall(data)):
            for raw in _blobs(run):
                opened = _open(raw, aeads, job_ids)
                if opened is not None:
                    opened_here.add(opened)
        for job_id, plain in sorted(opened_here):
            what = "the key" if plain == canary else "a sealed key"
            findings.append(f"{path}: {what} of job {job_id} opens with a placeholder secret")
    return findings
