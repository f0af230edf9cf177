"""Fixtures for the profiler tests: a tiny prepared dataset on disk and a tiny micro profiler."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bluerec.data.dataset import PreparedDataset
from support.prepared import write_interactions_and_splits

ITEMS = [
    # item_id, title, main_category, categories, store
    ("i1", "Maybelline Matte Lipstick Red", "All Beauty", ["Beauty", "Makeup", "Lips"], "Maybelline"),
    ("i2", "L&#39;Oreal Infallible Foundation Matte", "All Beauty", ["Beauty", "Makeup", "Face"], "L'Oreal"),
    ("i3", "Curly Hair Shampoo Sulfate Free", "All Beauty", ["Beauty", "Hair", "Shampoo"], "Curlsmith"),
    ("i4", "Pink Glitter Nail Polish", "All Beauty", ["Beauty", "Nails"], "Essie"),
    ("i5", "Maybelline Fit Me Foundation", "All Beauty", ["Beauty", "Makeup", "Face"], "Maybelline"),
    ("i6", "Argan Oil Hair Mask", "All Beauty", [], None),
]
# user -> chronological (item, rating, review_title, review_text)
SEQUENCES = {
    "u1": [("i1", 5.0, "Love it", "Great red colour, lasts all day."), ("i2", 4.0, None, "Nice finish"),
           ("i5", 2.0, "Meh", "Too orange for me."), ("i4", 5.0, None, None), ("i3", 4.0, None, None)],
    "u2": [("i3", 5.0, "Curls!", "My curls love it."), ("i6", 4.0, None, "Smells good"), ("i4", 3.0, None, None),
           ("i1", 4.0, None, None)],
    "u3": [("i4", None, None, None), ("i1", None, None, None), ("i2", None, None, None), ("i5", None, None, None)],
}


def write_tiny_dataset(root: Path, max_history: int = 50) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    texts = [f"{t} | {' > '.join(c) or m} | by {s or 'unknown'}" for _, t, m, c, s in ITEMS]
    pq.write_table(pa.table({
        "item_id": [i[0] for i in ITEMS], "text": [t.replace("&#39;", "'") for t in texts],
        "title": [i[1].replace("&#39;", "'") for i in ITEMS], "popularity": [3] * len(ITEMS),
        "main_category": [i[2] for i in ITEMS], "categories": [i[3] for i in ITEMS], "store": [i[4] for i in ITEMS],
    }), root / "items.parquet")
    inter = {k: [] for k in ("user_id", "item_id", "timestamp", "rating", "review_title", "review_text", "seq", "split")}
    splits = {s: {k: [] for k in ("user_id", "item_id", "timestamp", "rating", "seq", "history", "history_len")}
              for s in ("train", "valid", "test")}
    for user, seq in SEQUENCES.items():
        n = len(seq)
        for pos, (item, rating, rt, rx) in enumerate(seq):
            split = "test" if pos == n - 1 else "valid" if pos == n - 2 else "train"
            ts = 1_600_000_000_000 + pos * 86_400_000
            for k, v in zip(inter, (user, item, ts, rating, rt, rx, pos, split)):
                inter[k].append(v)
            if pos == 0:
                continue
            hist = [s[0] for s in seq[:pos]][-max_history:]
            for k, v in zip(splits[split], (user, item, ts, rating, pos, hist, pos)):
                splits[split][k].append(v)
    return write_interactions_and_splits(root, pa.table(inter), splits)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> PreparedDataset:
    return PreparedDataset(write_tiny_dataset(tmp_path_factory.mktemp("tiny_ds")))


TINY_MICRO = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                  intermediate_size=128, max_position_embeddings=512)


@pytest.fixture(scope="session")
def micro_dir(tmp_path_factory, tiny_dataset) -> Path:
    """A tiny (untrained) micro profiler saved with save_pretrained."""
    from bluerec.profiler.backends.micro import MicroModelConfig, build_micro_profiler, corpus_for

    out = tmp_path_factory.mktemp("micro") / "profiler"
    return build_micro_profiler(corpus_for(tiny_dataset), out, vocab_size=600,
                                model_config=MicroModelConfig(**TINY_MICRO))


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models run fastest on one thread, and on a busy 2-core machine two OpenMP threads can be
    several times slower than one (spin-waiting); restored after each test."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
