"""Benchmark (not a test): a stored BLUE row of ``bench/blue_beauty.py`` on every amazon2014-beauty test user, in rounds
that resume across sessions.

    .venv/bin/python bench/all_users.py --minutes 50        # rebuild the profiler, add profiles for 50 min, evaluate

Why: ``blue_beauty.py`` scores every method on one seeded sample of 2,000 test users, and on that sample the last
item is unusually strong (0.0413 NDCG@10 against 0.0357 on all 22,332 test users). Profiling everyone with a 135M
LLM on 2 cores takes ~5 h (0.9 s a profile), so the users are taken in **nested seeded rounds**: round ``k`` is
``select_examples(max_users=k, seed=0)``, the sample ``bluerec evaluate --max-users k`` scores, and each round holds
the one before it (numpy's seeded choice without replacement is prefix-stable at this size, though not at every
size: :func:`round_users` checks it before any profile is written). Round 2,000 is the stored sample, so its profiles are reused as they are.

Stages (each resumes):

1. the profiler — the variant's warm start and GRPO run, rebuilt with ``blue_beauty.make_plan`` exactly as that bench
   trains them (``runs/bench_blue_beauty``); both config digests must equal the stored ``provenance.json`` and the
   rebuilt ``best/`` must write the stored 2,000-user file's first ``--check-users`` profiles **identically**, or the
   run stops (new profiles from another checkpoint would not belong in the same file);
2. profiles — greedy, as ``blue_beauty.py`` writes them, for the next rounds' missing users in chunks, each chunk
   merged atomically into ``bench/results/blue_beauty_profiles/blue_<variant>.test_all.jsonl.gz``; stops at
   ``--minutes`` (checked between chunks);
3. evaluation — the largest completed round: the profiles, ``last_item``, ``successor_text``, ``successor_mean`` and
   ``taught_text`` (the text the variant's warm start was taught to write, from each user's own test prompt: the
   bound of a profiler that copies), full ranking, paired bootstrap 95% intervals against the last item and ``successor_text``. Writes
   ``bench/results/blue_beauty_all_users.{json,md}`` (``--out``); with ``--every-round``, also every smaller completed
   round (a line per round: does the gap to the last item move as the sample grows?).
"""

from __future__ import annotations

import argparse
import gzip
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

import blue_beauty as bb  # noqa: E402

from bluerec.eval.run import interval_cell  # noqa: E402
from bluerec.io import atomic_path, read_jsonl, write_json_atomic, write_jsonl_atomic, write_text_atomic  # noqa: E402

RESULTS = ROOT / "bench" / "results"
STORED = RESULTS / "blue_beauty_profiles"
SUBSET = "amazon2014-beauty"
STORED_USERS = 2000  # the sample blue_beauty.py's stored profiles cover (its --max-users)


def rounds(total: int, step: int, first: int = STORED_USERS) -> list[int]:
    """The round sizes ``first, first + step, …, total``.

    Example:
    ```python
    >>> rounds(7000, 2000)
    [2000, 4000, 6000, 7000]
    ```
    """
    if step < 1 or first < 1:
        raise ValueError(f"step and first must be positive, got step={step} first={first}")
    sizes = list(range(first, total, step))
    return sizes + [total] if not sizes or sizes[-1] != total else sizes


def round_users(ordered_samples: list[list[str]]) -> list[list[str]]:
    """Each round's new users (in sample order); raises when a round does not hold the one before it.

    Example:
    ```python
    >>> round_users([["a", "b"], ["a", "c", "b"]])
    [['a', 'b'], ['c']]
    ```
    """
    out, seen = [], set()
    for i, sample in enumerate(ordered_samples):
        if not seen <= set(sample):
            raise ValueError(f"round {i} does not hold round {i - 1}: the seeded samples are not nested")
        out.append([u for u in sample if u not in seen])
        seen |= set(sample)
    return out


def write_profiles_gz(path: Path, rows: list[dict[str, Any]]) -> None:
    """``rows`` as gzipped JSONL, atomically, byte-stable (mtime 0, no name in the header), sorted by user id."""
    with atomic_path(path) as tmp, open(tmp, "wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
        for row in sorted(rows, key=lambda r: r["user_id"]):
            out.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))


def round_row(users: int, summary: dict[str, Any], row: str) -> dict[str, Any]:
    """One round's line from an evaluation summary: full-ranking NDCG@10 of the profiles (``row``), the last item and
    the taught text, and the paired intervals of the profiles and the taught text against the last item."""
    gaps = {m: summary["intervals"][m]["full"]["last_item"]["ndcg@10"] for m in (row, "taught_text")}
    return {"users": users,
            "ndcg@10": {m: summary["results"][m]["full"]["ndcg@10"] for m in (row, "last_item", "taught_text")},
            "minus_last_item": {m: {key: c[key] for key in ("diff", "lo", "hi")} for m, c in gaps.items()}}


def rounds_markdown(rows: list[dict[str, Any]], row: str) -> list[str]:
    """The ``round_row`` lines as a markdown table.

    Example:
    ```python
    >>> line = {"users": 2000, "ndcg@10": {"blue": 0.04, "last_item": 0.03, "taught_text": 0.05},
    ...         "minus_last_item": {"blue": {"diff": 0.01, "lo": -0.002, "hi": 0.02},
    ...                             "taught_text": {"diff": 0.02, "lo": 0.01, "hi": 0.03}}}
    >>> rounds_markdown([line], "blue")[-1]
    '| 2,000 | 0.0400 | 0.0300 | 0.0500 | +0.0100 [-0.0020, +0.0200] | +0.0200 [+0.0100, +0.0300] |'
    ```
    """
    md = [f"| users | {row} | last_item | taught_text | {row} − last_item [95% CI] | taught_text − last_item [95% CI] |",
          "|---|---|---|---|---|---|"]
    for r in rows:
        n, g = r["ndcg@10"], r["minus_last_item"]
        gaps = " | ".join(interval_cell(g[m]) for m in (row, "taught_text"))
        md.append(f"| {r['users']:,} | {n[row]:.4f} | {n['last_item']:.4f} | {n['taught_text']:.4f} | {gaps} |")
    return md


def build_profiler(plan: bb.Plan, variant: str, tag: str, prior: dict[str, Any], say: Any) -> Path:
    """Stage 1: the variant's warm start (``tag``) and GRPO run as blue_beauty.py trains them, checked against the
    stored ``provenance.json`` (``prior``); returns its ``best/``."""
    from bluerec.train.select import read_best
    from bluerec.train.trainer import train_blue
    from bluerec.pipeline import train_printer
    from bluerec.workflow import run_warmstart

    cfg = plan.train[variant]
    ws = plan.warmstarts[tag]
    want_ws = prior["warmstart"][tag]["config_digest"]
    want_tr = prior["grpo"][variant]["config_digest"]
    if bb.warmstart_digest(ws) != want_ws or bb.train_digest(cfg) != want_tr:
        raise SystemExit(f"the configs changed since the stored profiles were made (warm start {bb.warmstart_digest(ws)} "
                         f"vs {want_ws}, GRPO {bb.train_digest(cfg)} vs {want_tr}): run blue_beauty.py first")
    if not (Path(ws.output_dir) / "model" / "config.json").exists():
        say(f"1/3 warm start {tag} (~15 min)")
        run_warmstart(ws, say=lambda m: say("    " + m))
    out = Path(cfg.output_dir)
    best = read_best(out)
    if best is None or not (out / "final" / "config.json").exists():
        say(f"1/3 GRPO {variant} (~30 min)")
        best = train_blue(cfg.model_copy(update={"show_progress": False}), resume=True,
                          progress=train_printer(lambda m: say("    " + m), every=1)).best
    if best is None or best["step"] != prior["grpo"][variant]["best"]["step"]:
        raise SystemExit(f"{out}: best step {best and best['step']} differs from the stored run's "
                         f"{prior['grpo'][variant]['best']['step']}")
    return out / best["path"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variant", default="newest_context_t07_histneg")
    p.add_argument("--step", type=int, default=2000, help="users added per round")
    p.add_argument("--minutes", type=float, default=None, help="stop generating after this long (default: all)")
    p.add_argument("--chunk", type=int, default=256, help="users generated between saves")
    p.add_argument("--check-users", type=int, default=32)
    p.add_argument("--evaluate-only", action="store_true", help="no model: evaluate the completed rounds")
    p.add_argument("--every-round", action="store_true",
                   help="also evaluate every smaller completed round (~20 s each): the gap round by round")
    p.add_argument("--out", type=Path, default=RESULTS / "blue_beauty_all_users.json")
    args = p.parse_args(argv)
    import torch

    from baselines import SHARED, prepared
    from bluerec.eval.evaluator import EvalConfig
    from bluerec.eval.run import EvaluateConfig, EvaluationRun, IntervalConfig, select_examples
    from bluerec.pipeline import generate_profile_file

    import context_targets as ct  # bench/context_targets.py: the prompt's texts as shown

    if not (SHARED / SUBSET).is_dir():
        print(f"skipped: {SHARED / SUBSET} is absent (the shared real data sits beside the repository)")
        return 0
    torch.set_num_threads(2)
    start = time.perf_counter()
    say = lambda m: print(f"[{time.perf_counter() - start:6.0f}s] {m}", flush=True)  # noqa: E731
    ds = prepared(SUBSET, ROOT / "data" / "prepared")
    row = f"blue_{args.variant}"
    store = STORED / f"{row}.test_all.jsonl.gz"
    sample_file = STORED / f"{row}.test.jsonl.gz"
    all_users = [ex.user_id for ex in select_examples(ds, "test", None, 0)]
    sizes = rounds(len(all_users), args.step)
    samples = [[ex.user_id for ex in select_examples(ds, "test", k, 0)] for k in sizes]
    new_per_round = round_users(samples)
    have = {r["user_id"]: r for r in read_jsonl(sample_file)}
    if set(have) != set(samples[0]):
        raise SystemExit(f"{sample_file} does not hold exactly the {STORED_USERS}-user sample")
    if store.exists():
        have.update({r["user_id"]: r for r in read_jsonl(store)})
    say(f"{len(have):,} of {len(all_users):,} test users profiled ({store.name})")

    # make_plan's defaults are blue_beauty.py's (configs, embedding cache); the stored rows ran with --num-threads 2
    plan = bb.make_plan(ds.root, ROOT / "runs" / "bench_blue_beauty", variants=[args.variant], max_users=None,
                        warmstart_overrides={"num_threads": 2}, train_overrides={"num_threads": 2})
    tag = plan.warmstart_of[args.variant]  # the variant's warm start
    prior = json.loads((STORED / "provenance.json").read_text())
    todo = [u for users in new_per_round for u in users if u not in have]
    if todo and not args.evaluate_only:
        best = build_profiler(plan, args.variant, tag, prior, say)
        profiler = plan.zero_shot.model_copy(update={"model": str(best), "dtype": plan.dtypes[row]})
        prompt, budget = plan.prompts[row], plan.budgets[row]
        work = ROOT / "runs" / "all_users" / f"{row}.jsonl"
        work.parent.mkdir(parents=True, exist_ok=True)
        check = samples[0][:args.check_users]
        probe = work.with_name(f"{row}.check.jsonl")
        probe.unlink(missing_ok=True)
        generate_profile_file(profiler, ds, "test", probe, prompt, budget, user_ids=check,
                              batch_size=plan.generation_batch_size)
        made = {r["user_id"]: r for r in read_jsonl(probe)}
        same = sum(made[u]["profile"] == have[u]["profile"] for u in check)
        say(f"rebuilt {best}: {same}/{len(check)} of the stored profiles written identically")
        if same != len(check):
            raise SystemExit("the rebuilt profiler differs from the stored one: its profiles would not belong in "
                             f"{store.name}")
        # the work file starts as what is stored (so the generator resumes) and holds only this model's rows
        write_jsonl_atomic(work, have.values())
        first_round = set(samples[0])  # stored in the 2,000-user file, not in the rounds' file
        for i in range(0, len(todo), args.chunk):
            if args.minutes is not None and time.perf_counter() - start > args.minutes * 60:
                say(f"--minutes {args.minutes} reached: {len(todo) - i:,} users left for a later run")
                break
            t = time.perf_counter()
            generate_profile_file(profiler, ds, "test", work, prompt, budget, user_ids=todo[i:i + args.chunk],
                                  batch_size=plan.generation_batch_size)
            have = {r["user_id"]: r for r in read_jsonl(work)}
            write_profiles_gz(store, [r for u, r in have.items() if u not in first_round])
            say(f"2/3 profiles: {len(have):,} of {len(all_users):,} ({len(todo[i:i + args.chunk])} in "
                f"{time.perf_counter() - t:.0f}s)")

    done = [k for k, sample in zip(sizes, samples) if all(u in have for u in sample)]
    k = done[-1]
    say(f"3/3 evaluate: the largest completed round, {k:,} users")
    chosen = prior["warmstart"][tag]["chosen"]

    def round_file(users: int) -> Path:
        """The round's profiles (the stored 2,000 and the rounds' file merged) as one file for ``--profiles``."""
        path = ROOT / "runs" / "all_users" / f"{row}.round{users}.jsonl"
        write_jsonl_atomic(path, (have[u] for u in samples[sizes.index(users)]))
        return path

    def evaluate(users: int, profiles: dict[str, str]) -> dict[str, Any]:
        cfg = EvaluateConfig(dataset=ds.root, methods=["last_item", "successor_text", "successor_mean"], split="test",
                             max_users=users, seed=0, protocols=[EvalConfig(protocol="full")], profiles=profiles,
                             embedder=plan.warmstart.embedder, cache_dir=ROOT / ".cache" / "embeddings",
                             intervals=IntervalConfig(references=["last_item", "successor_text"]))
        run = EvaluationRun(cfg, say=lambda m: None)
        run.run_all()
        # the bound of a copying profiler: the text its warm start was taught, from each user's own test prompt
        run.evaluate_texts("taught_text", ct.taught_texts(ds, run.examples, plan.warmstarts[tag], chosen, "test"))
        return run.summary()

    def table(summary: dict[str, Any]) -> list[str]:
        md = ["| method | NDCG@10 | Recall@10 | − last_item [95% CI] | − successor_text [95% CI] |",
              "|---|---|---|---|---|"]
        for method, by in summary["results"].items():
            cells = []
            for ref in ("last_item", "successor_text"):
                c = summary["intervals"].get(method, {}).get("full", {}).get(ref, {}).get("ndcg@10")
                cells.append(interval_cell(c))
            md.append(f"| {method} | {by['full']['ndcg@10']:.4f} | {by['full']['recall@10']:.4f} | {cells[0]} | "
                      f"{cells[1]} |")
        return md

    summary = evaluate(k, {row: str(round_file(k))})
    md = [f"# BLUE `{args.variant}` on the seeded rounds of {SUBSET} test users (full ranking)\n"]
    if k < len(all_users):
        # every test user, without the LLM: what the profiles will be measured against once every round is done
        everyone = evaluate(len(all_users), {})
        md += [f"## The largest completed round: {k:,} of {len(all_users):,} users\n", *table(summary),
               f"\n## Every test user ({len(all_users):,}), rows without an LLM\n", *table(everyone)]
    else:
        everyone = summary
        md += [f"## Every test user ({k:,}): every round completed\n", *table(summary)]
    by_round = []
    if args.every_round:
        say(f"3/3 evaluate: the {len(done) - 1} smaller completed rounds")
        for users in done[:-1]:
            by_round.append(round_row(users, evaluate(users, {row: str(round_file(users))}), row))
        by_round.append(round_row(k, summary, row))
        md += ["\n## Round by round (each round holds the one before it)\n", *rounds_markdown(by_round, row)]
    seconds = round(time.perf_counter() - start, 1)
    command = " ".join(["python bench/all_users.py", *(argv if argv is not None else sys.argv[1:])])
    md.append(f"\n`{command}` ({seconds / 60:.1f} min this run). Profiles: `{store.relative_to(ROOT)}` (rounds past "
              f"the stored 2,000) with `{sample_file.relative_to(ROOT)}`; {len(have):,} of {len(all_users):,} users "
              f"profiled{' so far' if len(have) < len(all_users) else ''}, rounds of {args.step:,}.")
    write_json_atomic(args.out, {"benchmark": "all_users", "command": command, "seconds": seconds,
                                 "variant": args.variant, "users_evaluated": k, "users_profiled": len(have),
                                 "test_users": len(all_users), "completed_rounds": done,
                                 "results": summary["results"], "intervals": summary["intervals"],
                                 "every_user": {"results": everyone["results"], "intervals": everyone["intervals"]},
                                 "rounds": by_round})
    write_text_atomic(args.out.with_suffix(".md"), "\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
