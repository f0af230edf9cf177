"""The ``bluerec`` command line. Commands are thin: they parse options into typed configs and call the library."""

from __future__ import annotations

import typer

from bluerec.cli import data as data_cmd
from bluerec.cli import models as models_cmd
from bluerec.cli._common import setup_logging
from bluerec.cli.evaluate import evaluate
from bluerec.cli.jobs import profile, quickstart, train
from bluerec.cli.report import report
from bluerec.cli.serve import serve

app = typer.Typer(
    name="bluerec",
    help="BLUE: readable user profiles written by an LLM and trained with RL to be strong retrieval queries.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(data_cmd.app, name="data")
app.add_typer(models_cmd.app, name="models")
app.command("evaluate")(evaluate)
app.command("train")(train)
app.command("profile")(profile)
app.command("quickstart")(quickstart)
app.command("report")(report)
app.command("serve")(serve)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Show library log messages.")) -> None:
    setup_logging(verbose)


if __name__ == "__main__":
    app()
