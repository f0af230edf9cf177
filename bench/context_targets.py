"""Benchmark (not a test): how good a query is each warm-start target *as text*, before any LLM copies it.

    .venv/bin/python bench/context_targets.py     # amazon2014-beauty: 300 + 3,000 validation, 2,000 test users

A warm start teaches the profiler to write one target form (``bluerec.profiler.warmstart``); the best a copying
profiler can then do is the target text itself. This scores each form written deterministically from the prompt's
own texts (titles clipped to the prompt's item limit, the collaborative section of
``configs/warmstart/beauty_smollm2_context.yaml``), beside the last-item embedding and the successor text baseline,
on the warm-start selection's validation users (300, seed 0), on a larger validation sample (``--valid-users``,
3,000 by default, seed 1) and on the benchmark's 2,000 seeded test users, with paired 95% bootstrap intervals
against ``last_item``. ``newest_item+successor`` and ``newest_item@100`` (the newest title alone) are written with the
prompt of ``configs/warmstart/beauty_smollm2_newest_context.yaml`` (titles up to 100 characters, successors of the
newest item only): the larger validation sample chose that warm start's target. No LLM: 4 min on 2 cores with the
300 validation users alone, 16 min with the 3,000 as well, measured beside a GRPO run (embeddings are cached).
Writes ``bench/results/context_targets.json`` and ``.md``.
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
sys.path.insert(0, str(ROOT / "bench"))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bluerec.config import load_config  # noqa: E402
from bluerec.embed import Embedder  # noqa: E402
from bluerec.eval.evaluator import EvalConfig  # noqa: E402
from bluerec.eval.run import (EvaluateConfig, EvaluationRun, IntervalConfig, interval_cell,  # noqa: E402
                              intervals_markdown)
from bluerec.io import write_json_atomic, write_text_atomic  # noqa: E402
from bluerec.profiler.prompts import clip, context_for  # noqa: E402
from bluerec.profiler.warmstart import context_items_target, make_target  # noqa: E402
from bluerec.workflow import WarmStartRunConfig  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "seqrec_benchmark_amazon"
RESULTS = ROOT / "bench" / "results"
SUBSET = "amazon2014-beauty"
WARMSTART_CONFIG = ROOT / "configs" / "warmstart" / "beauty_smollm2_context.yaml"
NEWEST_CONTEXT_CONFIG = ROOT / "configs" / "warmstart" / "beauty_smollm2_newest_context.yaml"
# warm-start targets, written with WARMSTART_CONFIG's prompt
FORMS = ("recent_items", "recent_items+context", "recent_pair+successor")
# Forms written with another warm start's prompt (its item and section limits), by config: that warm start's own
# target and the same prompt's newest title alone (``<target>@<chars>``: the target at that prompt's item limit).
OTHER_FORMS = {NEWEST_CONTEXT_CONFIG: ("newest_item+successor", "newest_item@100")}
console = Console()


def shown_history(ds: Any, ex: Any, ws: WarmStartRunConfig) -> list[str]:
    """The user's newest item texts as the prompt shows them (title, else item text; clipped)."""
    pc, titles, index = ws.prompt, ds.items.titles, ds.items.index
    return [clip(titles[index[i]] or ds.items.texts[index[i]], pc.max_item_chars)
            for i in ds.full_history(ex)][-pc.max_history_items:]


def shown_texts(ds: Any, ex: Any, ws: WarmStartRunConfig, split: str) -> tuple[list[str], list[str]]:
    """The user's newest item texts and the collaborative section's texts, as ``ws``'s prompt shows them."""
    context = [clip(t, ws.prompt.collaborative.max_item_chars) for t in context_for(ds, ex, ws.prompt, split)]
    return shown_history(ds, ex, ws), context


def taught_text(form: str, shown: Sequence[str], context: Sequence[str]) -> str:
    """The warm start's target ``form`` written from what the prompt shows (no LLM): the text a profiler is taught."""
    return make_target(form, [], None, history_texts=list(shown), context_texts=list(context))


def taught_texts(ds: Any, examples: Sequence[Any], ws: WarmStartRunConfig, form: str, split: str) -> list[str]:
    """:func:`taught_text` for each example, from ``ws``'s prompt on ``split``."""
    return [taught_text(form, *shown_texts(ds, ex, ws, split)) for ex in examples]


def target_texts(run: EvaluationRun, ws: WarmStartRunConfig, split: str,
                 others: Sequence[tuple[WarmStartRunConfig, Sequence[str]]] = ()) -> dict[str, list[str]]:
    """Each target form, plus two shorter references ("Latest: <title>." with and without the top successor);
    ``others``: (warm start, forms) pairs, each form written with that warm start's prompt."""
    ds = run.dataset
    out: dict[str, list[str]] = {}
    for ex in run.examples:
        shown, context = shown_texts(ds, ex, ws, split)
        for form in FORMS:
            out.setdefault(form, []).append(taught_text(form, shown, context))
        out.setdefault("latest_title", []).append(f"Latest: {shown[-1]}." if shown else "No history yet.")
        out.setdefault("latest_title+successor", []).append(
            (f"Latest: {shown[-1]}." if shown else "") + context_items_target(context, 1))
        for other, forms in others:
            o_shown, o_context = shown_texts(ds, ex, other, split)
            for form in forms:
                out.setdefault(form, []).append(taught_text(form.split("@")[0], o_shown, o_context))
    return out


def run_split(dataset: Path, split: str, n_users: int, seed: int, ws: WarmStartRunConfig, embedder: Embedder,
              cache_dir: Path, others: Sequence[tuple[WarmStartRunConfig, Sequence[str]]] = ()) -> dict[str, Any]:
    cfg = EvaluateConfig(dataset=dataset, split=split, max_users=n_users, seed=seed, methods=["last_item",
                         "successor_text"], protocols=[EvalConfig(protocol="full")], cache_dir=cache_dir,
                         intervals=IntervalConfig(references=["last_item"]))
    run = EvaluationRun(cfg, embedder=embedder, say=lambda m: console.print(f"  [dim]{m}[/]"))
    for method in cfg.methods:
        run.evaluate_queries(method, run.queries(method))
    examples = {}
    for name, texts in target_texts(run, ws, split, others).items():
        run.evaluate_texts(name, texts)
        examples[name] = texts[0]
    summary = run.summary()
    summary["example_texts"] = examples
    return summary


def print_table(split: str, summary: dict[str, Any]) -> None:
    table = Table(title=f"{SUBSET} {split}: {summary['n_users']:,} users, full ranking")
    for col in ("query", "NDCG@10", "Recall@10", "NDCG@10 − last_item [95%]", "ratio to last_item"):
        table.add_column(col, justify="left" if col == "query" else "right")
    base = summary["results"]["last_item"]["full"]["ndcg@10"]
    for method, by_p in summary["results"].items():
        m = by_p["full"]
        cell = summary["intervals"].get(method, {}).get("full", {}).get("last_item", {}).get("ndcg@10")
        diff = interval_cell(cell)
        table.add_row(method, f"{m['ndcg@10']:.4f}", f"{m['recall@10']:.4f}", diff, f"{m['ndcg@10'] / base:.2f}")
    console.print(table)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=ROOT / "data" / "prepared")
    p.add_argument("--cache-dir", type=Path, default=ROOT / ".cache" / "embeddings")
    p.add_argument("--test-users", type=int, default=2000)
    p.add_argument("--valid-users", type=int, default=3000,
                   help="a second, larger validation sample (seed 1); 0 = only the 300 warm-start selection users")
    p.add_argument("--out", type=Path, default=RESULTS / "context_targets.json")
    args = p.parse_args()
    if not SHARED.is_dir():
        console.print(f"[yellow]skipped: {SHARED} is absent (the shared real data sits beside the repository)[/]")
        return 0
    from baselines import prepared  # bench/baselines.py: the same prepared dataset and protocol

    start = time.perf_counter()
    dataset = prepared(SUBSET, args.data_root).root
    ws = load_config(WarmStartRunConfig, WARMSTART_CONFIG, {"dataset": str(dataset)})
    others = [(load_config(WarmStartRunConfig, path, {"dataset": str(dataset)}), forms)
              for path, forms in OTHER_FORMS.items()]
    embedder = Embedder(ws.embedder)
    splits = {"valid": run_split(dataset, "valid", ws.selection.num_users, ws.selection.seed, ws, embedder,
                                 args.cache_dir, others)}
    if args.valid_users:  # a larger validation sample (seed 1), to choose between forms closer than 300 users resolve
        splits[f"valid{args.valid_users}"] = run_split(dataset, "valid", args.valid_users, 1, ws, embedder,
                                                       args.cache_dir, others)
    splits["test"] = run_split(dataset, "test", args.test_users, 0, ws, embedder, args.cache_dir, others)
    for split, summary in splits.items():
        print_table(split, summary)
    payload = {"benchmark": "context_targets", "command": "python bench/context_targets.py " + " ".join(sys.argv[1:]),
               "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": round(time.perf_counter() - start, 1),
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "platform": platform.platform()},
               "subset": SUBSET, "warmstart_config": str(WARMSTART_CONFIG.relative_to(ROOT)), "splits": splits}
    write_json_atomic(args.out, payload)
    md = [f"# Warm-start targets as text queries ({SUBSET}, full ranking, no LLM)\n"]
    for split, summary in splits.items():
        md.append(f"\n## {split}: {summary['n_users']:,} users\n\n| query | NDCG@10 | Recall@10 | example |\n|---|---|---|---|")
        for method, by_p in summary["results"].items():
            ex = summary["example_texts"].get(method, "(embedding of the item text)" if method == "last_item"
                                              else "(last item text \\| its top successor's text)")
            md.append(f"| {method} | {by_p['full']['ndcg@10']:.4f} | {by_p['full']['recall@10']:.4f} | "
                      f"{ex.replace('|', '/') if method in summary['example_texts'] else ex} |")
        md.append("\n" + intervals_markdown(summary))
    write_text_atomic(args.out.with_suffix(".md"), "\n".join(md) + "\n")
    console.print(f"wrote {args.out} ({payload['seconds']}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
