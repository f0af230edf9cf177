"""End-to-end jobs built from the library: ``bluerec quickstart`` and profile generation for evaluation.

The quick start runs the whole BLUE loop offline on the embedded defaults — SmolLM2-135M-Instruct as the profiler,
all-MiniLM-L6-v2 as the embedder — small enough for 2 CPU cores:

1. the profiler model: fetched and converted on first use (``bluerec models fetch smollm2-135m-instruct``);
2. ``data synth``: Amazon-2023-schema files with users whose interests drift over time;
3. ``data prepare``: dedupe, k-core, leave-last-out split;
4. baselines on a seeded sample of test users: popularity, raw history text, mean / last item embedding,
   template profile, the successor baselines;
5. the zero-shot profile: the pretrained profiler as it is;
6. warm start (``bluerec warmstart``): LoRA supervised training on the ``warmstart.target`` texts, merged;
7. GRPO (TRL, LoRA) with the bidirectional InfoNCE and the multiple-choice rewards; the reader is the frozen
   warm-started weights (the trained model with its adapters disabled);
8. evaluation of the zero-shot, warm-start and BLUE profiles beside every baseline on the same users (full ranking
   and sampled candidates) with paired bootstrap intervals, a results table (markdown + JSON), three example
   users and the HTML report.

``profiler.backend: micro`` swaps in the project's micro model (built for the synthetic catalogue; for tests).
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from bluerec.config import StrictModel
from bluerec.data.config import PrepareConfig
from bluerec.data.synth import SynthConfig
from bluerec.profiler.backends.micro import MicroModelConfig
from bluerec.profiler.config import LoraSettings, ProfilerConfig
from bluerec.profiler.prompts import PromptConfig
from bluerec.profiler.warmstart import WarmStartConfig
from bluerec.train.config import GRPOSettings, ReaderConfig, RewardsConfig, TrainEvalConfig

Say = Callable[[str], None]


def _compact_prompt() -> PromptConfig:
    # Short prompts keep a 135M model on 2 CPU cores fast: the 5 most recent titles, a one-line instruction.
    return PromptConfig(system_prompt="You write short, readable shopper profiles.",
                        instruction="Write a concise profile of this user's current interests and preferences.",
                        max_history_items=5, max_prompt_tokens=160, max_item_chars=60, min_item_chars=40,
                        review_snippet_chars=0, include_ratings=False, item_field="title")


def _rewards() -> RewardsConfig:
    # Floors below what real profiles score, so GRPO never learns that an empty profile pays.
    return RewardsConfig.model_validate({
        "enabled": ["infonce", "multiple_choice", "length_penalty"],
        "weights": {"infonce": 1.0, "multiple_choice": 1.0, "length_penalty": 0.5},
        "infonce": {"temperature": 0.05, "num_negatives": 32, "floor": -10.0},
        "multiple_choice": {"num_choices": 4, "floor": 0.0},
        "length_penalty": {"min_length": 8, "max_length": 60}})


class QuickstartConfig(StrictModel):
    """Everything ``bluerec quickstart`` does (``configs/quickstart.yaml``). Defaults fit ~12 minutes on 2 cores.

    Parameters:
        synth, k_core: the synthetic data and its k-core.
        profiler: the profiler to start from (default SmolLM2-135M-Instruct, float32, LoRA r=16 on all linear
            layers, on the CPU so the README's numbers reproduce; ``device: auto`` uses a GPU). With
            ``backend: micro`` a micro model (``micro``, ``vocab_size``) is built for the catalogue instead.
        prompt: the prompt of every stage (short: generation cost grows with it).
        eval_users: the seeded sample of test users every method is scored on (``None``: all). Default 120.
        eval_seed: seeds that sample and the bootstrap (fixed apart from ``seed`` so seeds compare on the same users).
        references: methods every other method gets a paired 95% interval against.
        warmstart: the supervised warm start (``recent_items``: the profiler learns to restate the newest items).
        rewards, reader: BLUE's rewards; the multiple-choice reader (default: the frozen profiler weights).
        grpo: TRL GRPO settings; train_eval: validation during training (default off: BLUE is the final model).
        max_new_tokens: profile length at evaluation (greedy).
        num_threads: torch threads (results can depend on it: keep it fixed to reproduce).
        seed: the training seed (warm start data order, GRPO sampling); the data and user sample stay fixed.
    """

    synth: SynthConfig = Field(default_factory=lambda: SynthConfig(
        n_users=600, n_items=240, n_interests=16, mean_interactions=10, max_interactions=30, seed=0))
    k_core: int = Field(3, ge=0)
    profiler: ProfilerConfig = Field(default_factory=lambda: ProfilerConfig(
        model="smollm2-135m-instruct", dtype="float32", device="cpu",
        lora=LoraSettings(enabled=True, r=16, alpha=32, dropout=0.0)))
    micro: MicroModelConfig = Field(default_factory=lambda: MicroModelConfig(hidden_size=128, intermediate_size=384))
    vocab_size: int = Field(2048, ge=256)
    prompt: PromptConfig = Field(default_factory=_compact_prompt)
    eval_users: int | None = Field(120, ge=1)
    eval_seed: int = 0
    references: list[str] = Field(default_factory=lambda: ["zero_shot", "warmstart", "last_item", "template",
                                                                  "history_text"])
    warmstart: WarmStartConfig = Field(default_factory=lambda: WarmStartConfig(
        target="recent_items", max_examples=480, max_steps=30, batch_size=8, learning_rate=2e-4,
        max_prompt_tokens=160, max_target_tokens=40, logging_steps=5))
    rewards: RewardsConfig = Field(default_factory=_rewards)
    reader: ReaderConfig = Field(default_factory=ReaderConfig)
    grpo: GRPOSettings = Field(default_factory=lambda: GRPOSettings(
        max_steps=12, num_generations=4, batch_size=8, learning_rate=1e-4, max_completion_length=40,
        temperature=0.7, save_steps=0, logging_steps=1))
    train_eval: TrainEvalConfig = Field(default_factory=lambda: TrainEvalConfig(every_steps=0, at_start=False,
                                                                                 at_end=False))
    max_new_tokens: int = Field(40, ge=8)
    generation_batch_size: int = Field(32, ge=1)
    num_threads: int = Field(2, ge=1)
    seed: int = 0

    @model_validator(mode="after")
    def _checks(self) -> QuickstartConfig:
        allowed = {"zero_shot", "warmstart", "blue", "popularity", "history_text", "mean_embedding", "last_item",
                   "template", "successor_text", "successor_mean"}
        bad = [r for r in self.references if r not in allowed]
        if bad:
            raise ValueError(f"references {bad} are not methods of the quick start; allowed: {sorted(allowed)}")
        if self.profiler.backend not in ("hf", "micro"):
            raise ValueError(f"profiler.backend {self.profiler.backend!r}: the quick start trains it (hf or micro)")
        return self


def warm_start_profiler(profiler: Any, dataset: Any, prompt: PromptConfig, config: WarmStartConfig,
                        out_dir: Path, seed: int, progress: Callable[[dict[str, Any]], None] | None = None) -> Any:
    """Supervised warm start of a loaded :class:`~bluerec.profiler.backends.hf.HFProfiler` (trained in place) on
    ``config.target`` examples from the train split; saved to ``out_dir``. Returns the ``WarmStartResult``."""
    from bluerec.profiler.prompts import token_counter
    from bluerec.profiler.warmstart import make_warmstart_examples, warm_start

    examples = make_warmstart_examples(dataset, "train", target=config.target, max_examples=config.max_examples,
                                       seed=seed, prompt_config=prompt, count_tokens=token_counter(profiler.tokenizer),
                                       next_item_chars=config.next_item_chars)
    return warm_start(profiler.model, profiler.tokenizer, examples, config, out_dir, progress=progress)


def generate_profile_file(profiler: str | Path | ProfilerConfig, dataset: Any, split: str, out_path: Path,
                          prompt: PromptConfig, max_new_tokens: int = 64, max_users: int | None = None,
                          user_ids: Any = None, batch_size: int = 32, device: str | None = None,
                          engine: Any = None, backend: str = "hf") -> Path:
    """Greedy profiles of ``split``'s users, resumable (missing users only). ``profiler`` is a
    :class:`~bluerec.profiler.config.ProfilerConfig` or a model (known name, folder, hub id) loaded with its
    defaults; ``device`` overrides its device (``"auto"``: CUDA when available). ``engine`` (a
    :class:`~bluerec.profiler.ray_engine.RayEngineConfig`) shards the users over Ray actors instead of generating
    in this process; the file is the same. ``backend`` (``hf`` or ``vllm``) applies to a model given by name or
    path."""
    from bluerec.profiler.backends.base import GenerationConfig
    from bluerec.profiler.loader import load_profiler
    from bluerec.profiler.profile import generate_profiles

    config = (profiler if isinstance(profiler, ProfilerConfig)
              else ProfilerConfig(model=str(profiler), backend=backend))  # type: ignore[arg-type]
    if config.backend == "vllm" and device not in (None, "auto", "cuda"):
        raise ValueError(f"backend 'vllm' runs on the GPU (device {device!r} was asked for): use --backend hf")
    if config.backend == "vllm":
        device = None
    gen = GenerationConfig(num_samples=1, max_new_tokens=max_new_tokens, do_sample=False, batch_size=batch_size)
    if engine is not None:
        from bluerec.profiler.ray_engine import generate_profiles_ray

        if device is not None:
            config = config.model_copy(update={"device": device})
        generate_profiles_ray(config, dataset.root, split, prompt, gen, out_path, resume=True, engine=engine,
                              max_users=max_users, user_ids=user_ids)
        return out_path
    backend = load_profiler(config, device=device)
    generate_profiles(backend, dataset, split, prompt, gen, out_path, resume=True, max_users=max_users,
                      user_ids=user_ids)
    return out_path


def profiles_for_run(profiler: Path, dataset_dir: Path, split: str, out_path: Path,
                     max_users: int | None = None, max_new_tokens: int = 64, device: str | None = None,
                     user_ids: Any = None, engine: Any = None, backend: str = "hf") -> Path:
    """Profiles for ``bluerec evaluate --profiler``: the prompt settings come from the run's ``train_config.yaml``
    (beside ``final/``) when there is one, so evaluation prompts match training prompts."""
    from bluerec.data.dataset import PreparedDataset

    return generate_profile_file(profiler, PreparedDataset(dataset_dir), split, out_path, run_prompt_config(profiler),
                                 max_new_tokens=max_new_tokens, max_users=max_users, device=device,
                                 user_ids=user_ids, engine=engine, backend=backend)


def run_prompt_config(profiler: Path) -> PromptConfig:
    """The prompt settings a profiler folder was trained with: ``prompt`` of the ``train_config.yaml`` in the folder
    or beside it (a run's ``final/``); the defaults for any other folder."""
    import yaml

    for candidate in (profiler / "train_config.yaml", profiler.parent / "train_config.yaml"):
        if candidate.exists():
            return PromptConfig.model_validate((yaml.safe_load(candidate.read_text()) or {}).get("prompt", {}))
    return PromptConfig()


def run_quickstart(config: QuickstartConfig, out: Path, say: Say) -> dict[str, Any]:
    """Run every stage (see the module docstring); returns the results summary also written to ``out``.

    A rerun starts over: the data are rebuilt (identically) and every model is retrained, so no profile of an
    earlier run's model is ever reused.
    """
    import torch

    from bluerec.data.dataset import PreparedDataset
    from bluerec.data.prepare import prepare_dataset
    from bluerec.data.synth import write_synth
    from bluerec.eval.run import EvaluateConfig, EvaluationRun, IntervalConfig, load_profile_texts
    from bluerec.io import write_json_atomic, write_text_atomic
    from bluerec.train.config import BlueTrainConfig
    from bluerec.train.trainer import train_blue
    from bluerec.workflow import WarmStartRunConfig, run_warmstart

    torch.set_num_threads(config.num_threads)
    lap = StageTimer(lambda stage, s: say(f"[bold]{stage}[/] done in {s:.0f}s"))
    timings = lap.timings
    indented: Say = lambda m: say("    " + m)  # noqa: E731
    models, profiles_dir = out / "models", out / "profiles"
    # Everything below is retrained: nothing an earlier run wrote may be resumed from.
    for stale in (models, profiles_dir, out / "train"):
        shutil.rmtree(stale, ignore_errors=True)

    say("1/8 synthesising Amazon-2023-schema data with drifting user interests")
    synth = write_synth(config.synth, out / "raw")
    say("2/8 preparing: dedupe, k-core, leave-last-out split")
    prepare_dataset(PrepareConfig(source=synth.source("amazon"), k_core=config.k_core, max_history=50), out / "data",
                    progress=lambda m: None)
    ds = PreparedDataset(out / "data")
    say(f"    {ds.counts['users']:,} users, {ds.counts['items']:,} items, {ds.counts['interactions']:,} interactions")
    lap("data")

    say(f"3/8 the profiler: {describe_start(config)}")
    start = _starting_profiler(config, ds, models)
    lap("model")

    say(f"4/8 baselines on {config.eval_users or 'all'} seeded test users (full ranking and 100 sampled candidates)")
    profiled = ["zero_shot", "warmstart", "blue"]
    ev = EvaluateConfig(dataset=out / "data", cache_dir=out / "cache", max_users=config.eval_users,
                        seed=config.eval_seed, profiles={m: profiles_dir / f"{m}.test.jsonl" for m in profiled},
                        intervals=IntervalConfig(references=config.references))
    run = EvaluationRun(ev, say=lambda m: None)
    users = [ex.user_id for ex in run.examples]
    for method in run.config.methods:
        run.evaluate_queries(method, run.queries(method))
    lap("baselines")

    def profile(name: str, profiler: ProfilerConfig) -> None:
        t = time.perf_counter()
        generate_profile_file(profiler, ds, "test", ev.profiles[name], config.prompt, config.max_new_tokens,
                              user_ids=users, batch_size=config.generation_batch_size)
        first = ev.protocols[0]
        metrics = run.evaluate_texts(name, load_profile_texts(ev.profiles[name], run.examples))[first.protocol]
        indented(f"{name}: {len(users)} profiles in {time.perf_counter() - t:.0f}s, "
                 f"{first.protocol} {first.primary} {metrics[first.primary]:.4f}")

    say("5/8 zero-shot profiles: the pretrained profiler as it is")
    frozen = start.model_copy(update={"lora": LoraSettings()})
    profile("zero_shot", frozen)
    lap("zero-shot")

    say(f"6/8 warm start ({config.warmstart.target}, {config.warmstart.max_steps} steps"
        f"{', LoRA' if start.lora.enabled else ''})")
    warm = run_warmstart(WarmStartRunConfig(
        dataset=out / "data", profiler=start, prompt=config.prompt,
        warmstart=config.warmstart.model_copy(update={"seed": config.seed}), item_cache_dir=out / "cache",
        num_threads=config.num_threads, output_dir=models / "warmstart", overwrite=True), say=indented)
    warm_model = Path(warm["model"])
    profile("warmstart", frozen.model_copy(update={"model": str(warm_model), "model_init_kwargs": {}}))
    lap("warm start")

    say(f"7/8 GRPO ({config.grpo.max_steps} steps) with the rewards {', '.join(config.rewards.enabled)}")
    train_cfg = BlueTrainConfig(
        dataset=out / "data", profiler=start.model_copy(update={"model": str(warm_model), "model_init_kwargs": {}}),
        reader=config.reader, item_cache_dir=out / "cache", prompt=config.prompt, rewards=config.rewards,
        grpo=config.grpo.model_copy(update={"seed": config.seed}), eval=config.train_eval,
        num_threads=config.num_threads, output_dir=out / "train", overwrite=True, show_progress=False)
    trained = train_blue(train_cfg, progress=train_printer(indented, every=2))
    blue_model = trained.best_dir or trained.final_dir  # best/ when train_eval.select_best chose on validation
    lap("grpo")

    say("8/8 BLUE profiles, evaluation and report")
    profile("blue", frozen.model_copy(update={"model": str(blue_model), "model_init_kwargs": {}}))
    run.save(out / "eval")
    summary = run.summary()
    lap("evaluate")
    summary["timings_s"] = timings
    summary["profiler"] = config.profiler.model
    summary["seed"] = config.seed
    summary["config"] = config.model_dump(mode="json")  # what made these numbers (a rerun can tell if it may reuse)
    # What the report compares: before → after BLUE, in this order, with their labels.
    summary["compare"] = profiled
    summary["method_labels"] = {"zero_shot": "Zero-shot profiler (no training)",
                                "warmstart": "Before BLUE: warm-start profiler",
                                "blue": "After BLUE: GRPO-trained profiler"}
    summary["examples"] = example_users(run, profiled, n=3, seed=config.eval_seed)
    write_json_atomic(out / "results.json", summary)
    write_text_atomic(out / "results.md", results_markdown(summary))
    from bluerec.report import write_report

    say(f"report: {write_report(out)}")
    return summary


def describe_start(config: QuickstartConfig) -> str:
    if config.profiler.backend == "micro":
        return f"a micro model built for this catalogue ({config.micro.hidden_size} hidden)"
    return f"{config.profiler.model} ({config.profiler.dtype}, {config.profiler.device})"


def _starting_profiler(config: QuickstartConfig, ds: Any, models: Path) -> ProfilerConfig:
    """The profiler config every stage starts from: a known model fetched on first use, or a micro model built for
    the synthetic catalogue."""
    if config.profiler.backend == "micro":
        from bluerec.profiler.backends.micro import build_micro_profiler, corpus_for

        init = build_micro_profiler(corpus_for(ds), models / "micro-init", vocab_size=config.vocab_size,
                                    model_config=config.micro, prompt_config=config.prompt)
        return config.profiler.model_copy(update={"model": str(init)})
    from bluerec.models.fetch import resolve_model

    return config.profiler.model_copy(update={"model": resolve_model(config.profiler.model)})


class StageTimer:
    """Wall seconds per stage of a job: each call ``timer(stage)`` closes the stage that just ran (since the previous
    call, or since the timer was made), records it in ``timings`` and reports it through ``report(stage, seconds)``."""

    def __init__(self, report: Callable[[str, float], None] | None = None) -> None:
        self.timings: dict[str, float] = {}
        self.report = report
        self._clock = time.perf_counter()

    def __call__(self, stage: str) -> None:
        self.timings[stage] = round(time.perf_counter() - self._clock, 1)
        if self.report is not None:
            self.report(stage, self.timings[stage])
        self._clock = time.perf_counter()


def loss_printer(say: Say, name: str, every: int = 25) -> Callable[[dict[str, Any]], None]:
    """A supervised-training ``progress`` callback that says the loss every ``every`` steps."""
    def show(row: dict[str, Any]) -> None:
        if row.get("step") and row["step"] % every == 0:
            say(f"{name} step {row['step']}/{row.get('max_steps')}: loss {row['loss']:.3f}")
    return show


def train_printer(say: Say, every: int = 5) -> Callable[[dict[str, Any]], None]:
    """A :func:`~bluerec.train.trainer.train_blue` ``progress`` callback: every validation (its primary metric), and the
    reward every ``every`` steps."""
    def show(row: dict[str, Any]) -> None:
        key = row.get("primary_metric")  # validation rows name their primary metric
        if key is not None and row.get(key) is not None:
            say(f"step {row.get('step')}: validation {str(key).removeprefix('eval/')} {row[key]:.4f}")
        elif row.get("step") and row["step"] % every == 0 and "reward" in row:
            say(f"step {row['step']}: reward {row['reward']:.3f}")
    return show


def example_users(run: Any, methods: list[str], n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` seeded test users: history, each method's profile and top-5 recommendations (full ranking)."""
    titles, index = run.dataset.items.titles, run.dataset.items.index
    picks = sorted(random.Random(seed).sample(range(len(run.examples)), min(n, len(run.examples))))
    out = []
    for i in picks:
        ex = run.examples[i]
        user: dict[str, Any] = {"user_id": ex.user_id, "history": [titles[index[h]] for h in ex.history[-8:]],
                                "next_item": titles[index[ex.item_id]], "methods": {}}
        for m in methods:
            row = run.results[m]["full"]
            user["methods"][m] = {
                "profile": run.texts[m][i],
                "rank": int(row.ranks[i]),
                "top5": [titles[index[t]] if t in index else str(t) for t in row.top_ids[i][:5]],
            }
        out.append(user)
    return out


def results_markdown(summary: dict[str, Any]) -> str:
    from bluerec.eval.run import markdown_table

    lines = [f"# bluerec quick start — {summary['n_users']:,} test users, {summary['n_items']:,} items", "",
             markdown_table(summary["results"]), "## Example users", ""]
    for user in summary["examples"]:
        lines += [f"### user {user['user_id']}", "", "History (oldest first): " + "; ".join(user["history"]),
                  "", f"True next item: **{user['next_item']}**", ""]
        for m, info in user["methods"].items():
            lines += [f"- **{m}** (rank of the next item: {info['rank'] + 1}): {info['profile']}",
                      "  - top 5: " + "; ".join(info["top5"])]
        lines.append("")
    return "\n".join(lines)
