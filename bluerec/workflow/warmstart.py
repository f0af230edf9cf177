"""``bluerec warmstart -c configs/warmstart/<x>.yaml``: the supervised warm start of a profiler as one resumable run.

A run warm-starts the profiler (:func:`bluerec.pipeline.warm_start_profiler`, i.e.
:func:`bluerec.profiler.warmstart.warm_start`) on one target, or — with ``choose_target`` — on each candidate target
and keeps the one whose greedy profiles rank the next item best for a seeded sample of **validation** users
(NDCG@10, full catalogue, history excluded; the test split is never read). Layout of ``output_dir``::

    train_config.yaml            the resolved run config (its ``prompt`` is what ``bluerec evaluate --profiler
                                 <output_dir>/model`` and GRPO should use)
    candidates/<target>/model/   each warm start (save_pretrained; LoRA merged), and result.json beside it
    selection/<target>.valid.jsonl  validation profiles of each candidate (choose_target only)
    model/                       the warm-started profiler: the chosen candidate (copied atomically)
    summary.json                 targets, losses, validation NDCG@10 of each candidate, the choice

Rerunning is safe and resumes: a finished candidate (its ``result.json`` written after the model) is reused, profile
files resume user by user, and ``model/`` is rewritten only when missing or the choice changed. A folder that holds
a run with other settings is refused unless ``overwrite: true``.

Example::

    >>> from bluerec.config import load_config
    >>> cfg = load_config(WarmStartRunConfig, "configs/warmstart/beauty_smollm2.yaml")
    >>> summary = run_warmstart(cfg)
    >>> summary["chosen"], summary["model"]
    ('recent_items', 'runs/beauty-smollm2/warmstart/model')
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, model_validator

from bluerec.config import StrictModel
from bluerec.embed import EmbedderConfig
from bluerec.profiler.config import ProfilerConfig
from bluerec.profiler.prompts import PromptConfig
from bluerec.profiler.warmstart import WarmStartConfig, WarmStartTarget

log = logging.getLogger(__name__)

Say = Callable[[str], None]
CONFIG_FILE = "train_config.yaml"
SUMMARY_FILE = "summary.json"
RESULT_FILE = "result.json"


class WarmStartSelection(StrictModel):
    """How candidate targets are compared: greedy profiles of a seeded sample of validation users, NDCG@k over
    the full catalogue with each user's history excluded.

    Parameters:
        num_users: validation users in the sample (``None`` = all). Default ``200``.
        seed: seeds the sample. Default ``0``.
        max_new_tokens: profile length (greedy). Default ``48``.
        batch_size: prompts per ``generate`` call. Default ``32``.
        k: the cut-off of the NDCG that decides. Default ``10``.
    """

    num_users: int | None = Field(200, ge=1)
    seed: int = 0
    max_new_tokens: int = Field(48, ge=1)
    batch_size: int = Field(32, ge=1)
    k: int = Field(10, ge=1)


class WarmStartRunConfig(StrictModel):
    """One ``bluerec warmstart`` run (``configs/warmstart/*.yaml``).

    Parameters:
        dataset: prepared-dataset folder; examples come from its **train** split, the choice from ``valid``.
        profiler: :class:`~bluerec.profiler.config.ProfilerConfig` of the starting model (a bare string is
            ``{model: <string>}``). With ``lora.enabled`` adapters are trained and merged into the saved model.
        prompt: :class:`~bluerec.profiler.prompts.PromptConfig` — use the same in the GRPO config.
        warmstart: :class:`~bluerec.profiler.warmstart.WarmStartConfig` (``target``, steps, learning rate...).
        choose_target: candidate targets; when it names two or more, each is warm-started with ``warmstart``'s
            other settings and the best on validation users (``selection``) becomes ``model/``. Default ``[]``
            (just ``warmstart.target``).
        selection: :class:`WarmStartSelection`.
        embedder: the frozen retriever of the choice (MiniLM by default). item_cache_dir: its item cache.
        num_threads: ``torch.set_num_threads`` for the run (``None`` = leave as is).
        output_dir: the run folder (see the module docstring). overwrite: start over in a folder that holds a
            run with other settings. Default ``False``.
    """

    dataset: Path
    profiler: ProfilerConfig
    prompt: PromptConfig = Field(default_factory=PromptConfig)
    warmstart: WarmStartConfig = Field(default_factory=WarmStartConfig)
    choose_target: list[WarmStartTarget] = Field(default_factory=list)
    selection: WarmStartSelection = Field(default_factory=WarmStartSelection)
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)
    item_cache_dir: Path | None = Path(".cache/embeddings")
    num_threads: int | None = Field(None, ge=1)
    output_dir: Path
    overwrite: bool = False

    @model_validator(mode="before")
    @classmethod
    def _profiler_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("profiler"), str):
            data = {**data, "profiler": {"model": data["profiler"]}}
        return data

    @model_validator(mode="after")
    def _checks(self) -> WarmStartRunConfig:
        if len(set(self.choose_target)) != len(self.choose_target):
            raise ValueError(f"choose_target lists a target twice: {self.choose_target}")
        if self.profiler.backend not in ("hf", "micro"):
            raise ValueError(f"profiler.backend {self.profiler.backend!r} cannot be warm-started: use hf or micro")
        return self

    @property
    def targets(self) -> list[str]:
        return list(self.choose_target) if len(self.choose_target) >= 2 else [self.warmstart.target]


def _settings(config: WarmStartRunConfig) -> dict[str, Any]:
    """What the results depend on (not where they go or whether to overwrite)."""
    return config.model_dump(mode="json", exclude={"output_dir", "overwrite", "num_threads"})


def _check_output(config: WarmStartRunConfig) -> None:
    out = Path(config.output_dir)
    previous = out / CONFIG_FILE
    if not previous.exists():
        return
    try:
        old = yaml.safe_load(previous.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        old = {}
    old = {k: v for k, v in old.items() if k not in ("output_dir", "overwrite", "num_threads")}
    if old == _settings(config):
        return
    if not config.overwrite:
        changed = sorted(k for k in set(old) | set(_settings(config)) if old.get(k) != _settings(config).get(k))
        raise FileExistsError(f"{out} holds a warm start with other settings (changed: {', '.join(changed)}); "
                              "use another output_dir or set overwrite: true to start over")
    for name in ("candidates", "selection", "model", SUMMARY_FILE, CONFIG_FILE):
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _done(candidate: Path) -> dict[str, Any] | None:
    try:
        result = json.loads((candidate / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return result if (candidate / "model" / "config.json").exists() else None


def _warm_start_one(config: WarmStartRunConfig, dataset: Any, target: str, folder: Path, say: Say) -> dict[str, Any]:
    from bluerec.io import write_json_atomic
    from bluerec.pipeline import warm_start_profiler
    from bluerec.profiler.loader import load_profiler
    from bluerec.train.trainer import save_final

    from transformers import set_seed

    ws = config.warmstart.model_copy(update={"target": target})
    # LoRA adapters are initialised from the global RNG: seed it, or the warm start depends on whatever drew random
    # numbers earlier in the process (a quick start and a benchmark gave different warm starts for the same seed).
    set_seed(ws.seed)
    profiler = load_profiler(config.profiler, trainable=config.profiler.lora.enabled)

    def progress(row: dict[str, Any]) -> None:
        say(f"    {target}: step {row['step']}/{row['max_steps']} loss {row['loss']:.3f}")

    result = warm_start_profiler(profiler, dataset, config.prompt, ws, folder / "model", ws.seed, progress=progress)
    if hasattr(profiler.model, "merge_and_unload"):  # LoRA: a plain model folder, like GRPO's final/
        save_final(profiler.model, profiler.tokenizer, folder / "model")
    record = {"target": target, "steps": result.steps, "n_examples": result.n_examples,
              "n_dropped": result.n_dropped, "seconds": round(result.seconds, 1),
              "first_loss": result.first_loss, "last_loss": result.last_loss,
              "losses": [[s, loss] for s, loss in result.losses],
              "n_truncated": result.n_truncated, "target_tokens": result.target_tokens}
    p90 = result.target_tokens.get("p90", 0)
    if p90 > config.selection.max_new_tokens:  # the profiles this model writes are cut before the taught text ends
        say(f"    warning: {target}: more than 10% of the targets are longer than selection.max_new_tokens="
            f"{config.selection.max_new_tokens} (90th percentile {p90} tokens): those profiles stop mid-target; "
            "raise it (and the GRPO completion length) or shorten the target")
    write_json_atomic(folder / RESULT_FILE, record)  # written last: it marks the candidate finished
    del profiler
    return record


def _validation_ndcg(config: WarmStartRunConfig, candidates: dict[str, Path], out: Path, say: Say) -> dict[str, Any]:
    """NDCG@k (and recall@k) of each candidate's greedy profiles on the seeded validation sample."""
    from bluerec.data.dataset import PreparedDataset
    from bluerec.eval.evaluator import EvalConfig
    from bluerec.eval.run import EvaluateConfig, EvaluationRun, load_profile_texts
    from bluerec.pipeline import generate_profile_file

    sel = config.selection
    run = EvaluationRun(EvaluateConfig(dataset=config.dataset, methods=[], split="valid", max_users=sel.num_users,
                                       seed=sel.seed, embedder=config.embedder, cache_dir=config.item_cache_dir,
                                       protocols=[EvalConfig(protocol="full", ks=[sel.k])]),
                        say=lambda m: None)
    ds = PreparedDataset(config.dataset)
    users = [ex.user_id for ex in run.examples]
    scores: dict[str, Any] = {}
    for target, model_dir in candidates.items():
        path = out / "selection" / f"{target}.valid.jsonl"
        generate_profile_file(ProfilerConfig(**{**config.profiler.model_dump(), "model": str(model_dir),
                                                "lora": {"enabled": False}, "model_init_kwargs": {},
                                                "lora_path": None, "batch_size": sel.batch_size}),
                              ds, "valid", path, config.prompt, sel.max_new_tokens, user_ids=users)
        metrics = run.evaluate_texts(target, load_profile_texts(path, run.examples))["full"]
        primary = run.evaluators["full"].primary_metric  # what decides: the evaluator's primary metric
        scores[target] = {**{m: metrics.get(m) for m in dict.fromkeys([primary, f"recall@{sel.k}"])},
                          "n_users": len(users), "primary_metric": primary}
        say(f"  {target}: validation {primary} = {scores[target][primary]:.4f} ({len(users)} users)")
    return scores


def _copy_atomic(src: Path, dst: Path) -> None:
    from bluerec.io import make_temp_dir

    tmp = make_temp_dir(f".{dst.name}.tmp-", dst.parent)
    try:
        shutil.copytree(src, tmp, dirs_exist_ok=True)
        old = dst.with_name(f".{dst.name}.old.{os.getpid()}")
        if dst.exists():
            os.replace(dst, old)
        os.replace(tmp, dst)
        if old.exists():
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def run_warmstart(config: WarmStartRunConfig, say: Say | None = None) -> dict[str, Any]:
    """Run (or resume) a warm start; returns the summary also written to ``<output_dir>/summary.json``."""
    import torch

    from bluerec.data.dataset import PreparedDataset
    from bluerec.io import write_json_atomic, write_text_atomic
    from bluerec.train.trainer import config_yaml

    say = say or (lambda m: log.info(m))
    out = Path(config.output_dir)
    threads = torch.get_num_threads()
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    try:
        _check_output(config)
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / CONFIG_FILE, config_yaml(config))  # type: ignore[arg-type]
        dataset = PreparedDataset(config.dataset)
        dataset.check()
        start = time.perf_counter()
        results: dict[str, Any] = {}
        for i, target in enumerate(config.targets, 1):
            folder = out / "candidates" / target
            done = _done(folder)
            if done is not None:
                say(f"{i}/{len(config.targets)} warm start {target}: done earlier (loss {done['last_loss']})")
                results[target] = done
                continue
            say(f"{i}/{len(config.targets)} warm start {target}: {config.warmstart.max_steps} steps")
            results[target] = _warm_start_one(config, dataset, target, folder, say)
        chosen = config.targets[0]
        scores: dict[str, Any] = {}
        selection_start = time.perf_counter()
        if len(config.targets) > 1:
            say(f"choosing the target on {config.selection.num_users or 'all'} validation users")
            scores = _validation_ndcg(config, {t: out / "candidates" / t / "model" for t in config.targets}, out, say)
            # Ties keep the earlier candidate in choose_target order.
            chosen = max(config.targets, key=lambda t: (scores[t][scores[t]["primary_metric"]],
                                                        -config.targets.index(t)))
        model = out / "model"
        previous = _read_summary(out)
        if not (model / "config.json").exists() or (previous or {}).get("chosen") != chosen:
            _copy_atomic(out / "candidates" / chosen / "model", model)
        # "seconds" is the work the result cost: every candidate's training, also when an earlier run did it, plus
        # this run's choice on validation users; a resumed run's own wall time is "run_seconds".
        trained = sum(float(r.get("seconds", 0.0)) for r in results.values())
        selection_seconds = time.perf_counter() - selection_start
        summary = {"targets": config.targets, "chosen": chosen, "model": str(model), "results": results,
                   "validation": scores, "seconds": round(trained + selection_seconds, 1),
                   "selection_seconds": round(selection_seconds, 1),
                   "run_seconds": round(time.perf_counter() - start, 1)}
        write_json_atomic(out / SUMMARY_FILE, summary)
        say(f"warm start: target {chosen} → {model}")
        return summary
    finally:
        torch.set_num_threads(threads)


def _read_summary(out: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
