"""Benchmark (not a test): how faithfully a warm-started profiler copies the target it was taught.

    .venv/bin/python bench/copy_fidelity.py \\
        --profiles t48=bench/results/blue_beauty_profiles/earlier/context_t48/warmstart_context.test.jsonl.gz \\
        --profiles t80=bench/results/blue_beauty_profiles/warmstart_context.test.jsonl.gz --budget t48=48 --budget t80=80

A copy-target warm start (``bluerec.profiler.warmstart``: ``recent_pair+successor`` = "Recently: <newest>; <the one
before>. Often bought next: <first successor>.") can at best write its target, whose own score as a text query is
the ceiling of that row (``bench/context_targets.py``). This rebuilds each stored profile's target from the same
prompt texts (same seeded test users as ``bluerec evaluate --max-users``) and counts, per profile file: exact copies,
profiles that are a prefix of their target (cut by the generation budget), profiles that reach the generation budget,
the newest title copied first, the target's successor named, and a history title written where the successor belongs.
No LLM, no embeddings: seconds. Writes ``bench/results/copy_fidelity.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bluerec.config import load_config  # noqa: E402
from bluerec.io import read_jsonl, write_json_atomic, write_text_atomic  # noqa: E402
from bluerec.workflow import WarmStartRunConfig  # noqa: E402

from context_targets import RESULTS, SHARED, SUBSET, WARMSTART_CONFIG  # noqa: E402  (the same data and config)

SUCCESSOR = " Often bought next: "
console = Console()


def _norm(text: str) -> str:
    return " ".join(text.split())


def _successor(text: str) -> str | None:
    """The first item after "Often bought next:" (None: no such section)."""
    if SUCCESSOR.strip() not in text:
        return None
    after = text.split(SUCCESSOR.strip(), 1)[1]
    return _norm(after.split(";")[0]).rstrip(".").strip() or None


def _first_item(target: str) -> str:
    """The first item of a copy target ("Recently: <newest>; …"), as the prompt showed it."""
    return _norm(target.removeprefix("Recently: ")).split(";")[0].split(". Often bought next:")[0].rstrip(".")


def fidelity(profiles: list[str], targets: list[str], history: list[list[str]], token_lengths: list[int],
             budget: int | None) -> dict[str, Any]:
    """Copy statistics of ``profiles`` against their ``targets`` (pure: the unit of this benchmark).

    ``history``: each user's item texts as the prompt showed them (a successor equal to one of them was copied from
    the history, not from the section, which never lists history items)."""
    n = len(profiles)
    if n == 0 or len(targets) != n:
        raise ValueError(f"{n} profiles for {len(targets)} targets")
    counts = {"exact": 0, "cut_prefix_of_target": 0, "newest_title_first": 0, "successor_right": 0,
              "successor_is_history_title": 0, "no_successor_section": 0, "at_budget": 0}
    similarity = 0.0
    for p, t, hist, length in zip(profiles, targets, history, token_lengths):
        p, t = _norm(p), _norm(t)
        first = _first_item(t)
        counts["exact"] += p == t
        counts["cut_prefix_of_target"] += p != t and t.startswith(p)
        counts["newest_title_first"] += p.startswith(_norm(f"Recently: {first}"))
        want, got = _successor(t), _successor(p)
        counts["no_successor_section"] += got is None
        counts["successor_right"] += got is not None and want is not None and got == want
        stem = (got or "").rstrip("…").strip()
        counts["successor_is_history_title"] += bool(stem) and any(_norm(h).startswith(stem) for h in hist)
        counts["at_budget"] += budget is not None and length >= budget
        similarity += difflib.SequenceMatcher(None, p, t).ratio()
    return {"n": n, **counts, "shares": {k: round(v / n, 4) for k, v in counts.items()},
            "mean_similarity": round(similarity / n, 4), "token_lengths": _quantiles(token_lengths)}


def _quantiles(values: list[int]) -> dict[str, int]:
    s = sorted(values)
    return {"p50": s[len(s) // 2], "p90": s[min(len(s) - 1, int(0.9 * len(s)))], "max": s[-1]}


def read_profiles(path: Path) -> dict[str, str]:
    """``{user_id: profile}`` of a stored profile file (``read_jsonl``: .jsonl.gz too, a bad line names file and line)."""
    return {str(r["user_id"]): r["profile"] for r in read_jsonl(path)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profiles", action="append", required=True, metavar="NAME=PATH",
                   help="a stored profile file (JSONL or .jsonl.gz with user_id, profile); repeatable")
    p.add_argument("--budget", action="append", default=[], metavar="NAME=N",
                   help="the new-token budget those profiles were generated with (for the at-budget count)")
    p.add_argument("--target", default="recent_pair+successor")
    p.add_argument("--max-users", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", type=Path, default=ROOT / "data" / "prepared")
    p.add_argument("--out", type=Path, default=RESULTS / "copy_fidelity.json")
    args = p.parse_args()
    if not SHARED.is_dir():
        console.print(f"[yellow]skipped: {SHARED} is absent (the shared real data sits beside the repository)[/]")
        return 0
    from baselines import prepared
    from context_targets import shown_history, target_texts

    from transformers import AutoTokenizer

    from bluerec.eval.run import select_examples
    from bluerec.models.fetch import resolve_model

    start = time.perf_counter()
    ds = prepared(SUBSET, args.data_root)
    ws = load_config(WarmStartRunConfig, WARMSTART_CONFIG, {"dataset": str(ds.root)})
    examples = select_examples(ds, "test", args.max_users, args.seed)
    targets = target_texts(SimpleNamespace(dataset=ds, examples=examples), ws, "test")[args.target]
    history = [shown_history(ds, ex, ws) for ex in examples]
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(ws.profiler.model))  # the profiler's own tokens
    budgets = dict(b.split("=", 1) for b in args.budget)
    results: dict[str, Any] = {}
    for spec in args.profiles:
        name, path = spec.split("=", 1)
        by_user = read_profiles(Path(path))
        missing = [ex.user_id for ex in examples if str(ex.user_id) not in by_user]
        if missing:
            raise SystemExit(f"{path}: no profile for {len(missing)} of the {len(examples)} users "
                             f"(first: {missing[0]})")
        profiles = [by_user[str(ex.user_id)] for ex in examples]
        lengths = [len(tokenizer(pr, add_special_tokens=False)["input_ids"]) for pr in profiles]
        budget = int(budgets[name]) if name in budgets else None
        results[name] = {"path": path, "budget": budget, **fidelity(
            profiles, targets, history, lengths, budget)}
    target_lengths = _quantiles([len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in targets])
    table = Table(title=f"{SUBSET} test: {len(examples):,} users, target {args.target} "
                        f"(tokens p50 {target_lengths['p50']}, p90 {target_lengths['p90']})")
    cols = ["exact", "cut_prefix_of_target", "at_budget", "newest_title_first", "successor_right",
            "successor_is_history_title", "no_successor_section"]
    for c in ("profiles", "budget", *cols, "similarity"):
        table.add_column(c, justify="left" if c == "profiles" else "right")
    md = [f"# Copy fidelity of warm-started profilers ({SUBSET} test, {len(examples):,} seeded users, target "
          f"`{args.target}`, target tokens p50 {target_lengths['p50']} / p90 {target_lengths['p90']} / max "
          f"{target_lengths['max']})\n", "| profiles | budget | " + " | ".join(cols) + " | similarity |",
          "|---" * (len(cols) + 3) + "|"]
    for name, r in results.items():
        cells = [f"{r[c]} ({r['shares'][c]:.0%})" for c in cols]
        table.add_row(name, str(r["budget"] or "—"), *cells, f"{r['mean_similarity']:.3f}")
        md.append(f"| {name} | {r['budget'] or '—'} | " + " | ".join(cells) + f" | {r['mean_similarity']:.3f} |")
    console.print(table)
    command = "python bench/copy_fidelity.py " + " ".join(sys.argv[1:])
    md.append(f"\n`{command}`; similarity = mean difflib ratio of profile and target.")
    payload = {"benchmark": "copy_fidelity", "command": command, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "seconds": round(time.perf_counter() - start, 1), "subset": SUBSET, "target": args.target,
               "n_users": len(examples), "target_tokens": target_lengths, "results": results}
    write_json_atomic(args.out, payload)
    write_text_atomic(args.out.with_suffix(".md"), "\n".join(md) + "\n")
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
