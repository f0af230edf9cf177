"""Hostile input for the Amazon 2023 JSONL readers and ``prepare_dataset`` (property-based).

Invariants:
- staging never fails with anything but a :class:`DataError` that names the file and line;
- under ``on_error="skip"``: staged rows + skipped records == non-blank input lines, and every well-formed
  record's text survives byte-for-byte (arbitrary unicode, RTL, emoji, 100 KB fields);
- ``prepare_dataset`` orders each user's interactions by (timestamp, source order), keeps the earliest of
  duplicate (user, item) pairs, drops reviews of items missing from meta, and accounts for every raw row:
  raw = kept + every dropped count.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bluerec.data.config import PrepareConfig, SourceConfig
from bluerec.data.errors import DataError, SkipReport
from bluerec.data.prepare import prepare_dataset
from bluerec.data.readers import stage_source


@pytest.fixture(autouse=True)
def _toy_timestamps(monkeypatch):
    """These fixtures use toy timestamps (1, 2, 1000 ms); the sane-window check has its own tests
    (tests/data/test_value_ranges.py), so it is turned off here."""
    monkeypatch.setattr("bluerec.data.readers._engine.timestamp_checks", lambda unit="ms": ())

# Unicode text without NUL and without surrogates (JSON can only carry those escaped; json.dumps escapes
# every C0 control character, so raw-line control characters are exercised separately below).
UNI = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
SPECIAL = st.sampled_from([
    "\u202egnp.exe", "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627", "\U0001f600\U0001f469\u200d\U0001f469\u200d\U0001f467",
    "a\u2028b\u2029c", "x\x85y", "tab\there", "line\nbreak\r\nx", "\x1b[31mred\x1b[0m", "\ufeffbom", "\x7f\x01\x1f",
    "<b>html</b> &amp; &#39;", "'; DROP TABLE staged_items; --", "\\u0000", "",
])
TEXT = st.one_of(UNI, SPECIAL)
HUGE = 100_000
HUGE_META = ("\u00e9t\u00e9 \U0001f600 <i>x</i> &amp; " * 5000)[:HUGE]
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.function_scoped_fixture])


def review(user: str, item: str, ts: int, title: str, text: str, ascii_only: bool) -> str:
    return json.dumps({"rating": 4.0, "title": title, "text": text, "images": [], "asin": item, "parent_asin": item,
                       "user_id": user, "timestamp": ts, "helpful_vote": 0, "verified_purchase": True},
                      ensure_ascii=ascii_only)


def meta(item: str, title: str, description: str, ascii_only: bool) -> str:
    return json.dumps({"main_category": "All Beauty", "title": title, "features": [description],
                       "description": [description], "price": None, "store": None, "categories": [],
                       "details": {"k": description}, "parent_asin": item}, ensure_ascii=ascii_only)


@st.composite
def records(draw: st.DrawFn, max_size: int = 30) -> list[tuple[str, str, int, str, str]]:
    n = draw(st.integers(0, max_size))
    out = []
    for _ in range(n):
        user = draw(st.sampled_from(["U1", "U2", "U3", "\u05e9", "\U0001f600"]))
        item = draw(st.sampled_from(["P1", "P2", "P3", "P4", "P5", "P6"]))
        ts = draw(st.integers(0, 5))  # many exact timestamp ties
        title = draw(TEXT)
        text = draw(TEXT)
        if draw(st.integers(0, 19)) == 0:
            text = (text + "\u00e9\U0001f600 ") * (HUGE // max(1, len(text) + 3))  # a ~100 KB field
        out.append((user, item, ts, title, text))
    return out


# Raw lines that are not well-formed records: each must be one counted skip (or a located DataError).
BAD_LINES = st.sampled_from([
    b"{bad", b"[1, 2]", b'{"user_id": "U1"}', b'{"user_id": "U\xff", "parent_asin": "P1", "timestamp": 1}',
    b'{"user_id": "U1\x01", "parent_asin": "P1", "timestamp": 1}', b'{"user_id": "U1", "parent_asin": "P1\r", "timestamp": 1}',
    b'{"user_id": "U1", "parent_asin": "P1", "timestamp": "now"}', b'{"user_id": "", "parent_asin": "P1", "timestamp": 1}',
    b'{"user_id": "U1", "parent_asin": "P1", "timestamp": 1, "text": ["x"]}', b"\xef\xbb\xbf",
    b'{"user_id": "U1", "parent_asin": "P1", "timestamp": 1, "title": "\x1f"}', b"null", b"\"str\"",
])


def write_lines(path: Path, lines: list[bytes]) -> Path:
    data = b"".join(x + b"\n" for x in lines)
    path.write_bytes(gzip.compress(data, compresslevel=1) if path.name.endswith(".gz") else data)
    return path


def stage(source: SourceConfig, on_error: str) -> tuple[duckdb.DuckDBPyConnection, SkipReport]:
    con = duckdb.connect()
    con.execute("SET threads = 1")
    report = SkipReport()
    stage_source(con, source, on_error, report)  # type: ignore[arg-type]
    return con, report


def meta_lines(items: list[str], titles: list[str], ascii_only: bool) -> list[bytes]:
    return [meta(i, "T " + t, t, ascii_only).encode() for i, t in zip(items, titles)]


@SETTINGS
@given(recs=records(), bad=st.lists(st.tuples(st.integers(0, 40), BAD_LINES), max_size=4),
       blanks=st.lists(st.integers(0, 40), max_size=3), ascii_only=st.booleans(),
       meta_titles=st.lists(TEXT, min_size=6, max_size=6), gz=st.booleans())
def test_staging_hostile_lines(tmp_path_factory, recs, bad, blanks, ascii_only, meta_titles, gz):
    tmp = tmp_path_factory.mktemp("rd")
    good = [review(u, i, ts, ti, tx, ascii_only).encode() for u, i, ts, ti, tx in recs]
    lines: list[bytes | None] = list(good)  # None = blank line
    for pos, line in bad:
        lines.insert(min(pos, len(lines)), line)
    for pos in blanks:
        lines.insert(min(pos, len(lines)), None)
    raw = [b"" if x is None else x for x in lines]
    assume(any(x.strip() for x in raw))  # an all-blank file is the separately tested "file is empty"
    z = ".gz" if gz else ""
    reviews = write_lines(tmp / f"reviews.jsonl{z}", raw)
    items = ["P1", "P2", "P3", "P4", "P5", "P6"]
    meta_path = write_lines(tmp / f"meta.jsonl{z}", meta_lines(items, meta_titles, ascii_only))
    source = SourceConfig(format="amazon2023", reviews=[reviews], meta=[meta_path])

    try:
        con, report = stage(source, "raise")
    except DataError as err:
        assert bad, f"good input raised {err}"
        assert err.path == str(reviews) and err.line is not None and 1 <= err.line <= len(raw)
        assert f"reviews.jsonl{z}:{err.line}: " in str(err)
        assert raw[err.line - 1] not in good  # it points at one of the bad lines
    else:
        assert report.total == 0

    con, report = stage(source, "skip")
    staged = con.execute("SELECT count(*) FROM staged_interactions").fetchone()[0]  # type: ignore[index]
    non_blank = sum(1 for x in raw if x.strip())
    assert staged + report.total == non_blank
    assert staged >= len(good)  # no well-formed record is lost (a "bad" line may happen to be acceptable)
    # every good record survives exactly, at its own line number
    got = {so: (u, i, ts, ti, tx) for u, i, ts, ti, tx, so in con.execute(
        "SELECT user_id, item_id, timestamp, review_title, review_text, source_order FROM staged_interactions"
    ).fetchall()}
    for line_no, line in enumerate(raw, 1):
        if line in good:
            rec = json.loads(line)
            assert got[line_no] == (rec["user_id"], rec["parent_asin"], rec["timestamp"], rec["title"], rec["text"])
    items_staged = dict(con.execute("SELECT item_id, title FROM staged_items").fetchall())
    assert items_staged == {i: "T " + t for i, t in zip(items, meta_titles)}


@SETTINGS
@given(recs=records(max_size=40), with_meta=st.sets(st.sampled_from(["P1", "P2", "P3", "P4", "P5", "P6"]), max_size=6),
       ascii_only=st.booleans(), dedupe=st.booleans(),
       meta_texts=st.lists(st.one_of(TEXT, st.just(HUGE_META)), min_size=7, max_size=7))
def test_prepare_orders_chronologically_and_accounts_for_every_row(tmp_path_factory, recs, with_meta, ascii_only,
                                                                    dedupe, meta_texts):
    assume(recs)
    tmp = tmp_path_factory.mktemp("prep")
    reviews = write_lines(tmp / "reviews.jsonl",
                          [review(u, i, ts, ti, tx, ascii_only).encode() for u, i, ts, ti, tx in recs])
    items = sorted(with_meta)
    # meta may be empty (no item has text) but the file must not be: one unrelated item
    meta_path = write_lines(tmp / "meta.jsonl", meta_lines(items + ["PX"], meta_texts[: len(items) + 1], ascii_only))
    config = PrepareConfig(source=SourceConfig(format="amazon2023", reviews=[reviews], meta=[meta_path]),
                           k_core=0, min_user_interactions=3, dedupe=dedupe, threads=1, memory_limit="256MB")
    # the model: (user, item, ts, line) of rows whose item has meta; earliest per (user, item) under dedupe
    rows = [(u, i, ts, n) for n, (u, i, ts, _, _) in enumerate(recs, 1) if i in with_meta]
    if dedupe:
        first: dict[tuple[str, str], tuple[str, str, int, int]] = {}
        for r in rows:
            k = (r[0], r[1])
            if k not in first or (r[2], r[3]) < (first[k][2], first[k][3]):
                first[k] = r
        rows = list(first.values())
    per_user: dict[str, list[tuple[str, str, int, int]]] = {}
    for r in rows:
        per_user.setdefault(r[0], []).append(r)
    expected = {u: [r[1] for r in sorted(rs, key=lambda r: (r[2], r[3]))]
                for u, rs in per_user.items() if len(rs) >= 3}

    out = tmp / "out"
    try:
        manifest = prepare_dataset(config, out)
    except DataError as err:
        assert not expected, f"unexpected {err}"
        assert "no interactions" in str(err)
        return
    c = manifest["counts"]
    assert c["raw_interactions"] == len(recs)
    dropped = (c["interactions_dropped_item_without_text"] + c["duplicates_removed"]
               + c["kcore_interactions_removed"] + c["interactions_dropped_min_interactions"])
    assert c["raw_interactions"] == c["interactions"] + dropped
    assert c["interactions_dropped_item_without_text"] == sum(1 for r in recs if r[1] not in with_meta)
    assert c["interactions"] == c["train"] + c["valid"] + c["test"]

    inter = pq.read_table(out / "interactions.parquet").to_pylist()
    got: dict[str, list[str]] = {}
    for r in inter:
        got.setdefault(r["user_id"], []).append(r["item_id"])
        assert r["seq"] == len(got[r["user_id"]]) - 1
    assert got == expected
    # review text survives prepare untouched, huge or not
    texts = {(r[0], r[1], r[2], r[4]) for r in recs}
    for r in inter:
        assert any((r["user_id"], r["item_id"], r["timestamp"], r["review_text"]) == t for t in texts)
    # train histories: the chronological prefix (empty for each user's first target)
    for r in pq.read_table(out / "train.parquet").to_pylist():
        assert r["history"] == expected[r["user_id"]][: r["seq"]][-config.max_history:]
    assert sum(1 for r in pq.read_table(out / "train.parquet").to_pylist() if r["history"] == []) == len(expected)
    # hostile meta (any unicode, 100 KB descriptions) renders to a non-empty text within max_chars
    item_rows = pq.read_table(out / "items.parquet").to_pylist()
    assert {r["item_id"] for r in item_rows} == {i for seq in expected.values() for i in seq}
    for r in item_rows:
        assert r["text"].startswith("T") and 0 < len(r["text"]) <= config.item_text.max_chars


def test_empty_history_users_are_counted_not_lost(tmp_path: Path) -> None:
    """Users with one or two interactions (nothing to learn from) are dropped and counted."""
    recs = [("U1", "P1", 1), ("U1", "P2", 2), ("U1", "P3", 3), ("U2", "P1", 1), ("U3", "P1", 5), ("U3", "P2", 5)]
    reviews = write_lines(tmp_path / "r.jsonl", [review(u, i, ts, "", "", True).encode() for u, i, ts in recs])
    meta_path = write_lines(tmp_path / "m.jsonl", meta_lines(["P1", "P2", "P3"], ["a", "b", "c"], True))
    config = PrepareConfig(source=SourceConfig(format="amazon2023", reviews=[reviews], meta=[meta_path]), k_core=0,
                           threads=1)
    c = prepare_dataset(config, tmp_path / "out")["counts"]
    assert c["interactions"] == 3 and c["interactions_dropped_min_interactions"] == 3
    assert c["users_dropped_min_interactions"] == 2 and c["users"] == 1


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])


NON_FINITE = [b"NaN", b"-NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999"]


@pytest.mark.parametrize("value", NON_FINITE)
def test_non_finite_rating_is_a_located_error(tmp_path: Path, value: bytes) -> None:
    """Regression: DuckDB parses NaN / Infinity / 1e999 as doubles; they used to be staged as ratings (NaN then
    reached prompts as "(rated nan/5)"). Now a DataError naming file, line and field, or a counted skip."""
    good = review("U1", "P1", 1, "t", "x", True).encode()
    bad = b'{"user_id": "U1", "parent_asin": "P2", "timestamp": 2, "rating": ' + value + b"}"
    reviews = write_lines(tmp_path / "r.jsonl", [good, bad, good])
    meta_path = write_lines(tmp_path / "m.jsonl", meta_lines(["P1", "P2"], ["a", "b"], True))
    source = SourceConfig(format="amazon2023", reviews=[reviews], meta=[meta_path])
    with pytest.raises(DataError, match=r"r\.jsonl:2: field 'rating': expected a finite number"):
        stage(source, "raise")
    con, report = stage(source, "skip")
    assert report.counts == {(str(reviews), "rating: expected a finite number"): 1}
    assert con.execute("SELECT count(*), count(rating) FROM staged_interactions").fetchone() == (2, 2)


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity", "NaN"])
def test_non_finite_rating_in_benchmark_split_is_a_located_error(tmp_path: Path, value: str) -> None:
    header = "user_id,parent_asin,rating,timestamp,history"
    split = tmp_path / "All_Beauty.train.csv"
    split.write_text(f"{header}\nU1,P1,5.0,1000,\nU1,P2,{value},2000,P1\n")
    meta_path = write_lines(tmp_path / "m.jsonl", meta_lines(["P1", "P2"], ["a", "b"], True))
    source = SourceConfig(format="amazon2023_benchmark", splits=[split], meta=[meta_path])
    with pytest.raises(DataError, match=r"All_Beauty\.train\.csv:3: field 'rating': expected a finite number"):
        stage(source, "raise")
    con, report = stage(source, "skip")
    assert report.total == 1 and con.execute("SELECT count(*) FROM staged_interactions").fetchone() == (1,)
