"""Benchmark (not a test): where the time of one GRPO step of the SmolLM2 benchmark settings goes, on this machine.

    nice .venv/bin/python bench/grpo_step.py                      # ~10 min on 2 busy cores
    nice .venv/bin/python bench/grpo_step.py --steps 1 --quick    # a smoke run (tiny budgets; numbers mean little)

Settings (those of ``bench/blue_beauty.py`` with SmolLM2): ``smollm2-135m-instruct``, fp32 on CPU, 4 prompts × 4
completions, ``--new-tokens`` (40) per completion, prompts of the 5 newest amazon2014-beauty titles, rewards
bidirectional MiniLM InfoNCE + multiple choice (the reader is the frozen base: the LoRA model with its adapters
disabled) + length penalty, ``beta = 0``. The step is run by :func:`bluerec.train.train_blue` itself; its phases are
timed by wrapping the TRL trainer's own methods (the ones TRL's ``profiling_decorator`` marks):

- generation: ``GRPOTrainer._generate``;
- rewards: ``GRPOTrainer._calculate_rewards`` (MiniLM encoding, InfoNCE, the reader's multiple-choice scoring);
- log-probabilities: every ``GRPOTrainer._get_per_token_logps_and_entropies`` (the loss's forward pass);
- backward: ``Accelerator.backward``;
- other: the rest of the step (optimizer, scheduler, tokenisation, padding).

Comparisons in the same run, each as a ratio (> 1 = the first is faster):

- LoRA r=16 (all linear layers) vs full fine-tuning: the whole step and each phase;
- generation of all 16 completions in one batch vs one prompt (4 completions) at a time;
- repetition control (SmolLM2's default ``no_repeat_ngram_size: 3`` within the completion) off vs on;
- shared prefill (``grpo.shared_prefill``: one prefill per prompt, its KV cache shared by the 4 completions) vs
  per-completion prefill (transformers' ``generate`` of the 16 repeated rows): the LoRA step's generation phase and
  whole step, and generation alone (4 prompts × 4 completions × ``--new-tokens``, every completion forced to full
  length, same seed, so both variants produce the same tokens) alternated ``--repeats`` times;

and model FLOP utilisation (MFU) of each phase against a plain fp32 ``torch.matmul`` timed in the same process
(FLOPs ≈ 2·N per token forward, 2·N backward to the activations, 2·N more for the weights under full
fine-tuning; N = 134.5M parameters, the tied LM head counted once; attention's own FLOPs left out).
Writes ``bench/results/grpo_step.json`` and ``.md``.

    nice .venv/bin/python bench/grpo_step.py --shared-prefill-only --steps 1   # only the shared-prefill comparison

writes ``bench/results/grpo_step_shared_prefill.json`` and ``.md`` (the LoRA step with and without, then generation
alone).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PHASES = ("generation", "rewards", "logps", "backward", "other")
MODEL = "smollm2-135m-instruct"


# --- the matmul reference --------------------------------------------------------------------------------------

def matmul_flops(n: int = 1024, seconds: float = 3.0) -> float:
    """FLOP/s of a plain fp32 ``n×n @ n×n`` matmul with the current torch threads (best of repeated rounds)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t = time.perf_counter()
        for _ in range(4):
            torch.matmul(a, b)
        best = min(best, (time.perf_counter() - t) / 4)
    return 2 * n**3 / best


# --- phase timers -----------------------------------------------------------------------------------------------

class PhaseTimer:
    """Wraps the trainer's methods (class attributes, restored on exit) and sums their seconds per optimizer step."""

    def __init__(self) -> None:
        self.current: dict[str, float] = defaultdict(float)
        self.tokens: dict[str, int] = defaultdict(int)  # padded token positions per phase (for the FLOP estimate)
        self.steps: list[dict[str, Any]] = []
        self._t0 = 0.0

    def _wrap(self, owner: Any, name: str, phase: str, count: Any = None) -> tuple[Any, str, Any]:
        original = getattr(owner, name)
        timer = self

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                timer.current[phase] += time.perf_counter() - t
                if count is not None:
                    timer.tokens[phase] += count(args, kwargs)

        setattr(owner, name, wrapped)
        return owner, name, original

    @contextlib.contextmanager
    def installed(self):
        from accelerate import Accelerator
        from trl import GRPOTrainer

        def logp_tokens(args: tuple, kwargs: dict) -> int:
            ids = kwargs.get("input_ids", args[2] if len(args) > 2 else None)
            return int(ids.numel()) if ids is not None else 0

        patches = [self._wrap(GRPOTrainer, "_generate", "generation"),
                   self._wrap(GRPOTrainer, "_calculate_rewards", "rewards"),
                   self._wrap(GRPOTrainer, "_get_per_token_logps_and_entropies", "logps", logp_tokens),
                   self._wrap(Accelerator, "backward", "backward")]
        try:
            yield self
        finally:
            for owner, name, original in reversed(patches):
                setattr(owner, name, original)

    def callback(self) -> Any:
        from transformers import TrainerCallback

        timer = self

        class StepTimes(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                timer.current.clear()
                timer.tokens.clear()
                timer._t0 = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                total = time.perf_counter() - timer._t0
                row = {p: round(timer.current.get(p, 0.0), 3) for p in PHASES[:-1]}
                row["other"] = round(total - sum(row.values()), 3)
                row["step"] = round(total, 3)
                row["logps_tokens"] = timer.tokens.get("logps", 0)
                timer.steps.append(row)

        return StepTimes()


# --- runs -------------------------------------------------------------------------------------------------------

def train_config(args: argparse.Namespace, out: Path, lora: bool, shared_prefill: bool = True) -> Any:
    from bluerec.config import parse_config
    from bluerec.train.config import BlueTrainConfig

    return parse_config(BlueTrainConfig, {
        "dataset": str(args.dataset),
        "profiler": {"model": MODEL, "dtype": "float32", "device": "cpu",
                     "lora": {"enabled": lora, "r": 16, "alpha": 32, "dropout": 0.0}},
        "reader": {"model": "same_as_profiler", "batch_size": 16, "max_length": 320},
        "item_cache_dir": str(args.item_cache) if args.item_cache else None,
        "max_train_examples": 64,
        "prompt": {"system_prompt": "You write short, readable shopper profiles.",
                   "instruction": "Write a concise profile of this user's current interests and preferences.",
                   "max_history_items": 5, "max_prompt_tokens": 176, "max_item_chars": 60, "min_item_chars": 40,
                   "review_snippet_chars": 0, "include_ratings": False, "item_field": "title"},
        "rewards": {"enabled": ["infonce", "multiple_choice", "length_penalty"],
                    "weights": {"length_penalty": 0.5},
                    "infonce": {"floor": -10.0, "num_negatives": 64},
                    "multiple_choice": {"floor": 0.0},
                    "length_penalty": {"min_length": 10, "max_length": 60}},
        "grpo": {"num_generations": 4, "batch_size": 16, "max_completion_length": args.new_tokens,
                 "temperature": 0.7, "learning_rate": 1e-4 if lora else 1e-5, "beta": 0.0,
                 "max_steps": max(args.steps, 1), "save_steps": 0, "logging_steps": 1, "seed": 0,
                 "shared_prefill": shared_prefill},
        "eval": {"every_steps": 0, "at_start": False, "at_end": False},
        "num_threads": args.threads, "show_progress": False,
        "output_dir": str(out), "overwrite": True,
    }, "bench/grpo_step.py")


def run_steps(args: argparse.Namespace, embedder: Any, lora: bool, work: Path,
              shared_prefill: bool = True) -> dict[str, Any]:
    from bluerec.train.trainer import train_blue

    timer = PhaseTimer()
    cfg = train_config(args, work / (("lora" if lora else "full") + ("" if shared_prefill else "-per-completion")),
                       lora, shared_prefill)
    if not lora:
        cfg.grpo.max_steps = args.full_steps
    t = time.perf_counter()
    with timer.installed():
        train_blue(cfg, embedder=embedder, callbacks=[timer.callback()])
    return {"steps": timer.steps, "wall_s": round(time.perf_counter() - t, 1)}


def generation_runs(args: argparse.Namespace, dataset_dir: Path) -> dict[str, Any]:
    """Generation alone, alternating the variants ``--repeats`` times: batch of 16 vs one prompt at a time, and
    repetition control off vs on. Seconds per call and per generated token."""
    from bluerec.data.dataset import PreparedDataset
    from bluerec.profiler.config import ProfilerConfig
    from bluerec.profiler.loader import load_profiler
    from bluerec.profiler.prompts import context_for, fit_to_budget, history_items_for, token_counter

    cfg = train_config(args, Path(tempfile.gettempdir()) / "unused", lora=False)
    prof = load_profiler(ProfilerConfig(model=MODEL, dtype="float32", device="cpu"))
    ds = PreparedDataset(dataset_dir)
    count = token_counter(prof.tokenizer)
    rows = [ex for ex in ds.split("train") if ex.history][:: max(1, len(ds.split("train")) // 97)][:4]
    prompts = [fit_to_budget(history_items_for(ds, ex, field="title"), cfg.prompt, count,
                             context_for(ds, ex, cfg.prompt, "train")) for ex in rows]

    def gen(batch: int, ngram: int) -> tuple[float, int]:
        prof.batch_size = batch
        t = time.perf_counter()
        outs = prof.generate(prompts, num_samples=4, max_new_tokens=args.new_tokens, temperature=0.7,
                             do_sample=True, seed=0, no_repeat_ngram_size=ngram, repetition_penalty=1.0)
        seconds = time.perf_counter() - t
        tokens = sum(len(prof.tokenizer(o, add_special_tokens=False)["input_ids"]) for group in outs for o in group)
        return seconds, tokens

    variants = {"batched": (4, 0), "one_prompt_at_a_time": (1, 0), "repetition_control": (4, 3)}
    gen(4, 0)  # warm-up
    out: dict[str, list[dict[str, float]]] = {k: [] for k in variants}
    for _ in range(args.repeats):
        for name, (batch, ngram) in variants.items():
            seconds, tokens = gen(batch, ngram)
            out[name].append({"seconds": round(seconds, 3), "tokens": tokens,
                              "ms_per_token": round(1000 * seconds / max(tokens, 1), 2)})
    return {"prompt_tokens": [count(m[-1]["content"]) for m in prompts], "runs": out}


def shared_prefill_generation(args: argparse.Namespace, dataset_dir: Path) -> dict[str, Any]:
    """Generation alone of 4 prompts × 4 completions × ``--new-tokens`` (EOS ignored so both variants generate the
    same number of tokens), per-completion prefill (plain ``generate`` of the 16 rows) vs shared prefill, alternated
    ``--repeats`` times after a warm-up of each; the same seed for both, so their tokens are compared too."""
    from transformers import GenerationConfig

    from bluerec.data.dataset import PreparedDataset
    from bluerec.profiler.config import ProfilerConfig
    from bluerec.profiler.loader import load_profiler
    from bluerec.profiler.prompts import (context_for, fit_to_budget, history_items_for, render_prompt,
                                          token_counter)
    from bluerec.train.shared_prefill import SharedPrefill

    cfg = train_config(args, Path(tempfile.gettempdir()) / "unused", lora=False)
    prof = load_profiler(ProfilerConfig(model=MODEL, dtype="float32", device="cpu"))
    model, tok = prof.model.eval(), prof.tokenizer
    ds = PreparedDataset(dataset_dir)
    count = token_counter(tok)
    rows = [ex for ex in ds.split("train") if ex.history][:: max(1, len(ds.split("train")) // 97)][:4]
    prompts = [fit_to_budget(history_items_for(ds, ex, field="title"), cfg.prompt, count,
                             context_for(ds, ex, cfg.prompt, "train")) for ex in rows]
    texts = [render_prompt(m, tok) for m in prompts for _ in range(4)]  # TRL's layout: 4 consecutive copies
    enc = tok(texts, return_tensors="pt", padding=True, padding_side="left",
              add_special_tokens=not bool(getattr(tok, "chat_template", None)))
    gen_cfg = GenerationConfig(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, do_sample=True,
                               temperature=0.7, top_p=1.0, top_k=0, pad_token_id=tok.pad_token_id,
                               eos_token_id=prof.stop_token_ids, use_cache=True)
    shared = SharedPrefill()

    def gen(variant: str) -> tuple[float, torch.Tensor]:
        torch.manual_seed(0)
        ctx = shared.bound_to(model) if variant == "shared_prefill" else contextlib.nullcontext()
        t = time.perf_counter()
        with ctx, torch.inference_mode():
            out = model.generate(**enc, generation_config=gen_cfg)
        return time.perf_counter() - t, out[:, enc["input_ids"].shape[1]:]

    variants = ("per_completion_prefill", "shared_prefill")
    tokens = {v: gen(v)[1] for v in variants}  # warm-up of each
    runs: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(args.repeats):
        for v in variants:
            seconds, _ = gen(v)
            runs[v].append(round(seconds, 3))
    print("shared-prefill generation", json.dumps(runs), flush=True)
    return {"prompt_tokens": enc["attention_mask"].sum(1)[::4].tolist(), "padded_prompt_tokens": enc["input_ids"].shape[1],
            "rows": len(texts), "new_tokens": args.new_tokens, "runs": runs,
            "same_tokens": bool(torch.equal(tokens["per_completion_prefill"], tokens["shared_prefill"]))}


def shared_prefill_summary(result: dict[str, Any]) -> dict[str, Any]:
    """Per-completion / shared (> 1: sharing is faster) for the LoRA step's generation phase and whole step, and for
    generation alone."""
    out: dict[str, Any] = {}
    if "lora_per_completion_prefill" in result:
        def mean(run: dict[str, Any], key: str) -> float:
            steps = run["steps"][1:] if len(run["steps"]) > 1 else run["steps"]
            return statistics.fmean(s[key] for s in steps)

        on, off = result["lora"], result["lora_per_completion_prefill"]
        out["step"] = {k: {"shared_s": round(mean(on, k), 2), "per_completion_s": round(mean(off, k), 2),
                           "per_completion_over_shared": round(mean(off, k) / mean(on, k), 2)}
                       for k in ("generation", "step")}
    if "shared_prefill_generation" in result:
        g = result["shared_prefill_generation"]
        runs = g["runs"]
        out["generation_alone"] = {
            "shared_s": _spread(runs["shared_prefill"]), "per_completion_s": _spread(runs["per_completion_prefill"]),
            "per_completion_over_shared": round(statistics.fmean(runs["per_completion_prefill"])
                                                / statistics.fmean(runs["shared_prefill"]), 2),
            # on shared cores a load spike inflates single calls: the fastest call of each variant is the closest to
            # its cost on a quiet machine, and each back-to-back pair shares the machine's state
            "best_per_completion_over_best_shared": round(min(runs["per_completion_prefill"])
                                                          / min(runs["shared_prefill"]), 2),
            "paired": [round(a / b, 2) for a, b in zip(runs["per_completion_prefill"], runs["shared_prefill"])],
            "same_tokens": g["same_tokens"]}
    return out


def shared_prefill_markdown(result: dict[str, Any], s: dict[str, Any]) -> list[str]:
    lines = ["", "| shared prefill vs per-completion prefill | shared s | per-completion s | per-completion / shared |",
             "|---|---:|---:|---:|"]
    for k, v in s.get("step", {}).items():
        lines.append(f"| LoRA GRPO step: {k} | {v['shared_s']:.2f} | {v['per_completion_s']:.2f} | "
                     f"**{v['per_completion_over_shared']}×** |")
    if "generation_alone" in s:
        v, g = s["generation_alone"], result["shared_prefill_generation"]
        lines.append(f"| generation alone, {g['rows'] // 4} prompts × 4 × {g['new_tokens']} tokens "
                     f"(mean, min–max) | {v['shared_s']['mean']:.2f} ({v['shared_s']['min']:.2f}–"
                     f"{v['shared_s']['max']:.2f}) | {v['per_completion_s']['mean']:.2f} "
                     f"({v['per_completion_s']['min']:.2f}–{v['per_completion_s']['max']:.2f}) | "
                     f"**{v['per_completion_over_shared']}×** |")
        lines += ["", f"Generation alone: prompts of {g['prompt_tokens']} tokens (padded to "
                  f"{g['padded_prompt_tokens']}); the two variants produced the same tokens: {g['same_tokens']}. "
                  f"Fastest call / fastest call: **{v['best_per_completion_over_best_shared']}×**; "
                  f"back-to-back pairs (per-completion / shared): {v['paired']}."]
    return lines


# --- summary ----------------------------------------------------------------------------------------------------

def _spread(values: list[float]) -> dict[str, float]:
    return {"mean": round(statistics.fmean(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}


def summarise(result: dict[str, Any], n_params: float) -> dict[str, Any]:
    # The 2 cores are shared: the best matmul rate of the run (start or end) is the closest to the machine's own.
    peak = max(result["matmul_flops"], result.get("matmul_flops_end") or 0.0)
    summary: dict[str, Any] = {}
    for mode in ("lora", "full"):
        steps = result[mode]["steps"]
        measured = steps[1:] if len(steps) > 1 else steps  # step 1 pays one-off warm-ups
        mean = {p: statistics.fmean(s[p] for s in measured) for p in (*PHASES, "step")}
        tokens = statistics.fmean(s["logps_tokens"] for s in measured)
        # One padded forward over prompt+completion per logps call; generation computes about the same tokens.
        flops = {"generation": 2 * n_params * tokens, "logps": 2 * n_params * tokens,
                 "backward": (4 if mode == "full" else 2) * n_params * tokens}
        summary[mode] = {
            "seconds": {p: round(v, 2) for p, v in mean.items()},
            "share": {p: round(mean[p] / mean["step"], 3) for p in PHASES},
            "mfu": {p: round(flops[p] / mean[p] / peak, 4) if mean[p] > 0 else None for p in flops},
            "step_spread": _spread([s["step"] for s in measured]),
            "tokens_per_forward": round(tokens),
        }
    summary["ratios"] = {
        "full_over_lora": {p: round(summary["full"]["seconds"][p] / summary["lora"]["seconds"][p], 2)
                           if summary["lora"]["seconds"][p] > 0 else None for p in (*PHASES, "step")}}
    g = result["generation"]["runs"]
    per_call = {k: [r["seconds"] for r in v] for k, v in g.items()}
    per_tok = {k: [r["ms_per_token"] for r in v] for k, v in g.items()}
    summary["generation"] = {k: {"seconds": _spread(per_call[k]), "ms_per_token": _spread(per_tok[k])} for k in g}
    summary["ratios"]["one_prompt_at_a_time_over_batched"] = round(
        statistics.fmean(per_call["one_prompt_at_a_time"]) / statistics.fmean(per_call["batched"]), 2)
    summary["ratios"]["repetition_control_over_off_per_token"] = round(
        statistics.fmean(per_tok["repetition_control"]) / statistics.fmean(per_tok["batched"]), 2)
    # Noise: the spread of the same variant's repeats, as a fraction of its mean.
    summary["noise"] = {k: round((max(v) - min(v)) / statistics.fmean(v), 3) for k, v in per_call.items()}
    summary["shared_prefill"] = shared_prefill_summary(result)
    return summary


def markdown(result: dict[str, Any], s: dict[str, Any]) -> str:
    lines = [f"# One GRPO step of the SmolLM2 benchmark settings ({result['machine']})", "",
             f"`{result['command']}` — wall time {result['wall_s']:.0f} s; matmul reference "
             f"{result['matmul_flops'] / 1e9:.1f} GFLOP/s at the start, {result['matmul_flops_end'] / 1e9:.1f} at the end "
             f"(fp32, {result['threads']} threads; MFU is against the higher); load average {result['load_average_start'][0]:.1f} at the start, "
             f"{result['load_average_end'][0]:.1f} at the end (the 2 cores are shared).", "",
             "| phase | LoRA s | LoRA share | LoRA MFU | full s | full share | full MFU | full / LoRA |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for p in (*PHASES, "step"):
        lo, fu = s["lora"], s["full"]
        mfu = lambda m: f"{m['mfu'][p]:.1%}" if m["mfu"].get(p) is not None else ""  # noqa: E731
        share = lambda m: f"{m['share'][p]:.0%}" if p in m["share"] else ""  # noqa: E731
        lines.append(f"| {p} | {lo['seconds'][p]:.2f} | {share(lo)} | {mfu(lo)} | {fu['seconds'][p]:.2f} | "
                     f"{share(fu)} | {mfu(fu)} | {s['ratios']['full_over_lora'][p]} |")
    lines += ["", f"LoRA: {len(result['lora']['steps'])} step(s), the first a warm-up left out when there are more "
              f"(all steps: {[st['step'] for st in result['lora']['steps']]} s); full fine-tuning: "
              f"{[st['step'] for st in result['full']['steps']]} s.", "",
              "| generation alone (16 completions) | s per call (mean, min–max) | ms per generated token |",
              "|---|---:|---:|"]
    for k, v in s["generation"].items():
        lines.append(f"| {k} | {v['seconds']['mean']:.2f} ({v['seconds']['min']:.2f}–{v['seconds']['max']:.2f}) | "
                     f"{v['ms_per_token']['mean']:.1f} |")
    r = s["ratios"]
    lines += ["", f"- one prompt at a time / batched: **{r['one_prompt_at_a_time_over_batched']}×** the time",
              f"- repetition control on / off, per generated token: **{r['repetition_control_over_off_per_token']}×**",
              f"- full fine-tuning / LoRA, whole step: **{r['full_over_lora']['step']}×**",
              f"- noise (max−min)/mean of repeated generation calls: {s['noise']}"]
    lines += [*shared_prefill_markdown(result, s.get("shared_prefill", {})), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", type=Path, default=ROOT / "data" / "prepared" / "beauty2014",
                   help="prepared amazon2014-beauty (bluerec data prepare -c configs/data/beauty2014.yaml)")
    p.add_argument("--item-cache", type=Path, default=ROOT / ".cache" / "embeddings",
                   help="MiniLM item-embedding cache (copied to a temporary folder first; never written)")
    p.add_argument("--steps", type=int, default=2, help="LoRA GRPO steps (the first is a warm-up)")
    p.add_argument("--full-steps", type=int, default=1, help="full fine-tuning GRPO steps (after the LoRA run)")
    p.add_argument("--new-tokens", type=int, default=40)
    p.add_argument("--repeats", type=int, default=2, help="repeats of each generation-only variant")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="smoke run: 1 step, 8 new tokens, 1 repeat")
    p.add_argument("--shared-prefill-only", action="store_true",
                   help="only the shared vs per-completion prefill comparison (LoRA steps, then generation alone)")
    p.add_argument("--out", type=Path, default=None,
                   help="default bench/results/grpo_step.json (grpo_step_shared_prefill.json with "
                        "--shared-prefill-only)")
    p.add_argument("--from-json", type=Path, help="only re-summarise the measurements of an earlier run's JSON")
    args = p.parse_args(argv)
    if args.out is None:
        args.out = RESULTS / ("grpo_step_shared_prefill.json" if args.shared_prefill_only else "grpo_step.json")
    if args.from_json:
        from bluerec.io import write_json_atomic, write_text_atomic

        result = json.loads(args.from_json.read_text())
        if "full" not in result:  # a --shared-prefill-only run
            write_shared_prefill(result, args.out)
            return 0
        result["summary"] = summarise(result, n_params=134.5e6)
        write_json_atomic(args.out, result)
        write_text_atomic(args.out.with_suffix(".md"), markdown(result, result["summary"]))
        print(markdown(result, result["summary"]))
        return 0
    if args.quick:
        args.steps, args.full_steps, args.new_tokens, args.repeats = 1, 1, 8, 1
    torch.set_num_threads(args.threads)
    from bluerec.embed import Embedder, EmbedderConfig
    from bluerec.io import write_json_atomic, write_text_atomic

    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bluerec-grpo-step-") as tmp:
        work = Path(tmp)
        if args.item_cache and args.item_cache.is_dir():
            shutil.copytree(args.item_cache, work / "cache")
            args.item_cache = work / "cache"
        else:
            args.item_cache = work / "cache"
        result: dict[str, Any] = {
            "command": "python bench/grpo_step.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "threads": args.threads, "new_tokens": args.new_tokens, "steps_per_mode": args.steps,
            "torch": torch.__version__, "load_average_start": os.getloadavg(),
        }
        embedder = Embedder(EmbedderConfig())
        if args.shared_prefill_only:
            return shared_prefill_only(args, embedder, work, result, t_all)
        result["matmul_flops"] = matmul_flops()
        print(f"matmul: {result['matmul_flops'] / 1e9:.1f} GFLOP/s", flush=True)
        for mode, lora in (("lora", True), ("full", False)):
            result[mode] = run_steps(args, embedder, lora, work)
            print(mode, json.dumps(result[mode]["steps"]), flush=True)
        result["lora_per_completion_prefill"] = run_steps(args, embedder, True, work, shared_prefill=False)
        print("lora_per_completion_prefill", json.dumps(result["lora_per_completion_prefill"]["steps"]), flush=True)
        result["generation"] = generation_runs(args, args.dataset)
        print("generation", json.dumps(result["generation"]["runs"]), flush=True)
        result["shared_prefill_generation"] = shared_prefill_generation(args, args.dataset)
        result["matmul_flops_end"] = matmul_flops()  # the machine is shared: is the reference stable?
    result["wall_s"] = round(time.perf_counter() - t_all, 1)
    result["load_average_end"] = os.getloadavg()
    summary = summarise(result, n_params=134.5e6)
    result["summary"] = summary
    write_json_atomic(args.out, result)
    md = markdown(result, summary)
    write_text_atomic(args.out.with_suffix(".md"), md)
    print(md)
    return 0


def shared_prefill_only(args: argparse.Namespace, embedder: Any, work: Path, result: dict[str, Any],
                        t_all: float) -> int:
    """Generation alone, then the LoRA step with shared prefill, then without (of the two step runs the first pays
    any remaining warm-ups, which counts against sharing); table and JSON of the ratios."""
    result["shared_prefill_generation"] = shared_prefill_generation(args, args.dataset)
    if args.steps > 0:  # --steps 0: generation alone
        result["lora"] = run_steps(args, embedder, True, work, shared_prefill=True)
        print("lora shared prefill", json.dumps(result["lora"]["steps"]), flush=True)
        result["lora_per_completion_prefill"] = run_steps(args, embedder, True, work, shared_prefill=False)
        print("lora per-completion prefill", json.dumps(result["lora_per_completion_prefill"]["steps"]), flush=True)
    result["wall_s"] = round(time.perf_counter() - t_all, 1)
    result["load_average_end"] = os.getloadavg()
    write_shared_prefill(result, args.out)
    return 0


def write_shared_prefill(result: dict[str, Any], out: Path) -> None:
    """Summary, JSON and markdown of a ``--shared-prefill-only`` run."""
    from bluerec.io import write_json_atomic, write_text_atomic

    result["summary"] = {"shared_prefill": shared_prefill_summary(result)}
    write_json_atomic(out, result)
    md = "\n".join([f"# Shared prefill vs per-completion prefill, SmolLM2 GRPO settings ({result['machine']})", "",
                    f"`{result['command']}` — wall time {result['wall_s']:.0f} s; load average "
                    f"{result['load_average_start'][0]:.1f} at the start, {result['load_average_end'][0]:.1f} at "
                    f"the end (the 2 cores are shared)." + (
                        f" LoRA steps: shared {[s['step'] for s in result['lora']['steps']]} s, per-completion "
                        f"{[s['step'] for s in result['lora_per_completion_prefill']['steps']]} s (the shared run "
                        "goes first and pays any remaining warm-ups)." if "lora" in result else ""),
                    *shared_prefill_markdown(result, result["summary"]["shared_prefill"]), ""])
    write_text_atomic(out.with_suffix(".md"), md)
    print(md)


if __name__ == "__main__":
    raise SystemExit(main())
