"""Check (not a test): do the baseline rewards tell a relevant profile from an unrelated one on real users?

    nice .venv/bin/python bench/baseline_rewards.py --dataset data/prepared/beauty2014      # 24 users, ~3 min
    .venv/bin/python bench/baseline_rewards.py --dataset <prepared> --users 8 --out /tmp/br   # smoke run

For seeded train users of a prepared dataset, three hand-written profiles each — ``oracle`` (names the true next
item), ``history`` (lists the user's last three purchases), ``unrelated`` (fishing and car parts) — are scored by
the registry's baseline rewards as ``bluerec train`` builds them: ``rlpf`` and ``rlaif`` with the frozen reader
(``--reader``, SmolLM2-135M-Instruct by default; ``rlaif`` also with every digit scored separately, to time
``SingleTokenOptionScorer`` against ``HFOptionScorer`` on the same judgements), ``langptune`` (MRR and NDCG@10) with
the default MiniLM retriever over the whole catalogue. A useful reward ranks ``oracle > history > unrelated``; the
table gives the mean reward per profile and for how many users ``history`` beats ``unrelated``. Writes
``bench/results/baseline_rewards.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bluerec.io import write_json_atomic, write_text_atomic  # noqa: E402

console = Console()
UNRELATED = "This person enjoys fishing trips, camping gear and car engines."


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", type=Path, default=ROOT / "data" / "prepared" / "beauty2014")
    ap.add_argument("--users", type=int, default=24)
    ap.add_argument("--reader", default="smollm2-135m-instruct")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--item-cache", type=Path, default=ROOT / ".cache" / "item-embeddings")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    from bluerec.data.dataset import PreparedDataset
    from bluerec.embed import Embedder, embed_items
    from bluerec.profiler.config import ProfilerConfig
    from bluerec.profiler.loader import load_profiler
    from bluerec.profiler.profile import latest_per_user
    from bluerec.rewards.langptune import LangPTuneRewardConfig
    from bluerec.rewards.multiple_choice import HFOptionScorer
    from bluerec.rewards.registry import RewardContext, RowInfo, get_reward
    from bluerec.rewards.rlaif import RLAIFReward, RLAIFRewardConfig
    from bluerec.rewards.rlpf import RLPFRewardConfig

    ds = PreparedDataset(args.dataset)
    items = ds.items
    rows_all = latest_per_user(ds.split("train"))
    pick = np.sort(np.random.default_rng([args.seed, 5]).choice(len(rows_all), size=min(args.users, len(rows_all)),
                                                                replace=False))
    exs = [rows_all[i] for i in pick]
    rows = [RowInfo(ds, ex, items.index[ex.item_id], [str(i) for i in ds.full_history(ex)]) for ex in exs]

    def titles(ids):
        return [items.titles[items.index[i]] or items.texts[items.index[i]] for i in ids if i in items.index]

    profiles = {
        "oracle": [f"This shopper wants {items.titles[r.target_row] or items.texts[r.target_row]}." for r in rows],
        "history": ["This shopper bought " + "; ".join(titles(r.history[-3:])) + "." for r in rows],
        "unrelated": [UNRELATED] * len(rows),
    }
    t = time.perf_counter()
    reader = load_profiler(ProfilerConfig(model=args.reader, dtype="float32", device="cpu"))
    embedder = Embedder()
    emb = np.asarray(embed_items(embedder, items.ids, items.texts, cache_dir=args.item_cache), dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    setup_s = time.perf_counter() - t
    ctx = RewardContext(encoder=embedder, item_emb=emb, dataset=ds, reader=(reader.model, reader.tokenizer, False),
                        reader_batch_size=16, reader_max_length=512)
    columns = {"target_item": [ex.item_id for ex in exs], "history_items": [r.history for r in rows]}
    for name, cfg in (("rlpf", RLPFRewardConfig(max_item_chars=60)), ("rlaif", RLAIFRewardConfig(max_history_items=5))):
        for column, make in get_reward(name).add_columns(cfg).items():
            columns[column] = [make(r) for r in rows]

    runs = {
        "rlpf": get_reward("rlpf").build(RLPFRewardConfig(max_item_chars=60), ctx),
        "langptune (mrr)": get_reward("langptune").build(LangPTuneRewardConfig(metric="mrr"), ctx),
        "langptune (ndcg@10)": get_reward("langptune").build(LangPTuneRewardConfig(metric="ndcg", k=10), ctx),
        "rlaif": get_reward("rlaif").build(RLAIFRewardConfig(max_history_items=5), ctx),
        "rlaif, each digit scored": RLAIFReward(HFOptionScorer(reader.model, reader.tokenizer, batch_size=16,
                                                               max_length=512, length_normalise=False),
                                                RLAIFRewardConfig(max_history_items=5)),
    }
    results = {}
    for label, reward in runs.items():
        t = time.perf_counter()
        out = {k: np.asarray(reward(completions=p, **columns)) for k, p in profiles.items()}
        seconds = time.perf_counter() - t
        results[label] = {
            **{f"mean_{k}": float(v.mean()) for k, v in out.items()},
            "history_beats_unrelated": int((out["history"] > out["unrelated"]).sum()),
            "oracle_beats_history": int((out["oracle"] > out["history"]).sum()),
            "nonzero_history": int((out["history"] != 0).sum()),
            "seconds": round(seconds, 1),
            "rewards": {k: v.round(6).tolist() for k, v in out.items()},
        }
    a, b = results["rlaif"]["rewards"], results["rlaif, each digit scored"]["rewards"]
    max_diff = max(float(np.abs(np.subtract(a[k], b[k])).max()) for k in a)

    table = Table(title=f"baseline rewards on {len(rows)} train users of {args.dataset.name}")
    for col in ("reward", "oracle", "history", "unrelated", "history > unrelated", "oracle > history", "seconds"):
        table.add_column(col, justify="left" if col == "reward" else "right")
    lines = ["| reward | oracle | history | unrelated | history > unrelated | oracle > history | seconds |",
             "|---|---|---|---|---|---|---|"]
    for label, r in results.items():
        cells = [label, f"{r['mean_oracle']:.4f}", f"{r['mean_history']:.4f}", f"{r['mean_unrelated']:.4f}",
                 f"{r['history_beats_unrelated']}/{len(rows)}", f"{r['oracle_beats_history']}/{len(rows)}",
                 f"{r['seconds']:.1f}"]
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    console.print(table)
    console.print(f"rlaif one pass vs each digit scored: max |diff| {max_diff:.2e}; setup {setup_s:.0f}s")
    summary = {"dataset": str(args.dataset), "users": len(rows), "reader": args.reader, "embedder": "minilm",
               "seed": args.seed, "setup_seconds": round(setup_s, 1), "rlaif_fast_vs_slow_max_abs_diff": max_diff,
               "command": " ".join(["python", "bench/baseline_rewards.py", *(argv if argv is not None else sys.argv[1:])]),
               "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "baseline_rewards.json", summary)
    write_text_atomic(args.out / "baseline_rewards.md", "\n".join(lines) + f"\n\nrlaif one pass vs each digit: "
                      f"max |diff| {max_diff:.2e}\n")
    return summary


if __name__ == "__main__":
    main()
