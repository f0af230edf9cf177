"""Benchmark (not a test): does any way of counting other users' transitions give a query that beats the last item?

    .venv/bin/python bench/successor_stats.py     # amazon2014-beauty, 3,000 seeded validation users (~4 min, 2 cores)

A context-trained profiler can at best copy what its prompt shows, so the transition statistics bound it. For several
:class:`~bluerec.data.transitions.TransitionConfig` settings this scores, on validation users only (seed 1, the
sample ``bench/context_targets.py`` chose the warm-start target on), the non-LLM successor baselines
(``successor_text``, ``successor_mean``) and copyable text forms written from the ``newest_context`` prompt with
that setting's successors (newest title + 1, 2 or 3 successors, and the three successors alone), each with a paired
95% bootstrap interval against ``last_item``. No LLM. Writes ``bench/results/successor_stats.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bluerec.config import load_config  # noqa: E402
from bluerec.data.transitions import TransitionConfig  # noqa: E402
from bluerec.embed import Embedder  # noqa: E402
from bluerec.eval.evaluator import EvalConfig  # noqa: E402
from bluerec.eval.run import EvaluateConfig, EvaluationRun, IntervalConfig, interval_cell  # noqa: E402
from bluerec.io import write_json_atomic, write_text_atomic  # noqa: E402
from bluerec.profiler.warmstart import context_items_target, make_target, recent_items_target  # noqa: E402
from bluerec.workflow import WarmStartRunConfig  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SETTINGS = [{"window": 3, "decay": 0.5}, {"window": 1, "decay": 0.5}, {"window": 5, "decay": 0.5},
            {"window": 3, "decay": 1.0}, {"window": 10, "decay": 0.7}]


def forms(shown: list[str], context: list[str]) -> dict[str, str]:
    """Copyable text forms of one user from the prompt's item texts (oldest first) and successors (best first).

    Example:
    ```python
    >>> forms(["Soap", "Gel"], ["Toner", "Mask"])["newest+s1s2"]
    'Recently: Gel. Often bought next: Toner; Mask.'
    ```
    """
    newest = recent_items_target(shown, 1)
    return {"newest+s1": make_target("newest_item+successor", [], None, history_texts=shown, context_texts=context),
            "newest+s1s2": newest + context_items_target(context, 2),
            "newest+s1s2s3": newest + context_items_target(context, 3),
            "s1s2s3": context_items_target(context, 3).strip() or newest}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--users", type=int, default=3000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=RESULTS / "successor_stats.json")
    args = p.parse_args()
    import torch

    import context_targets as ct  # bench/context_targets.py: the prompt's texts as shown
    from baselines import prepared

    if not ct.SHARED.is_dir():
        print(f"skipped: {ct.SHARED} is absent (the shared real data sits beside the repository)")
        return 0
    torch.set_num_threads(2)
    start = time.perf_counter()
    dataset = prepared(ct.SUBSET, ROOT / "data" / "prepared").root
    ws0 = load_config(WarmStartRunConfig, ct.NEWEST_CONTEXT_CONFIG, {"dataset": str(dataset)})
    embedder = Embedder(ws0.embedder)
    rows: dict[str, Any] = {}
    md = [f"# Transition statistics as the bound of a copying profiler ({ct.SUBSET} valid, {args.users:,} users, "
          f"seed {args.seed}, full ranking, no LLM)\n",
          "| window | decay | query | NDCG@10 | − last_item [95% CI] |", "|---|---|---|---|---|"]
    for setting in SETTINGS:
        tc = TransitionConfig(**setting)
        coll = ws0.prompt.collaborative.model_copy(update={"transitions": tc})
        ws = ws0.model_copy(update={"prompt": ws0.prompt.model_copy(update={"collaborative": coll})})
        cfg = EvaluateConfig(dataset=dataset, methods=["last_item", "successor_text", "successor_mean"], split="valid",
                             max_users=args.users, seed=args.seed, protocols=[EvalConfig(protocol="full")],
                             cache_dir=ROOT / ".cache" / "embeddings", transitions=tc,
                             intervals=IntervalConfig(references=["last_item"]))
        run = EvaluationRun(cfg, embedder=embedder, say=lambda m: None)
        for method in cfg.methods:
            run.evaluate_queries(method, run.queries(method))
        texts: dict[str, list[str]] = {}
        for ex in run.examples:
            for name, text in forms(*ct.shown_texts(run.dataset, ex, ws, "valid")).items():
                texts.setdefault(name, []).append(text)
        for name, t in texts.items():
            run.evaluate_texts(name, t)
        summary = run.summary()
        key = json.dumps(setting, sort_keys=True)
        rows[key] = {"transitions": tc.model_dump(), "results": summary["results"], "intervals": summary["intervals"]}
        for method, by in summary["results"].items():
            cell = summary["intervals"].get(method, {}).get("full", {}).get("last_item", {}).get("ndcg@10")
            diff = interval_cell(cell)
            line = f"| {tc.window} | {tc.decay} | {method} | {by['full']['ndcg@10']:.4f} | {diff} |"
            md.append(line)
            print(line, flush=True)
    seconds = round(time.perf_counter() - start, 1)
    command = " ".join(["python bench/successor_stats.py", *sys.argv[1:]])
    write_json_atomic(args.out, {"benchmark": "successor_stats", "command": command, "seconds": seconds,
                                 "users": args.users, "seed": args.seed, "settings": rows})
    md.append(f"\n`{command}` ({seconds / 60:.1f} min). "
              "Text forms are written from the `newest_context` prompt (titles ≤ 100 characters, successors of the "
              "newest item) with each setting's successors; `successor_text`/`successor_mean` use the last item's.")
    write_text_atomic(args.out.with_suffix(".md"), "\n".join(md) + "\n")
    print(f"wrote {args.out} ({seconds}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
