"""Atomic output: every file is written to a temporary sibling and renamed into place, so a crash
never leaves a half-written JSON, JSONL or Parquet file behind.

Output folders also get: a check that the location is writable before any work (:func:`check_output`), a
lock naming the process that writes them (:func:`output_lock`), removal of the hidden work folders a killed
run left beside them (:func:`remove_stale_siblings`) and ordinary permissions (:func:`make_temp_dir`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import socket
import stat
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from bluerec.errors import UserError

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it is fsynced and renamed onto ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600 files; give the result the permissions a plain open() would.
    os.chmod(tmp_path, 0o666 & ~current_umask())
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(target: str | Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(target: str | Path, obj: Any) -> None:
    write_text_atomic(target, json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False, default=str) + "\n")


def write_jsonl_atomic(target: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    n = 0
    with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def _open_binary(path: str | Path):
    """``path`` opened for reading bytes; ``*.gz`` files are decompressed (profiles are stored gzipped)."""
    if str(path).endswith(".gz"):
        import gzip

        return gzip.open(path, "rb")
    return open(path, "rb")


def read_jsonl(path: str | Path, *, skip_unreadable: bool = False) -> list[dict[str, Any]]:
    """The rows of a JSONL file (``*.jsonl.gz`` too; blank lines ignored). A line that is not UTF-8 JSON raises a
    :class:`~bluerec.errors.UserError` naming the file and line, unless ``skip_unreadable`` — for readers of a file
    another process may be writing (a half-written last line) — passes over it and over any line that is not a
    JSON object."""
    if skip_unreadable:
        return read_jsonl_tolerant(path)[0]
    rows = []
    with _open_binary(path) as fh:
        for line_no, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                rows.append(json.loads(raw.decode("utf-8")))
            except ValueError as err:  # UnicodeDecodeError is a ValueError too
                raise UserError(f"{path}, line {line_no}: not a UTF-8 JSON line ({err})") from err
    return rows


def read_jsonl_tolerant(path: str | Path) -> tuple[list[dict[str, Any]], int]:
    """The JSON-object rows of a JSONL file (``*.jsonl.gz`` too) and how many non-blank lines were skipped as
    unreadable (not JSON, not an object, not UTF-8), so a caller can say how many it dropped."""
    rows: list[dict[str, Any]] = []
    skipped = 0
    with _open_binary(path) as fh:
        for raw in fh:
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except ValueError:  # UnicodeDecodeError is a ValueError too
                skipped += 1
                continue
            if isinstance(row, dict):
                rows.append(row)
            else:
                skipped += 1
    return rows, skipped


# --------------------------------------------------------------------------------------------- output folders


def current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def make_temp_dir(prefix: str, parent: str | Path) -> Path:
    """``tempfile.mkdtemp`` in ``parent``, but with the permissions ``mkdir`` would give (mkdtemp makes 0700,
    which a folder renamed into place as the output would keep)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(path, 0o777 & ~current_umask())
    return path


def remove_tree(path: str | Path) -> bool:
    """Delete a folder, making read-only parts writable when that is what stops it; True when it is gone."""

    def make_writable_and_retry(func: Any, name: str, _exc: Any) -> None:
        with contextlib.suppress(OSError):
            parent = os.path.dirname(name)
            os.chmod(parent, os.stat(parent).st_mode | stat.S_IWUSR | stat.S_IXUSR)
            if os.path.isdir(name) and not os.path.islink(name):
                os.chmod(name, os.stat(name).st_mode | stat.S_IWUSR | stat.S_IXUSR | stat.S_IRUSR)
            func(name)

    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return True
    with contextlib.suppress(OSError):
        os.chmod(path, os.stat(path).st_mode | stat.S_IWUSR | stat.S_IXUSR | stat.S_IRUSR)
    shutil.rmtree(path, onerror=make_writable_and_retry)  # noqa: B028 (onexc is 3.12+)
    return not path.exists()


STALE_KINDS = ("work", "tmp", "old")


def stale_siblings(target: str | Path) -> list[Path]:
    """Hidden work folders (``.NAME.work-*``, ``.NAME.tmp-*``, ``.NAME.old-*``) that runs writing ``target``
    leave beside it while they work, sorted by name."""
    target = Path(target)
    if not target.parent.is_dir():
        return []
    return sorted(p for kind in STALE_KINDS for p in target.parent.glob(f".{target.name}.{kind}-*"))


def remove_stale_siblings(target: str | Path, say: Any = None) -> int:
    """Remove the work folders of killed runs beside ``target``. Call it only while holding
    :func:`output_lock` on ``target``: every run that writes there holds that lock, so with it held no live
    process owns them. Returns how many were removed."""
    removed = 0
    for path in stale_siblings(target):
        if remove_tree(path):
            removed += 1
        else:
            logger.warning("could not remove %s left by an earlier run; delete it by hand", path)
    if removed and say is not None:
        say(f"removed {removed} work folder(s) left beside {target} by an interrupted run")
    return removed


def check_output(path: str | Path, *, kind: str = "folder", option: str = "--out") -> Path:
    """Fail before any work when ``path`` cannot become the output: a file where a folder is wanted (or the
    reverse), a parent that is a file, or a location this process cannot write (read-only disk, permissions).
    Nothing is created: writability is probed with a temporary file in the nearest existing folder."""
    path = Path(path)
    if path.exists():
        if kind == "folder" and not path.is_dir():
            raise UserError(f"{option} {path}: is an existing file, not a folder; choose a folder path")
        if kind == "file" and path.is_dir():
            raise UserError(f"{option} {path}: is a folder, not a file; choose a file path")
    ancestor = path.parent if not path.is_dir() else path
    while not ancestor.exists():
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise UserError(f"{option} {path}: {ancestor} is a file, so no folder can be made below it; choose another path")
    try:
        fd, probe = tempfile.mkstemp(prefix=".bluerec-probe-", dir=ancestor)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        why = os.strerror(err.errno) if err.errno else str(err)
        raise UserError(f"{option} {path}: cannot write in {ancestor} ({why}); choose a writable location") from None
    return path


# --------------------------------------------------------------------------------------------- locks

_HELD: dict[str, int] = {}  # lock path → nesting depth, for locks this process holds


def lock_path(target: str | Path) -> Path:
    target = Path(target)
    return target.parent / f".{target.name}.lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read_lock(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _describe(owner: dict[str, Any]) -> str:
    started = owner.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)) if isinstance(started, (int, float)) else "?"
    return f"pid {owner.get('pid')} on {owner.get('host')} since {when}: {owner.get('command')}"


@contextlib.contextmanager
def output_lock(target: str | Path) -> Iterator[Path]:
    """Hold ``.NAME.lock`` beside ``target`` while writing it, so a second writer is refused at once with a
    message naming the first (pid, host, command, start time). A lock whose process is gone (same host, dead
    pid) is taken over with a warning. Re-entrant within one process.

    Example:
        ::

            with output_lock("runs/data"):
                ...  # write runs/data
    """
    path = lock_path(target)
    key = str(path.resolve())
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield path
        finally:
            _HELD[key] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv) or "python",
          "started": round(time.time(), 3)}
    fd, tmp = tempfile.mkstemp(prefix=f"{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(me, fh)
        os.chmod(tmp, 0o666 & ~current_umask())
        for _attempt in range(3):
            try:
                os.link(tmp, path)  # atomic and fails if the lock exists: a lock file is never half-written
                break
            except FileExistsError:
                owner = _read_lock(path)
                if owner is None:  # unreadable lock: only trust its age
                    with contextlib.suppress(OSError):
                        if time.time() - path.stat().st_mtime > 60:
                            logger.warning("removing unreadable lock %s", path)
                            path.unlink()
                            continue
                    raise UserError(f"{target}: locked by another run ({path} is unreadable); if no run is "
                                    f"writing it, delete {path}") from None
                if owner.get("host") == me["host"] and isinstance(owner.get("pid"), int) and not _pid_alive(owner["pid"]):
                    logger.warning("taking over the lock of a run that is gone (%s)", _describe(owner))
                    with contextlib.suppress(FileNotFoundError):
                        if _read_lock(path) == owner:
                            path.unlink()
                    continue
                raise UserError(f"{target}: another run is writing it ({_describe(owner)}); wait for it to end, "
                                f"or use another --out") from None
        else:
            raise UserError(f"{target}: could not take the lock {path}; try again")
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _HELD[key] = 1
    try:
        yield path
    finally:
        del _HELD[key]
        if _read_lock(path) == me:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def is_disk_full(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
