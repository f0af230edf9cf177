"""``bluerec embedder finetune|compare``: contrastive fine-tuning of the embedder, and frozen vs fine-tuned tables."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bluerec.cli._common import console, friendly_errors, say

app = typer.Typer(help="Fine-tune the embedder on train users' profiles; compare embedders on the same users.",
                  no_args_is_help=True)


def _say(message: str) -> None:
    console.print(message, highlight=False, markup=False)


@app.command("finetune")
def finetune(
    config: Path = typer.Option(..., "--config", "-c", help="YAML FinetuneConfig (dataset, profiles, embedder, output_dir, ...)."),
    profiles: Optional[str] = typer.Option(None, "--profiles", help="Override profiles: history_text, template or a train-split profiles JSONL."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", help="Override output_dir."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output_dir."),
) -> None:
    """Fine-tune the embedder with MultipleNegativesRankingLoss + hard negatives; writes a sentence-transformers folder."""
    from bluerec.config import load_config
    from bluerec.embed.finetune import FinetuneConfig, finetune_embedder

    overrides: dict[str, object] = {}
    if profiles is not None:
        overrides["profiles"] = profiles
    if output_dir is not None:
        overrides["output_dir"] = str(output_dir)
    if overwrite:
        overrides["overwrite"] = True
    with friendly_errors():
        cfg = load_config(FinetuneConfig, config, overrides)
        result = finetune_embedder(cfg, progress=_say)
    say(f"{result.pairs:,} pairs, loss {result.loss_before:.4f} -> {result.loss_after:.4f}; "
        f"use it with embedder.model: {result.output_dir}")


@app.command("compare")
def compare(
    config: Path = typer.Option(..., "--config", "-c", help="YAML EmbedderCompareConfig (evaluate, embedders)."),
    out: Path = typer.Option(..., "--out", help="Folder for the per-embedder runs and embedders.json/.md."),
) -> None:
    """Score the same methods and users under each embedder (first = reference) with paired intervals."""
    from bluerec.config import load_config
    from bluerec.eval.embedders import EmbedderCompareConfig, compare_embedders

    with friendly_errors():
        cfg = load_config(EmbedderCompareConfig, config)
        compare_embedders(cfg, out, say=_say)
    console.print((out / "embedders.md").read_text(encoding="utf-8"), highlight=False, markup=False)
