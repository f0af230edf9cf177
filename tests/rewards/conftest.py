"""A tiny prepared dataset for the rewards' column builders and registry tests (titles differ from texts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from support.prepared import write_interactions_and_splits

TITLES = ["green tea", "blue mug", "desk lamp", "red shoe", "wool hat"]


def write_small_dataset(root: Path) -> Path:
    """Five items, three users of four interactions each (two train rows, one valid, one test per user)."""
    root.mkdir(parents=True, exist_ok=True)
    ids = [f"i{k}" for k in range(len(TITLES))]
    pq.write_table(pa.table({"item_id": ids, "text": [f"{t} (item text)" for t in TITLES], "title": TITLES,
                             "popularity": [3, 2, 2, 1, 1]}), root / "items.parquet")
    seqs = {"u0": ["i0", "i1", "i2", "i3"], "u1": ["i1", "i2", "i0", "i4"], "u2": ["i3", "i4", "i1", "i0"]}
    inter: dict[str, list[Any]] = {k: [] for k in ("user_id", "item_id", "timestamp", "rating", "seq", "split")}
    cols = ("user_id", "item_id", "timestamp", "rating", "seq", "history", "history_len")
    splits: dict[str, dict[str, list[Any]]] = {s: {k: [] for k in cols} for s in ("train", "valid", "test")}
    for user, seq in seqs.items():
        for pos, item in enumerate(seq):
            split = "test" if pos == 3 else "valid" if pos == 2 else "train"
            ts = 1_600_000_000 + pos * 86_400
            for k, v in zip(inter, (user, item, ts, None, pos, split)):
                inter[k].append(v)
            if pos:
                for k, v in zip(cols, (user, item, ts, None, pos, seq[:pos], pos)):
                    splits[split][k].append(v)
    interactions = pa.table(inter, schema=pa.schema([
        ("user_id", pa.string()), ("item_id", pa.string()), ("timestamp", pa.int64()), ("rating", pa.float64()),
        ("seq", pa.int64()), ("split", pa.string())]))
    return write_interactions_and_splits(root, interactions, splits)


@pytest.fixture(scope="session")
def word_dataset_small(tmp_path_factory) -> Path:
    return write_small_dataset(tmp_path_factory.mktemp("small_ds"))
