"""The LLM-free successor baselines: last item + its top successors from other users' sequences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bluerec.data.dataset import PreparedDataset
from bluerec.data.transitions import TransitionConfig, load_transitions
from bluerec.eval.baselines import baseline_queries, successor_items, successor_texts
from support.prepared import write_interactions_and_splits

SEQUENCES = {
    "u1": ["A", "B", "C", "D", "E"],  # test target E, last history item D
    "u2": ["D", "F", "X", "Y", "Z"],  # counted (train part D, F, X): D→F (gap 1), D→X (gap 2), F→X
    "u3": ["C", "D", "B", "Y", "Z"],  # counted: C→D, D→B, C→B; B is in u1's history, so never a successor for u1
}
ITEMS = sorted({i for s in SEQUENCES.values() for i in s})


def _dataset(root: Path) -> PreparedDataset:
    root.mkdir()
    inter = {"user_id": [], "item_id": [], "timestamp": [], "rating": [], "seq": [], "split": []}
    splits: dict[str, dict[str, list]] = {s: {k: [] for k in ("user_id", "item_id", "timestamp", "rating", "seq",
                                                             "history", "history_len")} for s in ("train", "valid", "test")}
    for user, items in SEQUENCES.items():
        n = len(items)
        for seq, item in enumerate(items):
            split = "test" if seq == n - 1 else "valid" if seq == n - 2 else "train"
            for k, v in (("user_id", user), ("item_id", item), ("timestamp", seq), ("rating", 5.0), ("seq", seq),
                         ("split", split)):
                inter[k].append(v)
            if seq:
                for k, v in (("user_id", user), ("item_id", item), ("timestamp", seq), ("rating", 5.0), ("seq", seq),
                             ("history", items[:seq]), ("history_len", seq)):
                    splits[split][k].append(v)
    write_interactions_and_splits(root, pa.table(inter), splits)
    pq.write_table(pa.table({"item_id": ITEMS, "text": [f"text {i}" for i in ITEMS], "title": ITEMS,
                             "popularity": [1] * len(ITEMS)}), root / "items.parquet")
    return PreparedDataset(root)


def test_successors_exclude_history_and_never_see_targets(tmp_path):
    ds = _dataset(tmp_path / "ds")
    u1 = [ex for ex in ds.split("test") if ex.user_id == "u1"]
    table = load_transitions(ds, "test", TransitionConfig(window=2, decay=0.5), cache_dir=None)
    # D's successors: F (1.0), X (0.5), B (1.0, but in u1's history). E (u1's test target) is never counted.
    assert successor_items(ds, u1, table, 3) == [["D", "F", "X"]]
    assert successor_texts(ds, u1, table) == ["text D | text F"]


def test_successor_mean_pools_item_embeddings(tmp_path):
    ds = _dataset(tmp_path / "ds")
    u1 = [ex for ex in ds.split("test") if ex.user_id == "u1"]
    item_emb = np.eye(len(ITEMS), dtype=np.float32)
    q = baseline_queries("successor_mean", ds, u1, embedder=None, item_emb=item_emb,  # type: ignore[arg-type]
                         transitions=TransitionConfig(window=2, decay=0.5), successors=1, transitions_cache_dir=None)
    expected = np.zeros(len(ITEMS), dtype=np.float32)
    expected[[ITEMS.index("D"), ITEMS.index("F")]] = 0.5
    np.testing.assert_allclose(q.vectors[0], expected)
