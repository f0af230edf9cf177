"""Write hand-built tables as a prepared-dataset folder that ``PreparedDataset`` loads (for test fixtures)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bluerec.data.schema import FORMAT_VERSION

SPLIT_SCHEMA = pa.schema([
    ("user_id", pa.string()), ("item_id", pa.string()), ("timestamp", pa.int64()), ("rating", pa.float64()),
    ("seq", pa.int64()), ("history", pa.list_(pa.string())), ("history_len", pa.int64())])


def write_interactions_and_splits(root: Path, interactions: pa.Table, splits: dict[str, dict[str, list[Any]]]) -> Path:
    """interactions.parquet, train/valid/test.parquet (split schema of ``bluerec.data.schema``) and a manifest."""
    pq.write_table(interactions, root / "interactions.parquet")
    for name, cols in splits.items():
        pq.write_table(pa.table(cols, schema=SPLIT_SCHEMA), root / f"{name}.parquet")
    (root / "manifest.json").write_text(json.dumps({"format_version": FORMAT_VERSION, "counts": {}}))
    return root
