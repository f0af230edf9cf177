"""``bluerec report``: one self-contained HTML page for a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bluerec.cli._common import friendly_errors, say


def report(
    run_dir: Path = typer.Argument(..., help="Run folder (e.g. from `bluerec quickstart`): results.json, train/, eval/, data/."),
    out: Optional[Path] = typer.Option(None, "--out", help="HTML file to write (default <run-dir>/report.html)."),
) -> None:
    """Write an HTML report: reward and validation curves, method comparison, and example users' profiles."""
    from bluerec.report import write_report

    with friendly_errors():
        path = write_report(run_dir, out)
    say("report written (self-contained; open it in a browser)")
    typer.echo(str(path))
