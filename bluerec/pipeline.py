"""End-to-end jobs built from the library: ``bluerec quickstart`` and profile generation for evaluation.

The quick start runs the whole BLUE loop offline on the embedded defaults, small enough for 2 CPU cores:

1. ``data synth``: Amazon-2023-schema files with users whose interests drift over time;
2. ``data prepare``: dedupe, k-core, leave-last-out split;
3. baselines: popularity, raw history text, mean / last item embedding, template profile;
4. micro profiler: tokenizer + small Qwen2 model, warm-started by supervised training;
5. micro reader: a second small model warm-started on (template profile → next item title), the frozen
   reader of the text-space multiple-choice reward;
6. GRPO (TRL) with the bidirectional InfoNCE and multiple-choice rewards;
7. evaluation of the warm-start and BLUE profilers beside every baseline (full ranking and sampled),
   a results table (markdown + JSON) and three example users.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field

from bluerec.config import StrictModel
from bluerec.data.config import PrepareConfig
from bluerec.data.synth import SynthConfig
from bluerec.profiler.backends.micro import MicroModelConfig
from bluerec.profiler.config import ProfilerConfig
from bluerec.profiler.prompts import PromptConfig
from bluerec.profiler.warmstart import WarmStartConfig
from bluerec.rewards import InfoNCERewardConfig, MultipleChoiceRewardConfig
from bluerec.train.config import GRPOSettings, RewardsConfig, TrainEvalConfig

Say = Callable[[str], None]


def _compact_prompt() -> PromptConfig:
    # Short prompts keep a CPU-only micro model fast: the 8 most recent titles, no reviews.
    return PromptConfig(max_history_items=8, max_prompt_tokens=192, max_item_chars=60, review_snippet_chars=0,
                        include_ratings=False, item_field="title")


class QuickstartConfig(StrictModel):
    """Everything ``bluerec quickstart`` does (``configs/quickstart.yaml``). Defaults fit ~15 minutes on 2 cores."""

    synth: SynthConfig = Field(default_factory=lambda: SynthConfig(
        n_users=600, n_items=240, n_interests=16, mean_interactions=10, max_interactions=30, seed=0))
    k_core: int = Field(3, ge=0)
    prompt: PromptConfig = Field(default_factory=_compact_prompt)
    vocab_size: int = Field(2048, ge=256)
    micro: MicroModelConfig = Field(default_factory=lambda: MicroModelConfig(hidden_size=128, intermediate_size=384))
    warmstart: WarmStartConfig = Field(default_factory=lambda: WarmStartConfig(
        target="template", max_examples=9600, max_steps=600, batch_size=16, learning_rate=3e-3,
        max_prompt_tokens=192, max_target_tokens=64,  # 150 steps: the profiler ignores the history; 600: it reads it
        # TRL's chunked LM head, as when the quick start's numbers were recorded: the plain loss is the same up to
        # float rounding and 2x faster on CPU, but it changes the trajectory (README: quick start, sensitivity).
        fused_lm_head=True))
    reader: WarmStartConfig = Field(default_factory=lambda: WarmStartConfig(
        target="template", max_examples=2400, max_steps=120, batch_size=16, learning_rate=3e-3,
        max_prompt_tokens=160, max_target_tokens=32, fused_lm_head=True))
    # Floors below what real profiles score, so GRPO never learns that an empty profile pays
    # (a weak profile's InfoNCE is below the chance value log 1/(K+1); its multiple-choice probability near 1/C).
    rewards: RewardsConfig = Field(default_factory=lambda: RewardsConfig(
        enabled=["infonce", "multiple_choice", "length_penalty"],
        infonce=InfoNCERewardConfig(floor=-10.0), multiple_choice=MultipleChoiceRewardConfig(floor=0.0)))
    grpo: GRPOSettings = Field(default_factory=lambda: GRPOSettings(
        max_steps=40, num_generations=4, batch_size=16, learning_rate=3e-5, max_completion_length=48,
        save_steps=20, logging_steps=1))
    train_eval: TrainEvalConfig = Field(default_factory=lambda: TrainEvalConfig(every_steps=10, num_users=100))
    max_new_tokens: int = Field(48, ge=8)  # profile length at evaluation (greedy)
    # Where the micro profiler runs. The README's numbers were recorded on CPU; "auto" uses CUDA when available.
    device: str = "cpu"
    num_threads: int = Field(1, ge=1)  # one thread is fastest for a micro model on a busy 2-core machine
    seed: int = 0


def reader_examples(dataset: Any, question_template: str, option_prefix: str, max_examples: int,
                    seed: int) -> list[tuple[str, str]]:
    """(reader context with a template profile → next item title) pairs from the train split, as plain text —
    the same format :class:`~bluerec.rewards.HFOptionScorer` scores, so the reader learns what it is asked."""
    from bluerec.profiler.template import template_items_for, template_profile

    rows = [ex for ex in dataset.split("train") if ex.history]
    if len(rows) > max_examples:
        rows = random.Random(seed).sample(rows, max_examples)
    titles, index = dataset.items.titles, dataset.items.index
    return [(question_template.format(profile=template_profile(template_items_for(dataset, ex)), options=""),
             option_prefix + titles[index[ex.item_id]]) for ex in rows]


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


def train_reader(tokenizer: Any, dataset: Any, micro: MicroModelConfig, config: WarmStartConfig,
                 mc: MultipleChoiceRewardConfig, out_dir: Path, seed: int,
                 progress: Callable[[dict[str, Any]], None] | None = None) -> Any:
    """The frozen micro reader of the multiple-choice reward: a fresh micro model (seed + 1) warm-started on
    :func:`reader_examples`; saved to ``out_dir``. Returns the ``WarmStartResult``."""
    from bluerec.profiler.backends.micro import build_micro_model
    from bluerec.profiler.warmstart import warm_start

    model = build_micro_model(tokenizer, micro.model_copy(update={"seed": micro.seed + 1}))
    examples = reader_examples(dataset, mc.question_template, mc.option_prefix, config.max_examples, seed)
    return warm_start(model, tokenizer, examples, config, out_dir, progress=progress)


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
    """Run every stage (see the module docstring); returns the results summary also written to ``out``."""
    import torch

    from bluerec.data.dataset import PreparedDataset
    from bluerec.data.prepare import prepare_dataset
    from bluerec.data.synth import write_synth
    from bluerec.eval.run import EvaluateConfig, EvaluationRun, load_profile_texts
    from bluerec.io import write_json_atomic, write_text_atomic
    from bluerec.profiler.backends.micro import build_micro_profiler, corpus_for
    from bluerec.profiler.loader import load_profiler
    from bluerec.train.config import BlueTrainConfig, ReaderConfig
    from bluerec.train.trainer import train_blue

    torch.set_num_threads(config.num_threads)
    lap = StageTimer(lambda stage, s: say(f"[bold]{stage}[/] done in {s:.0f}s"))
    timings = lap.timings

    say("1/7 synthesising Amazon-2023-schema data with drifting user interests")
    synth = write_synth(config.synth, out / "raw")
    lap("synth")
    say("2/7 preparing: dedupe, k-core, leave-last-out split")
    prepare_dataset(PrepareConfig(source=synth.source("amazon"), k_core=config.k_core, max_history=50), out / "data",
                    progress=lambda m: None)
    ds = PreparedDataset(out / "data")
    say(f"    {ds.counts['users']:,} users, {ds.counts['items']:,} items, {ds.counts['interactions']:,} interactions")
    lap("prepare")

    say("3/7 baselines (full ranking and 100 sampled candidates)")
    run = EvaluationRun(EvaluateConfig(dataset=out / "data", cache_dir=out / "cache"), say=lambda m: None)
    for method in run.config.methods:
        run.evaluate_queries(method, run.queries(method))
    lap("baselines")

    say("4/7 micro profiler: tokenizer, model, supervised warm start")
    models = out / "models"
    init = build_micro_profiler(corpus_for(ds), models / "micro-init", vocab_size=config.vocab_size,
                                model_config=config.micro, prompt_config=config.prompt)
    prof = load_profiler(ProfilerConfig(backend="micro", model=str(init), device=config.device))
    indented: Say = lambda m: say("    " + m)  # noqa: E731
    result = warm_start_profiler(prof, ds, config.prompt, config.warmstart, models / "warmstart", config.seed,
                                 progress=loss_printer(indented, "warm start"))
    say(f"    warm start loss {result.first_loss:.2f} → {result.last_loss:.2f}")
    lap("warm start")

    say("5/7 micro reader for the multiple-choice reward")
    rres = train_reader(prof.tokenizer, ds, config.micro, config.reader, config.rewards.multiple_choice,
                        models / "reader", config.seed, progress=loss_printer(indented, "reader"))
    say(f"    reader loss {rres.first_loss:.2f} → {rres.last_loss:.2f}")
    lap("reader")

    say("6/7 GRPO with the InfoNCE and multiple-choice rewards")
    profiles_dir = out / "profiles"
    # The models were just (re)trained: profiles left by an earlier run must not be resumed from.
    for stale in profiles_dir.glob("*.jsonl"):
        stale.unlink()
    generate_profile_file(models / "warmstart", ds, "test", profiles_dir / "warmstart.test.jsonl", config.prompt,
                          config.max_new_tokens, device=config.device)
    train_cfg = BlueTrainConfig(
        dataset=out / "data",
        profiler=ProfilerConfig(backend="micro", model=str(models / "warmstart"), dtype="float32", device=config.device),
        reader=ReaderConfig(model=str(models / "reader")), item_cache_dir=out / "cache",
        prompt=config.prompt, rewards=config.rewards, grpo=config.grpo, eval=config.train_eval,
        num_threads=config.num_threads, output_dir=out / "train", overwrite=True, show_progress=False,
    )
    trained = train_blue(train_cfg, progress=train_printer(indented))
    lap("grpo")

    say("7/7 evaluating the warm-start and BLUE profilers")
    generate_profile_file(trained.final_dir, ds, "test", profiles_dir / "blue.test.jsonl", config.prompt,
                          config.max_new_tokens, device=config.device)
    for name in ("warmstart", "blue"):
        texts = load_profile_texts(profiles_dir / f"{name}.test.jsonl", run.examples)
        run.evaluate_texts(name, texts)
    run.save(out / "eval")
    lap("evaluate")

    summary = run.summary()
    summary["timings_s"] = timings
    # What the report compares: before → after BLUE, in this order, with their labels.
    summary["compare"] = ["warmstart", "blue"]
    summary["method_labels"] = {"warmstart": "Before BLUE: warm-start profiler",
                                "blue": "After BLUE: GRPO-trained profiler"}
    summary["examples"] = example_users(run, summary["compare"], n=3, seed=config.seed)
    write_json_atomic(out / "results.json", summary)
    write_text_atomic(out / "results.md", results_markdown(summary))
    from bluerec.report import write_report

    say(f"report: {write_report(out)}")
    return summary


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
