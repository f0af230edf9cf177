"""SeqRecBenchmark sequences: ``user2item.jsonl(.gz)`` (one user per line) and ``item2title.jsonl(.gz)``.

A sequence line is ``{"user_id": 101, "item_ids": [...], "timestamps": [...]}`` with timestamps in Unix
**seconds** (converted to milliseconds here). ``source_order`` is file index * stride + the interaction's
running position in the file (interactions of earlier lines, plus its list position), so the source's order of
same-day items is kept exactly, within a user and across lines.
"""

from __future__ import annotations

import duckdb

from bluerec.data.config import SourceConfig
from bluerec.data.errors import OnError, SkipReport
from bluerec.data.readers import _engine
from bluerec.data.readers._engine import TMP, Field, sql_str, unknown_items_sql
from bluerec.data.readers._staging import add_interactions, add_items, finish_items, stage_jsonl, start_items

TITLE_FIELDS = (Field("item_id", "id", required=True), Field("title", "str"))
SEQUENCE_FIELDS = (
    Field("user_id", "id", required=True),
    Field("item_ids", "id_list", required=True),
    Field("timestamps", "int_list", required=True),
)
_MAX_SECONDS = 10**13  # beyond this * 1000 would overflow BIGINT
_ITEM_COLUMNS = "item_id, title, NULL, []::VARCHAR[], NULL, []::VARCHAR[], []::VARCHAR[], NULL, NULL"


def _timestamp_range_sql(table: str) -> str:
    """Every timestamp of a line in the sane window (see :func:`~bluerec.data.readers._engine.timestamp_checks`),
    in seconds; at the least, never a value whose conversion to milliseconds would overflow."""
    checks = (*_engine.timestamp_checks("s"), (f"{{x}} < 0 OR {{x}} >= {_MAX_SECONDS}", "out of range"))
    first = "list_filter(timestamps, lambda t: " + " OR ".join(f"({c.replace('{x}', 't')})" for c, _ in checks) + ")[1]"
    reason = "CASE " + " ".join(f"WHEN {c.replace('{x}', '_bad')} THEN {sql_str('timestamp ' + r)}"
                                for c, r in checks) + " END"
    return (f"SELECT line_no, loc, 'timestamps', {reason}, _bad::VARCHAR FROM (SELECT line_no, loc, {first} AS _bad "
            f"FROM {table}) WHERE _bad IS NOT NULL")


def _sequence_checks(table: str) -> list[str]:
    """Per-line checks beyond types, as ``settle`` extra queries (line_no, loc, field, reason, detail)."""
    return [
        f"SELECT line_no, loc, 'timestamps', 'length differs from item_ids', "
        f"len(timestamps) || ' timestamps vs ' || len(item_ids) || ' items' FROM {table} "
        "WHERE len(timestamps) <> len(item_ids)",
        _timestamp_range_sql(table),
        unknown_items_sql(table, "item_ids", "item_ids", "SELECT item_id FROM staged_items"),
    ]


def stage(con: duckdb.DuckDBPyConnection, source: SourceConfig, on_error: OnError, report: SkipReport) -> None:
    table = f"{TMP}seq"
    start_items(con)
    for i, path in enumerate(source.titles):
        stage_jsonl(con, path, table, TITLE_FIELDS, on_error, report)
        add_items(con, i, table, _ITEM_COLUMNS)
    finish_items(con, source.titles, "item_id", report)
    flat = f"{TMP}seq_flat"
    for i, path in enumerate(source.sequences):
        stage_jsonl(con, path, table, SEQUENCE_FIELDS, on_error, report, extra=_sequence_checks(table))
        # Parallel unnests zip the lists; `line_no` here is the running interaction position (0-based).
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {flat} AS SELECT user_id, unnest(item_ids) AS item_id, "
            "unnest(timestamps) * 1000 AS timestamp, NULL::DOUBLE AS rating, NULL AS review_title, "
            "NULL AS review_text, before + unnest(range(len(item_ids))) AS line_no FROM (SELECT *, "
            "coalesce(sum(len(item_ids)) OVER (ORDER BY line_no ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)"
            f" AS before FROM {table})"
        )
        add_interactions(con, i, flat)
