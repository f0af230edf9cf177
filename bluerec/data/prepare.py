"""``bluerec data prepare``: staged tables → a prepared-dataset folder (see :mod:`bluerec.data.schema`).

Everything runs as DuckDB SQL over whole tables (no Python loop over interactions), so tens of millions of
interactions fit in the configured ``memory_limit``: DuckDB spills sorts, windows and tables to disk.
User and item ids are mapped to dense integer codes (assigned in sorted id order, so ordering by code is
ordering by id) for the grouping-heavy steps; ids are joined back only for the output.

Steps, in order (every drop is counted in ``manifest.json["counts"]``):

1. **Item text** — each interacted item gets its text rendered (:mod:`bluerec.data.itemtext`, a vectorised
   Python UDF). With ``drop_items_without_text`` the interactions of items that have no ``staged_items`` row
   or render to an empty text are dropped. Several meta rows for one item: one is kept deterministically
   (non-empty title first, then by column values).
2. **Dedupe** (``dedupe``) — one interaction per (user, item): the earliest by
   (timestamp, source_order), ties broken by a hash of (rating, review_title, review_text), then row id.
3. **k-core** (``k_core`` ≥ 2) — passes that drop, simultaneously, users and items with fewer than ``k``
   interactions, repeated until a pass drops nothing. ``kcore_iterations`` = passes that dropped something.
   Then users with fewer than ``min_user_interactions`` are dropped (once; with ``k_core`` ≥ that it is a
   no-op).
4. **Order** — per user ``ORDER BY timestamp, source_order, item_id`` (then the content hash and row id for
   exact duplicates kept with ``dedupe: false``); ``seq`` = 0-based position.
5. **Split** (leave-last-out) — last interaction → ``test``, second-to-last → ``valid``, the rest → ``train``.
   Train histories come from a sliding-window ``list`` (cost ~ rows x ``max_history``); valid/test
   histories are slices of each user's full sequence (one row per user).
6. **Write** — ``train|valid|test.parquet`` (one row per target with ``history`` = the last ``max_history``
   item ids before it, oldest first, and ``history_len`` = ``seq``), ``interactions.parquet`` (sorted by
   user_id, seq), ``items.parquet`` (surviving items sorted by item_id; ``popularity`` = train+valid count;
   ``title`` = cleaned title, untrimmed; ``main_category``/``categories``/``store`` as in the source),
   ``manifest.json``. Every COPY has an explicit ORDER BY, so the same input and config give byte-identical
   Parquet files (with the same DuckDB version).

Outputs are written into a temporary folder beside ``out_dir`` which is renamed into place only after
everything succeeded; an existing dataset there is replaced only then. A folder that exists, is not empty
and is not a prepared dataset is never replaced.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bluerec.data.config import PrepareConfig, SourceConfig
from bluerec.data.errors import DataError, SkipReport
from bluerec.data.itemtext import render_items_table
from bluerec.data.schema import FORMAT_VERSION, SPLITS
from bluerec.io import (check_output, make_temp_dir, output_lock, remove_stale_siblings, remove_tree,
                        write_json_atomic)

Progress = Callable[[str], None]
logger = logging.getLogger(__name__)

ORDER_TIE_BREAK = "timestamp, source_order, item_id"
PARQUET_OPTIONS = "FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880"
_TABLES = ("items", "users", "meta", "text", "work", "cur", "next", "seq", "ulist")
HASH_CHUNK = 1 << 20


def _t(name: str) -> str:
    return f"_bluerec_prep_{name}"


def _sql_str(value: str | Path) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _scalar(con: Any, sql: str) -> Any:
    return con.execute(sql).fetchone()[0]


def _count(con: Any, table: str) -> int:
    return int(_scalar(con, f"SELECT count(*) FROM {table}"))


def source_files(source: SourceConfig) -> list[Path]:
    """Every input file of a source, in config order (reviews, meta, splits, sequences, titles)."""
    return [*source.reviews, *source.meta, *source.splits, *source.sequences, *source.titles]


def file_checksum(path: str | Path) -> dict[str, Any]:
    """``{path, size, sha256}``; the file is hashed in 1 MB chunks."""
    path = Path(path)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
    return {"path": str(path), "size": path.stat().st_size, "sha256": digest.hexdigest()}


# --------------------------------------------------------------------------------------------- folders


def check_out_dir(out_dir: Path) -> None:
    """Refuse to overwrite anything that is not (empty or) a prepared dataset."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise FileExistsError(f"{out_dir}: exists and is not a folder; refusing to replace it")
    if any(out_dir.iterdir()) and not (out_dir / "manifest.json").exists():
        raise FileExistsError(
            f"{out_dir}: folder is not empty and is not a prepared dataset (no manifest.json); refusing to replace it"
        )


def _fsync_tree(folder: Path) -> None:
    for path in sorted(folder.iterdir()):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap_into_place(tmp: Path, out_dir: Path) -> None:
    """Rename the finished ``tmp`` folder onto ``out_dir``; an existing folder is moved aside first and
    deleted only once the new one is in place."""
    _fsync_tree(tmp)
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out_dir, old)
        try:
            os.replace(tmp, out_dir)
        except BaseException:
            os.replace(old, out_dir)
            raise
        if not remove_tree(old):  # read-only parts are made writable first; if even that fails, say so
            logger.warning("the previous %s was replaced but %s could not be deleted; the next run removes it",
                           out_dir, old)
    else:
        os.replace(tmp, out_dir)


# --------------------------------------------------------------------------------------------- entry points


def configure_connection(con: Any, config: PrepareConfig, temp_directory: Path | None = None) -> None:
    con.execute(f"SET memory_limit = {_sql_str(config.memory_limit)}")
    con.execute(f"SET threads = {int(config.threads)}")
    con.execute("SET preserve_insertion_order = false")  # every output query has an explicit ORDER BY
    temp_dir = getattr(config, "temp_directory", None) or temp_directory
    if temp_dir is not None:
        con.execute(f"SET temp_directory = {_sql_str(temp_dir)}")


def prepare_dataset(config: PrepareConfig, out_dir: str | Path, *, progress: Progress | None = None) -> dict[str, Any]:
    """Read the sources of ``config``, prepare them and write the dataset folder ``out_dir``.

    Returns the manifest. Raises :class:`DataError` for bad input (or counts it under ``on_error: skip``).
    Refuses at once when another run holds the lock on ``out_dir``, and first removes the hidden work
    folders a killed run left beside it."""
    out_dir = Path(out_dir)
    check_out_dir(out_dir)
    check_output(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _msg: None)
    with output_lock(out_dir):  # a second prepare into the same folder is refused, naming this one
        remove_stale_siblings(out_dir, say)  # work folders of killed runs: no live process owns them now
        return _prepare_locked(config, out_dir, say, progress)


def _prepare_locked(config: PrepareConfig, out_dir: Path, say: Progress, progress: Progress | None) -> dict[str, Any]:
    import duckdb

    from bluerec.data.readers import stage_source  # imported lazily: readers are a separate module

    work = make_temp_dir(f".{out_dir.name}.work-", out_dir.parent)
    report = SkipReport()
    con = None
    try:
        # A file-backed scratch database: staged tables and intermediate results can be evicted to disk.
        con = duckdb.connect(str(work / "work.duckdb"))
        configure_connection(con, config, work / "spill")
        say(f"reading {config.source.format} source ({len(source_files(config.source))} files)")
        started = time.perf_counter()
        stage_source(con, config.source, config.on_error, report)
        say(f"read sources in {time.perf_counter() - started:.1f}s ({report.total} records skipped)")
        return prepare_from_staged(con, config, out_dir, report, source_files(config.source), progress)
    finally:
        if con is not None:
            con.close()
        remove_tree(work)


def prepare_from_staged(
    con: Any,
    config: PrepareConfig,
    out_dir: str | Path,
    report: SkipReport,
    source_files: list[Path],
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Turn the staged tables in ``con`` into the dataset folder ``out_dir``; return the manifest.

    Leaves the connection's settings alone (see :func:`configure_connection`) and drops its own work tables."""
    out_dir = Path(out_dir)
    check_out_dir(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _msg: None)
    tmp = make_temp_dir(f".{out_dir.name}.tmp-", out_dir.parent)
    try:
        counts = _run(con, config, tmp, say)
        say("hashing source files")
        manifest = {
            "format_version": FORMAT_VERSION,
            "created_with": _versions(),
            "config": config.model_dump(mode="json"),
            "order": ORDER_TIE_BREAK,
            "counts": counts,
            "skipped": report.to_json(),
            "sources": [file_checksum(p) for p in source_files],
        }
        write_json_atomic(tmp / "manifest.json", manifest)
        _swap_into_place(tmp, out_dir)
        say(f"wrote {out_dir}")
        return manifest
    finally:
        remove_tree(tmp)
        for name in _TABLES:
            try:
                con.execute(f"DROP TABLE IF EXISTS {_t(name)}")
            except Exception:  # connection already broken; the original error matters
                pass


def _versions() -> dict[str, str]:
    import duckdb

    from bluerec import __version__

    return {"bluerec": __version__, "duckdb": duckdb.__version__}


# --------------------------------------------------------------------------------------------- the steps


def _run(con: Any, config: PrepareConfig, tmp: Path, say: Progress) -> dict[str, Any]:
    c: dict[str, Any] = {}
    T = _t

    # ---- raw counts and dense codes (assigned in id order, so code order == id order)
    say("indexing users and items")
    c["raw_interactions"] = _count(con, "staged_interactions")
    if c["raw_interactions"] == 0:
        raise DataError("staged_interactions", None, None, "the source has no interactions")
    con.execute(
        f"""CREATE OR REPLACE TABLE {T('items')} AS
        SELECT item_id, (row_number() OVER (ORDER BY item_id))::INTEGER AS iid
        FROM (SELECT DISTINCT item_id FROM staged_interactions)"""
    )
    con.execute(
        f"""CREATE OR REPLACE TABLE {T('users')} AS
        SELECT user_id, (row_number() OVER (ORDER BY user_id))::INTEGER AS uid
        FROM (SELECT DISTINCT user_id FROM staged_interactions)"""
    )
    c["raw_users"] = _count(con, T("users"))
    c["raw_items"] = _count(con, T("items"))
    c["raw_item_rows"] = _count(con, "staged_items")
    c["meta_items"] = int(_scalar(con, "SELECT count(DISTINCT item_id) FROM staged_items"))
    c["meta_duplicate_rows"] = c["raw_item_rows"] - c["meta_items"]

    # ---- step 1: item text
    say(f"rendering item text for {c['raw_items']:,} items")
    meta = "staged_items"
    if c["meta_duplicate_rows"]:
        meta = f"""(SELECT * FROM staged_items WHERE item_id IN (SELECT item_id FROM {T('items')})
            QUALIFY row_number() OVER (PARTITION BY item_id ORDER BY (coalesce(trim(title), '') = ''), title,
                main_category, store, categories, features, description, details, price) = 1)"""
    con.execute(
        f"""CREATE OR REPLACE TABLE {T('meta')} AS
        SELECT i.iid, i.item_id, m.item_id IS NOT NULL AS has_meta, m.title, m.main_category, m.categories,
               m.store, m.features, m.description
        FROM {T('items')} i LEFT JOIN {meta} m USING (item_id)"""
    )
    render_items_table(con, f"SELECT * FROM {T('meta')}", T("text"), config.item_text)
    con.execute(f"DROP TABLE {T('meta')}")
    row = con.execute(
        f"""SELECT count(*) FILTER (WHERE NOT has_meta), count(*) FILTER (WHERE has_meta AND text = '')
        FROM {T('text')}"""
    ).fetchone()
    c["items_without_meta"], c["items_with_empty_text"] = int(row[0]), int(row[1])
    keep = "t.has_meta AND t.text <> ''" if config.drop_items_without_text else "TRUE"

    con.execute(
        f"""CREATE OR REPLACE TABLE {T('work')} AS
        SELECT s.rowid AS rid, u.uid, t.iid, s.timestamp AS ts, s.source_order AS so, s.rating,
               hash(s.rating, s.review_title, s.review_text) AS rh
        FROM staged_interactions s
        JOIN {T('users')} u USING (user_id)
        JOIN {T('text')} t USING (item_id)
        WHERE {keep}"""
    )
    n = _count(con, T("work"))
    c["items_dropped_without_text"] = (
        c["items_without_meta"] + c["items_with_empty_text"] if config.drop_items_without_text else 0
    )
    c["interactions_dropped_item_without_text"] = c["raw_interactions"] - n
    say(
        f"dropped {c['items_dropped_without_text']:,} items without text "
        f"({c['interactions_dropped_item_without_text']:,} interactions)"
    )

    # ---- step 2: dedupe (user, item), keeping the earliest
    if config.dedupe:
        say("deduplicating (user, item) pairs")
        con.execute(
            f"""CREATE OR REPLACE TABLE {T('cur')} AS
            SELECT uid, iid, k.rid, k.ts, k.so, k.rating, k.rh FROM (
                SELECT uid, iid, min({{'ts': ts, 'so': so, 'rh': rh, 'rid': rid, 'rating': rating}}) AS k
                FROM {T('work')} GROUP BY uid, iid)"""
        )
        con.execute(f"DROP TABLE {T('work')}")
    else:
        con.execute(f"ALTER TABLE {T('work')} RENAME TO {_t('cur')}")
    m = _count(con, T("cur"))
    c["duplicates_removed"] = n - m
    n = m
    say(f"removed {c['duplicates_removed']:,} duplicate interactions")

    # ---- step 3: iterative k-core, then the minimum history length
    k = int(config.k_core)
    c["kcore_k"] = k
    c["kcore_iterations"] = 0
    users_before = int(_scalar(con, f"SELECT count(DISTINCT uid) FROM {T('cur')}"))
    items_before = int(_scalar(con, f"SELECT count(DISTINCT iid) FROM {T('cur')}"))
    n_before_kcore = n
    if k > 1:
        while True:
            con.execute(
                f"""CREATE OR REPLACE TABLE {T('next')} AS
                SELECT * FROM {T('cur')}
                WHERE uid IN (SELECT uid FROM {T('cur')} GROUP BY uid HAVING count(*) >= {k})
                  AND iid IN (SELECT iid FROM {T('cur')} GROUP BY iid HAVING count(*) >= {k})"""
            )
            m = _count(con, T("next"))
            con.execute(f"DROP TABLE {T('cur')}")
            con.execute(f"ALTER TABLE {T('next')} RENAME TO {_t('cur')}")
            if m == n:
                break
            c["kcore_iterations"] += 1
            say(f"k-core (k={k}) pass {c['kcore_iterations']}: removed {n - m:,} interactions")
            n = m
            if n == 0:
                break
    users_after = int(_scalar(con, f"SELECT count(DISTINCT uid) FROM {T('cur')}"))
    c["kcore_users_removed"] = users_before - users_after
    c["kcore_items_removed"] = items_before - int(_scalar(con, f"SELECT count(DISTINCT iid) FROM {T('cur')}"))
    c["kcore_interactions_removed"] = n_before_kcore - n

    min_n = int(config.min_user_interactions)
    con.execute(
        f"""CREATE OR REPLACE TABLE {T('next')} AS SELECT * FROM {T('cur')}
        WHERE uid IN (SELECT uid FROM {T('cur')} GROUP BY uid HAVING count(*) >= {min_n})"""
    )
    con.execute(f"DROP TABLE {T('cur')}")
    con.execute(f"ALTER TABLE {T('next')} RENAME TO {_t('cur')}")
    m = _count(con, T("cur"))
    c["users_dropped_min_interactions"] = users_after - int(_scalar(con, f"SELECT count(DISTINCT uid) FROM {T('cur')}"))
    c["interactions_dropped_min_interactions"] = n - m
    n = m
    if n == 0:
        raise DataError(
            "staged_interactions", None, None,
            f"no interactions left after filtering (k_core={k}, min_user_interactions={min_n}); "
            f"see counts: {c}",
        )

    # ---- steps 4 + 5: chronological order, seq and split
    say("ordering interactions and splitting (leave-last-out)")
    con.execute(
        f"""CREATE OR REPLACE TABLE {T('seq')} AS
        SELECT q.*, CASE WHEN q.seq = q.n - 1 THEN 'test' WHEN q.seq = q.n - 2 THEN 'valid' ELSE 'train' END AS split
        FROM (
            SELECT c.rid, c.uid, c.iid, u.user_id, i.item_id, c.ts, c.rating,
                   (row_number() OVER w - 1)::BIGINT AS seq,
                   count(*) OVER (PARTITION BY c.uid) AS n
            FROM {T('cur')} c
            JOIN {T('users')} u USING (uid)
            JOIN {T('items')} i USING (iid)
            WINDOW w AS (PARTITION BY c.uid ORDER BY c.ts, c.so, c.iid, c.rh, c.rid)
        ) q"""
    )
    con.execute(f"DROP TABLE {T('cur')}")

    # ---- step 6: split files. history = the last max_history items before the target, oldest first.
    h = int(config.max_history)
    say("writing train.parquet")
    # Train: a sliding-window list per user (work ~ rows x max_history, spillable).
    con.execute(
        f"""COPY (
            SELECT user_id, item_id, ts AS timestamp, rating, seq,
                   coalesce(list(item_id ORDER BY seq) OVER (PARTITION BY uid ORDER BY seq
                            ROWS BETWEEN {h} PRECEDING AND 1 PRECEDING), []::VARCHAR[]) AS history,
                   seq AS history_len
            FROM {T('seq')}
            QUALIFY split = 'train'
            ORDER BY uid, seq
        ) TO {_sql_str(tmp / 'train.parquet')} ({PARQUET_OPTIONS})"""
    )
    # Valid/test: one row per user, so slicing each user's full sequence is linear in the data.
    con.execute(
        f"""CREATE OR REPLACE TABLE {T('ulist')} AS
        SELECT uid, list(item_id ORDER BY seq) AS items FROM {T('seq')} GROUP BY uid"""
    )
    for split in ("valid", "test"):
        say(f"writing {split}.parquet")
        con.execute(
            f"""COPY (
                SELECT q.user_id, q.item_id, q.ts AS timestamp, q.rating, q.seq,
                       list_slice(l.items, greatest(q.seq - {h}, 0) + 1, q.seq) AS history,
                       q.seq AS history_len
                FROM {T('seq')} q JOIN {T('ulist')} l USING (uid)
                WHERE q.split = '{split}'
                ORDER BY q.uid
            ) TO {_sql_str(tmp / f'{split}.parquet')} ({PARQUET_OPTIONS})"""
        )
    con.execute(f"DROP TABLE {T('ulist')}")
    say("writing interactions.parquet")
    con.execute(
        f"""COPY (
            SELECT q.user_id, q.item_id, q.ts AS timestamp, q.rating, s.review_title, s.review_text, q.seq, q.split
            FROM {T('seq')} q JOIN staged_interactions s ON s.rowid = q.rid
            ORDER BY q.uid, q.seq
        ) TO {_sql_str(tmp / 'interactions.parquet')} ({PARQUET_OPTIONS})"""
    )
    say("writing items.parquet")
    con.execute(
        f"""COPY (
            SELECT t.item_id, t.text, t.title_clean AS title, p.popularity, t.main_category, t.categories, t.store
            FROM {T('text')} t
            JOIN (SELECT iid, count(*) FILTER (WHERE split <> 'test') AS popularity
                  FROM {T('seq')} GROUP BY iid) p USING (iid)
            ORDER BY t.iid
        ) TO {_sql_str(tmp / 'items.parquet')} ({PARQUET_OPTIONS})"""
    )

    row = con.execute(
        f"""SELECT count(DISTINCT uid), count(DISTINCT iid), count(*),
                   count(*) FILTER (WHERE split = 'train'), count(*) FILTER (WHERE split = 'valid'),
                   count(*) FILTER (WHERE split = 'test'), min(ts), max(ts)
        FROM {T('seq')}"""
    ).fetchone()
    c["users"], c["items"], c["interactions"] = int(row[0]), int(row[1]), int(row[2])
    c["train"], c["valid"], c["test"] = int(row[3]), int(row[4]), int(row[5])
    c["timestamp_min"], c["timestamp_max"] = int(row[6]), int(row[7])
    c["items_only_in_test"] = int(
        _scalar(
            con,
            f"""SELECT count(*) FROM (SELECT iid FROM {T('seq')} GROUP BY iid
                HAVING count(*) FILTER (WHERE split <> 'test') = 0)""",
        )
    )
    say(f"{c['users']:,} users, {c['items']:,} items, {c['interactions']:,} interactions")
    return c


def prepared_seqrec(folder: str | Path, out_dir: str | Path, *, k_core: int = 5,
                    progress: Progress | None = None) -> Path:
    """A shared seqrec subset (``user2item.jsonl.gz`` + ``item2title.jsonl.gz`` in ``folder``) prepared into
    ``out_dir`` once (k-core, leave-last-out); an existing prepared folder is reused as it is. Returns ``out_dir``.
    The benchmarks prepare the ``../shared/data`` subsets through this one function, so they all see the same data."""
    folder, out_dir = Path(folder), Path(out_dir)
    if not (out_dir / "manifest.json").exists():
        config = PrepareConfig(source=SourceConfig(format="seqrec", sequences=[folder / "user2item.jsonl.gz"],
                                                   titles=[folder / "item2title.jsonl.gz"]), k_core=k_core)
        prepare_dataset(config, out_dir, progress=progress)
    return out_dir
