"""Readers: raw source files → the staged DuckDB tables ``staged_interactions`` and ``staged_items``.

``stage_source`` is the only entry point. All parsing and checking runs as DuckDB SQL over numbered raw lines
(see :mod:`bluerec.data.readers._engine`), so inputs with tens of millions of lines stream within the
connection's memory limit. Bad records become :class:`~bluerec.data.errors.DataError` naming file, 1-based line
and field; under ``on_error="skip"`` they are dropped and counted in the :class:`~bluerec.data.errors.SkipReport`
(one entry per file and reason). Nothing is dropped without a count.

What the staged tables hold (beyond :mod:`bluerec.data.schema`):

- ids are text: numeric ids (seqrec, some Google Local user ids) are their decimal string;
- ``rating`` is NULL where the source has none (seqrec always; JSON ``null`` or an empty CSV cell);
- ``review_title`` / ``review_text`` are the source strings as they are (may be NULL or empty, may hold HTML);
- ``staged_items`` has one row per item id: the first in (file, line) order; later duplicates are counted as
  "duplicate item in meta" (never an error). Missing lists are ``[]``, missing scalars NULL; ``details`` is
  JSON text of an object or NULL (an empty object is NULL); Amazon price "None" / "" is NULL;
- items are not checked against interactions here (reviews of items without meta are kept; the prepare step
  decides), except that benchmark histories and seqrec sequences must name known items.
"""

from __future__ import annotations

import contextlib

import duckdb

from bluerec.data.config import SourceConfig
from bluerec.data.errors import OnError, SkipReport
from bluerec.data.readers import amazon, google_local, seqrec
from bluerec.data.readers._engine import check_file, drop_temp
from bluerec.data.schema import STAGED_INTERACTIONS_DDL, STAGED_ITEMS_DDL

__all__ = ["stage_source"]

_STAGERS = {
    "amazon2023": amazon.stage_raw,
    "amazon2023_benchmark": amazon.stage_benchmark,
    "google_local": google_local.stage,
    "seqrec": seqrec.stage,
}


def stage_source(con: duckdb.DuckDBPyConnection, source: SourceConfig, on_error: OnError, report: SkipReport) -> None:
    """Create and fill tables staged_interactions and staged_items (DDL in bluerec.data.schema) in `con`."""
    for role in ("reviews", "meta", "splits", "sequences", "titles"):  # fail before any work, not halfway
        for path in getattr(source, role):
            check_file(path)
    con.execute(STAGED_INTERACTIONS_DDL)
    con.execute(STAGED_ITEMS_DDL)
    try:
        _STAGERS[source.format](con, source, on_error, report)
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # never mask the real error with a cleanup error
            drop_temp(con)
        raise
    drop_temp(con)
