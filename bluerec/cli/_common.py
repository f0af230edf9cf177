"""Shared CLI plumbing: rich console, progress adapters and the one error path of every command.

Expected failures — bad options or config values, missing or unreadable input, an output that cannot be
written, a full disk, an unknown model — end the command with **one line** naming the thing and what to do,
and exit code 2. ``bluerec --debug …`` (or ``BLUEREC_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from bluerec.config import ConfigError
from bluerec.data.errors import DataError
from bluerec.errors import UserError
from bluerec.io import is_disk_full

console = Console(stderr=True)
_state = {"debug": False}


def set_debug(debug: bool) -> None:
    _state["debug"] = debug


def debug_enabled() -> bool:
    return _state["debug"] or os.environ.get("BLUEREC_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
        force=True,
    )


def one_line(text: str) -> str:
    """Collapse a message to one line: a config error's ``- key …`` bullets become ``; ``-separated."""
    parts = [p.strip() for p in str(text).splitlines() if p.strip()]
    if not parts:
        return ""
    head, rest = parts[0], [p.removeprefix("- ").strip() for p in parts[1:]]
    if not rest:
        return head
    return head.rstrip(":") + ": " + "; ".join(rest)


def describe_error(err: BaseException) -> str | None:
    """The one-line message for an expected failure, or None for anything else (a bug: keep the traceback)."""
    if isinstance(err, (ConfigError, DataError, UserError)):
        return one_line(str(err))
    if isinstance(err, OSError):
        where = err.filename if getattr(err, "filename", None) else None
        why = err.strerror or one_line(str(err)) or type(err).__name__
        if is_disk_full(err):
            return (f"disk full while writing {where or 'output'}: free some space and run again "
                    "(previous outputs are unchanged)")
        if where:
            return f"{where}: {why}"
        return one_line(str(err)) or why
    kind = type(err)
    if kind.__module__.startswith("duckdb"):  # checked by name: importing duckdb here would slow every command
        text = one_line(str(err))
        if "No space left" in text or "disk is full" in text.lower():
            return "disk full while preparing data: free some space (or set temp_directory) and run again " \
                   "(previous outputs are unchanged)"
        if kind.__name__ in ("OutOfMemoryException", "IOException"):
            return f"{text} (lower threads or raise memory_limit in the config)" if "emory" in text else text
    return None


@contextlib.contextmanager
def friendly_errors() -> Iterator[None]:
    """Expected failures end the command with one line and exit code 2 (the traceback only with --debug)."""
    try:
        yield
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as err:  # noqa: BLE001 - sorted by describe_error; the rest re-raised untouched
        message = describe_error(err)
        if message is None or debug_enabled():
            raise
        fail(message)


def fail(message: str, code: int = 2) -> None:
    """Print ``error: <message>`` as one line (never wrapped) and exit."""
    console.print(f"[bold red]error:[/] {escape(one_line(message))}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(code=code)


def check_at_least(option: str, value: Any, minimum: int = 1) -> None:
    """An option range checked before any work (e.g. ``--max-users`` >= 1)."""
    if value is not None and value < minimum:
        raise UserError(f"{option} must be >= {minimum}, got {value}")


def say(message: str) -> None:
    console.print(f"[dim]·[/] {message}", highlight=False)


def warn(message: str) -> None:
    console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


def name_path(spec: str) -> tuple[str, Path]:
    """``NAME=PATH`` (``--profiles``) as ``(name, Path)``; anything else is a usage error naming the option."""
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise typer.BadParameter(f"--profiles expects NAME=PATH, got {spec!r}")
    return name, Path(path)
