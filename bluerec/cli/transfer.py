"""``bluerec transfer`` (cross-domain transfer matrix) and ``bluerec alternate`` (GRPO ⇄ embedder phases)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bluerec.cli._common import console, friendly_errors, say


def _say(message: str) -> None:
    console.print(message, highlight=False, markup=False)


def transfer(
    config: Path = typer.Option(..., "--config", "-c", help="YAML TransferConfig (profilers, targets, output_dir, ...)."),
    max_users: Optional[int] = typer.Option(None, "--max-users", help="Override max_users (seeded test users per target)."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", help="Override output_dir."),
) -> None:
    """Evaluate trained profilers without further training on several target datasets (resumable per cell)."""
    from bluerec.config import load_config
    from bluerec.eval.transfer import TransferConfig, run_transfer
    from bluerec.io import output_lock

    overrides: dict[str, object] = {}
    if max_users is not None:
        overrides["max_users"] = max_users
    if output_dir is not None:
        overrides["output_dir"] = str(output_dir)
    with friendly_errors():
        cfg = load_config(TransferConfig, config, overrides)
        Path(cfg.output_dir).parent.mkdir(parents=True, exist_ok=True)
        with output_lock(cfg.output_dir):
            run_transfer(cfg, say=_say)
    console.print((Path(cfg.output_dir) / "transfer.md").read_text(encoding="utf-8"), highlight=False, markup=False)


def alternate(
    config: Path = typer.Option(..., "--config", "-c", help="YAML AlternateConfig (train, phases, grpo_steps_per_phase, finetune, output_dir)."),
    phases: Optional[int] = typer.Option(None, "--phases", help="Override phases."),
) -> None:
    """Alternate GRPO phases of the profiler with fine-tuning phases of the embedder (resumable)."""
    from bluerec.config import load_config
    from bluerec.io import output_lock
    from bluerec.train.alternate import AlternateConfig, run_alternating

    overrides: dict[str, object] = {"phases": phases} if phases is not None else {}
    with friendly_errors():
        cfg = load_config(AlternateConfig, config, overrides)
        Path(cfg.output_dir).parent.mkdir(parents=True, exist_ok=True)
        with output_lock(cfg.output_dir):
            state = run_alternating(cfg, progress=_say)
    say(f"done: profiler {state['profiler']}, embedder {state['embedder']}")
