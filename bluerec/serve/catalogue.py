"""The items a server recommends from: ids, texts, titles.

Two sources are accepted:

* a **prepared dataset** folder (``bluerec data prepare``; it has ``manifest.json``): its ``items.parquet``;
* an **item file**: ``.jsonl`` (one JSON object per line) or ``.parquet`` with the columns
  ``item_id`` (string or integer, unique, non-empty) and ``text`` (non-empty string: what the retriever embeds
  and the prompt shows), optionally ``title`` (a shorter name; prompts configured with ``item_field: title``
  show it). Other columns are ignored. Any bad row is an error naming file, line and field — nothing is
  dropped silently.

Example::

    cat = load_catalogue("items.jsonl")   # {"item_id": "b1", "text": "Lodge cast iron skillet | Kitchen"}
    print(len(cat), cat.ids[0])
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from bluerec.data.errors import DataError


@dataclass(frozen=True)
class Catalogue:
    """Item ids, texts and titles (``""`` where there is none), in one fixed order; ``source`` says where from."""

    ids: list[str]
    texts: list[str]
    titles: list[str]
    source: str = ""
    kind: str = "item_file"  # or "prepared_dataset"

    @cached_property
    def index(self) -> dict[str, int]:
        return {item_id: i for i, item_id in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def prompt_text(self, i: int, item_field: str = "text") -> str:
        """The text a prompt shows for item ``i``: the title when asked for and present, else the text
        (the rule of :func:`bluerec.profiler.prompts.history_items_for`)."""
        if item_field == "title" and self.titles[i]:
            return self.titles[i]
        return self.texts[i]


def load_catalogue(path: str | Path) -> Catalogue:
    """A :class:`Catalogue` from a prepared-dataset folder or an item file (see the module docstring)."""
    path = Path(path)
    if path.is_dir():
        from bluerec.data.dataset import PreparedDataset

        items = PreparedDataset(path).items
        return Catalogue(list(items.ids), list(items.texts), list(items.titles), str(path), "prepared_dataset")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such prepared-dataset folder or item file")
    suffix = "".join(path.suffixes[-1:]).lower()
    if suffix == ".jsonl":
        rows = _jsonl_rows(path)
    elif suffix == ".parquet":
        rows = _parquet_rows(path)
    else:
        raise DataError(path, None, None, "an item file must be .jsonl or .parquet (or give a prepared-dataset folder)")
    return _validate(path, rows)


def _jsonl_rows(path: Path) -> list[tuple[int, dict]]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as err:
                raise DataError(path, n, None, f"not valid JSON ({err})") from None
            if not isinstance(row, dict):
                raise DataError(path, n, None, "each line must be a JSON object")
            rows.append((n, row))
    return rows


def _parquet_rows(path: Path) -> list[tuple[int, dict]]:
    import pyarrow.parquet as pq

    names = set(pq.read_schema(path).names)
    for required in ("item_id", "text"):
        if required not in names:
            raise DataError(path, None, required, f"missing column; the file has {sorted(names)}")
    cols = pq.read_table(path, columns=[c for c in ("item_id", "text", "title") if c in names]).to_pydict()
    n = len(cols["item_id"])
    return [(i + 1, {c: cols[c][i] for c in cols}) for i in range(n)]  # line = 1-based row number


def _validate(path: Path, rows: list[tuple[int, dict]]) -> Catalogue:
    ids: list[str] = []
    texts: list[str] = []
    titles: list[str] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        item_id = row.get("item_id")
        if isinstance(item_id, bool) or not isinstance(item_id, (str, int)) or str(item_id).strip() == "":
            raise DataError(path, line, "item_id", f"must be a non-empty string or integer, got {item_id!r}")
        item_id = str(item_id)
        if item_id in seen:
            raise DataError(path, line, "item_id", f"duplicate id {item_id!r} (first on line {seen[item_id]})")
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            raise DataError(path, line, "text", f"must be a non-empty string, got {text!r}")
        title = row.get("title")
        if title is not None and not isinstance(title, str):
            raise DataError(path, line, "title", f"must be a string or absent, got {title!r}")
        seen[item_id] = line
        ids.append(item_id)
        texts.append(text)
        titles.append(title or "")
    if not ids:
        raise DataError(path, None, None, "no items")
    return Catalogue(ids, texts, titles, str(path), "item_file")
