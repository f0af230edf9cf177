"""``bluerec train``, ``bluerec profile`` and ``bluerec quickstart``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bluerec.cli._common import check_at_least, console, friendly_errors, say


def train(
    config: Path = typer.Option(..., "--config", "-c", help="YAML BlueTrainConfig (dataset, profiler, rewards, GRPO, LoRA, eval)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint in the run's output_dir (same step, optimizer and data position)."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Override grpo.max_steps."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", help="Override output_dir (the run folder)."),
) -> None:
    """Train a profiler with GRPO (TRL) on the BLUE rewards; checkpoints, metrics.jsonl and final/ go to output_dir."""
    from bluerec.config import load_config
    from bluerec.train.config import BlueTrainConfig
    from bluerec.train.trainer import train_blue

    from bluerec.io import check_output, output_lock

    overrides = {}
    if max_steps is not None:
        overrides["grpo.max_steps"] = max_steps
    if output_dir is not None:
        overrides["output_dir"] = str(output_dir)
    with friendly_errors():
        check_at_least("--max-steps", max_steps)
        cfg = load_config(BlueTrainConfig, config, overrides)
        check_output(cfg.output_dir, option="output_dir")
        with output_lock(cfg.output_dir):
            result = train_blue(cfg, resume=resume)
    say(f"trained to step {result.global_step} in {result.seconds:.0f}s; profiler saved to {result.final_dir}")
    if result.last_eval:
        say("last validation: " + ", ".join(f"{k}={v:.4f}" for k, v in result.last_eval.items()
                                           if isinstance(v, float) and k.startswith("eval/")))


def profile(
    profiler: str = typer.Option(..., "--profiler", help="Profiler folder (e.g. a run's final/), a known model name (bluerec models list) or a Hugging Face model id."),
    dataset: Path = typer.Option(..., "--dataset", "-d", help="Prepared-dataset folder."),
    out: Path = typer.Option(..., "--out", help="Profiles JSONL to write (user_id, profile, generation settings); resumable."),
    split: str = typer.Option("test", help="Which split's users to profile: train, valid or test."),
    max_users: Optional[int] = typer.Option(None, help="Profile at most this many users."),
    max_new_tokens: int = typer.Option(64, help="Longest profile in tokens (greedy decoding)."),
    device: str = typer.Option("auto", help="auto (CUDA when available), cpu, cuda, cuda:<n>."),
    backend: str = typer.Option("hf", help="hf (transformers, CPU or GPU) or vllm (a vLLM engine on a GPU; needs bluerec[vllm])."),
    engine: str = typer.Option("local", help="local (this process) or ray (users sharded over Ray Data actors, one model each; needs bluerec[ray])."),
    workers: int = typer.Option(2, min=1, help="--engine ray: actors, each holding one model."),
    cpus_per_worker: float = typer.Option(1.0, min=0.01, help="--engine ray: CPUs per actor (its torch threads)."),
    gpus_per_worker: float = typer.Option(0.0, min=0.0, help="--engine ray: GPUs per actor."),
    ray_address: Optional[str] = typer.Option(None, help="--engine ray: an existing cluster ('auto', 'ray://host:10001'); default: a local instance."),
) -> None:
    """Write one greedy profile per user as JSONL; only users missing from an existing file are generated."""
    from bluerec.data.dataset import PreparedDataset
    from bluerec.errors import UserError
    from bluerec.io import check_output, output_lock
    from bluerec.profiler.source import check_model_source

    if backend not in ("hf", "vllm"):
        raise typer.BadParameter(f"{backend!r}; allowed: hf, vllm", param_hint="--backend")
    if engine not in ("local", "ray"):
        raise typer.BadParameter(f"{engine!r}; allowed: local, ray", param_hint="--engine")
    with friendly_errors():
        # Checks before work: ranges, the output, the dataset and the model — before loading any weights.
        check_at_least("--max-users", max_users)
        check_at_least("--max-new-tokens", max_new_tokens)
        if split not in ("train", "valid", "test"):
            raise UserError(f"--split {split!r}: expected one of train, valid, test")
        check_output(out, kind="file")
        PreparedDataset(dataset).check()
        check_model_source(profiler)
        ray_engine = None
        if engine == "ray":
            from bluerec.profiler.ray_engine import RayEngineConfig

            ray_engine = RayEngineConfig(num_workers=workers, num_cpus_per_worker=cpus_per_worker,
                                         num_gpus_per_worker=gpus_per_worker, address=ray_address)
        with output_lock(out):
            if Path(profiler).exists():  # a local run: its own prompt settings come from train_config.yaml
                from bluerec.pipeline import profiles_for_run

                profiles_for_run(Path(profiler), dataset, split, out, max_users=max_users,
                                 max_new_tokens=max_new_tokens, device=device, engine=ray_engine, backend=backend)
            else:  # a known model name (fetched on first use) or a hub id: default prompts
                from bluerec.pipeline import generate_profile_file
                from bluerec.profiler.prompts import PromptConfig

                generate_profile_file(profiler, PreparedDataset(dataset), split, out, PromptConfig(),
                                      max_new_tokens, max_users, device=device, engine=ray_engine, backend=backend)
    say(f"profiles in {out}")


def quickstart(
    out: Path = typer.Option(Path("runs/quickstart"), "--out", help="Run folder: raw/, data/, models/, train/, eval/, results.md, results.json."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML QuickstartConfig (default: the built-in settings, ~15 min on 2 cores)."),
) -> None:
    """The whole BLUE loop offline on SmolLM2: synth → prepare → baselines → zero-shot → warm start → GRPO → evaluate."""
    from bluerec.config import load_config
    from bluerec.pipeline import QuickstartConfig, run_quickstart

    from bluerec.io import check_output, output_lock

    with friendly_errors():
        cfg = load_config(QuickstartConfig, config) if config else QuickstartConfig()
        check_output(out)
        with output_lock(out):
            summary = run_quickstart(cfg, out, say=lambda m: console.print(m, highlight=False))
    from bluerec.eval.evaluator import print_summary

    rows = {m: {f"{p} {k}": v for p, metrics in r.items() for k, v in metrics.items() if k in ("ndcg@10", "recall@10")}
            for m, r in summary["results"].items()}
    print_summary(rows, title=f"quick start: {summary['n_users']} test users", console=console)
    from bluerec.eval.run import print_intervals

    print_intervals(summary, console=console, protocols=("full",))
    say(f"results: {out / 'results.md'}")
