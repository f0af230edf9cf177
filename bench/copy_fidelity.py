"""Benchmark (not a test): how faithfully a warm-started profiler copies the target it was taught.

    .venv/bin/python bench/copy_fidelity.py \\
        --profiles t48=bench/results/blue_beauty_profiles/earlier/context_t48/warmstart_context.test.jsonl.gz \\
        --profiles t80=bench/results/blue_beauty_profiles/warmstart_context.test.jsonl.gz --budget t48=48 --budget t80=80
    # what GRPO's groups hold: greedy profiles and 8 samples a user at two temperatures, 40 validation users (~15 min)
    .venv/bin/python bench/copy_fidelity.py --target newest_item+successor \\
        --warmstart-config configs/warmstart/beauty_smollm2_newest_context.yaml --split valid --max-users 40 \\
        --sample-model ws=runs/bench_blue_beauty/warmstart_newest_context/model --temperature 1.0 --temperature 0.7 \\
        --out bench/results/copy_fidelity_samples.json

A copy-target warm start (``bluerec.profiler.warmstart``: ``recent_pair+successor`` = "Recently: <newest>; <the one
before>. Often bought next: <first successor>.") can at best write its target, whose own score as a text query is
the ceiling of that row (``bench/context_targets.py``). This rebuilds each profile's target from the same prompt
texts (``--warmstart-config``'s prompt; same seeded users as ``bluerec evaluate --max-users``) and counts, per profile
set: exact copies, profiles that are a prefix of their target (cut by the generation budget), profiles that reach
the generation budget, the newest title copied first, an older history title copied first instead, the target's
successor named, and a history title written where the successor belongs.

Profiles come from stored files (``--profiles``: no LLM, seconds) or are written now by a profiler
(``--sample-model``): its greedy profiles — what evaluation scores — and ``--samples`` sampled profiles a user at each
``--temperature`` — what a GRPO group holds. For samples it also counts, per user, whether the group mixes profiles
with the taught form (newest title first, the target's successor) and profiles without it: only such a group gives
that form an advantage. Writes ``--out`` (``bench/results/copy_fidelity.json`` by default) and its ``.md``.
"""

from __future__ import annotations

import argparse
import difflib
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


def _newest_first(p: str, t: str) -> bool:
    """Normalised profile ``p`` begins with the newest title of normalised target ``t``."""
    return p.startswith(_norm(f"Recently: {_first_item(t)}"))


def _successor_right(p: str, t: str) -> bool:
    """Normalised profile ``p`` names the first successor of normalised target ``t``."""
    got, want = _successor(p), _successor(t)
    return got is not None and want is not None and got == want


def fidelity(profiles: list[str], targets: list[str], history: list[list[str]], token_lengths: list[int],
             budget: int | None) -> dict[str, Any]:
    """Copy statistics of ``profiles`` against their ``targets`` (pure: the unit of this benchmark).

    ``history``: each user's item texts as the prompt showed them (a successor equal to one of them was copied from
    the history, not from the section, which never lists history items)."""
    n = len(profiles)
    if n == 0 or len(targets) != n:
        raise ValueError(f"{n} profiles for {len(targets)} targets")
    counts = {"exact": 0, "cut_prefix_of_target": 0, "newest_title_first": 0, "older_title_first": 0,
              "successor_right": 0, "successor_is_history_title": 0, "no_successor_section": 0, "at_budget": 0}
    similarity = 0.0
    for p, t, hist, length in zip(profiles, targets, history, token_lengths):
        p, t = _norm(p), _norm(t)
        first = _first_item(t)
        counts["exact"] += p == t
        counts["cut_prefix_of_target"] += p != t and t.startswith(p)
        newest_first = _newest_first(p, t)
        counts["newest_title_first"] += newest_first
        # an older history title where the newest belongs (the titles of the prompt but its last, oldest first)
        stems = [_norm(h).rstrip(".…").strip() for h in hist[:-1]]
        counts["older_title_first"] += not newest_first and any(
            stem and stem != first.rstrip("…").strip() and p.startswith(f"Recently: {stem}") for stem in stems)
        got = _successor(p)
        counts["no_successor_section"] += got is None
        counts["successor_right"] += _successor_right(p, t)
        stem = (got or "").rstrip("…").strip()
        counts["successor_is_history_title"] += bool(stem) and any(_norm(h).startswith(stem) for h in hist)
        counts["at_budget"] += budget is not None and length >= budget
        similarity += difflib.SequenceMatcher(None, p, t).ratio()
    return {"n": n, **counts, "shares": {k: round(v / n, 4) for k, v in counts.items()},
            "mean_similarity": round(similarity / n, 4), "token_lengths": _quantiles(token_lengths)}


def right_form(profile: str, target: str) -> bool:
    """The two choices a copy target makes, made as taught: the newest title first and the target's successor."""
    p, t = _norm(profile), _norm(target)
    return _newest_first(p, t) and _successor_right(p, t)


def group_contrast(greedy_right: list[bool], samples_right: list[list[bool]]) -> dict[str, int]:
    """What GRPO's groups can teach greedy decoding (pure): per user, whether the greedy profile has the right form
    and which of its sampled profiles do. Only a *mixed* group (some samples right, some not) gives the right form an
    advantage; ``greedy_wrong_sample_right`` counts the users whose greedy error some sample of theirs avoids."""
    if len(greedy_right) != len(samples_right):
        raise ValueError(f"{len(greedy_right)} greedy profiles for {len(samples_right)} groups")
    out = {"users": len(greedy_right), "greedy_right": sum(greedy_right), "all_right": 0, "all_wrong": 0, "mixed": 0,
           "greedy_wrong_sample_right": 0}
    for greedy, group in zip(greedy_right, samples_right):
        kind = "all_right" if all(group) else "all_wrong" if not any(group) else "mixed"
        out[kind] += 1
        out["greedy_wrong_sample_right"] += not greedy and any(group)
    return out


def _quantiles(values: list[int]) -> dict[str, int]:
    s = sorted(values)
    return {"p50": s[len(s) // 2], "p90": s[min(len(s) - 1, int(0.9 * len(s)))], "max": s[-1]}


def read_profiles(path: Path) -> dict[str, str]:
    """``{user_id: profile}`` of a stored profile file (``read_jsonl``: .jsonl.gz too, a bad line names file and line)."""
    return {str(r["user_id"]): r["profile"] for r in read_jsonl(path)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profiles", action="append", default=[], metavar="NAME=PATH",
                   help="a stored profile file (JSONL or .jsonl.gz with user_id, profile); repeatable")
    p.add_argument("--budget", action="append", default=[], metavar="NAME=N",
                   help="the new-token budget those profiles were generated with (for the at-budget count)")
    p.add_argument("--sample-model", action="append", default=[], metavar="NAME=PATH",
                   help="a profiler to write the users' profiles now: greedy, and --samples at each --temperature")
    p.add_argument("--temperature", action="append", type=float, default=[],
                   help="a sampling temperature for --sample-model (repeatable; default 1.0)")
    p.add_argument("--samples", type=int, default=8, help="profiles sampled per user and temperature")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--num-threads", type=int, default=2)
    p.add_argument("--target", default="recent_pair+successor")
    p.add_argument("--warmstart-config", type=Path, default=WARMSTART_CONFIG,
                   help="the warm start whose prompt (item limits, collaborative section) the targets are written with")
    p.add_argument("--split", default="test", choices=["valid", "test"])
    p.add_argument("--max-users", type=int, default=2000)
    p.add_argument("--users-from-profiles", action="store_true",
                   help="take the users of the first --profiles file (e.g. a GRPO run's validation profiles) instead "
                        "of --max-users seeded ones")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", type=Path, default=ROOT / "data" / "prepared")
    p.add_argument("--out", type=Path, default=RESULTS / "copy_fidelity.json")
    args = p.parse_args()
    if not args.profiles and not args.sample_model:
        p.error("give --profiles or --sample-model")
    if not SHARED.is_dir():
        console.print(f"[yellow]skipped: {SHARED} is absent (the shared real data sits beside the repository)[/]")
        return 0
    from baselines import prepared
    from context_targets import shown_texts, taught_text

    from transformers import AutoTokenizer

    from bluerec.eval.run import select_examples
    from bluerec.models.fetch import resolve_model

    start = time.perf_counter()
    ds = prepared(SUBSET, args.data_root)
    ws = load_config(WarmStartRunConfig, args.warmstart_config, {"dataset": str(ds.root)})
    stored = {name: (path, read_profiles(Path(path))) for name, path in (spec.split("=", 1) for spec in args.profiles)}
    if args.users_from_profiles:
        if not stored:
            p.error("--users-from-profiles needs --profiles")
        first_path, wanted = next(iter(stored.values()))
        examples = [ex for ex in select_examples(ds, args.split, None, args.seed) if str(ex.user_id) in wanted]
        if not examples:
            raise SystemExit(f"{first_path}: none of its {len(wanted)} users has a {args.split} example")
    else:
        examples = select_examples(ds, args.split, args.max_users, args.seed)
    shown = [shown_texts(ds, ex, ws, args.split) for ex in examples]
    targets = [taught_text(args.target, h, c) for h, c in shown]
    history = [h for h, _ in shown]
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(ws.profiler.model))  # the profiler's own tokens
    budgets = dict(b.split("=", 1) for b in args.budget)
    results: dict[str, Any] = {}

    def score(name: str, profiles: list[str], budget: int | None, **extra: Any) -> None:
        n_rep = len(profiles) // len(examples)  # sampled profiles: n_rep per user, user by user
        lengths = [len(tokenizer(pr, add_special_tokens=False)["input_ids"]) for pr in profiles]
        results[name] = {**extra, "budget": budget, **fidelity(
            profiles, [t for t in targets for _ in range(n_rep)], [h for h in history for _ in range(n_rep)],
            lengths, budget)}

    for name, (path, by_user) in stored.items():
        missing = [ex.user_id for ex in examples if str(ex.user_id) not in by_user]
        if missing:
            raise SystemExit(f"{path}: no profile for {len(missing)} of the {len(examples)} users "
                             f"(first: {missing[0]})")
        score(name, [by_user[str(ex.user_id)] for ex in examples], int(budgets[name]) if name in budgets else None,
              path=path)
    if args.sample_model:
        import torch

        from bluerec.profiler.loader import load_profiler
        from bluerec.profiler.profile import profile_prompts

        torch.set_num_threads(args.num_threads)
        for spec in args.sample_model:
            name, model = spec.split("=", 1)
            backend = load_profiler(model)
            prompts = profile_prompts(backend, ds, examples, ws.prompt, args.split)
            console.print(f"{name}: greedy profiles of {len(examples)} users")
            greedy = [g[0] for g in backend.generate(prompts, num_samples=1, max_new_tokens=args.max_new_tokens,
                                                     do_sample=False, seed=args.seed)]
            score(f"{name} greedy", greedy, args.max_new_tokens, model=model)
            greedy_right = [right_form(g, t) for g, t in zip(greedy, targets)]
            for temperature in args.temperature or [1.0]:
                console.print(f"{name}: {args.samples} samples a user at temperature {temperature}")
                groups = backend.generate(prompts, num_samples=args.samples, max_new_tokens=args.max_new_tokens,
                                          temperature=temperature, do_sample=True, seed=args.seed)
                score(f"{name} t={temperature:g}", [s for g in groups for s in g], args.max_new_tokens, model=model,
                      temperature=temperature, groups=group_contrast(
                          greedy_right, [[right_form(s, t) for s in g] for g, t in zip(groups, targets)]))
    target_lengths = _quantiles([len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in targets])
    title = (f"{SUBSET} {args.split}: {len(examples):,} users, target {args.target} "
             f"(tokens p50 {target_lengths['p50']}, p90 {target_lengths['p90']})")
    table = Table(title=title)
    cols = ["exact", "cut_prefix_of_target", "at_budget", "newest_title_first", "older_title_first", "successor_right",
            "successor_is_history_title", "no_successor_section"]
    for c in ("profiles", "n", "budget", *cols, "similarity"):
        table.add_column(c, justify="left" if c == "profiles" else "right")
    md = [f"# Copy fidelity of warm-started profilers ({SUBSET} {args.split}, {len(examples):,} seeded users, target "
          f"`{args.target}` with the prompt of `{_rel(args.warmstart_config)}`, target tokens p50 "
          f"{target_lengths['p50']} / p90 {target_lengths['p90']} / max {target_lengths['max']})\n",
          "| profiles | n | budget | " + " | ".join(cols) + " | similarity |", "|---" * (len(cols) + 4) + "|"]
    for name, r in results.items():
        cells = [f"{r[c]} ({r['shares'][c]:.0%})" for c in cols]
        table.add_row(name, str(r["n"]), str(r["budget"] or "—"), *cells, f"{r['mean_similarity']:.3f}")
        md.append(f"| {name} | {r['n']} | {r['budget'] or '—'} | " + " | ".join(cells) + f" | {r['mean_similarity']:.3f} |")
    console.print(table)
    grouped = {name: r["groups"] for name, r in results.items() if "groups" in r}
    if grouped:
        gcols = ["users", "greedy_right", "all_right", "all_wrong", "mixed", "greedy_wrong_sample_right"]
        md += ["\nRight form = the newest title first and the target's successor. Per user, over the samples at one "
               "temperature: only a mixed group gives the right form an advantage in GRPO.\n",
               "| samples | " + " | ".join(gcols) + " |", "|---" * (len(gcols) + 1) + "|"]
        md += [f"| {name} | " + " | ".join(str(g[c]) for c in gcols) + " |" for name, g in grouped.items()]
        console.print(grouped)
    command = "python bench/copy_fidelity.py " + " ".join(sys.argv[1:])
    md.append(f"\n`{command}`; similarity = mean difflib ratio of profile and target.")
    payload = {"benchmark": "copy_fidelity", "command": command, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "seconds": round(time.perf_counter() - start, 1), "subset": SUBSET, "split": args.split,
               "target": args.target, "warmstart_config": _rel(args.warmstart_config), "n_users": len(examples),
               "target_tokens": target_lengths, "results": results}
    write_json_atomic(args.out, payload)
    write_text_atomic(args.out.with_suffix(".md"), "\n".join(md) + "\n")
    console.print(f"wrote {args.out}")
    return 0


def _rel(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


if __name__ == "__main__":
    raise SystemExit(main())
