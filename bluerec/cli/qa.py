"""``bluerec qa``: personalized question answering with a profile (or history/template) as the reader's only context."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from bluerec.cli._common import check_at_least, console, friendly_errors, name_path, say


def qa(
    dataset: Optional[Path] = typer.Option(None, "--dataset", "-d", help="Prepared-dataset folder (from `bluerec data prepare`); it needs ratings for the rating task."),
    out: Path = typer.Option(..., "--out", help="Run folder for summary.json, summary.md and per-user rows."),
    context: Optional[list[str]] = typer.Option(None, "--context", help="Built-in context (repeatable): history (raw history titles), template (the template profile). Default: both."),
    profiles: Optional[list[str]] = typer.Option(None, "--profiles", help="Extra context from a profiles JSONL, as NAME=PATH (repeatable), e.g. zeroshot=runs/x/profiles.test.jsonl."),
    reader: Optional[str] = typer.Option(None, "--reader", help="Reader LM: a known model name, an HF model path/id, or the model name at --base-url. Default: smollm2-135m-instruct."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="An OpenAI-compatible server: the reader answers there (options by letter)."),
    api_key_env: Optional[str] = typer.Option(None, "--api-key-env", help="Variable holding the server's API key (default OPENAI_API_KEY)."),
    device: Optional[str] = typer.Option(None, "--device", help="Reader device: auto, cpu, cuda, cuda:<n>, mps."),
    task: Optional[list[str]] = typer.Option(None, "--task", help="choice (next item among C options → accuracy) and/or rating (target's rating → MAE). Default: both."),
    num_choices: Optional[int] = typer.Option(None, "--num-choices", help="C, options per question (default 4)."),
    split: Optional[str] = typer.Option(None, help="test (default) or valid."),
    max_users: Optional[int] = typer.Option(None, help="A seeded random sample of N users (the same draw as `bluerec evaluate`)."),
    history_items: Optional[int] = typer.Option(None, help="N most recent items for the history and template contexts (default 20)."),
    resamples: Optional[int] = typer.Option(None, help="Bootstrap resamples for the paired intervals between contexts (default 10000; 0 = none)."),
    seed: Optional[int] = typer.Option(None, help="Seed of the user sample, the distractors and the bootstrap (default 0)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML QAConfig; options given here override it."),
) -> None:
    """Ask a reader LM about each user with only a context: which item comes next (multiple choice) and how the
    user rated it (MAE; an unparsable answer counts at the worst error)."""
    from bluerec.config import load_config, parse_config
    from bluerec.errors import UserError
    from bluerec.io import check_output, output_lock

    with friendly_errors():
        check_at_least("--max-users", max_users)
        check_at_least("--history-items", history_items)
        check_at_least("--num-choices", num_choices, 2)
        check_at_least("--resamples", resamples, 0)
        from bluerec.eval.tasks import TASKS

        for t in task or []:
            if t not in TASKS:
                raise UserError(f"--task {t!r}: expected one of the registered tasks {list(TASKS)}")
        check_output(out)
        if dataset is not None:
            from bluerec.data.dataset import PreparedDataset

            PreparedDataset(dataset).check()
        from bluerec.eval.qa import QAConfig, run_qa

        data: dict[str, Any] = {}
        if config is not None:
            data = load_config(QAConfig, config).model_dump(exclude_unset=True)
        if dataset is not None:
            data["dataset"] = dataset
        if context is not None:
            data["contexts"] = context
        if profiles:
            data["profiles"] = dict(name_path(p) for p in profiles)
        reader_cfg: dict[str, Any] = dict(data.get("reader") or {})
        if reader is not None:
            reader_cfg["model"] = reader
        if base_url is not None:
            reader_cfg.update(backend="openai", base_url=base_url)
        if api_key_env is not None:
            reader_cfg["api_key_env"] = api_key_env
        if device is not None:
            reader_cfg["device"] = device
        if reader_cfg:
            reader_cfg.setdefault("model", "smollm2-135m-instruct")
            data["reader"] = reader_cfg
        for key, value in (("tasks", task), ("num_choices", num_choices), ("split", split), ("max_users", max_users),
                           ("history_items", history_items), ("resamples", resamples), ("seed", seed)):
            if value is not None:
                data[key] = value
        cfg = parse_config(QAConfig, data, str(config or "command line"))
        for name, path in cfg.profiles.items():
            if not Path(path).is_file():
                raise UserError(f"--profiles {name}={path}: file not found; give the profiles JSONL of `bluerec profile`")
        if cfg.reader.backend != "openai":
            from bluerec.profiler.source import check_model_source

            check_model_source(cfg.reader.model, option="--reader")
        with output_lock(out):
            summary = run_qa(cfg, out, say=say)
    from bluerec.eval.qa import summary_markdown

    console.print(summary_markdown(summary), markup=False, highlight=False)
    say(f"results in {out}")
