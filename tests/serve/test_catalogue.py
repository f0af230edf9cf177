"""Item catalogues: prepared datasets and item files; bad rows are errors naming file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bluerec.data.errors import DataError
from bluerec.serve import load_catalogue


def _jsonl(tmp_path: Path, rows: list) -> Path:
    path = tmp_path / "items.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_jsonl_item_file(tmp_path):
    cat = load_catalogue(_jsonl(tmp_path, [{"item_id": "a", "text": "Red shoe", "title": "Shoe"},
                                           {"item_id": 7, "text": "Blue hat", "extra": 1}, ""]))
    assert cat.ids == ["a", "7"] and cat.titles == ["Shoe", ""] and cat.index["7"] == 1
    assert cat.prompt_text(0, "title") == "Shoe" and cat.prompt_text(1, "title") == "Blue hat"
    assert cat.kind == "item_file" and len(cat) == 2


def test_parquet_item_file(tmp_path):
    path = tmp_path / "items.parquet"
    pq.write_table(pa.table({"item_id": ["x", "y"], "text": ["one", "two"]}), path)
    assert load_catalogue(path).texts == ["one", "two"]
    pq.write_table(pa.table({"item_id": ["x"], "name": ["one"]}), path)
    with pytest.raises(DataError, match="field 'text': missing column"):
        load_catalogue(path)


@pytest.mark.parametrize("rows, where, field", [
    ([{"item_id": "a", "text": "x"}, {"item_id": "a", "text": "y"}], ":2", "item_id"),
    ([{"item_id": "a", "text": ""}], ":1", "text"),
    ([{"item_id": "a"}], ":1", "text"),
    ([{"text": "x"}], ":1", "item_id"),
    ([{"item_id": "a", "text": "x", "title": 3}], ":1", "title"),
    ([{"item_id": "a", "text": "x"}, "{broken"], ":2", None),
    (["[1, 2]"], ":1", None),
])
def test_bad_rows_name_file_line_and_field(tmp_path, rows, where, field):
    with pytest.raises(DataError) as err:
        load_catalogue(_jsonl(tmp_path, rows))
    assert f"items.jsonl{where}" in str(err.value) and err.value.field == field


def test_other_inputs(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_catalogue(tmp_path / "missing.jsonl")
    (tmp_path / "items.csv").write_text("item_id,text\n")
    with pytest.raises(DataError, match=".jsonl or .parquet"):
        load_catalogue(tmp_path / "items.csv")
    with pytest.raises(DataError, match="no items"):
        load_catalogue(_jsonl(tmp_path, []))
    with pytest.raises(DataError, match="manifest.json"):
        load_catalogue(tmp_path)  # a folder that is not a prepared dataset
