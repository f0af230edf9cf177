"""Benchmark (not a test): does the GRPO reward order profiles as the evaluation metric does?

    .venv/bin/python bench/reward_alignment.py     # amazon2014-beauty, the stored validation profiles (20 s)

GRPO climbs the reward, and a run is judged on NDCG@10 of held-out users. This takes profile sets of the *same*
validation users written by different checkpoints (the ``profiles-step<N>.jsonl`` files ``bluerec train`` writes at
each validation, with each user's target and its 0-based full-ranking rank), scores every profile with the training
reward's profile→item InfoNCE term under each negative sampler (``hard``: the K items nearest the profile;
``uniform``; ``popularity``), and compares each set with a reference set: mean reward against NDCG@10, MRR and mean
log rank, and, over the users whose profile changed, how often the reward's change has the sign of the rank's
change. A reward that rises while the ranks fall is one GRPO can climb in the wrong direction.

The defaults are the sets stored under ``bench/results/reward_alignment/`` (300 validation users, seed 0):
the reference is step 8 of ``newest_context_wide`` (validation NDCG@10 0.0585, the warm start's value; 1,838 of
2,000 test profiles of that run's step 4 were the warm start's word for word), against steps 4 and 8 of
``newest_context_wide_lr3e-4``. Reward settings (temperature, K, exclusions, seed) come from ``--config``. Writes
``bench/results/reward_alignment.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import gzip
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

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bluerec.config import load_config  # noqa: E402
from bluerec.data.dataset import PreparedDataset  # noqa: E402
from bluerec.embed import Embedder  # noqa: E402
from bluerec.io import write_json_atomic, write_text_atomic  # noqa: E402
from bluerec.rewards.embedding import InfoNCEReward, ProfileEmbeddingCache  # noqa: E402
from bluerec.train.config import BlueTrainConfig  # noqa: E402
from bluerec.train.trainer import _item_embeddings  # noqa: E402

STORED = ROOT / "bench" / "results" / "reward_alignment"
SAMPLERS = ("hard", "uniform", "popularity")
console = Console(width=140)


def read_profiles(path: Path) -> dict[str, dict[str, Any]]:
    """``user_id → {profile, target_item, rank}`` from a validation profile file (``.jsonl`` or ``.jsonl.gz``)."""
    opener = gzip.open if path.suffix == ".gz" else open
    rows: dict[str, dict[str, Any]] = {}
    with opener(path, "rt", encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            missing = [k for k in ("user_id", "profile", "target_item", "rank") if k not in row]
            if missing:
                raise SystemExit(f"{path}:{line_no}: missing field(s) {missing}")
            rows[str(row["user_id"])] = row
    return rows


def rank_metrics(ranks: np.ndarray) -> dict[str, float]:
    """NDCG@10, MRR and mean log rank from 0-based full-ranking ranks (one relevant item per user)."""
    r1 = ranks + 1.0
    return {"ndcg@10": float(np.where(r1 <= 10, 1.0 / np.log2(r1 + 1.0), 0.0).mean()),
            "mrr": float((1.0 / r1).mean()), "mean_log_rank": float(np.log(r1).mean())}


def agreement(reward_delta: np.ndarray, rank_delta: np.ndarray) -> tuple[float, float, int]:
    """Over users whose rank moved: the share where the reward moved the right way (up when the rank fell), and the
    correlation of the reward's change with minus the change of log rank."""
    moved = rank_delta != 0
    if moved.sum() < 2:
        return float("nan"), float("nan"), int(moved.sum())
    right = float(np.mean(np.sign(reward_delta[moved]) == -np.sign(rank_delta[moved])))
    corr = float(np.corrcoef(reward_delta[moved], -rank_delta[moved])[0, 1])
    return right, corr, int(moved.sum())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=Path, default=ROOT / "configs/train/beauty_smollm2_newest_context_wide_lr3e-4.yaml")
    p.add_argument("--dataset", type=Path, default=ROOT / "data/prepared/amazon2014-beauty")
    p.add_argument("--reference", type=Path, default=STORED / "newest_context_wide.step8.valid300.jsonl.gz")
    p.add_argument("--profiles", nargs="+", metavar="NAME=PATH",
                   default=[f"lr3e-4 step {s}={STORED}/newest_context_wide_lr3e-4.step{s}.valid300.jsonl.gz"
                            for s in (4, 8)])
    p.add_argument("--num-threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=ROOT / "bench/results/reward_alignment.json")
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.num_threads)
    if not (args.dataset / "items.parquet").exists():
        raise SystemExit(f"{args.dataset}: not a prepared dataset (bench/blue_beauty.py prepares amazon2014-beauty)")
    t0 = time.perf_counter()
    # The item cache of bench/blue_beauty.py: its item embeddings are reused, not computed again.
    cfg = load_config(BlueTrainConfig, args.config, {"dataset": str(args.dataset),
                                                     "item_cache_dir": str(ROOT / ".cache" / "embeddings")})
    dataset = PreparedDataset(cfg.dataset)
    embedder = Embedder(cfg.embedder)
    item_emb = _item_embeddings(embedder, dataset, cfg.item_cache_dir)
    items = dataset.items
    popularity = np.asarray(items.popularity, dtype=np.float64)
    cache = ProfileEmbeddingCache(embedder)  # one set's profiles are embedded once for the three samplers
    profile_to_item = {s: InfoNCEReward(cache, item_emb, items.index,
                                        cfg.rewards.infonce.model_copy(update={"negatives": s}),
                                        popularity=popularity).profile_to_item
                       for s in SAMPLERS}

    ref = read_profiles(args.reference)
    sets = {"reference": ref}
    for spec in args.profiles:
        name, sep, path = spec.partition("=")
        if not sep:
            raise SystemExit(f"--profiles {spec!r}: expected NAME=PATH")
        sets[name] = read_profiles(Path(path))
    users = sorted(set.intersection(*(set(s) for s in sets.values())))
    for name, s in sets.items():
        if len(s) != len(users):
            raise SystemExit(f"{name}: {len(s)} users, {len(users)} shared with every other set: not the same users")
        bad = [u for u in users if s[u]["target_item"] != ref[u]["target_item"]]
        if bad:
            raise SystemExit(f"{name}: user {bad[0]} has target {s[bad[0]]['target_item']}, the reference "
                             f"{ref[bad[0]]['target_item']}: not the same validation rows")
    valid_rows = {str(ex.user_id): ex for ex in dataset.split("valid")}
    history = [[str(i) for i in dataset.full_history(valid_rows[u])] for u in users]
    targets = [ref[u]["target_item"] for u in users]

    def score(s: dict[str, dict[str, Any]], sampler: str) -> np.ndarray:
        # The profile→item term, the one the negatives decide; a row's value does not depend on the other rows
        # (sampled negatives are seeded by user and target, the same for every set; hard ones by the profile).
        return np.array(profile_to_item[sampler](completions=[s[u]["profile"] for u in users], target_item=targets,
                                                 user_id=users, history_items=history))

    results: dict[str, Any] = {}
    ref_ranks = np.array([float(ref[u]["rank"]) for u in users])
    ref_scores = {sm: score(ref, sm) for sm in SAMPLERS}
    for name, s in sets.items():
        ranks = np.array([float(s[u]["rank"]) for u in users])
        changed = np.array([s[u]["profile"] != ref[u]["profile"] for u in users])
        row: dict[str, Any] = {"users": len(users), "changed_profiles": int(changed.sum()), **rank_metrics(ranks)}
        dlog = np.log(ranks + 1.0) - np.log(ref_ranks + 1.0)
        for sm in SAMPLERS:
            sc = ref_scores[sm] if name == "reference" else score(s, sm)
            d = sc - ref_scores[sm]
            right, corr, n_moved = agreement(d[changed], dlog[changed])
            row[sm] = {"mean_reward": float(sc.mean()), "delta_on_changed": float(d[changed].mean()) if changed.any()
                       else 0.0, "sign_right": right, "corr": corr, "users_moved": n_moved}
        results[name] = row

    table = Table(title=f"profile→item reward vs rank, {len(users)} validation users ({args.dataset.name})")
    for col in ["set", "changed", "NDCG@10", "MRR", "mean log rank",
                *[f"{sm}: reward (Δ changed)" for sm in SAMPLERS], *[f"{sm}: sign right / corr" for sm in SAMPLERS]]:
        table.add_column(col, justify="left" if col == "set" else "right")
    md = ["| set | profiles changed | NDCG@10 | MRR | mean log rank | "
          + " | ".join(f"`{sm}` reward (Δ on changed)" for sm in SAMPLERS) + " | "
          + " | ".join(f"`{sm}` sign right / corr" for sm in SAMPLERS) + " |",
          "|" + "---|" * (5 + 2 * len(SAMPLERS))]
    for name, r in results.items():
        cells = [name, str(r["changed_profiles"]), f"{r['ndcg@10']:.4f}", f"{r['mrr']:.4f}",
                 f"{r['mean_log_rank']:.3f}",
                 *[f"{r[sm]['mean_reward']:.3f} ({r[sm]['delta_on_changed']:+.3f})" for sm in SAMPLERS],
                 *[f"{r[sm]['sign_right']:.0%} / {r[sm]['corr']:.2f}" if r[sm]["users_moved"] > 1 else "—"
                   for sm in SAMPLERS]]
        table.add_row(*cells)
        md.append("| " + " | ".join(cells) + " |")
    console.print(table)
    seconds = time.perf_counter() - t0
    command = "python bench/reward_alignment.py " + " ".join(sys.argv[1:])
    write_json_atomic(args.out, {"command": command.strip(), "config": str(args.config.relative_to(ROOT))
                                 if args.config.is_relative_to(ROOT) else str(args.config),
                                 "reference": args.reference.name, "sets": results, "seconds": round(seconds, 1),
                                 "machine": {"python": platform.python_version(), "threads": args.num_threads}})
    write_text_atomic(args.out.with_suffix(".md"), f"`{command.strip()}` ({seconds / 60:.1f} min)\n\n"
                      + "\n".join(md) + "\n")
    console.print(f"wrote {args.out} ({seconds:.0f}s)")


if __name__ == "__main__":
    main()
