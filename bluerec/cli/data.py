"""``bluerec data …``: generate synthetic raw files and prepare datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from bluerec.cli._common import console, friendly_errors, say

app = typer.Typer(help="Generate synthetic data and prepare datasets.", no_args_is_help=True)


@app.command("synth")
def synth(
    out: Path = typer.Option(..., "--out", help="Folder to write raw files into (amazon/, google/, truth.json)."),
    domain: str = typer.Option("amazon", help="Which raw schema to write: amazon (Amazon Reviews 2023), google (Google Local Reviews) or both."),
    users: int = typer.Option(2000, help="Number of users per domain."),
    items: int = typer.Option(1000, help="Number of items per domain (all are written to the meta file)."),
    interests: int = typer.Option(60, help="Number of latent interest clusters in the catalogue."),
    drift: float = typer.Option(0.9, help="How sharply users move from old to current interests (0 = static mix, 1 = sharp switch)."),
    noise: float = typer.Option(0.1, help="Share of off-interest, popularity-sampled interactions."),
    min_interactions: int = typer.Option(5, help="Fewest reviews a user writes (before any k-core)."),
    max_interactions: int = typer.Option(40, help="Most reviews a user writes."),
    mean_interactions: float = typer.Option(10.0, help="Mean reviews per user (truncated exponential)."),
    category: str = typer.Option("All_Beauty", help="Amazon category: files are <category>.jsonl.gz and meta_<category>.jsonl.gz."),
    state: str = typer.Option("Vermont", help="Google Local state: files are review-<state>.json.gz and meta-<state>.json.gz."),
    seed: int = typer.Option(0, help="Random seed; the same seed gives byte-identical files."),
    config: Optional[Path] = typer.Option(None, help="YAML SynthConfig; when given, the other options are ignored."),
) -> None:
    """Write synthetic raw review + meta files in the exact Amazon 2023 / Google Local schemas, with known latent structure."""
    from bluerec.config import load_config, parse_config
    from bluerec.data.synth import SynthConfig, write_synth

    with friendly_errors():
        if config is not None:
            cfg = load_config(SynthConfig, config)
        else:
            cfg = parse_config(
                SynthConfig,
                {"domain": domain, "n_users": users, "n_items": items, "n_interests": interests,
                 "drift": drift, "noise": noise, "seed": seed, "min_interactions": min_interactions,
                 "max_interactions": max_interactions, "mean_interactions": mean_interactions,
                 "category": category, "state": state},
                "command line",
            )
        with _progress() as prog:
            result = write_synth(cfg, out, progress=_counter(prog))
    for dom, counts in result.counts.items():
        say(f"{dom}: {counts['users']:,} users, {counts['items']:,} items, {counts['reviews']:,} reviews")
    for key, path in result.files.items():
        say(f"{key}: {path}")


@app.command("prepare")
def prepare(
    config: Path = typer.Option(..., "--config", "-c", help="YAML PrepareConfig (source files, k-core, history length, item text template)."),
    out: Path = typer.Option(..., "--out", help="Prepared-dataset folder to write (Parquet + manifest.json); replaced atomically."),
    on_error: Optional[str] = typer.Option(None, "--on-error", help="raise: stop at the first bad record (names file, line, field); skip: drop bad records and count them in the manifest."),
    k_core: Optional[int] = typer.Option(None, "--k-core", help="Override k of the iterative k-core filter (0 or 1 disables it)."),
    max_history: Optional[int] = typer.Option(None, "--max-history", help="Override how many most recent history items each split row keeps."),
) -> None:
    """Read raw files, dedupe, k-core, order chronologically, split leave-last-out, render item text."""
    from bluerec.config import load_config
    from bluerec.data.config import PrepareConfig
    from bluerec.data.prepare import prepare_dataset

    overrides: dict[str, Any] = {}
    if on_error is not None:
        overrides["on_error"] = on_error
    if k_core is not None:
        overrides["k_core"] = k_core
    if max_history is not None:
        overrides["max_history"] = max_history
    with friendly_errors():
        cfg = load_config(PrepareConfig, config, overrides)
        manifest = prepare_dataset(cfg, out, progress=say)
    counts = manifest.get("counts", {})
    say(f"prepared {out}: " + ", ".join(f"{k}={v:,}" for k, v in counts.items() if k in ("users", "items", "interactions")))
    skipped = manifest.get("skipped", [])
    if skipped:
        console.print(f"[yellow]skipped {sum(s['count'] for s in skipped):,} bad records[/] (see manifest.json)")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(), console=console)


def _counter(prog: Progress):
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = prog.add_task(stage, total=total or None)
        prog.update(tasks[stage], completed=done, total=total or None)

    return update
