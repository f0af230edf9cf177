"""Benchmark (not a test): which of two profile forms does each GRPO reward pay more, on the rows GRPO trains on?

    .venv/bin/python bench/reward_forms.py     # amazon2014-beauty, 240 seeded training rows (7 min on 2 cores)
    # InfoNCE alone, popularity negatives vs the user's older items added as negatives (1 min)
    .venv/bin/python bench/reward_forms.py --config configs/train/beauty_smollm2_newest_context_wide_popneg_t07.yaml \
        --config configs/train/beauty_smollm2_newest_context_t07_histneg.yaml --only infonce \
        --out bench/results/reward_forms_histneg.json

The ``newest_context`` warm start teaches one form — the newest history title, then its first listed successor
("Recently: <newest>. Often bought next: <successor>.") — and its commonest greedy error puts an older history title
first and the newest one where the successor belongs (``bench/copy_fidelity.py``). Every GRPO run at learning rate
3e-4 from it drifted into that error whatever its reward. This writes both forms (and two controls: the newest title
alone, the successor alone) deterministically from each training row's own prompt texts, for a seeded sample of the
GRPO dataset's rows, scores them with every enabled reward of each ``--config`` exactly as training does (same
dataset columns, the same frozen reader with the warm start's weights, called in the run's per-step batches of
users), and reports each reward's mean per form and the paired difference ``taught − swap`` with a 95% bootstrap
interval and the share of rows where the taught form earns more. If the rewards prefer the taught form, a drift
into the swap is not what they pay for.

Writes ``bench/results/reward_forms.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bluerec.config import load_config  # noqa: E402
from bluerec.data.dataset import PreparedDataset  # noqa: E402
from bluerec.embed import Embedder  # noqa: E402
from bluerec.eval.bootstrap import paired_bootstrap  # noqa: E402
from bluerec.io import write_json_atomic, write_text_atomic  # noqa: E402
from bluerec.profiler.prompts import context_for, fit_prompt, history_items_for  # noqa: E402
from bluerec.profiler.warmstart import make_target  # noqa: E402
from bluerec.rewards.registry import reward_names  # noqa: E402
from bluerec.train.config import BlueTrainConfig  # noqa: E402
from bluerec.train.dataset import build_rl_dataset, select_train_rows  # noqa: E402

CONFIGS = ROOT / "configs" / "train"
FORMS = ("taught", "swap", "newest", "successor")
console = Console(width=140)


def forms_for(item_texts: Sequence[str], context_texts: Sequence[str]) -> dict[str, str]:
    """The four forms of one row, from its prompt's item texts (oldest first) and collaborative section as the prompt
    shows them (clipped by :func:`bluerec.profiler.prompts.fit_prompt`): ``taught`` is
    :func:`bluerec.profiler.warmstart.make_target`'s ``newest_item+successor`` text, the others are written the same
    way (whitespace collapsed) with the newest and second-newest titles swapped, or one part alone.

    Example:
    ```python
    >>> forms_for(["Soap", "Gel  Pen"], ["Toner"])["swap"]
    'Recently: Soap. Often bought next: Gel Pen.'
    ```
    """
    newest, older = (" ".join(t.split()) for t in item_texts[-1:-3:-1])
    successor = " ".join(context_texts[0].split())
    return {"taught": make_target("newest_item+successor", [], None, history_texts=item_texts,
                                  context_texts=context_texts),
            "swap": f"Recently: {older}. Often bought next: {newest}.",
            "newest": make_target("newest_item", [], None, history_texts=item_texts),
            "successor": f"Often bought next: {successor}."}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", type=Path, action="append",
                   help="a GRPO config whose enabled rewards score the forms (repeatable; default: the t07 run's "
                        "and the t07_dcg run's)")
    p.add_argument("--only", action="append", default=[], metavar="REWARD",
                   help="score only this enabled reward of each config (repeatable; the weighted sum is then over "
                        "these alone)")
    p.add_argument("--dataset", type=Path, default=ROOT / "data" / "prepared" / "amazon2014-beauty")
    p.add_argument("--profiler", type=Path, default=ROOT / "runs" / "bench_blue_beauty" / "warmstart_newest_context"
                   / "model", help="the warm start the runs trained from (the reader reads its weights)")
    p.add_argument("--rows", type=int, default=240)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--resamples", type=int, default=10_000)
    p.add_argument("--num-threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "reward_forms.json")
    args = p.parse_args()
    unknown = set(args.only) - set(reward_names())
    if unknown:
        raise SystemExit(f"--only {sorted(unknown)}: not a registered reward ({reward_names()})")
    configs = args.config or [CONFIGS / "beauty_smollm2_newest_context_wide_popneg_t07.yaml",
                              CONFIGS / "beauty_smollm2_newest_context_t07_dcg.yaml"]

    import torch

    from bluerec.profiler.loader import load_profiler
    from bluerec.train import trainer

    torch.set_num_threads(args.num_threads)
    if not (args.dataset / "items.parquet").exists():
        raise SystemExit(f"{args.dataset}: not a prepared dataset (bench/blue_beauty.py prepares amazon2014-beauty)")
    if not args.profiler.is_dir():
        raise SystemExit(f"{args.profiler}: no warm start there (bench/blue_beauty.py --variants newest_context)")
    t0 = time.perf_counter()
    overrides = {"dataset": str(args.dataset), "item_cache_dir": str(ROOT / ".cache" / "embeddings"),
                 "profiler": {"model": str(args.profiler)}}
    cfgs = {c.stem.removeprefix("beauty_smollm2_"): load_config(BlueTrainConfig, c, overrides) for c in configs}
    first = next(iter(cfgs.values()))
    for name, cfg in cfgs.items():
        missing = set(args.only) - set(cfg.reward_names())
        if missing:
            raise SystemExit(f"--only {sorted(missing)}: not enabled in {name} ({cfg.reward_names()})")
    for name, cfg in cfgs.items():  # one set of rows and prompts for every config, or the comparison means nothing
        if (cfg.prompt, cfg.data, cfg.max_train_examples, cfg.embedder) != (
                first.prompt, first.data, first.max_train_examples, first.embedder):
            raise SystemExit(f"{name}: prompt, data rows or embedder differ from {next(iter(cfgs))}'s")
    dataset = PreparedDataset(first.dataset)
    embedder = Embedder(first.embedder)
    item_emb = trainer._item_embeddings(embedder, dataset, first.item_cache_dir)
    profiler = load_profiler(first.profiler, trainable=True)

    rows = select_train_rows(dataset.split("train"), first.data, first.max_train_examples)
    rng = np.random.default_rng(args.seed)
    picked: list[int] = []
    texts: dict[str, list[str]] = {f: [] for f in FORMS}
    for i in rng.permutation(len(rows)).tolist():
        ex = rows[i]
        # the prompt exactly as GRPO builds it (fit to the profiler's token budget), so the forms hold its texts
        prompt = fit_prompt(history_items_for(dataset, ex, field=first.prompt.item_field), first.prompt,
                            profiler.count_tokens, context_for(dataset, ex, first.prompt, "train"))
        if len(prompt.item_texts) < 2 or not prompt.context_texts:
            continue
        for form, text in forms_for(prompt.item_texts, prompt.context_texts).items():
            texts[form].append(text)
        picked.append(i)
        if len(picked) == args.rows:
            break

    scores: dict[str, dict[str, np.ndarray]] = {}
    weights: dict[str, float] = {}
    # A reward with the same settings and batches in two configs scores the same rows the same way (the rows and
    # columns were checked equal above): it is scored once, the reader's being the costly one.
    scored: dict[tuple[str, str, int], list[tuple[str, dict[str, np.ndarray]]]] = {}
    for name, cfg in cfgs.items():
        reader = trainer.load_reader(cfg, profiler)
        rl = build_rl_dataset(dataset, cfg.data, cfg.prompt, max_examples=cfg.max_train_examples,
                              **trainer.reward_dataset_options(cfg))
        if list(rl["target_item"]) != [str(ex.item_id) for ex in rows]:
            raise SystemExit(f"{name}: the GRPO dataset's rows are not select_train_rows' rows")
        columns = {c: [rl[c][i] for i in picked] for c in rl.column_names if c != "prompt"}
        # TRL scores a whole generation batch (batch_size × gradient_accumulation_steps completions) at once
        per_call = max(1, cfg.grpo.batch_size * cfg.grpo.gradient_accumulation_steps // cfg.grpo.num_generations)
        total = {f: np.zeros(len(picked)) for f in FORMS}
        for reward in cfg.reward_names():
            if args.only and reward not in args.only:
                continue
            one = cfg.model_copy(update={"rewards": cfg.rewards.model_copy(update={"enabled": [reward]})})
            funcs, wts = trainer.build_reward_funcs(one, encoder=embedder, item_emb=item_emb, dataset=dataset,
                                                    reader=reader)
            cache_key = (reward, cfg.rewards.settings(reward).model_dump_json(), per_call)
            if cache_key not in scored:
                scored[cache_key] = []
                for func in funcs:
                    by_form: dict[str, np.ndarray] = {}
                    for form in FORMS:
                        out: list[float] = []
                        for s in range(0, len(picked), per_call):
                            out += func(completions=texts[form][s:s + per_call],
                                        **{c: v[s:s + per_call] for c, v in columns.items()})
                        by_form[form] = np.asarray(out, dtype=np.float64)
                    scored[cache_key].append((getattr(func, "__name__", type(func).__name__), by_form))
            for (func_name, by_form), weight in zip(scored[cache_key], wts):
                scores[f"{name}: {func_name}"], weights[f"{name}: {func_name}"] = by_form, weight
                for form in FORMS:
                    total[form] += weight * by_form[form]
        total_name = f"{name}: weighted sum" + (f" of {', '.join(args.only)}" if args.only else "")
        scores[total_name], weights[total_name] = total, 1.0

    results: dict[str, Any] = {}
    table = Table(title=f"{len(picked)} training rows of amazon2014-beauty: reward per form (taught − swap, 95% CI)")
    for col in ["reward", "weight", *FORMS, "taught − swap", "taught earns more"]:
        table.add_column(col, justify="left" if col == "reward" else "right")
    md = ["| reward | weight | " + " | ".join(FORMS) + " | taught − swap [95% CI] | rows where taught earns more |",
          "|---|---|" + "---|" * len(FORMS) + "---|---|"]
    for key, by_form in scores.items():
        diff = by_form["taught"] - by_form["swap"]
        ci = paired_bootstrap(by_form["taught"], by_form["swap"], n_resamples=args.resamples, seed=args.seed)
        lo, hi = ci.lo, ci.hi
        results[key] = {"weight": weights[key], "mean": {f: float(v.mean()) for f, v in by_form.items()},
                        "taught_minus_swap": float(diff.mean()), "interval": [lo, hi],
                        "taught_more": float((diff > 0).mean()), "swap_more": float((diff < 0).mean()),
                        "spread": float(np.concatenate(list(by_form.values())).std())}
        cells = [f"{by_form[f].mean():.4f}" for f in FORMS]
        gap = f"{diff.mean():+.4f} [{lo:+.4f}, {hi:+.4f}]"
        share = f"{(diff > 0).mean():.0%} (swap {(diff < 0).mean():.0%})"
        table.add_row(key, f"{weights[key]:g}", *cells, gap, share)
        md.append(f"| {key} | {weights[key]:g} | " + " | ".join(cells) + f" | {gap} | {share} |")
    console.print(table)
    seconds = time.perf_counter() - t0
    command = "python bench/reward_forms.py " + " ".join(sys.argv[1:])
    write_json_atomic(args.out, {"benchmark": "reward_forms", "command": command.strip(), "rows": len(picked),
                                 "seed": args.seed, "configs": [str(c.resolve().relative_to(ROOT)) for c in configs],
                                 "profiler": str(args.profiler.relative_to(ROOT)) if args.profiler.is_relative_to(ROOT)
                                 else str(args.profiler), "seconds": round(seconds, 1),
                                 "examples": {f: texts[f][:3] for f in FORMS}, "results": results,
                                 "machine": {"platform": platform.platform(), "threads": args.num_threads}})
    write_text_atomic(args.out.with_suffix(".md"), "\n".join([
        f"# Reward per profile form on {len(picked)} seeded amazon2014-beauty training rows (GRPO's own rows)", "",
        *md, "", f"`{command.strip()}` ({seconds / 60:.1f} min). Forms, written from each row's prompt: "
        "taught = `Recently: <newest>. Often bought next: <first successor>.`; swap = `Recently: <second newest>. "
        "Often bought next: <newest>.`; newest = `Recently: <newest>.`; successor = `Often bought next: "
        "<first successor>.`. Rewards are called on the run's generation batches of users (8 here; in-batch terms "
        "see those).",
        ""]))
    console.print(f"wrote {args.out} ({seconds / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
