"""Atomic outputs: a crash while writing leaves the previous file whole and no stray temporary files."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bluerec.errors import UserError
from bluerec.io import read_jsonl, write_json_atomic, write_jsonl_atomic, write_text_atomic

OLD = [{"user_id": "u1", "profile": "old"}]


def test_exception_mid_write_keeps_the_previous_file(tmp_path: Path) -> None:
    out = tmp_path / "profiles.jsonl"
    write_jsonl_atomic(out, OLD)

    def rows():
        yield {"user_id": "u1", "profile": "new"}
        raise RuntimeError("crash while writing")

    with pytest.raises(RuntimeError, match="crash while writing"):
        write_jsonl_atomic(out, rows())
    assert read_jsonl(out) == OLD
    assert [p.name for p in tmp_path.iterdir()] == ["profiles.jsonl"]


def test_sigkill_mid_write_keeps_the_previous_file(tmp_path: Path) -> None:
    out = tmp_path / "profiles.jsonl"
    write_jsonl_atomic(out, OLD)
    started = tmp_path / "started"
    script = (
        "import sys, time\nfrom pathlib import Path\nfrom bluerec.io import write_jsonl_atomic\n"
        "def rows():\n"
        "    for i in range(10**6):\n"
        "        yield {'user_id': f'u{i}', 'profile': 'x' * 100}\n"
        "        if i == 1000:\n"
        "            Path(sys.argv[2]).touch()\n"
        "            time.sleep(60)\n"
        "write_jsonl_atomic(sys.argv[1], rows())\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(out), str(started)])
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert proc.poll() is None, "the writer exited early"
            assert time.monotonic() < deadline, "the writer never started"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert read_jsonl(out) == OLD  # the half-written rows went to a hidden temporary sibling only
    assert all(p.name.startswith(".") for p in tmp_path.iterdir() if p.name not in {"profiles.jsonl", "started"})


def test_success_replaces_with_plain_file_permissions(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "result.json"
    write_json_atomic(out, {"a": 1})
    write_text_atomic(tmp_path / "note.md", "é")
    assert out.read_text() == '{\n  "a": 1\n}\n' and (tmp_path / "note.md").read_text(encoding="utf-8") == "é"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    assert write_jsonl_atomic(tmp_path / "rows.jsonl", ({"i": i} for i in range(3))) == 3
    assert read_jsonl(tmp_path / "rows.jsonl") == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_read_jsonl_is_strict_unless_told_to_skip_unreadable_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n\n[1, 2]\n{"step": 2}\n{"step": 3, "loss"', encoding="utf-8")  # a half-written tail
    with pytest.raises(UserError, match=r"metrics\.jsonl, line 5: not a UTF-8 JSON line"):
        read_jsonl(path)
    assert read_jsonl(path, skip_unreadable=True) == [{"step": 1}, {"step": 2}]


def test_read_jsonl_reads_gzipped_rows_and_names_the_line_of_bad_bytes(tmp_path):
    import gzip

    path = tmp_path / "profiles.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write('{"user_id": "u1", "profile": "Likes tea"}\n\n{"user_id": "u2", "profile": "Café"}\n')
    assert read_jsonl(path) == [{"user_id": "u1", "profile": "Likes tea"}, {"user_id": "u2", "profile": "Café"}]
    assert read_jsonl(path, skip_unreadable=True) == read_jsonl(path)
    plain = tmp_path / "gz-bytes.jsonl"  # a gzip file without the .gz suffix: an error naming file and line
    plain.write_bytes(path.read_bytes())
    with pytest.raises(UserError, match=r"gz-bytes\.jsonl, line 1"):
        read_jsonl(plain)
