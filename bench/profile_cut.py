"""Benchmark (not a test): how much of a SmolLM2 profile helps it retrieve? The stored amazon2014-beauty profiles
(``bench/blue_beauty.py``'s warm start and GRPO rows, "Recently: <newest title>; <older title>; …") cut to their
first k titles, newest first, beside the whole profile, on the same users.

    .venv/bin/python bench/profile_cut.py            # ~2 min: only embedding and ranking, no LLM

k is chosen on **validation** users: the 300 users the GRPO runs validate on (``select_eval_examples``, seed 0),
whose warm-start profiles (step 0 of the ``text`` run, 40 new tokens, greedy) are stored in
``bench/results/blue_beauty_profiles/warmstart.valid300.jsonl.gz``. Every cut is then evaluated on the 2,000 seeded
test users of ``bench/blue_beauty.py`` (full ranking, history excluded, ties averaged) with paired bootstrap 95%
intervals against the last item and the whole warm-start profile. Writes ``bench/results/profile_cut.{json,md}``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

PROFILES = ROOT / "bench" / "results" / "blue_beauty_profiles"
RESULTS = ROOT / "bench" / "results"
CUTS = (1, 2, 3)
METHODS = ("warmstart", "blue_both", "blue_embedding", "blue_one_way", "blue_text")


def first_titles(profile: str, k: int) -> str:
    """The profile's first ``k`` titles: ``"Head: a; b; c"`` → ``"Head: a; b"`` for k = 2; a profile without a
    ``head:`` prefix is kept whole (it is not a list of titles).

    Example:
    ```python
    >>> first_titles("Recently: Clay mask; Face wash; Brush set", 1)
    'Recently: Clay mask'
    >>> first_titles("Loves clay masks", 1)
    'Loves clay masks'
    ```
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    head, sep, body = profile.partition(":")
    if not sep:
        return profile
    titles = [t.strip() for t in body.split(";") if t.strip()]
    return f"{head}: " + "; ".join(titles[:k]) if titles else profile


def validation(dataset: Path, say: Any) -> dict[str, float]:
    """NDCG@10 of the warm start's validation profiles, whole and cut, on the GRPO runs' validation users."""
    import numpy as np

    from bluerec.config import load_config
    from bluerec.data.dataset import PreparedDataset
    from bluerec.embed import Embedder
    from bluerec.eval.tasks import EvalSetup, build_evaluator
    from bluerec.io import read_jsonl
    from bluerec.train.config import BlueTrainConfig
    # The trainer's own user sample and item matrix, so these users rank exactly as in the GRPO runs' validation.
    from bluerec.train.trainer import _item_embeddings, select_eval_examples

    cfg = load_config(BlueTrainConfig, ROOT / "configs" / "train" / "beauty_smollm2.yaml",
                      {"dataset": str(dataset)})
    ds = PreparedDataset(dataset)
    embedder = Embedder(cfg.embedder)
    item_emb = _item_embeddings(embedder, ds, ROOT / ".cache" / "embeddings")
    examples = select_eval_examples(ds, cfg.eval.num_users, cfg.eval.seed)
    rows = read_jsonl(PROFILES / "warmstart.valid300.jsonl.gz")
    by_user = {r["user_id"]: r["profile"] for r in rows}
    users = [str(ex.user_id) for ex in examples]
    missing = [u for u in users if u not in by_user]
    if missing:
        raise ValueError(f"{PROFILES / 'warmstart.valid300.jsonl.gz'}: field 'user_id': {len(missing)} validation "
                         f"users have no profile (e.g. {missing[0]!r}); the validation sample changed")
    evaluator = build_evaluator(cfg.eval.task, EvalSetup(ds, examples, "valid", seed=cfg.eval.seed,
                                                         item_embeddings=item_emb), cfg.eval.retrieval)
    out = {}
    for k in (*CUTS, None):
        texts = [by_user[u] if k is None else first_titles(by_user[u], k) for u in users]
        metrics = evaluator(np.asarray(embedder.encode_queries(texts), dtype=np.float32))
        name = "whole" if k is None else f"first{k}"
        out[name] = float(metrics[evaluator.primary_metric])
        say(f"  validation {name}: {evaluator.primary_metric} {out[name]:.4f}")
    return out


def test(dataset: Path, work: Path, max_users: int, say: Any) -> dict[str, Any]:
    """Every stored method, whole and cut to every k, on the test users of bench/blue_beauty.py."""
    from bluerec.eval.run import EvaluateConfig, EvaluationRun
    from bluerec.io import read_jsonl, write_jsonl_atomic

    profiles: dict[str, str] = {}
    for method in METHODS:
        rows = read_jsonl(PROFILES / f"{method}.test.jsonl.gz")
        for k in (None, *CUTS):
            name = method if k is None else f"{method}_first{k}"
            path = work / f"{name}.jsonl"
            write_jsonl_atomic(path, ({"user_id": r["user_id"],
                                       "profile": r["profile"] if k is None else first_titles(r["profile"], k)}
                                      for r in rows))
            profiles[name] = str(path)
    config = EvaluateConfig.model_validate({
        "dataset": str(dataset), "split": "test", "methods": ["last_item", "template"], "profiles": profiles,
        "max_users": max_users, "cache_dir": str(ROOT / ".cache" / "embeddings"),
        "protocols": [{"protocol": "full"}], "intervals": {"references": ["last_item", "warmstart"]}})
    run = EvaluationRun(config, say=lambda m: say("    " + m))
    return run.run_all(work / "eval")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=ROOT / "data" / "prepared")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench_profile_cut")
    parser.add_argument("--max-users", type=int, default=2000)
    parser.add_argument("--num-threads", type=int, default=2)
    args = parser.parse_args(argv)

    import torch
    from rich.console import Console
    from rich.table import Table

    from baselines import SHARED, prepared
    from bluerec.io import write_json_atomic, write_text_atomic

    torch.set_num_threads(args.num_threads)
    console = Console()
    if not (SHARED / "amazon2014-beauty").exists():
        console.print(f"[yellow]skipped: {SHARED / 'amazon2014-beauty'} is absent[/]")
        return 0
    start = time.perf_counter()
    dataset = Path(prepared("amazon2014-beauty", args.data_root).root)
    console.print("validation (choose k)")
    valid = validation(dataset, console.print)
    chosen = max(valid, key=lambda n: valid[n])
    console.print(f"test ({args.max_users} users)")
    summary = test(dataset, args.work, args.max_users, console.print)

    from bluerec.eval.run import interval_cell

    res, iv = summary["results"], summary["intervals"]
    cell = lambda m, r: iv.get(m, {}).get("full", {}).get(r, {}).get("ndcg@10")  # noqa: E731
    rows = []
    for method in ("last_item", "template", *[f"{m}{s}" for m in METHODS
                                             for s in ("", *[f"_first{k}" for k in CUTS])]):
        base = method.split("_first")[0]
        ndcg = res[method]["full"]["ndcg@10"]
        whole = res[base]["full"]["ndcg@10"] if base in res else None
        rows.append({"method": method, "ndcg@10": ndcg, "recall@10": res[method]["full"]["recall@10"],
                     "ratio_to_whole": ndcg / whole if whole and "_first" in method else None,
                     "minus_last_item": cell(method, "last_item"), "minus_warmstart": cell(method, "warmstart")})
    table = Table(title=f"amazon2014-beauty, {summary['n_users']} test users, full ranking; k chosen on validation: "
                        f"{chosen}")
    for col in ("method", "ndcg@10", "recall@10", "÷ whole", "− last_item", "− warmstart"):
        table.add_column(col)
    lines = ["| method | NDCG@10 | Recall@10 | ÷ whole profile | − last_item [95% CI] | − warm start [95% CI] |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "" if r["ratio_to_whole"] is None else f"{r['ratio_to_whole']:.2f}×"
        vals = [r["method"], f"{r['ndcg@10']:.4f}", f"{r['recall@10']:.4f}", ratio,
                interval_cell(r["minus_last_item"]), interval_cell(r["minus_warmstart"])]
        table.add_row(*vals)
        lines.append("| " + " | ".join(vals) + " |")
    console.print(table)
    seconds = time.perf_counter() - start
    header = (f"**Profiles cut to their first k titles** — `python bench/profile_cut.py` ({seconds / 60:.1f} min). "
              f"Validation NDCG@10 of the warm start's profiles on the GRPO runs' 300 validation users: "
              + ", ".join(f"{n} {v:.4f}" for n, v in valid.items()) + f" → k = **{chosen}**.\n\n")
    result = {"benchmark": "profile_cut", "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": round(seconds, 1),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
              "validation": valid, "chosen": chosen, "n_users": summary["n_users"], "rows": rows,
              "sample": summary["sample"]}
    write_json_atomic(RESULTS / "profile_cut.json", result)
    write_text_atomic(RESULTS / "profile_cut.md", header + "\n".join(lines) + "\n")
    console.print(f"wrote {RESULTS / 'profile_cut.json'} ({seconds:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
