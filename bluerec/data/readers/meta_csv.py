"""The pandas-written item table ``filterd_meta_items.csv`` (columns ``,index,title,description,price,details,
parent_asin``) that ships with the shared All_Beauty benchmark.

``details`` is a stringified Python dict and ``description`` sometimes a stringified Python list, so they are
read with :func:`ast.literal_eval` (literals only — never ``eval`` or pickle). In the shared file every
non-empty ``description`` is plain text, which becomes a one-paragraph list. Item tables are small (one row
per item), so this format is parsed in Python with the ``csv`` module, which also gives exact line numbers
when quoted fields span lines; rows go to DuckDB in Arrow batches.
"""

from __future__ import annotations

import ast
import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from bluerec.data.errors import DataError, OnError, SkipReport, handle
from bluerec.data.readers._engine import EMPTY, MISSING, TMP, check_file, open_binary

REQUIRED = ("parent_asin", "title")
_BATCH = 10_000
_SCHEMA = pa.schema(
    [
        ("line_no", pa.int64()),
        ("item_id", pa.string()),
        ("title", pa.string()),
        ("description", pa.list_(pa.string())),
        ("details", pa.string()),
        ("price", pa.string()),
    ]
)


def _literal(text: str) -> Any:
    """A Python literal, or ``ValueError`` (``literal_eval`` can also fail on absurd nesting or size)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
        raise ValueError(str(e)) from e


def parse_description(text: str) -> list[str]:
    """``"['a', 'b']"`` → ``['a', 'b']``; any other non-empty text is a single paragraph."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("[") and text.endswith("]"):
        try:
            value = _literal(text)
        except ValueError:
            return [text]
        if isinstance(value, list) and all(isinstance(x, str) for x in value):
            return [x for x in value if x.strip()]
    return [text]


def parse_details(text: str) -> str | None:
    """``"{'Brand': 'X'}"`` → JSON text; ``""`` and ``{}`` → None; anything else is bad input (ValueError)."""
    text = text.strip()
    if not text:
        return None
    value = _literal(text)
    if not isinstance(value, dict):
        raise ValueError(f"expected a Python dict literal, got {type(value).__name__}")
    return json.dumps(value, ensure_ascii=False, default=str) if value else None


def _lines(path: Path, on_error: OnError, report: SkipReport) -> Iterator[str]:
    """Decoded lines; a line that is not UTF-8 is raised, or (skip) counted and replaced by a blank line."""
    with open_binary(path) as f:
        for n, raw in enumerate(f, 1):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                handle(DataError(path, n, None, "not valid UTF-8"), on_error, report)
                yield "\n"


def load(con: duckdb.DuckDBPyConnection, path: Path, table: str, on_error: OnError, report: SkipReport) -> None:
    """Temp ``table`` (line_no, item_id, title, description, details, price) with the good rows of the CSV."""
    check_file(path)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} (line_no BIGINT, item_id VARCHAR, title VARCHAR, "
        "description VARCHAR[], details VARCHAR, price VARCHAR)"
    )
    reader = csv.reader(_lines(path, on_error, report))
    header = [h.strip().lstrip("\ufeff") for h in next(reader, [])]
    if not any(header):
        handle(DataError(path, None, None, EMPTY), on_error, report)
        return
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise DataError(path, 1, None, f"header lacks column(s) {missing}; found {header}")
    col = {name: header.index(name) for name in ("parent_asin", "title", "description", "price", "details") if name in header}
    batch: list[dict[str, Any]] = []
    rows, last_line = 0, reader.line_num
    for fields in reader:
        line, last_line = last_line + 1, reader.line_num  # a quoted field may span lines: report where it starts
        if not fields or not any(f.strip() for f in fields):
            continue
        rows += 1
        record = _record(path, line, fields, col, len(header), on_error, report)
        if record is not None:
            batch.append(record)
        if len(batch) >= _BATCH:
            _flush(con, table, batch)
    _flush(con, table, batch)
    if rows == 0:
        handle(DataError(path, None, None, EMPTY), on_error, report)


def _record(
    path: Path, line: int, fields: list[str], col: dict[str, int], width: int, on_error: OnError, report: SkipReport
) -> dict[str, Any] | None:
    """One checked row, or None when it was bad (and skipped)."""

    def get(name: str) -> str:
        return fields[col[name]].strip() if name in col else ""

    if len(fields) != width:
        handle(DataError(path, line, None, f"expected {width} columns, got {len(fields)}"), on_error, report)
        return None
    if not get("parent_asin"):
        handle(DataError(path, line, "parent_asin", MISSING), on_error, report)
        return None
    try:
        details = parse_details(get("details"))
    except ValueError as e:
        handle(DataError(path, line, "details", f"expected a Python dict literal ({e})"), on_error, report)
        return None
    return {
        "line_no": line,
        "item_id": get("parent_asin"),
        "title": get("title") or None,
        "description": parse_description(get("description")),
        "details": details,
        "price": get("price") or None,
    }


def _flush(con: duckdb.DuckDBPyConnection, table: str, batch: list[dict[str, Any]]) -> None:
    if not batch:
        return
    view = f"{TMP}csv_batch"
    con.register(view, pa.Table.from_pylist(batch, schema=_SCHEMA))
    try:
        con.execute(f"INSERT INTO {table} SELECT * FROM {view}")
    finally:
        con.unregister(view)
    batch.clear()
