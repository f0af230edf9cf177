"""Steps every format shares: parse one JSON-lines file, collect items (first wins), append interactions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

from bluerec.data.errors import DataError, OnError, SkipReport
from bluerec.data.readers._engine import TMP, Field, check_file, load_lines, parse_json_sql, settle
from bluerec.data.schema import ITEM_COLUMNS, SOURCE_ORDER_FILE_STRIDE

ITEMS = f"{TMP}items"  # every meta row of every file, before duplicates are dropped
DUPLICATE = "duplicate item in meta"


def stage_jsonl(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    table: str,
    fields: Sequence[Field],
    on_error: OnError,
    report: SkipReport,
    extra: Sequence[str] = (),
) -> None:
    """Temp ``table`` with the good records of one JSON-lines file (bad ones raised or counted)."""
    check_file(path)
    load_lines(con, path, table, parse_json_sql(fields), on_error, report)
    settle(con, table, path, on_error, report, extra)


def start_items(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {ITEMS} (file_index INTEGER, line_no BIGINT, item_id VARCHAR, title VARCHAR, "
        "main_category VARCHAR, categories VARCHAR[], store VARCHAR, features VARCHAR[], description VARCHAR[], "
        "details VARCHAR, price VARCHAR)"
    )


def add_items(con: duckdb.DuckDBPyConnection, file_index: int, table: str, columns: str) -> None:
    """Append ``table``'s rows; ``columns`` is the SELECT list producing :data:`ITEM_COLUMNS` in order."""
    con.execute(f"INSERT INTO {ITEMS} SELECT {file_index}, line_no, {columns} FROM {table}")


def finish_items(con: duckdb.DuckDBPyConnection, paths: Sequence[Path], id_field: str, report: SkipReport) -> None:
    """Fill ``staged_items`` with the first row of each item id; later duplicates are counted, never an error
    (real dumps, e.g. Google Local meta, repeat items)."""
    first = "row_number() OVER (PARTITION BY item_id ORDER BY file_index, line_no)"
    dups = con.execute(
        f"SELECT file_index, count(*), min(line_no) FROM (SELECT file_index, line_no, {first} AS rn FROM {ITEMS}) "
        "WHERE rn > 1 GROUP BY file_index ORDER BY file_index"
    ).fetchall()
    for file_index, n, line in dups:
        report.add(DataError(paths[file_index], line, id_field, DUPLICATE), n)
    cols = ", ".join(ITEM_COLUMNS)
    con.execute(
        f"INSERT INTO staged_items SELECT {cols} FROM {ITEMS} QUALIFY {first} = 1 ORDER BY file_index, line_no"
    )
    con.execute(f"DROP TABLE {ITEMS}")


def add_interactions(con: duckdb.DuckDBPyConnection, file_index: int, table: str, columns: str = "") -> None:
    """Append ``table``'s rows to ``staged_interactions``; ``source_order`` = file index * stride + line.

    ``columns`` defaults to the table's own user_id, item_id, timestamp, rating, review_title, review_text.
    """
    columns = columns or "user_id, item_id, timestamp, rating, review_title, review_text"
    con.execute(
        f"INSERT INTO staged_interactions SELECT {columns}, {file_index} * {SOURCE_ORDER_FILE_STRIDE} + line_no "
        f"FROM {table}"
    )
