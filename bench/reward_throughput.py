"""Benchmark (not a test): throughput of BLUE's embedding reward, as training computes it vs the naive way.

    nice .venv/bin/python bench/reward_throughput.py            # 1,000 completions, amazon2014-beauty titles
    .venv/bin/python bench/reward_throughput.py --completions 200 --naive 20 --out /tmp/rt.json   # smoke run

Both sides score the same profiles (completions) of seeded amazon2014-beauty users against their true next item
with the default MiniLM embedder (``../shared/data``; with ``--synthetic`` or without the shared data, the
project's synthetic Amazon-schema data):

* **bluerec** - :class:`bluerec.rewards.InfoNCEReward` as ``bluerec train`` uses it: the catalogue is embedded
  once up front (timed separately: a one-off cost per training run, cached on disk in training), and TRL's
  reward calls get ``--batch`` completions at a time (``--generations`` per user); both InfoNCE directions
  (profile->item with 32 uniform negatives, item->profile against the other users of the batch) from one encoder
  pass, as the two TRL reward functions share it;
* **naive** - one completion at a time, re-encoding the items each call: the profile and its candidate items
  (target + the same number of negatives) are embedded, then profile->item InfoNCE only (a single completion has
  no other users for item->profile). It is timed on a seeded subset of ``--naive`` completions and its
  throughput extrapolated (it is too slow to run all of them; the output says so).

The catalogue is the items of the sampled users' recent histories and targets, filled up with seeded random items
to ``--catalogue`` items, so the one-off embedding stays short here; the per-completion work does not depend on
the catalogue size. Writes ``bench/results/reward_throughput.json`` and ``.md``.
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
import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bluerec.embed import Embedder  # noqa: E402
from bluerec.io import write_json_atomic, write_text_atomic  # noqa: E402
from bluerec.rewards import InfoNCEReward, InfoNCERewardConfig  # noqa: E402
from bluerec.rewards.embedding import profile_to_item_log_probs  # noqa: E402

RESULTS = ROOT / "bench" / "results"
BEAUTY = ROOT.parent / "shared" / "data" / "seqrec_benchmark_amazon" / "amazon2014-beauty"
console = Console()

# Profile phrasings: G completions of one user differ as sampled profiles do.
TEMPLATES = [
    "This user buys beauty products such as {0}; lately {1}.",
    "Shopper interested in {1}. Earlier purchases: {0}.",
    "Likes {0}. Recently looked for {1} and similar items.",
    "Profile: regular buyer of {1}; also {0}.",
]


def load_beauty(n_users: int, seed: int) -> tuple[dict[str, str], list[tuple[str, list[str], str]]]:
    """Item id -> title, and ``n_users`` seeded users as (user id, history ids oldest first, target id)."""
    with gzip.open(BEAUTY / "item2title.jsonl.gz", "rt", encoding="utf-8") as fh:
        titles = {str(r["item_id"]): str(r["title"]) for r in map(json.loads, fh)}
    with gzip.open(BEAUTY / "user2item.jsonl.gz", "rt", encoding="utf-8") as fh:
        users = [(str(r["user_id"]), [str(i) for i in r["item_ids"]]) for r in map(json.loads, fh)]
    rng = np.random.default_rng(seed)
    picked = [users[i] for i in np.sort(rng.choice(len(users), size=n_users, replace=False))]
    return titles, [(u, items[:-1], items[-1]) for u, items in picked if len(items) >= 2]


def load_synthetic(n_users: int, seed: int, work: Path) -> tuple[dict[str, str], list[tuple[str, list[str], str]]]:
    from bluerec.config import parse_config
    from bluerec.data.config import PrepareConfig
    from bluerec.data.dataset import PreparedDataset
    from bluerec.data.prepare import prepare_dataset
    from bluerec.data.synth import SynthConfig, write_synth

    synth = write_synth(parse_config(SynthConfig, {"domain": "amazon", "n_users": max(n_users * 2, 300),
                                                    "n_items": 400, "n_interests": 12, "seed": seed}), work / "raw")
    prepare_dataset(PrepareConfig(source=synth.source("amazon"), k_core=3), work / "data")
    ds = PreparedDataset(work / "data")
    titles = dict(zip(ds.items.ids, ds.items.titles))
    examples = ds.split("test")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(examples), size=min(n_users, len(examples)), replace=False))
    return titles, [(examples[i].user_id, list(examples[i].history), examples[i].item_id) for i in pick]


def completions_for(users: list[tuple[str, list[str], str]], titles: dict[str, str], g: int) -> list[dict[str, Any]]:
    rows = []
    for u, hist, target in users:
        recent = [titles[i] for i in hist[-3:]]
        for j in range(g):
            older, newer = "; ".join(recent[:-1][-2:]) or recent[-1], recent[-1]
            rows.append({"user_id": u, "target_item": target, "history_items": hist,
                         "completion": TEMPLATES[j % len(TEMPLATES)].format(older, newer)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--completions", type=int, default=1000)
    ap.add_argument("--generations", type=int, default=4, help="completions per user (GRPO group)")
    ap.add_argument("--batch", type=int, default=64, help="completions per reward call (TRL's generation batch)")
    ap.add_argument("--naive", type=int, default=20, help="seeded subset of completions timed the naive way")
    ap.add_argument("--negatives", type=int, default=32)
    ap.add_argument("--catalogue", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--synthetic", action="store_true", help="use the synthetic dataset even if shared data exists")
    ap.add_argument("--out", type=Path, default=RESULTS / "reward_throughput.json")
    args = ap.parse_args()
    wall = time.perf_counter()
    n_users = -(-args.completions // args.generations)
    if not args.synthetic and (BEAUTY / "item2title.jsonl.gz").is_file():
        source = "amazon2014-beauty (../shared/data)"
        titles, users = load_beauty(n_users, args.seed)
    else:
        import tempfile

        source = "synthetic Amazon-schema data (bluerec data synth)"
        with tempfile.TemporaryDirectory(prefix="bluerec_rt_") as tmp:
            titles, users = load_synthetic(n_users, args.seed, Path(tmp))
    rows = completions_for(users, titles, args.generations)[: args.completions]

    # Catalogue: items the sampled users touch (recent history, target), then seeded random items.
    rng = np.random.default_rng(args.seed)
    needed = list(dict.fromkeys(i for _, h, t in users for i in [*h[-3:], t]))
    others = [i for i in titles if i not in set(needed)]
    fill = max(0, args.catalogue - len(needed))
    extra = [others[i] for i in np.sort(rng.choice(len(others), size=min(fill, len(others)), replace=False))]
    item_ids = needed + extra
    index = {item: i for i, item in enumerate(item_ids)}
    for r in rows:  # the reward excludes history items from negatives; keep the ones in the catalogue
        r["history_items"] = [i for i in r["history_items"] if i in index]
    item_texts = [titles[i] for i in item_ids]
    console.print(f"[bold]reward_throughput[/]: {len(rows):,} completions of {len(users):,} users, "
                  f"{len(item_ids):,} items, {source}; {torch.get_num_threads()} torch threads")

    start = time.perf_counter()
    embedder = Embedder()
    embedder.encode_queries(["warm up"])
    load_s = time.perf_counter() - start

    # ---- bluerec: items once, completions batched, both directions
    start = time.perf_counter()
    item_emb = embedder.encode_documents(item_texts)
    items_s = time.perf_counter() - start
    cfg = InfoNCERewardConfig(num_negatives=args.negatives, seed=args.seed)
    reward = InfoNCEReward(embedder, item_emb, index, cfg)
    p2i, i2p = reward.components()
    fast: list[float] = []
    start = time.perf_counter()
    for b in range(0, len(rows), args.batch):
        batch = rows[b:b + args.batch]
        cols = {"target_item": [r["target_item"] for r in batch], "user_id": [r["user_id"] for r in batch],
                "history_items": [r["history_items"] for r in batch]}
        comps = [r["completion"] for r in batch]
        fast.extend(p2i(comps, **cols))
        i2p(comps, **cols)  # TRL calls every reward function; the second one reuses the batch's embeddings
    fast_s = time.perf_counter() - start

    # ---- naive: one completion per call, its candidate items re-encoded every call
    pick = np.sort(np.random.default_rng(args.seed + 1).choice(len(rows), size=min(args.naive, len(rows)), replace=False))
    naive: list[float] = []
    naive_negs: list[list[str]] = []
    start = time.perf_counter()
    for j in pick:
        r = rows[j]
        excl = {index[r["target_item"]], *(index[i] for i in r["history_items"])}
        nrng = np.random.default_rng([args.seed, int(j)])
        pool = np.setdiff1d(np.arange(len(item_ids)), np.fromiter(excl, dtype=np.int64))
        negs = nrng.choice(pool, size=min(args.negatives, len(pool)), replace=False)
        cand = [index[r["target_item"]], *negs.tolist()]
        naive_negs.append([item_ids[c] for c in negs.tolist()])
        cand_emb = embedder.encode_documents([item_texts[c] for c in cand])  # re-encoded on every call
        prof = embedder.encode_queries([r["completion"]])
        lp, _ = profile_to_item_log_probs(prof, cand_emb, np.array([0]), np.arange(1, len(cand))[None, :],
                                          cfg.temperature)
        naive.append(float(lp[0]))
    naive_s = time.perf_counter() - start
    # Same quantity on both sides: bluerec's profile->item reward with the naive side's negatives (not timed).
    check = reward.compute([rows[j]["completion"] for j in pick], target_item=[rows[j]["target_item"] for j in pick],
                           user_id=[rows[j]["user_id"] for j in pick], negatives=naive_negs)
    max_diff = float(np.max(np.abs(check.profile_to_item - np.asarray(naive))))
    console.print(f"  profile->item rewards, bluerec vs naive on the same negatives: max |diff| {max_diff:.2e}")

    fast_rate = len(rows) / fast_s
    naive_rate = len(pick) / naive_s
    ratio = fast_rate / naive_rate
    amortised = len(rows) / (fast_s + items_s)
    summary = {
        "benchmark": "reward_throughput",
        "command": "nice .venv/bin/python bench/reward_throughput.py " + " ".join(sys.argv[1:]),
        "data": source, "completions": len(rows), "users": len(users), "catalogue_items": len(item_ids),
        "embedder": embedder.model_id, "negatives": args.negatives, "batch": args.batch,
        "generations": args.generations,
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "load_average_1m_at_end": round(os.getloadavg()[0], 2)},
        "model_load_s": round(load_s, 1),
        "bluerec": {"completions": len(rows), "seconds": round(fast_s, 2), "per_s": round(fast_rate, 2),
                    "item_embedding_once_s": round(items_s, 1),
                    "per_s_including_item_embedding": round(amortised, 2)},
        "naive": {"completions_timed": int(len(pick)), "seconds": round(naive_s, 2), "per_s": round(naive_rate, 3),
                  "extrapolated_s_for_all": round(len(rows) / naive_rate, 1),
                  "note": f"timed on a seeded subset of {len(pick)} of the {len(rows)} completions; "
                          "the time for all is extrapolated"},
        "same_negatives_max_abs_diff": max_diff,
        "speedup": round(ratio, 1), "speedup_including_item_embedding": round(amortised / naive_rate, 1),
        "target": 20.0, "met": bool(ratio >= 20.0),
        "wall_s": round(time.perf_counter() - wall, 1),
    }
    write_json_atomic(args.out, summary)
    write_text_atomic(args.out.with_suffix(".md"), markdown(summary))
    table = Table(title=f"InfoNCE reward, {len(rows):,} completions ({source})")
    for col in ("method", "completions timed", "seconds", "completions/s", f"s for {len(rows):,}", "x naive"):
        table.add_column(col, justify="left" if col == "method" else "right")
    table.add_row("naive (1 per call, items re-encoded)", f"{len(pick):,}", f"{naive_s:.1f}", f"{naive_rate:.2f}",
                  f"{len(rows) / naive_rate:,.0f}*", "1.0")
    table.add_row(f"bluerec (batches of {args.batch}, items cached)", f"{len(rows):,}", f"{fast_s:.1f}",
                  f"{fast_rate:.1f}", f"{fast_s:,.0f}", f"{ratio:.1f}")
    table.add_row("bluerec incl. one-off item embedding", f"{len(rows):,}", f"{fast_s + items_s:.1f}",
                  f"{amortised:.1f}", f"{fast_s + items_s:,.0f}", f"{amortised / naive_rate:.1f}")
    console.print(table)
    console.print(f"* extrapolated from {len(pick)} seeded completions. Target >= 20x: "
                  f"{'met' if ratio >= 20 else 'NOT met'} ({ratio:.1f}x). Wall time {summary['wall_s']:.0f}s. {args.out}")


def markdown(s: dict[str, Any]) -> str:
    b, n = s["bluerec"], s["naive"]
    return "\n".join([
        f"InfoNCE reward (both directions for bluerec), {s['completions']:,} completions of {s['users']:,} users, "
        f"{s['catalogue_items']:,}-item catalogue, {s['data']}, `{s['embedder']}`, {s['negatives']} negatives. "
        f"`{s['command']}` - wall time {s['wall_s'] / 60:.1f} min on {s['machine']['cpu_count']} cores "
        f"(load average {s['machine']['load_average_1m_at_end']}).",
        "",
        f"| method | completions timed | seconds | completions / s | s for {s['completions']:,} | × naive |",
        "|---|---:|---:|---:|---:|---:|",
        f"| naive: one completion per call, candidate items re-encoded | {n['completions_timed']:,} | {n['seconds']:.1f} | "
        f"{n['per_s']:.2f} | {n['extrapolated_s_for_all']:,.0f}* | 1.0 |",
        f"| bluerec: batches of {s['batch']}, item embeddings cached | {b['completions']:,} | {b['seconds']:.1f} | "
        f"{b['per_s']:.1f} | {b['seconds']:,.0f} | {s['speedup']:.1f} |",
        f"| bluerec including the one-off item embedding ({b['item_embedding_once_s']:.0f} s) | {b['completions']:,} | "
        f"{b['seconds'] + b['item_embedding_once_s']:.1f} | {b['per_s_including_item_embedding']:.1f} | "
        f"{b['seconds'] + b['item_embedding_once_s']:,.0f} | {s['speedup_including_item_embedding']:.1f} |",
        "",
        f"\\* {n['note']}. Target >= 20x: {'met' if s['met'] else 'not met'} ({s['speedup']:.1f}x).",
        "",
    ])


if __name__ == "__main__":
    main()
