"""The ``bluerec`` command line. Commands are thin: they parse options into typed configs and call the library.

Every expected failure — including a bad option, which click would report as a usage panel — ends with one
line ``error: …`` and exit code 2; ``--debug`` (or ``BLUEREC_DEBUG=1``) shows tracebacks instead.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

try:  # typer >= 0.25 vendors click; older versions raise click's own exceptions
    from typer._click import exceptions as _click_exc
except ImportError:  # pragma: no cover
    from click import exceptions as _click_exc  # type: ignore[no-redef]

from bluerec.cli import data as data_cmd
from bluerec.cli import embedder as embedder_cmd
from bluerec.cli import models as models_cmd
from bluerec.cli._common import console, debug_enabled, set_debug, setup_logging
from bluerec.cli.evaluate import evaluate
from bluerec.cli.jobs import profile, quickstart, train
from bluerec.cli.qa import qa
from bluerec.cli.report import report
from bluerec.cli.serve import serve
from bluerec.cli.transfer import alternate, transfer
from bluerec.cli.warmstart import warmstart


class _Bluerec(typer.Typer):
    """Typer, but a usage error is one line (``error: … (see 'bluerec evaluate --help')``), not a panel."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("standalone_mode", True) is False or debug_enabled() or "--debug" in sys.argv[1:]:
            return super().__call__(*args, **kwargs)
        kwargs["standalone_mode"] = False
        try:
            code = super().__call__(*args, **kwargs)
        except _click_exc.NoArgsIsHelpError as err:
            typer.echo(err.ctx.get_help() if err.ctx is not None else "", err=True)
            sys.exit(2)
        except _click_exc.UsageError as err:
            cmd = err.ctx.command_path if err.ctx is not None else "bluerec"
            message = " ".join(err.format_message().split())
            console.print(f"error: {message} (see '{cmd} --help')", markup=False, highlight=False, soft_wrap=True)
            sys.exit(2)
        except _click_exc.ClickException as err:
            console.print(f"error: {' '.join(err.format_message().split())}", markup=False, highlight=False,
                          soft_wrap=True)
            sys.exit(err.exit_code)
        except (typer.Abort, KeyboardInterrupt):
            console.print("aborted", highlight=False)
            sys.exit(130)
        except typer.Exit as err:
            sys.exit(err.exit_code)
        sys.exit(code if isinstance(code, int) else 0)


app = _Bluerec(
    name="bluerec",
    help="BLUE: readable user profiles written by an LLM and trained with RL to be strong retrieval queries.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(data_cmd.app, name="data")
app.add_typer(models_cmd.app, name="models")
app.add_typer(embedder_cmd.app, name="embedder")
app.command("evaluate")(evaluate)
app.command("train")(train)
app.command("profile")(profile)
app.command("quickstart")(quickstart)
app.command("report")(report)
app.command("serve")(serve)
app.command("qa")(qa)
app.command("warmstart")(warmstart)
app.command("transfer")(transfer)
app.command("alternate")(alternate)


@app.callback()
def main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show library log messages."),
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of a failure (also BLUEREC_DEBUG=1)."),
) -> None:
    setup_logging(verbose)
    set_debug(debug)


if __name__ == "__main__":
    app()
