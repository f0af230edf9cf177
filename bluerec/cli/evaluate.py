"""``bluerec evaluate``: zero-shot sequential recommendation with profile/baseline queries."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from bluerec.cli._common import check_at_least, console, friendly_errors, say, warn


def evaluate(
    dataset: Optional[Path] = typer.Option(None, "--dataset", "-d", help="Prepared-dataset folder (from `bluerec data prepare`)."),
    out: Path = typer.Option(..., "--out", help="Run folder for per-user results, profiles, summary.json and summary.md."),
    method: Optional[list[str]] = typer.Option(None, "--method", "-m", help="Baseline to run (repeatable): popularity, history_text, mean_embedding, last_item, template. Default: all."),
    profiles: Optional[list[str]] = typer.Option(None, "--profiles", help="Extra method from a profiles JSONL, as NAME=PATH (repeatable), e.g. blue=runs/x/profiles.test.jsonl."),
    profiler: Optional[Path] = typer.Option(None, "--profiler", help="A trained profiler folder: generate its profiles for the split (resumable) and evaluate them as method 'profiler'."),
    protocol: Optional[list[str]] = typer.Option(None, "--protocol", help="full (whole catalogue) and/or sampled (target + 99 seeded uniform negatives). Default: both."),
    split: str = typer.Option("test", help="Which split to evaluate: test, or valid (use valid for every choice you tune)."),
    history_items: int = typer.Option(20, help="N most recent history items for history text, mean embedding and template."),
    max_users: Optional[int] = typer.Option(None, help="Evaluate a seeded random sample of users (quick looks; benchmarks use all)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML EvaluateConfig; options given here override it."),
    seed: int = typer.Option(0, help="Seed for user sampling and sampled negatives."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Embedding cache folder (items and query texts) (default .cache/embeddings)."),
) -> None:
    """Rank every item for each user's held-out next item and report NDCG@K, Recall@K and MRR."""
    from bluerec.config import load_config, parse_config
    from bluerec.errors import UserError
    from bluerec.io import check_output, output_lock, remove_stale_siblings

    with friendly_errors():
        # Checks before work — and before importing the retrieval stack (seconds): option ranges and choices,
        # a writable output, a readable dataset and an existing model; not after the metrics are computed.
        check_at_least("--max-users", max_users)
        check_at_least("--history-items", history_items)
        for p in protocol or []:
            if p not in ("full", "sampled"):
                raise UserError(f"--protocol {p!r}: expected one of 'full', 'sampled'")
        if split not in ("valid", "test"):
            raise UserError(f"--split {split!r}: expected one of 'valid', 'test'")
        check_output(out)
        if dataset is not None:
            from bluerec.data.dataset import PreparedDataset

            PreparedDataset(dataset).check()
        if profiler is not None:
            from bluerec.profiler.source import check_model_source

            check_model_source(str(profiler), option="--profiler")
        from bluerec.eval.evaluator import print_summary
        from bluerec.eval.run import EvaluateConfig, EvaluationRun

        data: dict[str, Any] = {}
        if config is not None:
            data = load_config(EvaluateConfig, config).model_dump(exclude_unset=True)
        if dataset is not None:
            data["dataset"] = dataset
        if method:
            data["methods"] = method
        if profiles:
            data["profiles"] = dict(_name_path(p) for p in profiles)
        if protocol:
            data["protocols"] = [{"protocol": p, "seed": seed} for p in protocol]
        if cache_dir is not None:
            data["cache_dir"] = cache_dir
        data.update(split=split, history_items=history_items, max_users=max_users, seed=seed)
        cfg = parse_config(EvaluateConfig, data, str(config or "command line"))
        for name, path in cfg.profiles.items():
            if not Path(path).is_file():
                raise UserError(f"--profiles {name}={path}: file not found; give the profiles JSONL of `bluerec profile`")
        with output_lock(out):
            remove_stale_siblings(out, say)
            if profiler is not None:
                from bluerec.pipeline import profiles_for_run

                # Every user of the split is profiled (resumable), so any --max-users sample finds its profiles.
                cfg.profiles["profiler"] = profiles_for_run(profiler, cfg.dataset, cfg.split,
                                                            out / "profiler_profiles.jsonl")
            run = EvaluationRun(cfg, say=say, warn=warn)
            summary = run.run_all(out)
    by_protocol = {f"{m} ({p})": metrics for m, r in summary["results"].items() for p, metrics in r.items()}
    print_summary({k: {n: v for n, v in m.items() if n in ("ndcg@10", "recall@10", "mrr")} for k, m in by_protocol.items()},
                  title=f"{summary['split']} users: {summary['n_users']:,}, items: {summary['n_items']:,}", console=console)
    say(f"results in {out}")


def _name_path(spec: str) -> tuple[str, Path]:
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise typer.BadParameter(f"--profiles expects NAME=PATH, got {spec!r}")
    return name, Path(path)
