"""``bluerec report``: one self-contained HTML page for a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bluerec.cli._common import friendly_errors, say, warn


def report(
    run_dir: Path = typer.Argument(..., help="Run folder: a quick start's (results.json, train/, eval/, data/) or an `evaluate` --out folder (summary.json, users/)."),
    out: Optional[Path] = typer.Option(None, "--out", help="HTML file to write (default <run-dir>/report.html)."),
) -> None:
    """Write an HTML report: reward and validation curves, method comparison, and example users' profiles."""
    from bluerec.report import write_report

    from bluerec.io import check_output

    with friendly_errors():
        if not run_dir.is_dir():
            raise FileNotFoundError(2, "run folder not found", str(run_dir))
        check_output(out if out is not None else run_dir / "report.html", kind="file")
        path = write_report(run_dir, out, say=warn)
    say("report written (self-contained; open it in a browser)")
    typer.echo(str(path))
