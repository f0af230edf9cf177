"""Benchmark (not a test): BERT4Rec (bluerec.eval.bert4rec) on amazon2014-beauty under the paper's protocol.

    .venv/bin/python bench/bert4rec_beauty.py --max-seconds 600     # the README run: 10 min of training, 1 thread
    .venv/bin/python bench/bert4rec_beauty.py --max-seconds 60      # a quick look (undertrained)

Leave-last-out as prepared by ``bench/baselines.py`` (5-core, ``prepared_seqrec``); training sequences end before
each user's validation item; early stopping on validation NDCG@10 (full ranking). Test users are scored by
:class:`~bluerec.eval.evaluator.RetrievalEvaluator` under three protocols: full ranking (history excluded), the
baselines' 100 candidates (target + 99 seeded uniform negatives), and BERT4Rec's own protocol (target + 100
negatives sampled by popularity, outside the history), which is compared with the published figure (``PUBLISHED``).
Writes ``bench/results/bert4rec_beauty.json`` and ``.md``.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402

from bluerec.data.dataset import PreparedDataset  # noqa: E402
from bluerec.data.prepare import prepared_seqrec  # noqa: E402
from bluerec.eval.bert4rec import BERT4RecConfig, evaluate_bert4rec, train_bert4rec  # noqa: E402
from bluerec.eval.evaluator import EvalConfig  # noqa: E402
from bluerec.eval.sasrec import sasrec_data, sasrec_evaluators  # noqa: E402
from bluerec.io import write_json_atomic, write_text_atomic  # noqa: E402
from published import by_epoch, compare_published, recompare  # noqa: E402  (bench/published.py)

SHARED = ROOT.parent / "shared" / "data" / "seqrec_benchmark_amazon"
RESULTS = ROOT / "bench" / "results"
SUBSET = "amazon2014-beauty"

PUBLISHED: dict[str, dict[str, Any]] = {
    "sampled_popularity": {
        "hr@10": 0.3025, "ndcg@10": 0.1862,
        "source": "Sun et al., BERT4Rec: Sequential Recommendation with Bidirectional Encoder Representations from "
                  "Transformer, CIKM 2019 (arXiv:1904.06690), Table 2, Beauty, BERT4Rec row",
        "protocol": "leave-one-out; the test item paired with 100 negatives the user has not interacted with, "
                    "sampled by popularity (Section 4.1)",
        "data_note": "the paper's Beauty (its own filtering of the Amazon 2014 Beauty reviews) is larger than this "
                     "iterated 5-core subset (22,332 users / 12,086 items), and a smaller catalogue concentrates "
                     "popularity sampling on fewer, more popular items; Petrov & Macdonald (RecSys 2022, "
                     "arXiv:2207.07483) found the original results need far longer training than the defaults "
                     "(up to 30x), so a short CPU budget is a lower bound",
    },
}

console = Console()


def protocols() -> list[EvalConfig]:
    return [EvalConfig(protocol="full", ties="average"),
            EvalConfig(protocol="sampled", num_negatives=99, seed=0, ties="average"),
            EvalConfig(protocol="sampled", num_negatives=100, negative_sampling="popularity", seed=0,
                       ties="average")]


def markdown(payload: dict[str, Any]) -> str:
    t, m = payload["training"], payload["metrics"]
    lines = [f"**BERT4Rec on {SUBSET}** ({payload['n_users']:,} test users, {payload['n_items']:,} items; "
             f"{t['epochs']} epochs, best {t['best_epoch']}, stopped: {t['stopped']}, {t['seconds']}s training)", "",
             "| protocol | NDCG@10 | HR@10 | published NDCG@10 | published HR@10 | ours/published (NDCG, HR) |",
             "|---|---|---|---|---|---|"]
    for protocol in m:
        ref = payload["comparison"].get(protocol)
        pub = (f"{ref['metrics']['ndcg@10']['published']:.4f} | {ref['metrics']['hr@10']['published']:.4f} | "
               f"{ref['metrics']['ndcg@10']['ratio']:.2f}, {ref['metrics']['hr@10']['ratio']:.2f}") if ref else "— | — | —"
        lines.append(f"| {protocol} | {m[protocol]['ndcg@10']:.4f} | {m[protocol]['recall@10']:.4f} | {pub} |")
    lines.append("")
    for protocol, ref in payload["comparison"].items():
        lines.append(f"- {protocol}: {ref['source']}; protocol: {ref['protocol']}; data: {ref['data_note']}.")
    if t["stopped"] == "time_budget":
        lines.append(f"- training stopped at the time budget (validation NDCG@10 by epoch: {by_epoch(t['valid_ndcg@10'])}); "
                     "the paper trains far longer, so this short run is a lower bound.")
    lines.append(f"\nCommand: `{payload['command']}`")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=ROOT / "data" / "prepared")
    p.add_argument("--max-seconds", type=float, default=600.0, help="training wall-clock budget")
    p.add_argument("--max-epochs", type=int, default=200)
    p.add_argument("--eval-every", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS / "bert4rec_beauty.json")
    p.add_argument("--recompare", action="store_true",
                   help="only redo the published comparison and the markdown of an existing --out (no training)")
    args = p.parse_args()
    if args.recompare:
        console.print(recompare(args.out, PUBLISHED, markdown))
        return 0
    if not SHARED.is_dir():
        console.print(f"[yellow]skipped: {SHARED} is absent (the shared real data sits beside the repository)[/]")
        return 0
    start = time.perf_counter()
    ds = PreparedDataset(prepared_seqrec(SHARED / SUBSET, args.data_root / SUBSET,
                                         progress=lambda m: console.print(f"  [dim]{m}[/]")))
    data = sasrec_data(ds)
    console.print(f"{SUBSET}: {len(data.users):,} users, {data.n_items:,} items")
    config = BERT4RecConfig(max_seconds=args.max_seconds, max_epochs=args.max_epochs, eval_every=args.eval_every,
                            threads=args.threads, seed=args.seed)
    fit = train_bert4rec(data, config, progress=lambda m: console.print(f"  {m}"))
    # sasrec_evaluators keys evaluators by protocol kind, so the two sampled protocols are built one by one.
    evaluators = {name: next(iter(sasrec_evaluators(data, [p], item_popularity=ds.items.popularity).values()))
                  for name, p in zip(["full", "sampled", "sampled_popularity"], protocols())}
    metrics = evaluate_bert4rec(fit.model, data, evaluators)
    payload = {
        "benchmark": "bert4rec_beauty",
        "command": f"python bench/bert4rec_beauty.py --max-seconds {args.max_seconds:g}",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "torch_threads": args.threads, "python": platform.python_version(),
                    "platform": platform.platform()},
        "implementation": "bluerec.eval.bert4rec (torch.nn.TransformerEncoder; no installable library ships BERT4Rec)",
        "config": config.model_dump(),
        "n_users": len(data.users), "n_items": data.n_items,
        "training": fit.record(),
        "metrics": {k: {m: round(v, 5) for m, v in d.items()} for k, d in metrics.items()},
        "comparison": compare_published(metrics, PUBLISHED),
        "seconds": round(time.perf_counter() - start, 1),
    }
    write_json_atomic(args.out, payload)
    write_text_atomic(args.out.with_suffix(".md"), markdown(payload))
    console.print(markdown(payload))
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
