"""Amazon Reviews 2023: raw review/meta JSON lines (``amazon2023``) and the official benchmark split CSVs
(``amazon2023_benchmark``, layout ``last_out_w_his``).

Benchmark rows are one interaction each: ``user_id,parent_asin,rating,timestamp,history``. Their ``history``
(space-separated earlier parent_asins) is only checked: every id must be a known item, since a history that
names an item the meta lacks means the splits and the meta do not belong together. Optional reviews (the
shared ``filtered_user_reviews.json.gz`` JSON array, or review JSON lines) add review title and text to the
interaction with the same (user, item, timestamp); a review that matches no interaction is not used.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from bluerec.data.config import SourceConfig
from bluerec.data.errors import DataError, OnError, SkipReport, handle
from bluerec.data.readers import meta_csv
from bluerec.data.readers._engine import (
    EMPTY,
    MISSING,
    TMP,
    Field,
    check_file,
    err_sql,
    load_lines,
    parse_json_sql,
    rating_checks,
    read_head,
    settle,
    sql_str,
    unknown_items_sql,
)
from bluerec.data.readers import _engine
from bluerec.data.readers._staging import add_interactions, add_items, finish_items, stage_jsonl, start_items
from bluerec.data.schema import SOURCE_ORDER_FILE_STRIDE

REVIEW_FIELDS = (
    Field("user_id", "id", required=True),
    Field("parent_asin", "id", required=True, name="item_id"),
    Field("timestamp", "int", required=True, checks="timestamp_ms"),  # Unix milliseconds
    Field("rating", "num", required=True, checks="rating"),  # 1-5 stars; every review of this format has one
    Field("title", "str", name="review_title"),
    Field("text", "str", name="review_text"),
)
META_FIELDS = (
    Field("parent_asin", "id", required=True, name="item_id"),
    Field("title", "str"),
    Field("main_category", "str"),
    Field("categories", "str_list"),
    Field("store", "str"),
    Field("features", "str_list"),
    Field("description", "str_list"),
    Field("details", "object"),
    Field("price", "str_or_num"),  # numbers, "$12.99"-like strings and "None" all occur
)
_META_ITEM_COLUMNS = (
    "item_id, title, main_category, categories, store, features, description, nullif(details, '{}'), "
    "CASE WHEN price IN ('', 'None') THEN NULL ELSE price END"
)
_CSV_ITEM_COLUMNS = "item_id, title, NULL, []::VARCHAR[], NULL, []::VARCHAR[], description, details, price"

# The shared reviews file: [{"user_id": ..., "reviews": [{product_name, parent_asin, rating, title, text, timestamp}]}]
USER_FIELDS = (Field("user_id", "id", required=True), Field("reviews", "obj_list", required=True))
NESTED_REVIEW_FIELDS = tuple(f for f in REVIEW_FIELDS if f.key != "user_id")

SPLIT_COLUMNS = ("user_id", "parent_asin", "rating", "timestamp", "history")
REVIEWS = f"{TMP}reviews"  # user_id, item_id, timestamp, rating, review_title, review_text, ord


def stage_raw(con: duckdb.DuckDBPyConnection, source: SourceConfig, on_error: OnError, report: SkipReport) -> None:
    """Format ``amazon2023``."""
    _stage_meta(con, source.meta, on_error, report)
    table = f"{TMP}reviews_file"
    for i, path in enumerate(source.reviews):
        stage_jsonl(con, path, table, REVIEW_FIELDS, on_error, report)
        add_interactions(con, i, table)


def stage_benchmark(
    con: duckdb.DuckDBPyConnection, source: SourceConfig, on_error: OnError, report: SkipReport
) -> None:
    """Format ``amazon2023_benchmark``: meta first (histories are checked against it), then reviews, then splits."""
    _stage_meta(con, source.meta, on_error, report)
    _stage_reviews(con, source.reviews, on_error, report)
    # Several reviews with the same (user, item, timestamp) must not duplicate the interaction: the first wins.
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {REVIEWS}_unique AS SELECT * FROM {REVIEWS} "
        "QUALIFY row_number() OVER (PARTITION BY user_id, item_id, timestamp ORDER BY ord) = 1"
    )
    table = f"{TMP}split"
    for i, path in enumerate(source.splits):
        if _load_split(con, path, table, on_error, report):
            extra = [unknown_items_sql(table, "history", "history", "SELECT item_id FROM staged_items")]
            settle(con, table, path, on_error, report, extra)
            add_interactions(
                con, i, f"{table} s LEFT JOIN {REVIEWS}_unique r ON s.user_id = r.user_id AND "
                "s.item_id = r.item_id AND s.timestamp = r.timestamp",
                "s.user_id, s.item_id, s.timestamp, coalesce(s.rating, r.rating), r.review_title, r.review_text",
            )


def _is_csv(path: Path) -> bool:
    return path.name.lower().removesuffix(".gz").endswith(".csv")


def _stage_meta(con: duckdb.DuckDBPyConnection, paths: list[Path], on_error: OnError, report: SkipReport) -> None:
    table = f"{TMP}meta"
    start_items(con)
    for i, path in enumerate(paths):
        if _is_csv(path):
            meta_csv.load(con, path, table, on_error, report)
            add_items(con, i, table, _CSV_ITEM_COLUMNS)
        else:
            stage_jsonl(con, path, table, META_FIELDS, on_error, report)
            add_items(con, i, table, _META_ITEM_COLUMNS)
    finish_items(con, paths, "parent_asin", report)


# ---------------------------------------------------------------------------------------------- reviews


def _stage_reviews(con: duckdb.DuckDBPyConnection, paths: list[Path], on_error: OnError, report: SkipReport) -> None:
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {REVIEWS} (user_id VARCHAR, item_id VARCHAR, timestamp BIGINT, rating DOUBLE, "
        "review_title VARCHAR, review_text VARCHAR, ord BIGINT)"
    )
    table = f"{TMP}reviews_file"
    for i, path in enumerate(paths):
        check_file(path)
        if read_head(path).lstrip().startswith(b"["):
            _load_review_array(con, path, table, on_error, report)
        else:
            stage_jsonl(con, path, table, REVIEW_FIELDS, on_error, report)
        con.execute(
            f"INSERT INTO {REVIEWS} SELECT user_id, item_id, timestamp, rating, review_title, review_text, "
            f"{i} * {SOURCE_ORDER_FILE_STRIDE} + line_no FROM {table}"
        )


def _load_review_array(
    con: duckdb.DuckDBPyConnection, path: Path, table: str, on_error: OnError, report: SkipReport
) -> None:
    """The JSON-array reviews file. It is one JSON document, so problems are located by record, not line;
    a syntax error anywhere makes the whole file unreadable (no record boundary to resume from)."""
    users = f"{TMP}review_users"
    records = (
        "SELECT line_no, 'record ' || line_no AS loc, line FROM (SELECT row_number() OVER () AS line_no, "
        f"json::VARCHAR AS line FROM read_json_objects({sql_str(path)}, format='array', "
        "maximum_object_size=268435456))"
    )
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {users} AS " + parse_json_sql(USER_FIELDS).replace("{src}", records))
    except duckdb.Error as e:
        raise DataError(path, None, None, f"cannot read JSON array: {str(e).splitlines()[0]}") from e
    settle(con, users, path, on_error, report)
    nested = (
        "SELECT row_number() OVER (ORDER BY rec, pos) AS line_no, 'record ' || rec || ', review ' || pos AS loc, "
        "user_id, line FROM (SELECT line_no AS rec, user_id, unnest(reviews) AS line, "
        f"unnest(range(1, len(reviews) + 1)) AS pos FROM {users})"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} AS "
        + parse_json_sql(NESTED_REVIEW_FIELDS, carry=("user_id",)).replace("{src}", nested)
    )
    if con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]:  # type: ignore[index]
        settle(con, table, path, on_error, report)  # (no reviews at all is not an error of this file)


# ---------------------------------------------------------------------------------------------- splits


def _split_header(path: Path) -> dict[str, int] | None:
    """1-based positions of the split columns, or None for an empty file."""
    head = read_head(path)
    line = head.split(b"\n", 1)[0].rstrip(b"\r")
    if not head.strip():
        return None
    try:
        names = [c.strip() for c in line.decode("utf-8").lstrip("\ufeff").split(",")]
    except UnicodeDecodeError:
        raise DataError(path, 1, None, "not valid UTF-8") from None
    missing = [c for c in SPLIT_COLUMNS if c not in names]
    if missing:
        raise DataError(path, 1, None, f"header lacks column(s) {missing}; expected {','.join(SPLIT_COLUMNS)}")
    return {c: names.index(c) + 1 for c in SPLIT_COLUMNS} | {"_width": len(names)}


def _split_sql(col: dict[str, int]) -> str:
    """CSV line → checked columns. The benchmark files never quote (ids, numbers, space-separated ids), so a
    plain split on ',' is exact; a row with another column count is reported, not guessed at."""

    def c(name: str) -> str:
        return f"_c[{col[name]}]"

    checks = [
        (f"len(_c) <> {col['_width']}", err_sql(None, f"'expected {col['_width']} comma-separated columns'",
                                                "len(_c) || ' found'")),
        (f"{c('user_id')} = ''", err_sql("user_id", sql_str(MISSING))),
        (f"{c('parent_asin')} = ''", err_sql("parent_asin", sql_str(MISSING))),
        (f"{c('timestamp')} = ''", err_sql("timestamp", sql_str(MISSING))),
        (f"NOT regexp_full_match({c('timestamp')}, '-?[0-9]{{1,18}}')",
         err_sql("timestamp", "'expected an integer (Unix milliseconds)'", f"left({c('timestamp')}, 60)")),
        (f"{c('rating')} <> '' AND TRY_CAST({c('rating')} AS DOUBLE) IS NULL",
         err_sql("rating", "'expected a number'", f"left({c('rating')}, 60)")),
        (f"{c('rating')} <> '' AND NOT isfinite(TRY_CAST({c('rating')} AS DOUBLE))",
         err_sql("rating", "'expected a finite number'", f"left({c('rating')}, 60)")),
    ]
    ts, rating = f"TRY_CAST({c('timestamp')} AS BIGINT)", f"TRY_CAST(nullif({c('rating')}, '') AS DOUBLE)"
    checks += [(cond.replace("{x}", ts), err_sql("timestamp", sql_str(reason), f"left({c('timestamp')}, 60)"))
               for cond, reason in _engine.timestamp_checks("ms")]
    checks += [(cond.replace("{x}", rating), err_sql("rating", sql_str(reason), f"left({c('rating')}, 60)"))
               for cond, reason in rating_checks()]
    err = "CASE " + " ".join(f"WHEN {cond} THEN {e}" for cond, e in checks) + " END"
    return (
        f"SELECT line_no, loc, {err} AS err, {c('user_id')} AS user_id, {c('parent_asin')} AS item_id, "
        f"TRY_CAST({c('timestamp')} AS BIGINT) AS timestamp, TRY_CAST(nullif({c('rating')}, '') AS DOUBLE) AS rating, "
        f"list_filter(string_split({c('history')}, ' '), lambda x: x <> '') AS history "
        "FROM (SELECT line_no, loc, list_transform(string_split(line, ','), lambda x: trim(x)) AS _c FROM ({src}))"
    )


def _load_split(
    con: duckdb.DuckDBPyConnection, path: Path, table: str, on_error: OnError, report: SkipReport
) -> bool:
    """Temp ``table`` with the split's rows (not yet settled); False when the file is empty (and skipped)."""
    check_file(path)
    col = _split_header(path)
    if col is None:
        handle(DataError(path, None, None, EMPTY), on_error, report)
        return False
    load_lines(con, path, table, _split_sql(col), on_error, report, from_line=2)
    return True
