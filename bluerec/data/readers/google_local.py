"""Google Local reviews (``review-*.json(.gz)``) and business meta (``meta-*.json(.gz)``), both JSON lines.

Only the keys the pipeline uses are checked; the rest (``pics``, ``resp``, ``hours``, ``MISC``, …) are ignored,
so an odd value there never costs a record. Real ``user_id`` values are numeric strings and some dumps write
them as numbers, so ids accept strings and integers (stored as text).
"""

from __future__ import annotations

import duckdb

from bluerec.data.config import SourceConfig
from bluerec.data.errors import OnError, SkipReport
from bluerec.data.readers._engine import TMP, Field
from bluerec.data.readers._staging import add_interactions, add_items, finish_items, stage_jsonl, start_items

REVIEW_FIELDS = (
    Field("user_id", "id", required=True),
    Field("gmap_id", "id", required=True, name="item_id"),
    Field("time", "int", required=True, name="timestamp", checks="timestamp_ms"),  # Unix milliseconds already
    Field("rating", "num", required=True, checks="rating"),  # 1-5 stars; every review of this format has one
    Field("text", "str", name="review_text"),
)
META_FIELDS = (
    Field("gmap_id", "id", required=True, name="item_id"),
    Field("name", "str", name="title"),
    Field("category", "str_list", name="categories"),
    Field("description", "str"),
    Field("address", "str"),
    Field("avg_rating", "num"),
    Field("price", "str_or_num"),
)
# details keeps what a profile may mention; json_merge_patch drops the keys whose value is null.
_ITEM_COLUMNS = (
    "item_id, title, NULL, categories, NULL, []::VARCHAR[], "
    "CASE WHEN coalesce(description, '') <> '' THEN [description] ELSE []::VARCHAR[] END, "
    "nullif(json_merge_patch('{}', json_object('address', address, 'avg_rating', avg_rating, 'price', price))"
    "::VARCHAR, '{}'), price"
)


def stage(con: duckdb.DuckDBPyConnection, source: SourceConfig, on_error: OnError, report: SkipReport) -> None:
    table = f"{TMP}google"
    start_items(con)
    for i, path in enumerate(source.meta):
        stage_jsonl(con, path, table, META_FIELDS, on_error, report)
        add_items(con, i, table, _ITEM_COLUMNS)
    finish_items(con, source.meta, "gmap_id", report)
    for i, path in enumerate(source.reviews):
        stage_jsonl(con, path, table, REVIEW_FIELDS, on_error, report)
        add_interactions(con, i, table, "user_id, item_id, timestamp, rating, NULL, review_text")
