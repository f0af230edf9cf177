"""``bluerec evaluate``: zero-shot sequential recommendation with profile/baseline queries."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from bluerec.cli._common import check_at_least, console, friendly_errors, name_path, say, warn


def evaluate(
    dataset: Optional[Path] = typer.Option(None, "--dataset", "-d", help="Prepared-dataset folder (from `bluerec data prepare`)."),
    out: Path = typer.Option(..., "--out", help="Run folder for per-user results, profiles, summary.json and summary.md."),
    method: Optional[list[str]] = typer.Option(None, "--method", "-m", help="Baseline to run (repeatable): popularity, history_text, mean_embedding, last_item, template, successor_text, successor_mean. Default: all."),
    profiles: Optional[list[str]] = typer.Option(None, "--profiles", help="Extra method from a profiles JSONL, as NAME=PATH (repeatable), e.g. blue=runs/x/profiles.test.jsonl."),
    profiler: Optional[Path] = typer.Option(None, "--profiler", help="A trained profiler folder: generate its profiles for the split (resumable) and evaluate them as method 'profiler'."),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens", help="--profiler: the longest profile it writes, in new tokens (greedy). Give a warm-started profiler at least its targets' length."),
    protocol: Optional[list[str]] = typer.Option(None, "--protocol", help="full (whole catalogue) and/or sampled (target + 99 seeded uniform negatives). Default: both."),
    split: str = typer.Option("test", help="Which split to evaluate: test, or valid (use valid for every choice you tune)."),
    history_items: int = typer.Option(20, help="N most recent history items for history text, mean embedding and template."),
    max_users: Optional[int] = typer.Option(None, help="Evaluate a seeded random sample of N users; every method (baselines too) gets the same users, and --profiler profiles only them."),
    reference: Optional[list[str]] = typer.Option(None, "--reference", "-r", help="Reference method for the paired bootstrap intervals (repeatable). Default: last_item, history_text, template and a profile method named zeroshot, when present."),
    resamples: Optional[int] = typer.Option(None, "--resamples", help="Bootstrap resamples of the users for the intervals (default 10000; 0 = no intervals)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML EvaluateConfig; options given here override it."),
    seed: Optional[int] = typer.Option(None, help="Seed for user sampling, bootstrap resamples and sampled negatives (default 0)."),
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
        check_at_least("--max-new-tokens", max_new_tokens)
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
        from bluerec.eval.evaluator import EvalConfig, print_summary
        from bluerec.eval.run import EvaluateConfig, EvaluationRun, print_intervals, select_examples

        data: dict[str, Any] = {}
        if config is not None:
            data = load_config(EvaluateConfig, config).model_dump(exclude_unset=True)
        if dataset is not None:
            data["dataset"] = dataset
        if method:
            data["methods"] = method
        if profiles:
            data["profiles"] = dict(name_path(p) for p in profiles)
        if profiler is not None:  # its file is written below; named now so --reference profiler validates
            data["profiles"] = {**(data.get("profiles") or {}), "profiler": out / "profiler_profiles.jsonl"}
        if protocol:
            data["protocols"] = [EvalConfig(protocol=p, seed=seed or 0) for p in protocol]  # type: ignore[arg-type]
        if cache_dir is not None:
            data["cache_dir"] = cache_dir
        data.update(split=split, history_items=history_items)
        # Given options override the YAML; absent ones leave it alone.
        if max_users is not None:
            data["max_users"] = max_users
        if seed is not None:
            data["seed"] = seed
        if reference or resamples is not None:
            data["intervals"] = dict(data.get("intervals") or {})
            if reference:
                data["intervals"]["references"] = reference
            if resamples is not None:
                data["intervals"]["n_resamples"] = resamples
        cfg = parse_config(EvaluateConfig, data, str(config or "command line"))
        for name, path in cfg.profiles.items():
            if name == "profiler" and profiler is not None:
                continue  # written below
            if not Path(path).is_file():
                raise UserError(f"--profiles {name}={path}: file not found; give the profiles JSONL of `bluerec profile`")
        with output_lock(out):
            remove_stale_siblings(out, say)
            if profiler is not None:
                from bluerec.data.dataset import PreparedDataset
                from bluerec.pipeline import profiles_for_run

                # Only the evaluated users are profiled (resumable: a later, larger sample adds the missing ones).
                users = [ex.user_id for ex in
                         select_examples(PreparedDataset(cfg.dataset), cfg.split, cfg.max_users, cfg.seed)]
                cfg.profiles["profiler"] = profiles_for_run(profiler, cfg.dataset, cfg.split,
                                                            out / "profiler_profiles.jsonl", user_ids=users,
                                                            max_new_tokens=max_new_tokens)
            run = EvaluationRun(cfg, say=say, warn=warn)
            summary = run.run_all(out)
    by_protocol = {f"{m} ({p})": metrics for m, r in summary["results"].items() for p, metrics in r.items()}
    primary = str(summary.get("primary_metric") or "")  # the evaluators' primary metric, its recall, the full MRR
    cut = primary.partition("@")[2]
    shown = {primary, "mrr", *([f"recall@{cut}"] if cut else [])}
    print_summary({k: {n: v for n, v in m.items() if n in shown} for k, m in by_protocol.items()},
                  title=f"{summary['split']} users: {summary['n_users']:,}, items: {summary['n_items']:,}", console=console)
    print_intervals(summary, console=console)
    say(f"results in {out}")
