"""Owner-only folders and files for the data folder and env/."""

from __future__ import annotations

import os
import stat

import pytest

from api.local.private import make_private_dir, private_umask


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_folder_and_its_missing_parents_are_created_owner_only(tmp_path):
    made = make_private_dir(tmp_path / "a" / "data")
    assert made == tmp_path / "a" / "data" and _mode(made) == 0o700


def test_an_existing_open_folder_is_narrowed(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    folder.chmod(0o755)
    make_private_dir(folder)
    assert _mode(folder) == 0o700
    make_private_dir(folder, others_may_traverse=True)
    assert _mode(folder) == 0o711  # others may pass through to a server's own folder, never list it


def test_a_shared_sticky_folder_is_refused_and_left_alone(tmp_path):
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    with pytest.raises(ValueError, match="shared folder"):
        make_private_dir(shared)
    assert _mode(shared) == 0o1777


def test_private_umask_makes_new_files_owner_only_and_is_restored(tmp_path):
    before = os.umask(0o022)
    try:
        with private_umask():
            (tmp_path / "appendonly.aof").write_bytes(b"x")
            (tmp_path / "sub").mkdir()
        (tmp_path / "after.txt").write_bytes(b"x")
        assert os.umask(0o022) == 0o022  # restored
    finally:
        os.umask(before)
    assert _mode(tmp_path / "appendonly.aof") == 0o600 and _mode(tmp_path / "sub") == 0o700
    assert _mode(tmp_path / "after.txt") == 0o644
