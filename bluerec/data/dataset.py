"""Read a prepared-dataset folder (written by ``bluerec data prepare``); every later command uses this."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from bluerec.data.errors import DataError
from bluerec.data.schema import FORMAT_VERSION, SPLITS


@dataclass(frozen=True)
class Example:
    """One leave-last-out example: predict ``item_id`` from the items before it."""

    user_id: str
    item_id: str
    timestamp: int
    rating: float | None
    seq: int
    history: tuple[str, ...]  # last N item ids, oldest first
    history_len: int  # untruncated


@dataclass(frozen=True)
class ItemTable:
    ids: list[str]
    texts: list[str]
    titles: list[str]
    popularity: np.ndarray  # interaction counts over train+valid (never test)

    @cached_property
    def index(self) -> dict[str, int]:
        return {item_id: i for i, item_id in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)


def _read_table(path: Path, columns: list[str] | None = None, *, schema_only: bool = False) -> Any:
    """``pq.read_table`` (or ``read_schema``), but a missing or damaged file is a :class:`DataError` naming it."""
    import pyarrow as pa

    if not path.is_file():
        raise DataError(path, None, None, "missing from the prepared dataset; prepare it again")
    try:
        return pq.read_schema(path) if schema_only else pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as err:
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise DataError(path, None, None, f"unreadable Parquet file ({first}); prepare the dataset again") from None


class PreparedDataset:
    """A prepared dataset on disk. Loading is lazy and cached per table."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        manifest_path = self.root / "manifest.json"
        if not self.root.is_dir():
            raise DataError(self.root, None, None, "prepared-dataset folder not found; run `bluerec data prepare`")
        if not manifest_path.exists():
            raise DataError(manifest_path, None, None, "not a prepared dataset (no manifest.json); run `bluerec data prepare`")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError) as err:
            raise DataError(manifest_path, None, None,
                            f"not valid JSON ({err}); prepare the dataset again") from None
        if not isinstance(manifest, dict):
            raise DataError(manifest_path, None, None, "not a JSON object; prepare the dataset again")
        self.manifest: dict[str, Any] = manifest
        version = self.manifest.get("format_version")
        if version != FORMAT_VERSION:
            raise DataError(manifest_path, None, "format_version", f"expected {FORMAT_VERSION}, got {version!r}")

    def check(self) -> "PreparedDataset":
        """Every table is present and its Parquet footer readable (cheap: no rows are read), so a damaged
        dataset is reported before any work rather than half-way through it."""
        for name in ("items", "interactions", *SPLITS):
            _read_table(self.root / f"{name}.parquet", schema_only=True)
        return self

    @cached_property
    def items(self) -> ItemTable:
        table = _read_table(self.root / "items.parquet", columns=["item_id", "text", "title", "popularity"])
        cols = table.to_pydict()
        return ItemTable(
            ids=cols["item_id"],
            texts=cols["text"],
            titles=[t or "" for t in cols["title"]],
            popularity=np.asarray(cols["popularity"], dtype=np.int64),
        )

    def split(self, name: str) -> list[Example]:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; allowed: {list(SPLITS)}")
        return self._split(name)

    @cached_property
    def _split_cache(self) -> dict[str, list[Example]]:
        return {}

    def _split(self, name: str) -> list[Example]:
        if name not in self._split_cache:
            cols = _read_table(self.root / f"{name}.parquet").to_pydict()
            self._split_cache[name] = [
                Example(u, i, int(t), r, int(s), tuple(h), int(hl))
                for u, i, t, r, s, h, hl in zip(
                    cols["user_id"], cols["item_id"], cols["timestamp"], cols["rating"],
                    cols["seq"], cols["history"], cols["history_len"],
                )
            ]
        return self._split_cache[name]

    @cached_property
    def user_sequences(self) -> dict[str, list[str]]:
        """Each user's full chronological item sequence (train, valid and test items)."""
        table = _read_table(self.root / "interactions.parquet", columns=["user_id", "item_id", "seq"])
        cols = table.to_pydict()
        seqs: dict[str, list[str]] = {}
        for user, item in zip(cols["user_id"], cols["item_id"]):
            seqs.setdefault(user, []).append(item)  # file is sorted by (user, seq)
        return seqs

    def full_history(self, example: Example) -> list[str]:
        """All items the user interacted with before the example's target (untruncated)."""
        return self.user_sequences[example.user_id][: example.seq]

    def read_columns(self, table: str, names: tuple[str, ...]) -> dict[str, list[Any]]:
        """Columns of ``<table>.parquet`` as Python lists; a column the file lacks (a dataset prepared by an
        older version, or a source without it) comes back as all ``None``."""
        path = self.root / f"{table}.parquet"
        present = set(_read_table(path, schema_only=True).names)
        cols = _read_table(path, columns=[c for c in names if c in present]).to_pydict()
        n = len(next(iter(cols.values()))) if cols else 0
        return {c: cols.get(c, [None] * n) for c in names}

    def interactions(self):  # -> pyarrow.Table
        return _read_table(self.root / "interactions.parquet")

    @property
    def counts(self) -> dict[str, Any]:
        return dict(self.manifest.get("counts", {}))
