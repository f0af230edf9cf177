"""``bluerec warmstart``: the supervised warm start of a profiler from a YAML ``WarmStartRunConfig``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bluerec.cli._common import check_at_least, console, friendly_errors, say


def warmstart(
    config: Path = typer.Option(..., "--config", "-c", help="YAML WarmStartRunConfig (dataset, profiler, prompt, warmstart, output_dir)."),
    choose_target: Optional[list[str]] = typer.Option(None, "--choose-target", help="Warm-start each of these targets (repeatable: template, next_item, template+next_item, recent_items, newest_item, recent_items+context, recent_pair+successor, newest_item+successor) and keep the best on validation users; overrides choose_target of the config."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Override warmstart.max_steps."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", help="Override output_dir (the run folder)."),
) -> None:
    """Warm-start a profiler by supervised training (resumable: finished candidates are reused on a rerun)."""
    from bluerec.config import load_config
    from bluerec.io import check_output, output_lock
    from bluerec.profiler.source import check_model_source
    from bluerec.workflow.warmstart import WarmStartRunConfig, run_warmstart

    overrides: dict[str, object] = {}
    if choose_target:
        overrides["choose_target"] = list(choose_target)
    if max_steps is not None:
        overrides["warmstart.max_steps"] = max_steps
    if output_dir is not None:
        overrides["output_dir"] = str(output_dir)
    with friendly_errors():
        check_at_least("--max-steps", max_steps)
        cfg = load_config(WarmStartRunConfig, config, overrides)
        check_output(cfg.output_dir, option="output_dir")
        from bluerec.data.dataset import PreparedDataset

        PreparedDataset(cfg.dataset).check()
        check_model_source(cfg.profiler.model, option="profiler.model")
        with output_lock(cfg.output_dir):
            summary = run_warmstart(cfg, say=lambda m: console.print(m, highlight=False, markup=False))
    for target, scores in summary["validation"].items():
        say(f"{target}: validation " + ", ".join(f"{k}={v:.4f}" for k, v in scores.items() if isinstance(v, float)))
    say(f"warm-started profiler ({summary['chosen']}) in {summary['model']}")
