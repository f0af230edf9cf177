"""Shared CLI plumbing: rich console, progress adapters and turning library errors into clean exits."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import typer
from rich.console import Console
from rich.logging import RichHandler

from bluerec.config import ConfigError
from bluerec.data.errors import DataError

console = Console(stderr=True)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
        force=True,
    )


@contextlib.contextmanager
def friendly_errors() -> Iterator[None]:
    """Bad input and bad config end the command with the message and exit code 2, not a traceback."""
    try:
        yield
    except (ConfigError, DataError, FileNotFoundError, FileExistsError) as err:
        console.print(f"[bold red]error:[/] {err}", markup=True, highlight=False)
        raise typer.Exit(code=2) from None


def say(message: str) -> None:
    console.print(f"[dim]·[/] {message}", highlight=False)
