"""Output-folder helpers of bluerec.io: writability check, lock, stale work folders, read-only removal."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bluerec.errors import UserError
from bluerec.io import check_output, lock_path, output_lock, remove_stale_siblings, remove_tree, stale_siblings


def test_check_output_refuses_files_and_paths_below_files(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(UserError, match="is an existing file"):
        check_output(f)
    with pytest.raises(UserError, match="is a file, so no folder"):
        check_output(f / "sub" / "out")
    with pytest.raises(UserError, match="is a folder, not a file"):
        check_output(tmp_path, kind="file")
    assert check_output(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # the check creates nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_lock_is_reentrant_and_refuses_a_live_owner(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with output_lock(target):
        with output_lock(target):  # the same process again: fine
            assert lock_path(target).is_file()
        assert lock_path(target).is_file()
    assert not lock_path(target).exists()
    lock_path(target).write_text('{"pid": 1, "host": "elsewhere", "command": "bluerec x", "started": 0}')
    with pytest.raises(UserError, match="pid 1 on elsewhere since 1970-01-01 00:00:00 UTC: bluerec x"):
        with output_lock(target):
            pass


def test_stale_siblings_are_removed_even_read_only(tmp_path: Path) -> None:
    target = tmp_path / "data"
    target.mkdir()
    for name in (".data.work-1", ".data.tmp-2", ".data.old-3"):
        folder = tmp_path / name
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "f.parquet").write_bytes(b"x")
        os.chmod(folder / "sub", stat.S_IRUSR | stat.S_IXUSR)
        os.chmod(folder, stat.S_IRUSR | stat.S_IXUSR)
    (tmp_path / ".other.work-1").mkdir()
    assert len(stale_siblings(target)) == 3
    assert remove_stale_siblings(target) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.work-1", "data"]
    assert remove_tree(tmp_path / "missing")
