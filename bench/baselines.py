"""Benchmark (not a test): every baseline on the shared seqrec subsets, all test users, both protocols.

    .venv/bin/python bench/baselines.py                                  # amazon2014-beauty + amazon2018-game
    .venv/bin/python bench/baselines.py --subset amazon2014-beauty --max-users 2000   # a quick look

Leave-last-out (test target = each user's last item, history = everything before it), full ranking with
history items excluded, and sampled candidates (target + 99 seeded uniform negatives outside the history).
History text / mean embedding / template use the last 20 items. The evaluators are the registered retrieval
tasks of ``EvaluationRun`` (``bluerec.eval.tasks``), ties averaged (the default). On amazon2014-beauty the full-ranking
NDCG@10 is checked against independently measured reference values (±10% relative); the ratio column
shows ours / reference. Writes ``bench/results/baselines.json`` and ``bench/results/baselines.md``.
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

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bluerec.data.dataset import PreparedDataset  # noqa: E402
from bluerec.data.prepare import prepared_seqrec  # noqa: E402
from bluerec.embed import Embedder  # noqa: E402
from bluerec.eval.baselines import BASELINES  # noqa: E402
from bluerec.eval.evaluator import EvalConfig  # noqa: E402
from bluerec.eval.run import EvaluateConfig, EvaluationRun, markdown_table  # noqa: E402
from bluerec.io import write_json_atomic, write_text_atomic  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "seqrec_benchmark_amazon"
RESULTS = ROOT / "bench" / "results"
# Independently measured full-ranking NDCG@10 on amazon2014-beauty, all 22,332 test users, MiniLM.
REFERENCE = {
    "amazon2014-beauty": {"history_text": 0.0144, "mean_embedding": 0.0206, "last_item": 0.0359, "popularity": 0.0063},
}
TOLERANCE = 0.10

console = Console()


def prepared(subset: str, data_root: Path) -> PreparedDataset:
    """Prepare ``subset`` once (5-core, leave-last-out); reuse the folder when it exists."""
    return PreparedDataset(prepared_seqrec(SHARED / subset, data_root / subset,
                                           progress=lambda m: console.print(f"  [dim]{m}[/]")))


def run_subset(subset: str, args: argparse.Namespace, embedder: Embedder) -> dict[str, Any]:
    start = time.perf_counter()
    ds = prepared(subset, args.data_root)
    cfg = EvaluateConfig(
        dataset=ds.root, methods=list(BASELINES), split="test", history_items=20, max_users=args.max_users,
        protocols=[EvalConfig(protocol="full"), EvalConfig(protocol="sampled", num_negatives=99, seed=0)],
        cache_dir=args.cache_dir,
    )
    run = EvaluationRun(cfg, embedder=embedder, say=lambda m: console.print(f"  {m}"))
    timings = {}
    for method in cfg.methods:
        t = time.perf_counter()
        run.evaluate_queries(method, run.queries(method))
        timings[method] = round(time.perf_counter() - t, 1)
        console.print(f"  {subset} {method}: full ndcg@10={run.results[method]['full'].metrics['ndcg@10']:.4f} ({timings[method]}s)")
    run.save(args.runs_root / subset)
    summary = run.summary()
    summary["seconds"] = round(time.perf_counter() - start, 1)
    summary["method_seconds"] = timings
    ref = REFERENCE.get(subset, {})
    if ref and args.max_users is None:
        checks = {}
        for method, want in ref.items():
            got = summary["results"][method]["full"]["ndcg@10"]
            checks[method] = {"ours": round(got, 5), "reference": want, "ratio": round(got / want, 3),
                              "within_10pct": abs(got / want - 1) <= TOLERANCE}
        summary["reference_check"] = checks
    return summary


def print_table(subset: str, summary: dict[str, Any]) -> None:
    ref = REFERENCE.get(subset, {})
    table = Table(title=f"{subset}: {summary['n_users']:,} test users, {summary['n_items']:,} items ({summary['seconds']}s)")
    for col in ("method", "full NDCG@10", "full Recall@10", "sampled NDCG@10", "sampled Recall@10", "ref NDCG@10", "ours/ref"):
        table.add_column(col, justify="right" if col != "method" else "left")
    for method, by_p in summary["results"].items():
        full, sampled = by_p["full"], by_p["sampled"]
        r = ref.get(method)
        table.add_row(method, f"{full['ndcg@10']:.4f}", f"{full['recall@10']:.4f}", f"{sampled['ndcg@10']:.4f}",
                      f"{sampled['recall@10']:.4f}", f"{r:.4f}" if r else "—",
                      f"{full['ndcg@10'] / r:.2f}" if r else "—")
    console.print(table)


def write_results(args: argparse.Namespace, embedder: Embedder, results: dict[str, Any]) -> None:
    payload = {
        "benchmark": "baselines",
        "command": "python bench/baselines.py" + (f" --max-users {args.max_users}" if args.max_users else ""),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "embedder": embedder.model_id,
        "subsets": results,
    }
    write_json_atomic(args.out, payload)
    md = "".join(f"\n**{s}** ({r['n_users']:,} test users, {r['n_items']:,} items)\n\n" + markdown_table(r["results"])
                 for s, r in results.items())
    write_text_atomic(args.out.with_suffix(".md"), md.lstrip())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--subset", action="append", help="seqrec subset(s); default amazon2014-beauty and amazon2018-game")
    p.add_argument("--max-users", type=int, default=None, help="seeded sample of test users (quick looks only)")
    p.add_argument("--data-root", type=Path, default=ROOT / "data" / "prepared")
    p.add_argument("--runs-root", type=Path, default=ROOT / "runs" / "bench_baselines")
    p.add_argument("--cache-dir", type=Path, default=ROOT / ".cache" / "embeddings")
    p.add_argument("--out", type=Path, default=RESULTS / "baselines.json")
    args = p.parse_args()
    if not SHARED.is_dir():
        console.print(f"[yellow]skipped: {SHARED} is absent (the shared real data sits beside the repository)[/]")
        return 0
    subsets = args.subset or ["amazon2014-beauty", "amazon2018-game"]
    embedder = Embedder()
    results = {}
    for subset in subsets:
        console.rule(subset)
        results[subset] = run_subset(subset, args, embedder)
        print_table(subset, results[subset])
        write_results(args, embedder, results)  # after every subset, so a long run keeps what it finished
    console.print(f"wrote {args.out}")
    failed = [m for r in results.values() for m, c in r.get("reference_check", {}).items() if not c["within_10pct"]]
    if failed:
        console.print(f"[red]outside ±10% of the reference: {failed}[/]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
