"""The one typed configuration of a BLUE GRPO run (``configs/train/*.yaml``)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from bluerec.config import StrictModel
from bluerec.embed import EmbedderConfig
from bluerec.eval.metrics import DEFAULT_TIES, TiePolicy
from bluerec.profiler.config import LoraSettings, ProfilerConfig
from bluerec.profiler.prompts import PromptConfig
from bluerec.rewards.registry import get_reward, reward_names

_LEGACY_PROFILER_KEYS = ("dtype", "device", "trust_remote_code", "lora")
_METRIC = re.compile(r"^(mrr|ndcg|recall|(ndcg|recall|mrr)@[1-9][0-9]*)$")


class RLDataConfig(StrictModel):
    """Which prepared **train** rows become GRPO prompts (:func:`bluerec.train.dataset.build_rl_dataset`).

    Parameters:
        rows: ``"latest"`` keeps each user's ``rows_per_user`` most recent train rows (the closest to the held-out
            items); ``"all"`` keeps every train row. ``max_train_examples`` then caps either with a seeded sample.
            Default ``"latest"``.
        rows_per_user: with ``rows="latest"``, how many of a user's most recent train rows. Default ``1``.
        min_history: skip rows whose history has fewer items. Default ``1``.
        negatives: ``"per_step"`` lets the InfoNCE reward sample fresh negatives every step (seeded by step, user and
            target); ``"fixed"`` writes ``rewards.infonce.num_negatives`` seeded negatives per row into a ``negatives``
            column (always outside the user's history). Ignored for ``negatives: hard``. Default ``"per_step"``.
        mc_item_field: item column shown as multiple-choice options (``"title"`` falls back to the text when a title
            is empty). Default ``"title"``.
        mc_option_chars: options are cut to this many characters. Default ``160``.
        mc_distractors: ``"uniform"`` over the catalogue or ``"popularity"``-weighted, always outside the history and
            with a text different from the target's. Default ``"uniform"``.
        seed: seeds the sample, the negatives and the options (each row has its own generator, so a row's columns
            do not depend on which other rows were selected). Default ``0``.
    """

    rows: Literal["latest", "all"] = "latest"
    rows_per_user: int = Field(1, ge=1)
    min_history: int = Field(1, ge=0)
    negatives: Literal["per_step", "fixed"] = "per_step"
    mc_item_field: Literal["title", "text"] = "title"
    mc_option_chars: int = Field(160, ge=8)
    mc_distractors: Literal["uniform", "popularity"] = "uniform"
    seed: int = Field(0, ge=0)


SAME_AS_PROFILER = "same_as_profiler"


class ReaderConfig(StrictModel):
    """The frozen reader LM of the multiple-choice reward.

    Parameters:
        model: ``"same_as_profiler"`` — the profiler's own frozen pretrained weights: with LoRA training the very
            model being trained with its adapters disabled while it reads (no second copy in memory); with full
            fine-tuning a frozen copy of the starting profiler is loaded once. ``"profiler"`` always loads that
            frozen copy. Otherwise a known model name, a hub id or a local folder of a causal LM. ``None`` is
            only allowed while ``multiple_choice`` is not enabled. Default ``"same_as_profiler"``.
        dtype: ``"auto"`` (bfloat16 on a capable GPU, else float32), ``"float32"`` or ``"bfloat16"`` (a loaded
            reader only; the shared one has the profiler's dtype). Default ``"auto"``.
        batch_size: (context, option) pairs per forward pass. Default ``16``.
        max_length: longest reader input in tokens (context is cut from the left). Default ``1024``.

    ``reader: same_as_profiler`` (a bare string) is shorthand for ``reader: {model: same_as_profiler}``.
    """

    model: str | None = SAME_AS_PROFILER
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    batch_size: int = Field(16, ge=1)
    max_length: int = Field(1024, ge=16)

    @property
    def shares_profiler(self) -> bool:
        return self.model == SAME_AS_PROFILER


class RewardWeights(StrictModel):
    """Weight of each reward in the GRPO sum (``GRPOConfig.reward_weights``): ``{<reward name>: weight}``.

    A reward not listed weighs its registry default (``1.0`` for every built-in), filled in at validation. ``infonce`` multiplies both
    InfoNCE directions (their relative weights are ``infonce.weight_profile_to_item`` /
    ``infonce.weight_item_to_profile``). Names are checked against :mod:`bluerec.rewards.registry`.

    Example:
    ```python
    >>> RewardWeights(infonce=1.0, length_penalty=0.5).get("length_penalty"), RewardWeights().get("rlpf")
    (0.5, 1.0)
    ```
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    @model_validator(mode="before")
    @classmethod
    def _known_weights(cls, data: Any) -> Any:
        if isinstance(data, RewardWeights):
            data = data.model_dump()
        if not isinstance(data, dict):
            raise ValueError(f"rewards.weights must be a mapping of reward name to weight, got {data!r}")
        known = reward_names()
        out = {}
        for name, value in data.items():
            if name not in known:
                raise ValueError(f"rewards.weights has unknown reward {name!r}; allowed values: {known}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"rewards.weights.{name} must be a finite number >= 0, got {value!r}")
            out[name] = float(value)
        for name in known:  # explicit defaults: equal configs compare equal however they were written
            out.setdefault(name, get_reward(name).default_weight)
        return out

    def get(self, name: str) -> float:
        """The weight of reward ``name`` (its registry default when not set)."""
        value = (self.__pydantic_extra__ or {}).get(name)
        return float(value) if value is not None else get_reward(name).default_weight


class RewardsConfig(StrictModel):
    """Which rewards are on, their settings and weights.

    YAML shape: ``rewards: {enabled: [...], weights: {<name>: w}, <name>: {<settings>}}``, where every ``<name>``
    is a reward of :mod:`bluerec.rewards.registry` and its settings are that reward's typed config (every
    registered reward has its defaults, so ``rewards.<name>`` is always readable).

    Parameters:
        enabled: the rewards passed to GRPO (run in registry order). Built in: ``infonce`` (embedding space; logged
            as its two directions ``infonce_profile_to_item`` and ``infonce_item_to_profile``), ``multiple_choice``
            (text space: the frozen reader picks the next item), ``rlpf`` (the reader's likelihood of the next
            item's title, RLPF-style), ``langptune`` (NDCG@k / MRR of the next item over the catalogue,
            LangPTune-style), ``rlaif`` (a judge LM's rubric score of the profile against the history, RLAIF-style)
            and ``length_penalty``. Default ``[infonce, length_penalty]``.
        weights: :class:`RewardWeights`.
        <name>: the settings of reward ``<name>`` (e.g. ``infonce``: :class:`~bluerec.rewards.InfoNCERewardConfig`).

    Ablations and baselines are config changes:

    | run                       | setting                                                                 |
    |---------------------------|-------------------------------------------------------------------------|
    | embedding only            | ``enabled: [infonce, length_penalty]``                                  |
    | text only                 | ``enabled: [multiple_choice, length_penalty]`` (+ ``reader.model``)     |
    | both                      | ``enabled: [infonce, multiple_choice, length_penalty]``                 |
    | one-directional InfoNCE   | ``infonce: {weight_item_to_profile: 0}`` (still logged, not optimised)  |
    | RLPF-style baseline       | ``enabled: [rlpf, length_penalty]``                                     |
    | LangPTune-style baseline  | ``enabled: [langptune, length_penalty]``                                |
    | RLAIF-style baseline      | ``enabled: [rlaif, length_penalty]``                                    |
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    enabled: list[str] = Field(default_factory=lambda: ["infonce", "length_penalty"], min_length=1)
    weights: RewardWeights = Field(default_factory=RewardWeights)

    @field_validator("enabled")
    @classmethod
    def _known_enabled(cls, value: list[str]) -> list[str]:
        known = reward_names()
        for name in value:
            if name not in known:
                raise ValueError(f"unknown reward {name!r} in rewards.enabled; allowed values: {known}")
        if len(set(value)) != len(value):
            raise ValueError(f"enabled lists a reward twice: {value}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _reward_settings(cls, data: Any) -> Any:
        """Every other key is a registered reward's settings, validated by its own config class; rewards not
        given get their defaults."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        known = reward_names()
        for key in list(data):
            if key in ("enabled", "weights"):
                continue
            if key not in known:
                raise ValueError(f"unknown reward {key!r} under rewards; allowed keys: "
                                 f"{['enabled', 'weights', *known]}")
            data[key] = get_reward(key).config_from(data[key])
        for name in known:
            if name not in data:
                data[name] = get_reward(name).config()
        return data

    def settings(self, name: str) -> Any:
        """The typed settings of reward ``name``."""
        extra = self.__pydantic_extra__ or {}
        if name not in extra:
            get_reward(name)  # an unknown name: a clear error
            extra[name] = get_reward(name).config()  # registered after this config was built
        return extra[name]

    def __setattr__(self, name: str, value: Any) -> None:
        if name in type(self).model_fields or name.startswith("_"):
            super().__setattr__(name, value)
        else:  # rewards.<name> = settings: validated by the reward's own config class
            (self.__pydantic_extra__ or {})[name] = get_reward(name).config_from(value)


class GRPOSettings(StrictModel):
    """The GRPO optimisation (mapped onto TRL's ``GRPOConfig``).

    Parameters that control the batch:
        num_generations: G, profiles sampled per user prompt (the group of GRPO's advantage). Default ``4``.
        batch_size: *completions* per device per micro-batch (TRL's ``per_device_train_batch_size``), so
            ``batch_size / num_generations`` users per micro-batch. ``batch_size × gradient_accumulation_steps`` must
            be divisible by ``num_generations``. Default ``16``. It sets the training forward's activation memory,
            which grows with ``batch_size × (prompt + completion tokens)``: SmolLM2-135M with LoRA on every linear
            layer, 16 completions of ~300 tokens, peaked at ~22 GB resident on CPU, 8 at 13 GB. To save memory, halve
            ``batch_size`` and double ``gradient_accumulation_steps``: the step keeps its completions (generated
            together), its rewards and its loss normalisation (DAPO divides by the whole step's tokens); only the LoRA
            dropout masks fall differently (measured: the same first-step rewards and loss, grad norm 0.0883 vs 0.0877).
            ``gradient_checkpointing`` saves as much (13.2 GB) and keeps the run bit-identical, at 1.26× the step time.
        gradient_accumulation_steps: micro-batches per optimizer step; TRL generates for all of them at once, so the
            InfoNCE item→profile direction sees ``batch_size × gradient_accumulation_steps / num_generations`` users.
            Default ``1``.

    Parameters that control generation:
        max_completion_length: longest profile in tokens. Default ``64``.
        temperature, top_p: sampling of the training completions (``top_k`` is off). Defaults ``1.0``, ``1.0``.
        partition_invariant_sampling: sample every completion with its own generator, seeded by ``(seed, global
            step, the row's non-pad prompt tokens, its copy index within the group)``, instead of the process-wide
            RNG (:class:`bluerec.train.sampling.PartitionInvariantSampler`). The same distribution, but the
            completions no longer depend on how the global batch is split across processes (or on batch size and
            padding, up to float rounding), so a 2-process run reproduces a 1-process run of the same global batch.
            Needs ``batch_size`` to hold whole groups (a multiple of ``num_generations``) and transformers
            generation (not ``use_vllm``). Identical prompts of different users get identical completions. Costs a
            Python loop over the rows at every generated token. Default ``False``.
        shared_prefill: compute each distinct prompt's prefill once and share its KV cache among its G completions
            (:mod:`bluerec.train.shared_prefill`) instead of prefilling every copy. The same completions (greedy
            decoding gives the same tokens; sampling draws from the same distribution, and with
            ``partition_invariant_sampling`` the same tokens, up to float rounding); only the cost changes. Needs
            transformers generation; ignored with ``use_vllm`` (vLLM caches shared prefixes itself). Default
            ``True``: measured faster (``bench/grpo_step.py --shared-prefill-only``: SmolLM2, 4 prompts × 4 × 40
            tokens, the LoRA step's generation 1.29× and whole step 1.18× faster; generation alone 1.12×, all on
            noisy shared cores).

    Parameters that control the optimisation:
        learning_rate: AdamW learning rate (``~1e-5`` full / ``~1e-4`` LoRA for 1B models; ``~1e-4``–``1e-3`` for
            the micro model). Default ``1e-5``.
        lr_scheduler_type: transformers scheduler name. Default ``"constant_with_warmup"``.
        warmup_steps: warm-up steps. Default ``0``.
        weight_decay, max_grad_norm: as usual. Defaults ``0.0``, ``1.0``.
        beta: KL coefficient against the starting profiler (``0`` loads no reference model and logs no ``kl``).
            Default ``0.0``.
        epsilon: PPO clipping range. Default ``0.2``.
        num_iterations: μ, optimisation passes per generated batch. Default ``1``.
        loss_type: TRL loss aggregation (``dapo``, ``grpo``, ``dr_grpo``, ``bnpo``). Default ``"dapo"``.
        scale_rewards: ``group``, ``batch`` or ``none`` advantage scaling. Default ``"group"``.
        multi_objective_aggregation: how several rewards make one advantage (TRL's option of that name).
            ``"sum_then_normalize"`` adds the weighted rewards, then normalises the sum per group: a reward whose
            spread within a group is small counts for little whatever its weight (on amazon2014-beauty the
            multiple-choice reward's std over a step's profiles is ~0.13 against ~1.8 for InfoNCE, so "both
            rewards" trained almost as the embedding reward alone). ``"normalize_then_sum"`` (GDPO) normalises
            each reward within its group first, so the weights set each reward's share. Default ``"sum_then_normalize"``.
        mask_truncated_completions: leave profiles cut at ``max_completion_length`` out of the loss. Default
            ``False``.
        max_steps: optimizer steps. Default ``200``.
        gradient_checkpointing: trade compute for memory (off: small models on CPU). Default ``False``.
        seed: seeds model init of adapters, sampling and data order. Default ``0``.

    Parameters that choose the generation engine:
        use_vllm: generate the completions with vLLM (TRL's ``use_vllm``; GPU and the ``bluerec[vllm]`` extra).
            Default ``False``: transformers ``generate``.
        vllm_mode: ``"colocate"`` (vLLM shares the training GPUs; no server to start) or ``"server"`` (a ``trl
            vllm-serve`` process at ``vllm_server_base_url``). Default ``"colocate"``.
        vllm_gpu_memory_utilization: GPU memory share vLLM takes in colocate mode. Default ``0.3``.
        vllm_server_base_url: the server of ``vllm_mode: server``. Default ``None``.

    Parameters that control logging and checkpoints:
        logging_steps: log every N steps (to ``metrics.jsonl`` and the console). Default ``1``.
        save_steps: checkpoint every N steps (``0`` = no intermediate checkpoints). Default ``50``.
        save_total_limit: keep only the newest N checkpoints (``None`` = all). Default ``2``.
        log_completions: print a sample of (prompt, profile, reward) every logging step. Default ``False``.
    """

    num_generations: int = Field(4, ge=2)
    batch_size: int = Field(16, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_completion_length: int = Field(64, ge=1)
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    partition_invariant_sampling: bool = False
    shared_prefill: bool = True
    learning_rate: float = Field(1e-5, gt=0)
    lr_scheduler_type: str = "constant_with_warmup"
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    beta: float = Field(0.0, ge=0)
    epsilon: float = Field(0.2, gt=0)
    num_iterations: int = Field(1, ge=1)
    loss_type: Literal["dapo", "grpo", "dr_grpo", "bnpo"] = "dapo"
    scale_rewards: Literal["group", "batch", "none"] = "group"
    multi_objective_aggregation: Literal["sum_then_normalize", "normalize_then_sum"] = "sum_then_normalize"
    mask_truncated_completions: bool = False
    max_steps: int = Field(200, ge=1)
    gradient_checkpointing: bool = False
    seed: int = Field(0, ge=0)
    logging_steps: int = Field(1, ge=1)
    save_steps: int = Field(50, ge=0)
    save_total_limit: int | None = Field(2, ge=1)
    log_completions: bool = False
    use_vllm: bool = False
    vllm_mode: Literal["colocate", "server"] = "colocate"
    vllm_gpu_memory_utilization: float = Field(0.3, gt=0, le=1)
    vllm_server_base_url: str | None = None

    @model_validator(mode="after")
    def _groups_fit(self) -> GRPOSettings:
        per_step = self.batch_size * self.gradient_accumulation_steps
        if per_step % self.num_generations:
            raise ValueError(
                f"batch_size × gradient_accumulation_steps ({self.batch_size} × {self.gradient_accumulation_steps} = "
                f"{per_step}) must be divisible by num_generations ({self.num_generations})"
            )
        if self.partition_invariant_sampling:
            if self.batch_size % self.num_generations:
                raise ValueError(
                    f"partition_invariant_sampling needs whole groups on every device: batch_size "
                    f"({self.batch_size}) must be a multiple of num_generations ({self.num_generations})"
                )
            if self.use_vllm:
                raise ValueError("partition_invariant_sampling works with transformers generation only; "
                                 "turn off use_vllm or partition_invariant_sampling")
        return self


class TrainEvalConfig(StrictModel):
    """Validation during training: greedy profiles of a fixed set of validation users, scored by a registered
    retrieval evaluator (:mod:`bluerec.eval.tasks`; ``full``: the whole catalogue with the user's full history
    excluded, the target itself never excluded) — the evaluator ``bluerec evaluate`` uses.

    Parameters:
        every_steps: evaluate every N optimizer steps (``0`` = never during training). Default ``50``.
        at_start: also evaluate before the first step (skipped when resuming). Default ``True``.
        at_end: also evaluate after the last step (if it was not just evaluated). Default ``True``.
        num_users: M validation users, sampled once with ``seed`` (``None`` = all). Default ``200``.
        task: the registered retrieval task (``full`` or ``sampled``). Default ``"full"``.
        k: cut-off of the logged ``eval/ndcg@k``, ``eval/recall@k`` and ``eval/mrr@k``. Default ``10``.
        ties: the evaluator's tie policy (``average``, ``optimistic``, ``pessimistic``). Default ``"average"``.
        batch_size: prompts per generation call. Default ``32``.
        max_new_tokens: profile length (``None`` = ``grpo.max_completion_length``). Default ``None``.
        save_profiles: write the profiles to ``<output_dir>/eval/profiles-step<N>.jsonl``. Default ``True``.
        seed: seeds the user sample. Default ``0``.

    Parameters that choose the best checkpoint (on these validation users, never on test):
        select_best: after every validation at step >= ``select_from_step`` whose ``select_metric`` beats the best
            so far, the profiler of that step (LoRA merged) is saved atomically as ``<output_dir>/best/`` (with
            ``best.json``: step, metric, value) and a ``kind: "best"`` row goes to ``metrics.jsonl``.
            ``bluerec evaluate --profiler <output_dir>/best`` evaluates it. Default ``False``.
        select_metric: the validation metric to maximise (ties keep the earlier step): ``mrr``, ``ndcg@k``,
            ``recall@k``, ``mrr@k``, or a bare ``ndcg`` / ``recall`` (at ``k``). It becomes the validation
            evaluator's primary metric. Default ``None``: the evaluator's own primary metric (NDCG at ``k``).
        select_from_step: the first step that may be chosen; ``1`` leaves the starting profiler (step 0) out, so
            ``best/`` is always a GRPO-trained profiler. Default ``1``.
    """

    every_steps: int = Field(50, ge=0)
    at_start: bool = True
    at_end: bool = True
    num_users: int | None = Field(200, ge=1)
    task: Literal["full", "sampled"] = "full"
    k: int = Field(10, ge=1)
    ties: TiePolicy = DEFAULT_TIES
    batch_size: int = Field(32, ge=1)
    max_new_tokens: int | None = Field(None, ge=1)
    save_profiles: bool = True
    seed: int = Field(0, ge=0)
    select_best: bool = False
    select_metric: str | None = None
    select_from_step: int = Field(1, ge=0)

    @field_validator("select_metric")
    @classmethod
    def _metric(cls, value: str | None) -> str | None:
        if value is not None and not _METRIC.match(value):
            raise ValueError(f"unknown metric {value!r}; allowed: mrr, ndcg, recall, or ndcg@k, recall@k, mrr@k")
        return value

    def _select_metric(self) -> str | None:
        """``select_metric`` with a bare ``ndcg`` / ``recall`` put at ``k``."""
        m = self.select_metric
        return f"{m}@{self.k}" if m in ("ndcg", "recall") else m

    @property
    def retrieval(self) -> Any:
        """The validation evaluator's :class:`~bluerec.eval.evaluator.EvalConfig` (its primary metric is
        ``select_metric`` when given)."""
        from bluerec.eval.evaluator import EvalConfig

        metric = self._select_metric()
        ks = [self.k]
        if metric is not None and "@" in metric and int(metric.partition("@")[2]) != self.k:
            ks.append(int(metric.partition("@")[2]))
        return EvalConfig(protocol=self.task, ks=ks, ties=self.ties, top_n=0, seed=self.seed, primary_metric=metric)

    @property
    def select_key(self) -> str:
        """The ``metrics.jsonl`` key of the validation evaluator's primary metric (e.g. ``eval/ndcg@10``)."""
        return f"eval/{self.retrieval.primary}"

    @model_validator(mode="after")
    def _selection_needs_evals(self) -> TrainEvalConfig:
        if self.select_best and self.every_steps == 0 and not self.at_end:
            raise ValueError("select_best needs validations after step 0: set every_steps > 0 or at_end: true")
        return self


class BlueTrainConfig(StrictModel):
    """Configuration of :func:`bluerec.train.trainer.train_blue` — one GRPO run of the BLUE profiler.

    Parameters that choose the data:
        dataset: a prepared-dataset folder (``bluerec data prepare``); prompts come from its **train** split, the
            validation users from ``valid``; ``test`` is never read.
        data: :class:`RLDataConfig` (which train rows, negatives, multiple-choice options).
        max_train_examples: cap on the number of prompts, a seeded sample (``None`` = all selected rows).

    Parameters that choose the models:
        profiler: :class:`~bluerec.profiler.config.ProfilerConfig` of the starting profiler (model — a known name, a
            hub id or a folder such as a warm-started micro model —, ``model_init_kwargs``, dtype, device, LoRA),
            loaded by :func:`~bluerec.profiler.loader.load_profiler`. A bare string is ``{model: <string>}`` with
            ``dtype: float32``. The earlier top-level keys ``dtype``, ``device``, ``trust_remote_code`` and
            ``lora`` are still read (into ``profiler``) when ``profiler`` is given as a string.
        bf16: bfloat16 mixed precision; ``None`` = on exactly when training on a GPU that supports it.
        reader: :class:`ReaderConfig`, the frozen reader LM of the multiple-choice reward (default: the profiler's
            own frozen base weights).
        embedder: :class:`~bluerec.embed.EmbedderConfig` of the frozen retriever (MiniLM by default).
        item_cache_dir: on-disk cache of item embeddings (``None`` = no cache). Default ``.cache/item-embeddings``.

    Parameters that control the prompt and rewards:
        prompt: :class:`~bluerec.profiler.prompts.PromptConfig` (prompts are fit to ``max_prompt_tokens``).
        rewards: :class:`RewardsConfig` — which components are on, their weights and settings.

    Parameters that control the training:
        grpo: :class:`GRPOSettings` (batch, generation, optimiser, steps, logging, checkpoints).
        (LoRA adapters or full fine-tuning: ``profiler.lora``, :class:`~bluerec.profiler.config.LoraSettings`.)
        eval: :class:`TrainEvalConfig` (NDCG@10 of a fixed validation sample every N steps).
        num_threads: ``torch.set_num_threads`` for the run (``None`` = leave as is).
        show_progress: transformers' progress bar and log lines on the console. Default ``True``.

    Parameters that control the output:
        output_dir: run folder: ``metrics.jsonl``, ``train_config.yaml``, ``checkpoint-<step>/``, ``eval/``,
            ``final/``.
        overwrite: start over in an ``output_dir`` that already holds a run (its checkpoints, metrics and final model
            are deleted). Without it such a folder is an error unless the run is resumed. Default ``False``.
    """

    dataset: Path
    data: RLDataConfig = Field(default_factory=RLDataConfig)
    max_train_examples: int | None = Field(None, ge=1)

    profiler: ProfilerConfig
    bf16: bool | None = None
    reader: ReaderConfig = Field(default_factory=ReaderConfig)
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)
    item_cache_dir: Path | None = Path(".cache/item-embeddings")

    prompt: PromptConfig = Field(default_factory=PromptConfig)
    rewards: RewardsConfig = Field(default_factory=RewardsConfig)

    grpo: GRPOSettings = Field(default_factory=GRPOSettings)
    eval: TrainEvalConfig = Field(default_factory=TrainEvalConfig)
    num_threads: int | None = Field(None, ge=1)
    show_progress: bool = True

    output_dir: Path
    overwrite: bool = False

    @model_validator(mode="before")
    @classmethod
    def _profiler_shorthand(cls, data: Any) -> Any:
        """``profiler: <string>`` with the earlier top-level ``dtype``/``device``/``trust_remote_code``/``lora``
        (configs written before ``ProfilerConfig``) becomes one ``profiler`` mapping."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        legacy = {k: data.pop(k) for k in _LEGACY_PROFILER_KEYS if k in data}
        profiler = data.get("profiler")
        if isinstance(profiler, str):
            data["profiler"] = {"model": profiler, "dtype": "float32", **legacy}
        elif legacy:
            raise ValueError(f"{sorted(legacy)} belong under 'profiler' when profiler is a mapping "
                             f"(profiler: {{model: ..., {', '.join(f'{k}: ...' for k in sorted(legacy))}}})")
        if isinstance(data.get("reader"), str):
            data["reader"] = {"model": data["reader"]}
        return data

    @model_validator(mode="after")
    def _reader_when_needed(self) -> BlueTrainConfig:
        needing = [n for n in self.rewards.enabled if get_reward(n).reads_with_reader(self.rewards.settings(n))]
        if needing and not self.reader.model:
            raise ValueError(
                f"rewards.enabled has {needing} (they read with the frozen reader) but reader.model is not set "
                "(same_as_profiler, a known model name, an HF id, a local folder, or 'profiler' for a frozen copy of "
                "the starting profiler)"
            )
        if self.profiler.backend == "openai":
            raise ValueError("profiler.backend 'openai' cannot be trained: use hf or micro")
        if ("infonce" in self.rewards.enabled and self.rewards.infonce.history_negatives
                and self.data.negatives == "fixed"):
            raise ValueError("rewards.infonce.history_negatives adds to sampled negatives, but data.negatives 'fixed' "
                             "gives every row its negatives as a column: use data.negatives 'per_step'")
        return self

    @property
    def lora(self) -> LoraSettings:
        """The profiler's LoRA settings (``profiler.lora``)."""
        return self.profiler.lora

    def reward_names(self) -> list[str]:
        """The enabled rewards in the registry's fixed order (``infonce``, ``multiple_choice``, ``rlpf``,
        ``langptune``, ``rlaif``, ``length_penalty``, then rewards registered later)."""
        return [name for name in reward_names() if name in self.rewards.enabled]

    def needs_reader(self) -> bool:
        """Whether an enabled reward reads with the frozen reader LM."""
        return any(get_reward(name).reads_with_reader(self.rewards.settings(name)) for name in self.rewards.enabled)
