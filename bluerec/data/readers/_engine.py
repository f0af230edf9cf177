"""Shared reader machinery: raw file → numbered rows → validated, typed columns, all in DuckDB SQL.

Every reader follows the same three steps, so that a file with tens of millions of lines is processed by
DuckDB's vectorised engine (and can spill to disk) instead of a Python loop:

1. :func:`line_source` numbers the raw lines of a (gzipped) file. The file is read as a one-column CSV whose
   delimiter is ``\\x01`` and which has no quoting, so every physical line is one row; ``row_number() OVER ()``
   is a *streaming* window in DuckDB and numbers rows in file order even when the scan runs in parallel.
   Empty lines come back as NULL and are dropped after numbering, so line numbers stay exact.
2. :func:`parse_json_sql` (or a format's own SQL) turns each row into typed columns plus an ``err`` struct
   (field, reason, detail) describing the first problem of the row, into a temp table.
3. :func:`settle` turns the bad rows into :class:`DataError` (raise: the first one in file order; skip: one
   count per (field, reason), in bulk) and deletes them, so the table only holds good rows.

Lines that DuckDB cannot even read (invalid UTF-8, a raw ``\\x01`` or mid-line ``\\r``, longer than
``MAX_LINE_BYTES``) make the scan fail as a whole; only then a Python pass finds them
(:func:`_scan_unreadable`) and, under ``skip``, writes a plain temporary copy with those lines blanked, so their
numbers and every other line survive.
"""

from __future__ import annotations

import gzip
import itertools
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

import duckdb

from bluerec.data.errors import DataError, OnError, SkipReport, handle

TMP = "_bluerec_rd_"  # prefix of every temp table the readers create (dropped by ``drop_temp``)
MAX_LINE_BYTES = 16 << 20  # real Amazon meta lines reach a few MB; DuckDB's default cap is 2 MB
# DuckDB sizes its CSV buffers at 16 x max_line_size unless told: 1 GiB buffers would break a 1 GB memory limit.
MALFORMED = "malformed JSON"
EMPTY = "file is empty"
MISSING = "required field is missing or null"


def sql_str(value: object) -> str:
    """A SQL string literal (file names may contain quotes)."""
    return "'" + str(value).replace("'", "''") + "'"


def err_sql(field: str | None, reason: str, detail: str = "NULL") -> str:
    """The ``err`` struct literal; ``detail`` is a SQL expression (a short specific value for the message)."""
    f = "NULL" if field is None else sql_str(field)
    return f"struct_pack(field := {f}::VARCHAR, reason := {reason}::VARCHAR, detail := {detail}::VARCHAR)"


NO_ERR = "NULL::STRUCT(field VARCHAR, reason VARCHAR, detail VARCHAR)"


def check_file(path: Path) -> None:
    """A missing input is a configuration mistake, never skippable."""
    if not path.exists():
        raise DataError(path, None, None, "file not found")
    if not path.is_file():
        raise DataError(path, None, None, "not a regular file")


def open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def read_head(path: Path, n: int = 1 << 16) -> bytes:
    """The first ``n`` bytes (decompressed); a cheap peek to tell formats apart and to read CSV headers."""
    try:
        with open_binary(path) as f:
            return f.read(n)
    except (OSError, EOFError) as e:
        raise DataError(path, None, None, f"cannot read file: {e}") from e


# ---------------------------------------------------------------------------------------------- raw lines


def _read_csv_lines(path: Path) -> str:
    # quote='' and escape='' make every byte literal; strict mode makes a stray \x01 an error, not a silent cut.
    return (
        f"read_csv({sql_str(path)}, columns={{'line': 'VARCHAR'}}, header=false, delim='\x01', quote='', "
        f"escape='', auto_detect=false, skip=0, compression='auto', max_line_size={MAX_LINE_BYTES}, "
        f"buffer_size={2 * MAX_LINE_BYTES})"
    )


def line_source(path: Path, *, from_line: int = 1) -> str:
    """SQL yielding ``line_no`` (1-based), ``loc`` (NULL) and ``line`` for every non-blank line >= ``from_line``."""
    return (
        f"SELECT line_no, NULL::VARCHAR AS loc, line FROM (SELECT row_number() OVER () AS line_no, line "
        f"FROM {_read_csv_lines(path)}) WHERE line IS NOT NULL AND line_no >= {from_line} "
        "AND (ascii(line) > 32 OR trim(line) <> '')"  # trim only the rare lines that start with a space
    )


def _scan_unreadable(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, reason) of every line DuckDB cannot read. Python, but only on the error path."""
    with open_binary(path) as f:
        for n, raw in enumerate(f, 1):
            if len(raw) > MAX_LINE_BYTES:
                yield n, f"line longer than {MAX_LINE_BYTES >> 20} MiB"
            elif b"\x01" in raw:
                yield n, "control character \\x01 in line"
            elif b"\r" in raw.rstrip(b"\r\n"):  # DuckDB's line reader rejects a carriage return mid-line
                yield n, "carriage return inside line"
            else:
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    yield n, "not valid UTF-8"


def _blank_lines(path: Path, bad: set[int], out: Path) -> None:
    """Copy ``path`` to plain ``out`` with the ``bad`` lines emptied (line numbers unchanged)."""
    with open_binary(path) as src, open(out, "wb") as dst:
        for n, raw in enumerate(src, 1):
            dst.write(b"\n" if n in bad else raw)


def _report_unreadable(path: Path, bad: list[tuple[int, str]], on_error: OnError, report: SkipReport) -> None:
    """Raise the first unreadable line, or count them by reason."""
    if on_error == "raise":
        raise DataError(path, bad[0][0], None, bad[0][1])
    for reason in dict.fromkeys(r for _, r in bad):
        lines = [n for n, r in bad if r == reason]
        report.add(DataError(path, lines[0], None, reason), len(lines))


def load_lines(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    table: str,
    select_sql: str,
    on_error: OnError,
    report: SkipReport,
    *,
    from_line: int = 1,
) -> None:
    """``CREATE TEMP TABLE table AS select_sql``, where ``{src}`` in ``select_sql`` is the file's line source.

    If DuckDB cannot read some lines, they are found by a Python scan: raise names the first one; skip counts
    them and reads a temporary copy with those lines blanked.
    """
    create = f"CREATE OR REPLACE TEMP TABLE {table} AS {select_sql}"
    try:
        con.execute(create.replace("{src}", line_source(path, from_line=from_line)))
        return
    except duckdb.Error as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        if isinstance(e, duckdb.IOException):  # e.g. a corrupt gzip stream
            raise DataError(path, None, None, f"cannot read file: {first}") from e
        if not isinstance(e, duckdb.InvalidInputException):  # out of memory, interrupted, …: not the data's fault
            raise
        try:  # under "raise" only the first unreadable line is needed
            scan = _scan_unreadable(path)
            bad = list(scan) if on_error == "skip" else list(itertools.islice(scan, 1))
        except (OSError, EOFError) as scan_err:
            raise DataError(path, None, None, f"cannot read file: {scan_err}") from e
        if not bad:
            raise DataError(path, None, None, f"cannot read file: {first}") from e
    _report_unreadable(path, bad, on_error, report)
    with tempfile.TemporaryDirectory(prefix="bluerec-") as tmp:
        clean = Path(tmp) / "lines.txt"
        _blank_lines(path, {n for n, _ in bad}, clean)
        con.execute(create.replace("{src}", line_source(clean, from_line=from_line)))


# ---------------------------------------------------------------------------------------------- JSON fields

Kind = Literal["id", "int", "num", "str", "str_or_num", "object", "str_list", "id_list", "int_list", "obj_list"]

_INT = ("BIGINT", "UBIGINT")
_NUM = (*_INT, "DOUBLE")
# Integers beyond 64 bits (21-digit Google user ids written as numbers) come back as DOUBLE with their exact
# digits kept in the JSON text, so an id may be a DOUBLE whose text is an integer literal.
_ID = ("VARCHAR", *_NUM)
_FRACTIONAL = "({t} = 'DOUBLE' AND NOT regexp_full_match({v}::VARCHAR, '-?[0-9]+'))"


@dataclass(frozen=True)
class KindSpec:
    types: tuple[str, ...]  # accepted json_type() of the value (of each element, for lists)
    expect: str  # "expected <expect>, got <json type>"
    convert: str  # SQL template; {v} = the JSON value (for lists {v} is each element, bound by a lambda)
    is_list: bool = False


KINDS: dict[str, KindSpec] = {
    "id": KindSpec(_ID, "a string or integer id", "{v}->>'$'"),
    "int": KindSpec(_INT, "an integer", "TRY_CAST({v} AS BIGINT)"),
    "num": KindSpec(_NUM, "a number", "TRY_CAST({v} AS DOUBLE)"),
    "str": KindSpec(("VARCHAR",), "a string", "{v}->>'$'"),
    "str_or_num": KindSpec(("VARCHAR", *_NUM), "a string or number", "{v}->>'$'"),
    "object": KindSpec(("OBJECT",), "an object", "{v}::VARCHAR"),
    "str_list": KindSpec(("VARCHAR", "NULL"), "a list of strings", "{v}->>'$'", is_list=True),
    "id_list": KindSpec(_ID, "a list of string or integer ids", "{v}->>'$'", is_list=True),
    "int_list": KindSpec(_INT, "a list of integers", "TRY_CAST({v} AS BIGINT)", is_list=True),
    "obj_list": KindSpec(("OBJECT",), "a list of objects", "{v}::VARCHAR", is_list=True),
}
_LIST_TYPES = {"str_list": "VARCHAR[]", "id_list": "VARCHAR[]", "int_list": "BIGINT[]", "obj_list": "VARCHAR[]"}


# ---------------------------------------------------------------------------------------------- value ranges
# A timestamp must fall in a sane window: from 1990-01-01 (before any review site) to one day from now (clock
# skew). A value that fits the window only in the other unit (seconds for milliseconds) is named as such.
TIMESTAMP_MIN_S = 631_152_000  # 1990-01-01T00:00:00Z
DAY_S = 86_400


def timestamp_max_s() -> int:
    return int(time.time()) + DAY_S


def timestamp_checks(unit: str = "ms") -> tuple[tuple[str, str], ...]:
    """(condition on ``{x}`` — the converted value —, reason) pairs for a Unix timestamp in ``unit``."""
    hi_s = timestamp_max_s()
    day = time.strftime("%Y-%m-%d", time.gmtime(hi_s))
    if unit == "ms":
        lo, hi = TIMESTAMP_MIN_S * 1000, hi_s * 1000
        other = (f"{{x}} >= {TIMESTAMP_MIN_S} AND {{x}} <= {hi_s}",
                 "out of range: looks like Unix seconds, expected milliseconds (x1000)")
    else:
        lo, hi = TIMESTAMP_MIN_S, hi_s
        other = (f"{{x}} >= {TIMESTAMP_MIN_S * 1000} AND {{x}} <= {hi_s * 1000}",
                 "out of range: looks like Unix milliseconds, expected seconds")
    name = "milliseconds" if unit == "ms" else "seconds"
    return (
        other,
        (f"{{x}} < {lo}", f"out of range: before 1990-01-01 (expected Unix {name})"),
        (f"{{x}} > {hi}", f"out of range: after {day} (expected Unix {name})"),
    )


RATING_SCALE = (1, 5)  # Amazon Reviews and Google Local: 1-5 stars


def rating_checks(scale: tuple[int, int] = RATING_SCALE) -> tuple[tuple[str, str], ...]:
    lo, hi = scale
    return ((f"{{x}} < {lo} OR {{x}} > {hi}", f"outside the rating scale {lo}-{hi}"),)


@dataclass(frozen=True)
class Field:
    """One top-level key of a JSON record: how to check it and which column it becomes.

    ``checks`` are value-range checks after the type check: ``(condition, reason)`` with ``{x}`` the converted
    value; ``"timestamp_ms"``/``"timestamp_s"``/``"rating"`` name the standard ones (built per read, so the
    window's end is always one day from now)."""

    key: str
    kind: Kind
    required: bool = False
    name: str = ""  # output column; defaults to ``key``
    checks: str | tuple[tuple[str, str], ...] = ()

    @property
    def column(self) -> str:
        return self.name or self.key


def _types_in(t: str, types: tuple[str, ...]) -> str:
    return f"{t} IN ({', '.join(sql_str(x) for x in types)})"


def _label(t: str) -> str:
    """json_type() → the JSON word a user knows."""
    return (
        f"CASE {t} WHEN 'VARCHAR' THEN 'string' WHEN 'BIGINT' THEN 'integer' WHEN 'UBIGINT' THEN 'integer' "
        f"WHEN 'DOUBLE' THEN 'number' ELSE lower({t}) END"
    )


def _field_sql(f: Field, v: str, t: str) -> tuple[str, str]:
    """(problem expression — NULL when fine, converted value expression) for one field."""
    k = KINDS[f.kind]
    got = f"'expected {k.expect}, got ' || {_label(t)}"
    if k.is_list:
        elems = f"json_extract({v}, '$[*]')"
        ok_elem = _types_in("json_type(x)", k.types)
        if f.kind == "int_list":
            ok_elem += " AND TRY_CAST(x AS BIGINT) IS NOT NULL"
        if f.kind == "id_list":
            ok_elem += " AND NOT " + _FRACTIONAL.format(t="json_type(x)", v="x")
        wrong_type = f"{t} <> 'ARRAY'"
        checks = [(f"NOT coalesce(list_bool_and(list_transform({elems}, lambda x: {ok_elem})), true)",
                   f"'expected {k.expect}, got other values in the list'")]
        conv = f"list_transform({elems}, lambda x: {k.convert.format(v='x')})"
        if f.kind == "str_list":  # JSON nulls inside a text list carry nothing
            conv = f"list_filter({conv}, lambda x: x IS NOT NULL)"
        conv = f"CASE WHEN {t} = 'ARRAY' THEN {conv} ELSE []::{_LIST_TYPES[f.kind]} END"
    else:
        wrong_type = f"NOT {_types_in(t, k.types)}"
        checks = []
        if f.kind == "int":
            checks.append((f"TRY_CAST({v} AS BIGINT) IS NULL", "'integer out of range'"))
        if f.kind == "num":  # NaN / Infinity / 1e999 parse as doubles but are no rating
            checks.append((f"NOT isfinite(TRY_CAST({v} AS DOUBLE))", "'expected a finite number'"))
        if f.kind == "id":  # an empty id would silently merge unrelated records
            checks.append((_FRACTIONAL.format(t=t, v=v), f"'expected {k.expect}, got number'"))
            checks.append((f"{v}->>'$' = ''", "'empty id'"))
        conv = f"CASE WHEN {_types_in(t, k.types)} THEN {k.convert.format(v=v)} END"
        value = k.convert.format(v=v)
        checks += [(cond.replace("{x}", f"({value})"), sql_str(reason)) for cond, reason in _value_checks(f)]
    missing = sql_str(MISSING) if f.required else "NULL"
    more = "".join(f" WHEN {cond} THEN {reason}" for cond, reason in checks)
    return f"CASE WHEN {t} IS NULL OR {t} = 'NULL' THEN {missing} WHEN {wrong_type} THEN {got}{more} END", conv


def _value_checks(f: Field) -> tuple[tuple[str, str], ...]:
    if isinstance(f.checks, tuple):
        return f.checks
    return {"timestamp_ms": timestamp_checks("ms"), "timestamp_s": timestamp_checks("s"),
            "rating": rating_checks()}[f.checks]


def parse_json_sql(fields: Sequence[Field], carry: Sequence[str] = ()) -> str:
    """SELECT over ``{src}`` (line_no, loc, line[, carry…]) → line_no, loc, carry…, err, one column per field."""
    paths = ", ".join(sql_str('$."' + f.key.replace('"', '\\"') + '"') for f in fields)
    vals = ", ".join(f"_v[{i}] AS _v{i}, json_type(_v[{i}]) AS _t{i}" for i in range(1, len(fields) + 1))
    problems, convs = [], []
    for i, f in enumerate(fields, 1):
        problem, conv = _field_sql(f, f"_v{i}", f"_t{i}")
        problems.append((f.key, problem))
        convs.append(f"{conv} AS {f.column}")
    checks = "".join(
        f" WHEN ({p}) IS NOT NULL THEN {err_sql(key, p, f'left(_v{i}::VARCHAR, 60)')}"
        for i, (key, p) in enumerate(problems, 1)
    )
    carried = "".join(f", {c}" for c in carry)
    return (
        f"SELECT line_no, loc{carried}, CASE WHEN _v IS NULL THEN {err_sql(None, sql_str(MALFORMED))} "
        f"WHEN NOT _obj THEN {err_sql(None, sql_str(MALFORMED + ' (expected an object)'))}{checks} "
        f"ELSE {NO_ERR} END AS err, {', '.join(convs)} "
        f"FROM (SELECT *, {vals} FROM (SELECT line_no, loc{carried}, try(json_extract(line, [{paths}])) AS _v, "
        "(left(line, 1) = '{' OR starts_with(ltrim(line), '{')) AS _obj FROM ({src})))"  # ltrim (a copy): rare
    )


# ---------------------------------------------------------------------------------------------- errors


def settle(
    con: duckdb.DuckDBPyConnection,
    table: str,
    path: Path,
    on_error: OnError,
    report: SkipReport,
    extra: Sequence[str] = (),
) -> None:
    """Report the bad rows of ``table`` (its ``err`` column plus the ``extra`` queries, each yielding
    ``line_no, loc, field, reason, detail``) and delete them. An empty table is an empty file.

    Raise: the first bad row in file order. Skip: one count per (field, reason), the first row as example.
    A row with several problems counts once, for the first check that flagged it.
    """
    rows, errors = con.execute(f"SELECT count(*), count(err) FROM {table}").fetchone()  # type: ignore[misc]
    if rows == 0:
        if report.skipped_in(path):  # every line was unreadable and is counted already: not an empty file
            return
        # DuckDB reads a line of only \x01 (its column delimiter) as blank: look before calling the file empty.
        bad = list(itertools.islice(_scan_unreadable(path), None if on_error == "skip" else 1)) if path.is_file() else []
        if bad:
            _report_unreadable(path, bad, on_error, report)
        else:
            handle(DataError(path, None, None, EMPTY), on_error, report)
        return
    if errors == 0 and not extra:  # the common case: nothing to report
        return
    queries = [f"SELECT line_no, loc, err.field, err.reason, err.detail, 0 AS prio FROM {table} WHERE err IS NOT NULL"]
    queries += [f"SELECT *, {i} AS prio FROM ({q})" for i, q in enumerate(extra, 1)]
    bad = f"{TMP}bad"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {bad} AS SELECT line_no, loc, field, reason, detail FROM "
        f"({' UNION ALL '.join(queries)}) QUALIFY row_number() OVER (PARTITION BY line_no ORDER BY prio) = 1"
    )
    try:
        if on_error == "raise":
            row = con.execute(f"SELECT line_no, loc, field, reason, detail FROM {bad} ORDER BY line_no LIMIT 1").fetchone()
            if row is not None:
                line, loc, field, reason, detail = row
                problem = reason + (f": {detail}" if detail is not None else "") + (f" ({loc})" if loc else "")
                raise DataError(path, None if loc else line, field, problem)
            return
        groups = con.execute(
            f"SELECT field, reason, count(*), min(line_no), bool_or(loc IS NOT NULL) FROM {bad} "
            f"GROUP BY ALL ORDER BY min(line_no)"
        ).fetchall()
        for field, reason, n, line, by_record in groups:
            report.add(DataError(path, None if by_record else line, field, reason), n)
        if groups:
            con.execute(f"DELETE FROM {table} WHERE line_no IN (SELECT line_no FROM {bad})")
    finally:
        con.execute(f"DROP TABLE IF EXISTS {bad}")


def unknown_items_sql(table: str, list_col: str, field: str, known_sql: str) -> str:
    """An ``extra`` query for :func:`settle`: rows whose ``list_col`` names an id missing from ``known_sql``."""
    return (
        f"SELECT line_no, any_value(loc), {sql_str(field)}, 'unknown item (not in meta)', "
        f"'''' || arg_min(item, pos) || '''' FROM (SELECT line_no, loc, unnest({list_col}) AS item, "
        f"generate_subscripts({list_col}, 1) AS pos FROM {table}) WHERE item NOT IN ({known_sql}) GROUP BY line_no"
    )


def drop_temp(con: duckdb.DuckDBPyConnection) -> None:
    """Drop every temp table the readers made (also after an error)."""
    names = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE temporary AND starts_with(table_name, ?)", [TMP]
    ).fetchall()
    for (name,) in names:
        con.execute(f"DROP TABLE IF EXISTS {name}")


