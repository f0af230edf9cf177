"""GRPO training of the BLUE profiler with TRL's ``GRPOTrainer``.

:func:`train_blue` loads the starting profiler from a path or hub id (any causal LM, the same code path as
``load_profiler``), embeds the catalogue once with the frozen retriever, builds the enabled rewards as
TRL reward functions, and trains. It validates every ``eval.every_steps`` steps (greedy profiles of a fixed sample of
validation users, scored by the registered retrieval evaluator: full catalogue, history excluded), appends every log
line to ``metrics.jsonl``, checkpoints through the HF Trainer, resumes from the newest checkpoint, and saves the final profiler (LoRA merged)
atomically.

Launched on several processes (``accelerate launch --config_file configs/accelerate/<ddp_cpu|ddp_gpu|deepspeed_zero2|
fsdp>.yaml``), each rank generates and scores its own share of the global batch (``grpo.batch_size`` per process),
TRL gathers the rewards for the group advantages, and only rank 0 writes ``output_dir`` (config, metrics, evaluation
profiles, ``final/``; the Trainer handles checkpoints). ``grpo.partition_invariant_sampling`` makes the run reproduce a
single process on the same global batch (see :mod:`bluerec.train.sampling`).

Output layout of ``output_dir``::

    train_config.yaml          the resolved config of the run (rewritten on resume)
    metrics.jsonl              one JSON object per line, see below
    checkpoint-<step>/         HF Trainer checkpoints: weights (or adapter), optimizer.pt, scheduler.pt,
                               rng_state.pth, trainer_state.json
    eval/profiles-step<N>.jsonl  validation profiles at step N: user_id, target_item, rank, profile
    final/                     save_pretrained of the trained profiler (LoRA merged) + tokenizer
    best/                      eval.select_best: the profiler of the best validation step (LoRA merged),
                               with best.json {step, metric, value} (bluerec.train.select)

``metrics.jsonl`` rows all have ``kind``, ``step`` (optimizer steps done) and ``time_s`` (seconds since this
process started training):

- ``kind: "train"`` — TRL's log at a logging step: ``loss``, ``grad_norm``, ``learning_rate``, ``reward`` (weighted
  sum, mean), ``reward_std``, ``rewards/<name>/mean`` and ``/std`` per component (``infonce_profile_to_item``,
  ``infonce_item_to_profile``, ``multiple_choice``, ``length_penalty``), the rewards' extras
  (``infonce/degenerate_fraction``, ``infonce/profile_to_item_accuracy``, ``multiple_choice/accuracy``,
  ``length_penalty/length``), ``kl`` (only when ``grpo.beta > 0``), ``entropy``, ``completions/mean_length``,
  ``clip_ratio/*``, ``step_time``, ``epoch``.
- ``kind: "eval"`` — every metric of the validation evaluator as ``eval/<name>`` (``eval/ndcg@<k>``,
  ``eval/recall@<k>``, ``eval/mrr@<k>``, ``eval/mrr``), ``eval/n_users``, ``eval/degenerate_fraction``,
  ``eval/mean_words``, ``eval/seconds``, and ``primary_metric`` (the key that ranks validations, e.g. ``eval/ndcg@10``).
- ``kind: "summary"`` — the Trainer's closing line (``train_runtime``, ``train_steps_per_second``, ``train_loss``).
- ``kind: "best"`` — ``eval.select_best``: a validation that beat every earlier one (step >= ``select_from_step``)
  and was saved as ``best/``: ``metric``, ``value``, ``path``. The last such row is the chosen checkpoint.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import yaml

from bluerec.io import read_jsonl, write_jsonl_atomic, write_text_atomic
from bluerec.profiler.prompts import prompt_renderer  # noqa: F401 - re-exported: the one chat fallback
from bluerec.train.config import BlueTrainConfig
from bluerec.train.dataset import build_rl_dataset

if TYPE_CHECKING:
    from transformers import TrainerCallback

    from bluerec.data.dataset import Example, PreparedDataset

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None]
METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "train_config.yaml"
FINAL_DIR = "final"
_SECRET_KEY = re.compile(r"(^|[_-])(api[_-]?key|token|secret|password|credentials?)$", re.IGNORECASE)
_RUN_ARTIFACTS = (METRICS_FILE, FINAL_DIR, "best", "eval", "completions")


@dataclass
class TrainResult:
    """What a run did and where it put it."""

    output_dir: Path
    final_dir: Path
    metrics_path: Path
    global_step: int
    start_step: int  # > 0 when resumed
    resumed_from: Path | None
    seconds: float  # wall time of trainer.train() in this process
    steps_per_s: float  # optimizer steps of this process per second (eval time included)
    evals: list[dict[str, Any]] = field(default_factory=list)  # the eval rows of this process
    train_metrics: dict[str, Any] = field(default_factory=dict)  # the Trainer's summary
    best: dict[str, Any] | None = None  # eval.select_best: {step, metric, value, path} of best/ (None: off/none)

    @property
    def best_dir(self) -> Path | None:
        return self.output_dir / self.best["path"] if self.best else None

    @property
    def last_eval(self) -> dict[str, Any] | None:
        return self.evals[-1] if self.evals else None


# ---------------------------------------------------------------------------------------------------------------------
# metrics.jsonl
# ---------------------------------------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class MetricsLog:
    """Appends rows to ``metrics.jsonl``; on resume, rows logged after the checkpoint's step are dropped first (they
    belong to the interrupted run and are about to be logged again)."""

    def __init__(self, path: Path, keep_until_step: int | None) -> None:
        self.path = path
        if path.exists():
            if keep_until_step is None:
                path.unlink()
            else:
                rows = [r for r in read_jsonl(path) if int(r.get("step", 0)) <= keep_until_step]
                write_jsonl_atomic(path, rows)
        self.t0 = time.perf_counter()

    def append(self, row: dict[str, Any]) -> dict[str, Any]:
        row = {k: _jsonable(v) for k, v in row.items()}
        row["time_s"] = round(time.perf_counter() - self.t0, 3)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            fh.flush()
        return row


# ---------------------------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------------------------


def select_eval_examples(dataset: PreparedDataset, num_users: int | None, seed: int) -> list[Example]:
    """A fixed, seeded sample of validation users (their latest valid row), in dataset order."""
    from bluerec.profiler.profile import latest_per_user

    examples = latest_per_user(dataset.split("valid"))
    if num_users is not None and num_users < len(examples):
        pick = np.sort(np.random.default_rng([seed, 11]).choice(len(examples), size=num_users, replace=False))
        examples = [examples[i] for i in pick]
    return examples


class ValidationEvaluator:
    """Greedy profiles for fixed validation users → query embeddings → the registered retrieval evaluator.

    The ranking is :class:`bluerec.eval.evaluator.RetrievalEvaluator`, built by the evaluation-task registry
    (:func:`bluerec.eval.tasks.build_evaluator`, task ``eval.task``, default ``full``: the whole catalogue with the
    user's full history excluded, never the target) — the same evaluator class ``bluerec evaluate`` builds. Every
    metric it returns is logged as ``eval/<name>``; ``primary_metric`` (``eval/`` + the evaluator's) chooses checkpoints.

    Args:
        prompts: one chat per validation user.
        retrieval: the evaluator of those users (targets, exclusions, item matrix).
        encoder: the retriever (``encode_queries``).
        tokenizer: the profiler's tokenizer.
        batch_size, max_new_tokens: generation settings.
        out_dir: where ``profiles-step<N>.jsonl`` go (``None`` = not saved).
    """

    def __init__(
        self,
        prompts: list[list[dict]],
        retrieval: Any,
        encoder: Any,
        tokenizer: Any,
        *,
        batch_size: int = 32,
        max_new_tokens: int = 64,
        out_dir: Path | None = None,
    ) -> None:
        if len(prompts) != len(retrieval.user_ids):
            raise ValueError(f"{len(prompts)} prompts for {len(retrieval.user_ids)} validation users")
        self.prompts = prompts
        self.retrieval = retrieval
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.out_dir = out_dir
        self._profiler: Any = None

    @property
    def primary_metric(self) -> str:
        """The ``metrics.jsonl`` key of the evaluator's primary metric (e.g. ``eval/ndcg@10``)."""
        return f"eval/{self.retrieval.primary_metric}"

    def profiles(self, model: Any) -> list[str]:
        from bluerec.profiler.backends.hf import HFProfiler

        if self._profiler is None or self._profiler.model is not model:
            self._profiler = HFProfiler(model, self.tokenizer, batch_size=self.batch_size)
        outs = self._profiler.generate(self.prompts, num_samples=1, max_new_tokens=self.max_new_tokens,
                                       do_sample=False, seed=0)
        return [o[0] if o else "" for o in outs]

    def __call__(self, model: Any, step: int) -> dict[str, Any]:
        from bluerec.rewards.text import is_degenerate

        start = time.perf_counter()
        texts = self.profiles(model)
        queries = np.asarray(self.encoder.encode_queries(texts), dtype=np.float32)
        metrics = self.retrieval(queries)
        result = self.retrieval.last_result
        row: dict[str, Any] = {f"eval/{name}": float(value) for name, value in metrics.items()}
        row.update({
            "eval/n_users": len(texts),
            "eval/degenerate_fraction": float(np.mean([is_degenerate(t) for t in texts])),
            "eval/mean_words": float(np.mean([len(t.split()) for t in texts])),
            "eval/seconds": round(time.perf_counter() - start, 3),
            "primary_metric": self.primary_metric,  # which key ranks validations (the report reads it)
        })
        if self.out_dir is not None:
            write_jsonl_atomic(
                self.out_dir / f"profiles-step{step:06d}.jsonl",
                ({"user_id": u, "target_item": t, "rank": r, "profile": p}
                 for u, t, r, p in zip(result.user_ids, result.target_ids, result.ranks.tolist(), texts)),
            )
        return row


# ---------------------------------------------------------------------------------------------------------------------
# Callbacks
# ---------------------------------------------------------------------------------------------------------------------


def _callbacks(
    metrics: MetricsLog,
    evaluator: ValidationEvaluator | None,
    config: BlueTrainConfig,
    progress: Progress | None,
    evals: list[dict[str, Any]],
    select: Callable[[Any, int, dict[str, Any]], dict[str, Any] | None] | None = None,
) -> list[TrainerCallback]:
    from transformers import TrainerCallback

    def emit(row: dict[str, Any]) -> dict[str, Any]:
        row = metrics.append(row)
        if progress is not None:
            progress(row)
        return row

    class MetricsCallback(TrainerCallback):
        """Every Trainer log line → one ``metrics.jsonl`` row (``kind`` train or summary)."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or not state.is_world_process_zero:  # TRL's logs are already gathered over ranks
                return
            kind = "summary" if "train_runtime" in logs else "train"
            emit({"kind": kind, "step": state.global_step, **logs})

    class EvalCallback(TrainerCallback):
        """Validation NDCG at the start, every ``every_steps`` steps and at the end."""

        def __init__(self) -> None:
            self.last_step: int | None = None

        def _run(self, state, model) -> None:
            if evaluator is None or model is None:
                return
            row = evaluator(model, state.global_step)
            self.last_step = state.global_step
            key = evaluator.primary_metric
            log.info("step %d: %s = %.4f (%d users, %.1fs)", state.global_step, key, row[key], row["eval/n_users"],
                     row["eval/seconds"])
            state.log_history.append({**row, "step": state.global_step})
            if state.is_world_process_zero:  # every rank evaluates (keeps sharded models in step); one writes
                evals.append(emit({"kind": "eval", "step": state.global_step, **row}))
            # eval.select_best: one process writes best/ (under multi-process training every rank validates)
            best = select(model, state.global_step, row) if select is not None and state.is_world_process_zero \
                else None
            if best is not None:  # this step's profiler is now <output_dir>/best
                emit({"kind": "best", **best})

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            if config.eval.at_start and state.global_step == 0:
                self._run(state, model)

        def on_step_end(self, args, state, control, model=None, **kwargs):
            every = config.eval.every_steps
            if every > 0 and state.global_step % every == 0:
                self._run(state, model)

        def on_train_end(self, args, state, control, model=None, **kwargs):
            if config.eval.at_end and self.last_step != state.global_step:
                self._run(state, model)

    return [MetricsCallback(), EvalCallback()]


# ---------------------------------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------------------------------


def launch_rank() -> tuple[int, int, int]:
    """``(rank, local_rank, world_size)`` as the launcher (``accelerate launch``, torchrun, MPI) set them, readable
    before the process group exists; ``(0, 0, 1)`` for a plain single process."""
    from accelerate.utils import get_int_from_env

    rank = get_int_from_env(["RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK"], 0)
    local = get_int_from_env(["LOCAL_RANK", "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK"], 0)
    world = get_int_from_env(["WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"], 1)
    return rank, local, world


def _redact(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: ("***" if _SECRET_KEY.search(str(k)) and isinstance(v, str) and v else _redact(v))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [_redact(v) for v in obj]
    return obj


def config_yaml(config: BlueTrainConfig) -> str:
    """The config as YAML (paths as strings, anything that looks like a secret replaced by ``***``)."""
    return yaml.safe_dump(_redact(config.model_dump(mode="json")), sort_keys=False, allow_unicode=True)


def _prepare_output_dir(config: BlueTrainConfig, resume: bool) -> Path | None:
    """Check/clean ``output_dir``; return the checkpoint to resume from (``None`` = start fresh)."""
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if resume:
        last = latest_checkpoint(out)
        if last is not None:
            return last
        log.warning("resume requested but %s has no checkpoint-<step> folder: starting from step 0", out)
    checkpoints = [p for p in out.glob("checkpoint-*") if p.is_dir()]
    existing = checkpoints + [out / name for name in _RUN_ARTIFACTS if (out / name).exists()]
    if existing and not resume:
        if not config.overwrite:
            raise FileExistsError(
                f"{out} already holds a run ({', '.join(sorted(p.name for p in existing))}); "
                "resume it (resume=True / --resume) or set overwrite: true to start over"
            )
        for p in existing:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    elif existing:  # resume without a checkpoint: clear the stale artefacts of the crashed start
        for p in existing:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    return None


def _item_embeddings(embedder: Any, dataset: PreparedDataset, cache_dir: Path | None) -> np.ndarray:
    from bluerec.embed import Embedder, embed_items

    items = dataset.items
    if isinstance(embedder, Embedder):
        emb = embed_items(embedder, items.ids, items.texts, cache_dir=cache_dir)
    else:
        emb = np.asarray(embedder.encode_documents(list(items.texts)), dtype=np.float32)
    emb = np.asarray(emb, dtype=np.float32)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return np.ascontiguousarray(emb / np.maximum(norms, 1e-12))


def build_reward_funcs(
    config: BlueTrainConfig,
    *,
    encoder: Any,
    item_emb: np.ndarray,
    dataset: PreparedDataset,
    reader: tuple[Any, Any] | tuple[Any, Any, bool] | None = None,
    extra_rewards: Sequence[Callable[..., list[float]]] = (),
    extra_weights: Sequence[float] | None = None,
    load_model: Callable[[str], tuple[Any, Any]] | None = None,
) -> tuple[list[Any], list[float]]:
    """The enabled rewards as TRL reward functions, and their ``reward_weights`` (same order).

    Every enabled reward is built by its registry entry (:mod:`bluerec.rewards.registry`) in registry order and
    weighted ``rewards.weights.<name>`` (× its components' relative weights: InfoNCE contributes its two directions,
    ``infonce_profile_to_item`` and ``infonce_item_to_profile``, weighted ``weights.infonce × weight_<direction>``; a
    direction with weight 0 is still computed and logged). ``extra_rewards`` (plain ``f(completions, **columns) ->
    list[float]`` callables, as TRL takes them) follow with ``extra_weights`` (default 1.0 each). ``reader`` is
    ``(model, tokenizer)`` or :func:`load_reader`'s ``(model, tokenizer, base_only)``; ``load_model(name)`` loads
    another frozen model a reward asks for (:func:`load_frozen_model`).
    """
    from bluerec.rewards.registry import RewardContext, get_reward, reward_func_name

    rc = config.rewards
    context = RewardContext(encoder=encoder, item_emb=item_emb, dataset=dataset,
                            reader=tuple(reader) if reader is not None else None,
                            reader_batch_size=config.reader.batch_size, reader_max_length=config.reader.max_length,
                            load_model=load_model)
    funcs: list[Any] = []
    weights: list[float] = []
    for name in config.reward_names():
        for func, weight in get_reward(name).functions(rc.settings(name), context, rc.weights.get(name)):
            funcs.append(func)
            weights.append(weight)
    extra = list(extra_rewards)
    extra_w = [1.0] * len(extra) if extra_weights is None else [float(w) for w in extra_weights]
    if len(extra_w) != len(extra):
        raise ValueError(f"{len(extra)} extra rewards but {len(extra_w)} extra weights")
    for func, weight in zip(extra, extra_w):
        if not callable(func):
            raise TypeError(f"extra reward {func!r} is not callable: pass f(completions, **columns) -> list[float]")
        if not math.isfinite(weight):
            raise ValueError(f"extra reward {reward_func_name(func)!r} has a non-finite weight {weight}")
        funcs.append(func)
        weights.append(weight)
    names = [reward_func_name(f) for f in funcs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"two reward functions share the log name(s) {dupes}; give each a distinct __name__")
    return funcs, weights


def reward_dataset_options(config: BlueTrainConfig) -> dict[str, Any]:
    """Keyword arguments of :func:`~bluerec.train.dataset.build_rl_dataset` for the enabled rewards: their
    ``dataset_options`` (``num_negatives``, ``mc_choices``) and their own columns (``columns``)."""
    from bluerec.rewards.registry import get_reward

    options: dict[str, Any] = {}
    columns: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for name in config.reward_names():
        spec, settings = get_reward(name), config.rewards.settings(name)
        if spec.dataset_options is not None:
            options.update(spec.dataset_options(settings))
        for column, make in (spec.add_columns(settings) if spec.add_columns is not None else {}).items():
            if column in columns:
                raise ValueError(f"rewards {owner[column]!r} and {name!r} both write the dataset column {column!r}")
            columns[column], owner[column] = make, name
    if columns:
        options["columns"] = columns
    return options


def check_reward_columns(config: BlueTrainConfig, column_names: Sequence[str]) -> None:
    """Every enabled reward's ``columns`` are in the GRPO dataset; else an error naming the reward."""
    from bluerec.rewards.registry import get_reward

    have = set(column_names)
    for name in config.reward_names():
        missing = [c for c in get_reward(name).columns if c not in have]
        if missing:
            raise ValueError(f"reward {name!r} needs the dataset column(s) {missing}; the GRPO dataset has "
                             f"{sorted(have)}")


def load_reader(config: BlueTrainConfig, profiler: Any) -> tuple[Any, Any, bool] | None:
    """The frozen reader of the rewards that read (``multiple_choice``, ``rlpf``, ``rlaif``: registry entries with
    ``needs_reader``) as ``(model, tokenizer, base_only)``, or ``None`` when none of them is on.

    ``reader.model: same_as_profiler`` with LoRA returns the profiler's own ``PeftModel`` and ``base_only=True``:
    the scorer reads with the adapters disabled, i.e. the frozen pretrained weights, and no second model is
    loaded. Without LoRA (full fine-tuning changes those weights) it, like ``"profiler"``, loads a frozen copy of
    the starting profiler once. Anything else is loaded as a model of its own (a known name, hub id or folder).
    """
    if not config.needs_reader():
        return None
    from bluerec.profiler.config import LoraSettings
    from bluerec.profiler.loader import load_profiler

    rc = config.reader
    if rc.shares_profiler and hasattr(profiler.model, "disable_adapter"):
        return profiler.model, profiler.tokenizer, True
    if rc.shares_profiler or rc.model == "profiler":
        source = config.profiler.model_copy(update={"lora": LoraSettings(), "dtype": rc.dtype})
        if rc.shares_profiler:
            log.info("reader same_as_profiler without LoRA: loading a frozen copy of the starting profiler")
    else:
        return (*load_frozen_model(config, profiler, str(rc.model)), False)
    reader = load_profiler(source, device=str(profiler.device))
    reader.model.requires_grad_(False)
    reader.model.eval()
    return reader.model, reader.tokenizer, False


def load_frozen_model(config: BlueTrainConfig, profiler: Any, model: str) -> tuple[Any, Any]:
    """A frozen causal LM of its own (a known name, hub id or folder; ``reader.dtype``) on the profiler's device, as
    ``(model, tokenizer)``: the reader, or a model a reward asks for (``RewardContext.load_model``, e.g. a judge)."""
    from bluerec.profiler.config import LoraSettings
    from bluerec.profiler.loader import load_profiler

    source = config.profiler.model_copy(update={
        "backend": "hf", "model": model, "model_init_kwargs": {}, "lora_path": None,
        "lora": LoraSettings(), "dtype": config.reader.dtype})
    loaded = load_profiler(source, device=str(profiler.device))
    loaded.model.requires_grad_(False)
    loaded.model.eval()
    return loaded.model, loaded.tokenizer


def grpo_args(config: BlueTrainConfig, device: torch.device, reward_weights: list[float]) -> Any:
    """TRL's ``GRPOConfig`` for a run."""
    from trl import GRPOConfig

    g = config.grpo
    vllm: dict[str, Any] = {}
    if g.use_vllm:
        from bluerec.profiler.backends.vllm import import_vllm

        import_vllm()  # a clear error before any work when the extra is missing
        vllm = {"use_vllm": True, "vllm_mode": g.vllm_mode, "vllm_gpu_memory_utilization": g.vllm_gpu_memory_utilization}
        if g.vllm_server_base_url:
            vllm["vllm_server_base_url"] = g.vllm_server_base_url
    bf16 = config.bf16
    if bf16 is None:
        bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    return GRPOConfig(
        output_dir=str(config.output_dir),
        per_device_train_batch_size=g.batch_size,
        gradient_accumulation_steps=g.gradient_accumulation_steps,
        num_generations=g.num_generations,
        max_completion_length=g.max_completion_length,
        temperature=g.temperature,
        top_p=g.top_p,
        top_k=0,
        learning_rate=g.learning_rate,
        lr_scheduler_type=g.lr_scheduler_type,
        warmup_steps=g.warmup_steps,
        weight_decay=g.weight_decay,
        max_grad_norm=g.max_grad_norm,
        beta=g.beta,
        epsilon=g.epsilon,
        num_iterations=g.num_iterations,
        loss_type=g.loss_type,
        scale_rewards=g.scale_rewards,
        multi_objective_aggregation=g.multi_objective_aggregation,
        mask_truncated_completions=g.mask_truncated_completions,
        max_steps=g.max_steps,
        activation_checkpointing=g.gradient_checkpointing,
        seed=g.seed,
        data_seed=g.seed,
        logging_steps=g.logging_steps,
        logging_first_step=True,
        save_strategy="steps" if g.save_steps > 0 else "no",
        save_steps=g.save_steps if g.save_steps > 0 else 500,
        save_total_limit=g.save_total_limit,
        save_only_model=False,
        reward_weights=list(reward_weights),
        log_completions=g.log_completions,
        report_to=[],
        use_cpu=device.type == "cpu",
        bf16=bool(bf16),
        fp16=False,
        disable_tqdm=not config.show_progress,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        **vllm,
    )


def _check_lengths(config: BlueTrainConfig, model: Any) -> None:
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    limit = getattr(cfg, "max_position_embeddings", None)
    need = config.prompt.max_prompt_tokens + config.grpo.max_completion_length
    if limit is not None and need > int(limit):
        raise ValueError(
            f"prompt.max_prompt_tokens + grpo.max_completion_length = {need} exceeds the profiler's "
            f"max_position_embeddings ({limit}); lower one of them"
        )


def save_final(model: Any, tokenizer: Any, out_dir: Path, state_dict: dict[str, Any] | None = None) -> Path:
    """Save the trained profiler with ``save_pretrained`` (a PEFT model is merged first) atomically.

    ``state_dict``: the full weights gathered from FSDP shards, saved instead of the model's own (sharded) tensors;
    a LoRA model is then saved as its adapter, unmerged (merging needs the full base weights in memory)."""
    from bluerec.profiler.checkpoint import save_pretrained_atomic

    if state_dict is not None:
        return save_pretrained_atomic(model, tokenizer, out_dir, state_dict=state_dict)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.eval()
    if getattr(model.config, "use_cache", None) is False:
        model.config.use_cache = True
    return save_pretrained_atomic(model, tokenizer, out_dir)


# ---------------------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------------------


def train_blue(
    config: BlueTrainConfig,
    *,
    resume: bool = False,
    progress: Progress | None = None,
    embedder: Any | None = None,
    callbacks: Sequence[TrainerCallback] = (),
    extra_rewards: Sequence[Callable[..., list[float]]] = (),
    extra_reward_weights: Sequence[float] | None = None,
) -> TrainResult:
    """Train the profiler with GRPO; see the module docstring for what lands in ``config.output_dir``.

    Args:
        config: the run.
        resume: continue from the newest ``checkpoint-<step>`` in ``output_dir`` (same weights, optimizer,
            scheduler, RNG and data position); rows of ``metrics.jsonl`` after that step are dropped first. Without a
            checkpoint the run starts from step 0.
        progress: called with every ``metrics.jsonl`` row as it is written (train logs, evals, the summary).
        embedder: the frozen retriever to use instead of building ``Embedder(config.embedder)``: anything with
            ``encode_queries(texts)`` and ``encode_documents(texts)`` returning float32 rows.
        callbacks: extra ``transformers.TrainerCallback`` s.
        extra_rewards: reward callables added to the configured ones, as TRL takes them: ``f(completions,
            **columns) -> list[float]`` with a distinct ``__name__`` (its log name); they receive every dataset
            column (``user_id``, ``target_item``, ``history_items``, ... and the enabled rewards' columns).
        extra_reward_weights: their GRPO weights (default 1.0 each).

    Example:
    ```python
    >>> from bluerec.config import load_config
    >>> cfg = load_config(BlueTrainConfig, "configs/train/quickstart.yaml")
    >>> result = train_blue(cfg)
    >>> result.last_eval["eval/ndcg@10"], result.final_dir
    ```
    """
    from transformers import PrinterCallback, set_seed
    from trl import GRPOTrainer

    from bluerec.data.dataset import PreparedDataset
    from bluerec.embed import Embedder
    from bluerec.profiler.loader import load_profiler
    from bluerec.profiler.prompts import context_for, fit_to_budget, history_items_for

    threads = torch.get_num_threads()
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    rank, local_rank, world = launch_rank()
    is_main = rank == 0
    if world > 1 and torch.cuda.is_available() and config.profiler.device in ("auto", "cuda"):
        torch.cuda.set_device(local_rank)  # "cuda" below (profiler, embedder) is this rank's GPU
    try:
        out = Path(config.output_dir)
        # Under multi-process training only rank 0 cleans and writes output_dir; the others read which checkpoint
        # to resume from (rank 0 deletes nothing when it resumes) and meet it at a barrier before training.
        checkpoint = _prepare_output_dir(config, resume) if is_main else (latest_checkpoint(out) if resume else None)
        start_step = 0
        if checkpoint is not None:
            state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
            start_step = int(state.get("global_step", 0))
            log.info("resuming from %s (step %d)", checkpoint, start_step)
        previous = out / CONFIG_FILE
        text = config_yaml(config)
        if is_main and checkpoint is not None and previous.exists() and previous.read_text(encoding="utf-8") != text:
            log.warning("%s differs from the config of the run being resumed; it is replaced", previous)
        if is_main:
            write_text_atomic(previous, text)
        set_seed(config.grpo.seed)

        dataset = PreparedDataset(config.dataset)
        # With LoRA the model comes back wrapped in fresh adapters, so the reader can share its frozen base.
        profiler = load_profiler(config.profiler, trainable=True)
        device = profiler.device
        model, tokenizer = profiler.model, profiler.tokenizer
        _check_lengths(config, model)
        count_tokens = profiler.count_tokens

        if embedder is None:
            embedder = Embedder(config.embedder)
        item_emb = _item_embeddings(embedder, dataset, config.item_cache_dir)

        reader = load_reader(config, profiler)
        reward_funcs, reward_weights = build_reward_funcs(config, encoder=embedder, item_emb=item_emb,
                                                          dataset=dataset, reader=reader, extra_rewards=extra_rewards,
                                                          extra_weights=extra_reward_weights,
                                                          load_model=lambda name: load_frozen_model(config, profiler,
                                                                                                    name))
        train_ds = build_rl_dataset(dataset, config.data, config.prompt, max_examples=config.max_train_examples,
                                    count_tokens=count_tokens, render=prompt_renderer(tokenizer),
                                    **reward_dataset_options(config))
        check_reward_columns(config, train_ds.column_names)
        log.info("GRPO dataset: %d prompts; rewards %s with weights %s", len(train_ds),
                 [getattr(f, "__name__", type(f).__name__) for f in reward_funcs], reward_weights)

        evaluator = None
        if config.eval.every_steps > 0 or config.eval.at_start or config.eval.at_end:
            from bluerec.eval.tasks import EvalSetup, build_evaluator

            examples = select_eval_examples(dataset, config.eval.num_users, config.eval.seed)
            prompts = [fit_to_budget(history_items_for(dataset, ex, field=config.prompt.item_field), config.prompt,
                                     count_tokens, context_for(dataset, ex, config.prompt, "valid"))
                       for ex in examples]
            setup = EvalSetup(dataset, examples, "valid", seed=config.eval.seed, item_embeddings=item_emb)
            evaluator = ValidationEvaluator(
                prompts,
                build_evaluator(config.eval.task, setup, config.eval.retrieval),
                embedder,
                tokenizer,
                batch_size=config.eval.batch_size,
                max_new_tokens=config.eval.max_new_tokens or config.grpo.max_completion_length,
                out_dir=out / "eval" if config.eval.save_profiles and is_main else None,
            )

        metrics = MetricsLog(out / METRICS_FILE if is_main else out / f".{METRICS_FILE}.rank{rank}",
                             keep_until_step=start_step if checkpoint is not None else None)  # non-main never appends
        select = None
        if config.eval.select_best and is_main:  # only the main process keeps (and cleans up) best/
            from bluerec.train.select import BestCheckpoint

            best_keeper = BestCheckpoint(out, config.eval.select_key, config.eval.select_from_step,
                                         resume_step=start_step if checkpoint is not None else None)
            select = lambda m, step, row: best_keeper.consider(m, tokenizer, step, row)  # noqa: E731
        evals: list[dict[str, Any]] = []
        args = grpo_args(config, device, reward_weights)
        model.train()
        trainer_cls = GRPOTrainer
        if config.grpo.partition_invariant_sampling:
            from bluerec.train.sampling import partition_invariant_trainer

            trainer_cls = partition_invariant_trainer(GRPOTrainer)
        if config.grpo.shared_prefill and not config.grpo.use_vllm:  # one prefill per prompt, KV cache shared by G
            from bluerec.train.shared_prefill import shared_prefill_trainer

            trainer_cls = shared_prefill_trainer(trainer_cls)
        trainer = trainer_cls(
            model=model,
            reward_funcs=reward_funcs,
            args=args,
            train_dataset=train_ds,
            processing_class=tokenizer,
            callbacks=[*_callbacks(metrics, evaluator, config, progress, evals, select), *callbacks],
            peft_config=None,  # LoRA adapters, if any, were added by load_profiler
        )
        if not config.show_progress:
            trainer.remove_callback(PrinterCallback)

        accelerator = trainer.accelerator
        accelerator.wait_for_everyone()  # rank 0 has prepared output_dir
        start = time.perf_counter()
        output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint is not None else None)
        seconds = time.perf_counter() - start
        final_dir = out / FINAL_DIR
        # FSDP shards the weights: gather a full state dict (a collective, so on every rank); DDP and ZeRO-2 keep a
        # full copy on each rank.
        from accelerate.utils import DistributedType

        full_state = (accelerator.get_state_dict(trainer.model)
                      if accelerator.distributed_type == DistributedType.FSDP else None)
        if accelerator.is_main_process:
            save_final(accelerator.unwrap_model(trainer.model), tokenizer, final_dir, state_dict=full_state)
        accelerator.wait_for_everyone()
        global_step = int(trainer.state.global_step)
        done = global_step - start_step
        log.info("trained %d steps in %.1fs; final profiler saved to %s", done, seconds, final_dir)
        return TrainResult(
            output_dir=out,
            final_dir=final_dir,
            metrics_path=metrics.path,
            global_step=global_step,
            start_step=start_step,
            resumed_from=checkpoint,
            seconds=seconds,
            steps_per_s=done / seconds if seconds > 0 else float("nan"),
            evals=evals,
            train_metrics={k: _jsonable(v) for k, v in (output.metrics or {}).items()},
            best=best_keeper.best if select is not None else None,
        )
    finally:
        torch.set_num_threads(threads)


def latest_checkpoint(output_dir: str | os.PathLike[str]) -> Path | None:
    """The newest *complete* ``checkpoint-<step>`` folder of a run (``None`` if there is none).

    A kill during a save leaves a folder without ``trainer_state.json`` (the Trainer writes it last); such a
    folder is skipped, so resuming falls back to the previous checkpoint instead of failing.
    """
    root = Path(output_dir)
    if not root.is_dir():
        return None
    steps = []
    for folder in root.glob("checkpoint-*"):
        suffix = folder.name.removeprefix("checkpoint-")
        if folder.is_dir() and suffix.isdigit() and (folder / "trainer_state.json").is_file():
            steps.append((int(suffix), folder))
    return max(steps)[1] if steps else None
