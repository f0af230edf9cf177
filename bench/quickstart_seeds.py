"""Benchmark (not a test): is the quick start's gain larger than the spread across training seeds?

    .venv/bin/python bench/quickstart_seeds.py                 # seeds 0 1 2, ~12 min each on an idle 2-core machine
    .venv/bin/python bench/quickstart_seeds.py --seeds 0 1     # any subset; a rerun skips finished seeds

Runs ``bluerec quickstart`` (the built-in defaults, so seed 0 is exactly ``make quickstart``) once per training
seed — the seed of the warm start's data order and of GRPO's sampling; the synthetic data and the 120 evaluated
test users stay fixed — and sets the gains beside the spread, side by side in one run:

- the spread of each trained profiler's full NDCG@10 across seeds (max − min);
- BLUE − zero-shot and BLUE − warm start per seed, with the paired bootstrap 95% interval of each seed's run;
- the margin: the smallest BLUE − zero-shot gain over seeds divided by BLUE's spread (> 1: the gain is beyond the
  seed spread).

Writes ``bench/results/quickstart_seeds.json`` and ``.md``; each seed's run folder is
``runs/quickstart-seed<N>-threads<T>``. Seeds can run side by side (``--seeds 1 --num-threads 1`` in one shell,
``--seeds 2 --num-threads 1`` in another); a last invocation with every seed collects them.
"""

from __future__ import annotations

import argparse
import json
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

from bluerec.io import write_json_atomic, write_text_atomic  # noqa: E402
from bluerec.pipeline import QuickstartConfig, run_quickstart  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TRAINED = ["zero_shot", "warmstart", "blue"]
console = Console(width=120)


def seed_row(summary: dict[str, Any], metric: str = "ndcg@10") -> dict[str, Any]:
    """One seed's full-ranking metric of each profiler, and BLUE's paired interval against zero-shot and warm start."""
    full = {m: summary["results"][m]["full"][metric] for m in TRAINED}
    intervals = summary.get("intervals", {})

    def diff(reference: str) -> dict[str, float] | None:
        return intervals.get("blue", {}).get("full", {}).get(reference, {}).get(metric)

    return {**full, "blue_vs_zero_shot": diff("zero_shot"), "blue_vs_warmstart": diff("warmstart"),
            "seconds": round(sum(summary.get("timings_s", {}).values()), 1)}


def compare(rows: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Spread across seeds of each profiler and the gains beside it (pure: tested)."""
    spread = {m: max(r[m] for r in rows.values()) - min(r[m] for r in rows.values()) for m in TRAINED}
    gains = [r["blue"] - r["zero_shot"] for r in rows.values()]
    over_warm = [r["blue"] - r["warmstart"] for r in rows.values()]
    return {"spread": spread, "min_gain_over_zero_shot": min(gains), "mean_gain_over_zero_shot": sum(gains) / len(gains),
            "gain_over_warmstart": over_warm,
            "margin": (min(gains) / spread["blue"]) if spread["blue"] > 0 else float("inf")}


def markdown(payload: dict[str, Any]) -> str:
    rows, cmp = payload["seeds"], payload["comparison"]
    lines = [f"`{payload['command']}` ({payload['seconds'] / 60:.0f} min); full NDCG@10 on the quick start's "
             f"{payload['n_users']} test users, {payload.get('num_threads', 2)} torch thread(s)", "",
             "| seed | zero-shot | warm start | BLUE | BLUE − zero-shot [95% CI] | BLUE − warm start [95% CI] | min |",
             "|---|---:|---:|---:|---|---|---:|"]

    def ci(cell: dict[str, float] | None) -> str:
        return "–" if not cell else f"{cell['diff']:+.4f} [{cell['lo']:+.4f}, {cell['hi']:+.4f}]"

    for seed, r in rows.items():
        lines.append(f"| {seed} | {r['zero_shot']:.4f} | {r['warmstart']:.4f} | {r['blue']:.4f} | "
                     f"{ci(r['blue_vs_zero_shot'])} | {ci(r['blue_vs_warmstart'])} | {r['seconds'] / 60:.1f} |")
    s = cmp["spread"]
    lines += ["", f"Spread across seeds (max − min): zero-shot {s['zero_shot']:.4f}, warm start {s['warmstart']:.4f}, "
              f"BLUE {s['blue']:.4f}. Smallest BLUE − zero-shot gain {cmp['min_gain_over_zero_shot']:.4f} = "
              f"**{cmp['margin']:.1f}×** BLUE's spread."]
    return "\n".join(lines) + "\n"


def finished(results: Path, config: QuickstartConfig) -> dict[str, Any] | None:
    """The quick start's ``results.json`` when it was made with exactly ``config`` (seed, threads and every other
    setting), else None: a run with other settings, or one from before results recorded their config, is redone."""
    try:
        summary = json.loads(results.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return summary if summary.get("config") == config.model_dump(mode="json") else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--num-threads", type=int, default=None,
                    help="torch threads (default: the quick start's 2); 1 lets seeds run side by side on 2 cores")
    ap.add_argument("--work", type=Path, default=ROOT / "runs")
    ap.add_argument("--out", type=Path, default=RESULTS / "quickstart_seeds.json")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    rows: dict[int, dict[str, Any]] = {}
    n_users = 0
    for seed in args.seeds:
        config = QuickstartConfig(seed=seed)
        if args.num_threads:
            config = config.model_copy(update={"num_threads": args.num_threads})
        out = args.work / f"quickstart-seed{seed}-threads{config.num_threads}"
        summary = finished(out / "results.json", config)
        if summary is not None:
            console.print(f"seed {seed}: done earlier ({out / 'results.json'})")
        else:
            console.print(f"[bold]seed {seed}[/]: bluerec quickstart --out {out}")
            summary = run_quickstart(config, out,
                                     say=lambda m: console.print("    " + m, highlight=False))
        rows[seed] = seed_row(summary)
        n_users = summary["n_users"]
    payload = {"benchmark": "quickstart_seeds",
               "command": "python bench/quickstart_seeds.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": round(time.perf_counter() - start, 1),
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "platform": platform.platform()},
               "num_threads": args.num_threads or QuickstartConfig().num_threads,
               "n_users": n_users, "seeds": rows, "comparison": compare(rows)}
    write_json_atomic(args.out, payload)
    write_text_atomic(args.out.with_suffix(".md"), markdown(payload))
    console.print(markdown(payload))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
