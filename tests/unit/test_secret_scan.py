"""The folder scanner really finds a leaked key (so a test built on it can fail), and only a real leak."""

from __future__ import annotations

import base64
import secrets

from api.chat import keybox
from tests.secret_scan import PLACEHOLDER, scan_for_secret

CANARY = "sk-ant-api03-" + "canary" * 15 + "-AA"


def _resp(*parts: bytes) -> bytes:
    """One command as Redis writes it to appendonly.aof (RESP arrays of bulk strings)."""
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def _aof(job_id: int, sealed: bytes) -> bytes:
    """What the embedded Redis appended for one chat job: the sealed key parked with a TTL, later deleted."""
    key = keybox.redis_key(job_id).encode()
    return (
        _resp(b"SELECT", b"0")
        + _resp(b"SET", b"arq:job:chat-7-1-abcd", b"\x81\xa1fchat_job")
        + _resp(b"SET", key, sealed, b"PXAT", b"1767225600000")
        + _resp(b"DEL", key)
    )


def test_a_key_sealed_under_the_placeholder_is_found_in_an_aof(tmp_path):
    sealed = keybox.seal(PLACEHOLDER, 7, CANARY)
    (tmp_path / "redis").mkdir()
    (tmp_path / "redis" / "appendonly.aof").write_bytes(_aof(7, sealed))
    assert CANARY.encode() not in (tmp_path / "redis" / "appendonly.aof").read_bytes()  # only the sealed form

    findings = scan_for_secret(tmp_path, CANARY)
    assert findings == [f"{tmp_path / 'redis' / 'appendonly.aof'}: the key of job 7 opens with a placeholder secret"]


def test_a_sealed_value_without_its_key_name_is_tried_under_plausible_job_ids(tmp_path):
    # As in an RDB snapshot: a length byte that is also a base64 letter ('P' = 80) glued to the value.
    sealed = keybox.seal(PLACEHOLDER, 42, CANARY)
    (tmp_path / "dump.rdb").write_bytes(b"REDIS0011\xfa\x00P" + sealed + b"\xff")
    assert scan_for_secret(tmp_path, CANARY) == [
        f"{tmp_path / 'dump.rdb'}: the key of job 42 opens with a placeholder secret"
    ]


def test_nothing_is_found_when_the_key_was_sealed_under_a_real_secret(tmp_path):
    sealed = keybox.seal(secrets.token_urlsafe(48), 7, CANARY)
    (tmp_path / "appendonly.aof").write_bytes(_aof(7, sealed))
    (tmp_path / "other.log").write_text("chat job 7 failed: AuthenticationError\n", encoding="utf-8")
    assert scan_for_secret(tmp_path, CANARY) == []


def test_the_key_in_clear_text_is_found_raw_and_base64_encoded(tmp_path):
    (tmp_path / "a.log").write_text(f"header X-Anthropic-API-Key: {CANARY}\n", encoding="utf-8")
    (tmp_path / "b.json").write_bytes(b'{"k": "' + base64.b64encode(b'{"key": "' + CANARY.encode() + b'"}') + b'"}')
    findings = scan_for_secret(tmp_path, CANARY)
    assert sorted(findings) == [
        f"{tmp_path / 'a.log'}: the key in clear text",
        f"{tmp_path / 'b.json'}: the key in clear text",
    ]


def test_every_placeholder_can_be_tried(tmp_path):
    (tmp_path / "appendonly.aof").write_bytes(_aof(3, keybox.seal("change-me", 3, CANARY)))
    assert scan_for_secret(tmp_path, CANARY) == []  # only dev-secret-change-me by default
    assert len(scan_for_secret(tmp_path, CANARY, ["dev-secret-change-me", "change-me"])) == 1
