"""Benchmark (not a test): the micro profiler trained with BLUE on amazon2014-beauty, beside every baseline.

    .venv/bin/python bench/blue_beauty.py --jobs 3             # all 22,332 test users (about 85 min on 2 cores)
    .venv/bin/python bench/blue_beauty.py --max-users 500 --quick --out /tmp/bb.json   # a smoke run (~10 min)

Stages (each is kept under ``--work`` and reused when a rerun finds it finished):

1. baselines on the test split (popularity, raw history text, mean / last item embedding, template profile);
2. a tokenizer and a small Qwen2 profiler built from the train split's item texts;
3. three supervised warm starts — ``template`` (write the hand-crafted profile), ``next_item`` (keywords plus
   the text of the next train item) and ``recent_items`` (the newest titles, copied from the prompt) — and the
   choice between them by NDCG@10 of **validation** users;
4. the frozen micro reader of the multiple-choice reward (template profile → next item title);
5. GRPO from the chosen warm start, one run per ablation: both rewards, embedding reward only (bidirectional
   InfoNCE), embedding reward with one-directional InfoNCE (profile → item only), text reward only; each run's
   profiler is the checkpoint with the best validation NDCG@10 (steps > 0, so every row is "after RL");
6. greedy test profiles of the warm start and of every GRPO run, evaluated with the frozen MiniLM under both
   protocols (full ranking with the history excluded; the target + 99 seeded negatives).

The test split is read only in stages 1 and 6; every choice uses validation users. Training jobs run in
``--jobs`` processes with one torch thread each (a micro model is fastest that way on a small machine).
Writes ``bench/results/blue_beauty.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pydantic import Field  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bluerec.config import StrictModel, load_config  # noqa: E402
from bluerec.io import read_jsonl, write_json_atomic  # noqa: E402
from bluerec.profiler.backends.micro import MicroModelConfig  # noqa: E402
from bluerec.profiler.prompts import PromptConfig  # noqa: E402
from bluerec.profiler.warmstart import WarmStartConfig, WarmStartTarget  # noqa: E402
from bluerec.rewards import InfoNCERewardConfig, LengthPenaltyConfig, MultipleChoiceRewardConfig  # noqa: E402
from bluerec.train.config import GRPOSettings, RewardsConfig, RewardWeights, TrainEvalConfig  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "seqrec_benchmark_amazon"
SUBSET = "amazon2014-beauty"
RESULTS = ROOT / "bench" / "results"
console = Console(width=120)

Variant = Literal["both", "embedding", "embedding_one_way", "text"]


def _prompt() -> PromptConfig:
    # The 5 most recent titles and a one-line instruction: on 2 CPU cores the warm start, GRPO and generating
    # 22k test profiles all scale with prompt length, and the micro model learns to copy faster from a short
    # prompt (amazon2014-beauty has no reviews or ratings in the sequences).
    return PromptConfig(system_prompt="You write short, readable shopper profiles.",
                        instruction="Write a concise profile of this user's current interests and preferences.",
                        max_history_items=5, max_prompt_tokens=176, max_item_chars=60, min_item_chars=40,
                        review_snippet_chars=0,
                        include_ratings=False, item_field="title")


class BlueBeautyConfig(StrictModel):
    """Every setting of the benchmark (``--config`` takes a YAML file of these fields)."""

    prompt: PromptConfig = Field(default_factory=_prompt)
    vocab_size: int = 4096
    micro: MicroModelConfig = Field(default_factory=lambda: MicroModelConfig(hidden_size=128, intermediate_size=384))
    warmstart_targets: list[WarmStartTarget] = Field(
        default_factory=lambda: ["template", "next_item", "recent_items"])
    warmstart: WarmStartConfig = Field(default_factory=lambda: WarmStartConfig(
        max_examples=24000, max_steps=1500, batch_size=16, learning_rate=3e-3, max_prompt_tokens=176,
        max_target_tokens=64, next_item_chars=100))
    reader: WarmStartConfig = Field(default_factory=lambda: WarmStartConfig(
        target="template", max_examples=2400, max_steps=150, batch_size=16, learning_rate=3e-3,
        max_prompt_tokens=192, max_target_tokens=32))
    selection_users: int = 1000  # validation users that choose the warm-start target
    variants: list[Variant] = Field(default_factory=lambda: ["both", "embedding", "embedding_one_way", "text"])
    rewards: RewardsConfig = Field(default_factory=lambda: RewardsConfig(
        enabled=["infonce", "multiple_choice", "length_penalty"], weights=RewardWeights(length_penalty=0.5),
        infonce=InfoNCERewardConfig(floor=-10.0, num_negatives=64),
        multiple_choice=MultipleChoiceRewardConfig(floor=0.0),
        length_penalty=LengthPenaltyConfig(min_length=10, max_length=60)))
    grpo: GRPOSettings = Field(default_factory=lambda: GRPOSettings(
        num_generations=8, batch_size=32, max_completion_length=48, temperature=0.7, learning_rate=5e-5,
        beta=0.04, max_steps=60, save_steps=10, save_total_limit=None, logging_steps=1))
    train_eval: TrainEvalConfig = Field(default_factory=lambda: TrainEvalConfig(
        every_steps=10, num_users=500, batch_size=128))
    max_train_examples: int = 8000
    max_new_tokens: int = 48  # greedy profile length at evaluation
    generation_batch_size: int = 128
    history_items: int = 20  # baselines: the last 20 items (as bench/baselines.py)
    seed: int = 0


def quick(config: BlueBeautyConfig) -> BlueBeautyConfig:
    """A few-minute smoke version of ``config`` (numbers from it mean nothing)."""
    ws = config.warmstart.model_copy(update={"max_steps": 20, "max_examples": 640})
    rd = config.reader.model_copy(update={"max_steps": 10, "max_examples": 320})
    grpo = config.grpo.model_copy(update={"max_steps": 4, "save_steps": 2})
    ev = config.train_eval.model_copy(update={"every_steps": 2, "num_users": 32})
    return config.model_copy(update={"warmstart": ws, "reader": rd, "grpo": grpo, "train_eval": ev,
                                     "selection_users": 64, "max_train_examples": 200})


# --- jobs (run in worker processes: one torch thread each) ------------------------------------------------------

def _worker_init(parent_pid: int) -> None:
    import threading

    import torch

    torch.set_num_threads(1)
    # A worker whose bench process was killed (SIGKILL, a closed terminal) would train on for an hour: leave.
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()


def _exit_when_orphaned(parent_pid: int, every_s: float = 2.0) -> None:
    while os.getppid() == parent_pid:
        time.sleep(every_s)
    os._exit(1)


def _say(job: str) -> Callable[[str], None]:
    def say(msg: str) -> None:
        print(f"  [{job}] {msg}", flush=True)
    return say


def job_warm_start(data_dir: str, init_dir: str, out_dir: str, target: str, config_json: str) -> dict[str, Any]:
    from bluerec.data.dataset import PreparedDataset
    from bluerec.pipeline import loss_printer, warm_start_profiler
    from bluerec.profiler.backends.hf import HFProfiler

    config = BlueBeautyConfig.model_validate_json(config_json)
    say, start = _say(f"warm start {target}"), time.perf_counter()
    result = warm_start_profiler(HFProfiler.from_pretrained(init_dir, device="cpu"), PreparedDataset(data_dir),
                                 config.prompt, config.warmstart.model_copy(update={"target": target}),
                                 Path(out_dir), config.seed, progress=loss_printer(say, "loss", every=100))
    say(f"loss {result.first_loss:.2f} → {result.last_loss:.2f} in {time.perf_counter() - start:.0f}s")
    return {"target": target, "examples": result.n_examples, "first_loss": result.first_loss,
            "last_loss": result.last_loss, "seconds": round(time.perf_counter() - start, 1)}


def job_reader(data_dir: str, init_dir: str, out_dir: str, config_json: str) -> dict[str, Any]:
    from bluerec.data.dataset import PreparedDataset
    from bluerec.pipeline import loss_printer, train_reader
    from bluerec.profiler.backends.hf import HFProfiler

    config = BlueBeautyConfig.model_validate_json(config_json)
    say, start = _say("reader"), time.perf_counter()
    tokenizer = HFProfiler.from_pretrained(init_dir, device="cpu").tokenizer
    result = train_reader(tokenizer, PreparedDataset(data_dir), config.micro, config.reader,
                          config.rewards.multiple_choice, Path(out_dir), config.seed,
                          progress=loss_printer(say, "loss", every=50))
    say(f"loss {result.first_loss:.2f} → {result.last_loss:.2f} in {time.perf_counter() - start:.0f}s")
    return {"first_loss": result.first_loss, "last_loss": result.last_loss,
            "seconds": round(time.perf_counter() - start, 1)}


def job_profiles(profiler: str, data_dir: str, split: str, out_path: str, user_ids: list[str] | None,
                 config_json: str) -> dict[str, Any]:
    from bluerec.data.dataset import PreparedDataset
    from bluerec.pipeline import generate_profile_file

    config = BlueBeautyConfig.model_validate_json(config_json)
    start = time.perf_counter()
    generate_profile_file(profiler, PreparedDataset(data_dir), split, Path(out_path), config.prompt,
                          max_new_tokens=config.max_new_tokens, user_ids=user_ids,
                          batch_size=config.generation_batch_size)
    seconds = time.perf_counter() - start
    _say(f"profiles {Path(out_path).stem}")(f"done in {seconds:.0f}s")
    return {"path": out_path, "seconds": round(seconds, 1)}


def variant_rewards(config: BlueBeautyConfig, variant: Variant) -> RewardsConfig:
    """The ablation's reward set (see the module docstring)."""
    r = config.rewards
    if variant == "both":
        return r
    if variant == "embedding":
        return r.model_copy(update={"enabled": ["infonce", "length_penalty"]})
    if variant == "embedding_one_way":
        infonce = r.infonce.model_copy(update={"weight_item_to_profile": 0.0})
        return r.model_copy(update={"enabled": ["infonce", "length_penalty"], "infonce": infonce})
    if variant == "text":
        return r.model_copy(update={"enabled": ["multiple_choice", "length_penalty"]})
    raise ValueError(f"unknown variant {variant!r}; allowed: ['both', 'embedding', 'embedding_one_way', 'text']")


def job_grpo(data_dir: str, profiler: str, reader: str, out_dir: str, variant: Variant, cache_dir: str,
             config_json: str) -> dict[str, Any]:
    from bluerec.pipeline import train_printer
    from bluerec.train.config import BlueTrainConfig, ReaderConfig
    from bluerec.train.trainer import train_blue

    config = BlueBeautyConfig.model_validate_json(config_json)
    say, start = _say(f"grpo {variant}"), time.perf_counter()
    rewards = variant_rewards(config, variant)
    train_cfg = BlueTrainConfig(
        dataset=Path(data_dir), profiler=profiler, device="cpu", max_train_examples=config.max_train_examples,
        reader=ReaderConfig(model=reader if "multiple_choice" in rewards.enabled else None),
        item_cache_dir=Path(cache_dir), prompt=config.prompt, rewards=rewards, grpo=config.grpo,
        eval=config.train_eval.model_copy(update={"max_new_tokens": config.max_new_tokens}),
        num_threads=1, output_dir=Path(out_dir), overwrite=True, show_progress=False)

    train_blue(train_cfg, progress=train_printer(say, every=10))
    say(f"done in {time.perf_counter() - start:.0f}s")
    return {"variant": variant, "seconds": round(time.perf_counter() - start, 1)}


# --- orchestration ------------------------------------------------------------------------------------------------

def validation_curve(run_dir: Path, k: int = 10) -> list[dict[str, float]]:
    """(step, validation NDCG@k) of a GRPO run's ``metrics.jsonl``."""
    rows = read_jsonl(run_dir / "metrics.jsonl")
    return [{"step": int(r["step"]), "ndcg@10": float(r[f"eval/ndcg@{k}"])} for r in rows if r.get("kind") == "eval"]


def best_checkpoint(run_dir: Path, curve: list[dict[str, float]]) -> tuple[Path, int]:
    """The profiler folder of the best validation NDCG after at least one GRPO step (latest on ties)."""
    trained = [c for c in curve if c["step"] > 0]
    if not trained:
        raise RuntimeError(f"{run_dir}: no validation after a GRPO step in metrics.jsonl")
    best = max(trained, key=lambda c: (c["ndcg@10"], c["step"]))
    step = int(best["step"])
    folder = run_dir / f"checkpoint-{step}"
    if not folder.is_dir():  # the last step lives in final/
        folder = run_dir / "final"
    return folder, step


def _done(folder: Path) -> bool:
    return (folder / "config.json").exists()


def run(args: argparse.Namespace, config: BlueBeautyConfig) -> dict[str, Any]:
    from baselines import prepared  # bench/baselines.py: the same prepared dataset and protocol

    from bluerec.embed import Embedder
    from bluerec.eval.baselines import BASELINES
    from bluerec.eval.evaluator import EvalConfig
    from bluerec.eval.run import EvaluateConfig, EvaluationRun, load_profile_texts
    from bluerec.profiler.backends.micro import build_micro_profiler, corpus_for

    work: Path = args.work
    cfg_json = config.model_dump_json()
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        timings[stage] = round(time.perf_counter() - clock, 1)
        console.print(f"[bold]{stage}[/] done in {timings[stage]:.0f}s")
        clock = time.perf_counter()

    ds = prepared(SUBSET, args.data_root)
    data_dir = str(ds.root)
    embedder = Embedder()
    protocols = [EvalConfig(protocol="full"), EvalConfig(protocol="sampled", num_negatives=99, seed=0)]

    console.rule("1/6 baselines (test split)")
    test_run = EvaluationRun(EvaluateConfig(dataset=ds.root, methods=list(BASELINES), split="test",
                                            history_items=config.history_items, max_users=args.max_users,
                                            protocols=protocols, cache_dir=args.cache_dir),
                             embedder=embedder, say=lambda m: None)
    for method in test_run.config.methods:
        test_run.evaluate_queries(method, test_run.queries(method))
        console.print(f"  {method}: full NDCG@10 {test_run.results[method]['full'].metrics['ndcg@10']:.4f}")
    lap("baselines")

    console.rule("2/6 micro profiler: tokenizer and model")
    models = work / "models"
    init_dir = models / "micro-init"
    if not _done(init_dir):
        build_micro_profiler(corpus_for(ds), init_dir, vocab_size=config.vocab_size, model_config=config.micro,
                             prompt_config=config.prompt)
    lap("micro init")

    pool = ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn"), initializer=_worker_init,
                               initargs=(os.getpid(),))
    try:
        console.rule("3/6 warm starts (+ the reader)")
        futures: dict[Future, str] = {}
        for target in config.warmstart_targets:
            folder = models / f"warmstart-{target}"
            if not _done(folder):
                futures[pool.submit(job_warm_start, data_dir, str(init_dir), str(folder), target, cfg_json)] = target
        reader_dir = models / "reader"
        if not _done(reader_dir):
            futures[pool.submit(job_reader, data_dir, str(init_dir), str(reader_dir), cfg_json)] = "reader"
        warm_info = {futures[f]: f.result() for f in as_completed(futures)}
        lap("warm starts")

        console.rule("   warm-start target chosen on validation users")
        val_run = EvaluationRun(EvaluateConfig(dataset=ds.root, methods=[], split="valid",
                                               max_users=config.selection_users, protocols=protocols[:1],
                                               cache_dir=args.cache_dir), embedder=embedder, say=lambda m: None)
        val_ids = [ex.user_id for ex in val_run.examples]
        profiles_dir = work / "profiles"
        jobs = {}
        for t in config.warmstart_targets:
            path = fresh_profiles(profiles_dir / f"warmstart-{t}.valid.jsonl", models / f"warmstart-{t}")
            jobs[pool.submit(job_profiles, str(models / f"warmstart-{t}"), data_dir, "valid", str(path), val_ids,
                             cfg_json)] = t
        selection = {}
        for f in as_completed(jobs):
            target = jobs[f]
            texts = load_profile_texts(f.result()["path"], val_run.examples)
            selection[target] = val_run.evaluate_texts(f"warmstart-{target}", texts)["full"]["ndcg@10"]
            console.print(f"  warm start {target}: validation NDCG@10 {selection[target]:.4f}")
        chosen = max(config.warmstart_targets, key=lambda t: selection[t])
        warm_dir = models / f"warmstart-{chosen}"
        console.print(f"  chosen: [bold]{chosen}[/]")
        lap("warm-start selection")

        console.rule("4/6 GRPO, one run per ablation")
        train_root = work / "grpo"
        grpo_jobs = {}
        for variant in config.variants:
            folder = train_root / variant
            marker = folder / "bench_done.json"
            if marker.exists() and json.loads(marker.read_text()).get("profiler") == _fingerprint(warm_dir):
                continue
            grpo_jobs[pool.submit(job_grpo, data_dir, str(warm_dir), str(reader_dir), str(folder), variant,
                                  str(ROOT / ".cache" / "item-embeddings"), cfg_json)] = variant
        for f in as_completed(grpo_jobs):
            info = f.result()
            write_json_atomic(train_root / grpo_jobs[f] / "bench_done.json", {**info, "profiler": _fingerprint(warm_dir)})
        variants: dict[str, dict[str, Any]] = {}
        profilers = {"warmstart": warm_dir}
        for variant in config.variants:
            curve = validation_curve(train_root / variant, config.train_eval.k)
            folder, step = best_checkpoint(train_root / variant, curve)
            profilers[f"blue_{variant}"] = folder
            variants[variant] = {"validation": curve, "chosen_step": step, "profiler": str(folder)}
            console.print(f"  {variant}: validation NDCG@10 " + " → ".join(f"{c['ndcg@10']:.4f}" for c in curve)
                          + f"; chosen step {step}")
        lap("grpo")

        console.rule("5/6 test profiles")
        test_ids = [ex.user_id for ex in test_run.examples] if args.max_users else None
        gen_jobs = {}
        for name, folder in profilers.items():
            path = fresh_profiles(profiles_dir / f"{name}.test.jsonl", folder)
            gen_jobs[pool.submit(job_profiles, str(folder), data_dir, "test", str(path), test_ids, cfg_json)] = name
        console.rule("6/6 evaluation (test split)")
        for f in as_completed(gen_jobs):
            name = gen_jobs[f]
            texts = load_profile_texts(f.result()["path"], test_run.examples)
            test_run.evaluate_texts(name, texts)
            console.print(f"  {name}: full NDCG@10 {test_run.results[name]['full'].metrics['ndcg@10']:.4f}")
        lap("test profiles + evaluation")
    finally:
        pool.shutdown(cancel_futures=True)

    test_run.save(work / "eval")
    summary = test_run.summary()
    order = list(BASELINES) + list(profilers)
    summary["results"] = {m: summary["results"][m] for m in order}
    return {"summary": summary, "warmstart": {"targets": warm_info, "validation_ndcg@10": selection,
                                              "chosen": chosen},
            "grpo": variants, "timings_s": timings}


def check_work_config(work: Path, config: BlueBeautyConfig) -> None:
    """Finished stages are reused only by the settings that made them: ``work`` remembers its config, and a
    rerun with other settings is refused (rather than mixing models trained under different settings)."""
    work.mkdir(parents=True, exist_ok=True)
    saved = work / "bench_config.json"
    mine = json.loads(config.model_dump_json())
    if saved.exists():
        theirs = json.loads(saved.read_text())
        if theirs != mine:
            changed = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
            raise SystemExit(f"{work} holds stages made with other settings (changed: {', '.join(changed)}); "
                             "rerun with --fresh or another --work")
    else:
        write_json_atomic(saved, mine)


def _fingerprint(folder: Path) -> str:
    """Which model this is: its folder and the weights' modification time (a retrained model differs)."""
    weights = folder / "model.safetensors"
    return f"{folder}:{weights.stat().st_mtime_ns if weights.exists() else 0}"


def fresh_profiles(path: Path, profiler: Path) -> Path:
    """``path``, emptied when its profiles came from another model (resume only what this model wrote)."""
    source = path.with_name(path.name + ".source")
    if path.exists() and (not source.exists() or source.read_text() != _fingerprint(profiler)):
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(_fingerprint(profiler))
    return path


def comparison(results: dict[str, dict[str, dict[str, float]]], method: str) -> dict[str, Any]:
    """How ``method`` compares with each baseline on full-ranking NDCG@10 (the issue's targets)."""
    from bluerec.eval.baselines import BASELINES

    mine = results[method]["full"]["ndcg@10"]
    ratios = {b: round(mine / results[b]["full"]["ndcg@10"], 3) for b in BASELINES}
    return {"ndcg@10": mine, "ratio_to": ratios,
            "beats_every_baseline": all(r > 1 for r in ratios.values()),
            "beats_history_text_and_template_by_20pct": ratios["history_text"] >= 1.2 and ratios["template"] >= 1.2}


def print_table(summary: dict[str, Any]) -> None:
    results = summary["results"]
    table = Table(title=f"{SUBSET}: {summary['n_users']:,} test users, {summary['n_items']:,} items")
    for col in ("method", "full NDCG@10", "full Recall@10", "sampled NDCG@10", "sampled Recall@10", "÷ last_item"):
        table.add_column(col, justify="left" if col == "method" else "right")
    ref = results["last_item"]["full"]["ndcg@10"]
    for method, by_p in results.items():
        full, sampled = by_p["full"], by_p["sampled"]
        table.add_row(method, f"{full['ndcg@10']:.4f}", f"{full['recall@10']:.4f}", f"{sampled['ndcg@10']:.4f}",
                      f"{sampled['recall@10']:.4f}", f"{full['ndcg@10'] / ref:.2f}")
    console.print(table)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, help="YAML of BlueBeautyConfig fields (default: the built-in settings)")
    p.add_argument("--max-users", type=int, default=None, help="seeded sample of test users (quick looks only)")
    p.add_argument("--quick", action="store_true", help="a few training steps: checks the plumbing, not the numbers")
    p.add_argument("--jobs", type=int, default=2, help="worker processes for training and generation")
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "bench_blue_beauty")
    p.add_argument("--fresh", action="store_true", help="delete --work first (default: reuse finished stages)")
    p.add_argument("--data-root", type=Path, default=ROOT / "data" / "prepared")
    p.add_argument("--cache-dir", type=Path, default=ROOT / ".cache" / "embeddings")
    p.add_argument("--out", type=Path, default=RESULTS / "blue_beauty.json")
    args = p.parse_args()
    if not SHARED.is_dir():
        console.print(f"[yellow]skipped: {SHARED} is absent (the shared real data sits beside the repository)[/]")
        return 0
    config = load_config(BlueBeautyConfig, args.config) if args.config else BlueBeautyConfig()
    if args.quick:
        config = quick(config)
    if args.fresh:
        shutil.rmtree(args.work, ignore_errors=True)
    check_work_config(args.work, config)
    start = time.perf_counter()
    out = run(args, config)
    summary = out["summary"]
    print_table(summary)
    from bluerec.eval.run import markdown_table
    from bluerec.io import write_text_atomic

    command = "python bench/blue_beauty.py" + (f" --max-users {args.max_users}" if args.max_users else "") + \
        (" --quick" if args.quick else "") + (f" --config {args.config}" if args.config else "")
    payload = {
        "benchmark": "blue_beauty", "command": command, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.perf_counter() - start, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "subset": SUBSET, "n_users": summary["n_users"], "n_items": summary["n_items"],
        "config": config.model_dump(mode="json"),
        "results": summary["results"],
        "targets": {m: comparison(summary["results"], m) for m in summary["results"] if m.startswith("blue_")},
        "warmstart": out["warmstart"], "grpo": out["grpo"], "timings_s": out["timings_s"],
    }
    write_json_atomic(args.out, payload)
    md = (f"**{SUBSET}**, {summary['n_users']:,} test users, {summary['n_items']:,} items — `{command}`\n\n"
          + markdown_table(summary["results"]))
    write_text_atomic(args.out.with_suffix(".md"), md)
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
