"""Readers: every format in its real schema, every kind of bad input (raise and skip), gz and plain, real data."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pytest

from bluerec.data.config import SourceConfig
from bluerec.data.errors import DataError, SkipReport
from bluerec.data.readers import _engine, stage_source
from bluerec.data.schema import INTERACTION_COLUMNS, ITEM_COLUMNS, SOURCE_ORDER_FILE_STRIDE


@pytest.fixture(autouse=True)
def _toy_timestamps(monkeypatch):
    """These fixtures use toy timestamps (1, 2, 1000 ms); the sane-window check has its own tests
    (tests/data/test_value_ranges.py), so it is turned off here."""
    monkeypatch.setattr("bluerec.data.readers._engine.timestamp_checks", lambda unit="ms": ())

Lines = Sequence[str | bytes]


# ---------------------------------------------------------------------------------------------- sample data
# Records in the exact real schemas (see /work/shared/data/README.md and the Amazon / Google Local docs).


def az_review(user: str, item: str, ts: int, rating: float | None = 5.0, title: str = "Nice", text: str = "Works.") -> str:
    return json.dumps(
        {"rating": rating, "title": title, "text": text, "images": [], "asin": item + "-v", "parent_asin": item,
         "user_id": user, "timestamp": ts, "helpful_vote": 0, "verified_purchase": True}
    )


def az_meta(item: str, **over: object) -> str:
    record = {"main_category": "All Beauty", "title": f"Title {item}", "average_rating": 4.5, "rating_number": 12,
              "features": ["soft"], "description": ["A thing."], "price": 9.99, "images": [], "videos": [],
              "store": "Acme", "categories": ["Beauty", "Hair"], "details": {"Brand": "Acme"}, "parent_asin": item,
              "bought_together": None}
    record.update(over)
    return json.dumps(record)


def gl_review(user: str | int, item: str, ts: int, rating: int = 4) -> str:
    return json.dumps({"user_id": user, "name": "Ann", "time": ts, "rating": rating, "text": "Good food",
                       "pics": None, "resp": None, "gmap_id": item})


def gl_meta(item: str, **over: object) -> str:
    record = {"name": f"Cafe {item}", "address": "1 Main St", "gmap_id": item, "description": "Cozy.",
              "latitude": 1.0, "longitude": 2.0, "category": ["Cafe"], "avg_rating": 4.4, "num_of_reviews": 9,
              "price": "$$", "hours": None, "MISC": None, "state": "Open", "relative_results": [], "url": "u"}
    record.update(over)
    return json.dumps(record)


def seq(user: int, items: list[int], ts: list[int]) -> str:
    return json.dumps({"user_id": user, "item_ids": items, "timestamps": ts})


SPLIT_HEADER = "user_id,parent_asin,rating,timestamp,history"
META_CSV_HEADER = ",index,title,description,price,details,parent_asin"


def meta_csv_row(n: int, item: str, details: str = "{'Brand': 'Acme'}", description: str = "") -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([n, n, f"Title {item}, big", description, "9.5", details, item])
    return out.getvalue()


def user_reviews_array(users: dict[str, list[tuple[str, int]]]) -> str:
    return json.dumps(
        [{"user_id": u, "reviews": [{"product_name": "p", "parent_asin": i, "rating": 4.0, "title": f"T {i}",
                                     "text": f"about {i}", "timestamp": ts} for i, ts in rs]} for u, rs in users.items()],
        indent=4,
    )


# Per format: role -> [(file name, lines)]. Every case below edits the first file of one role.
def good_files(fmt: str, gz: bool) -> dict[str, list[tuple[str, list[str | bytes]]]]:
    z = ".gz" if gz else ""
    if fmt == "amazon2023":
        return {
            "reviews": [(f"All_Beauty.jsonl{z}", [az_review("U1", "P1", 1000), az_review("U1", "P2", 2000, rating=4.0),
                                                   az_review("U2", "P1", 1500), az_review("U2", "P3", 900)])],
            "meta": [(f"meta_All_Beauty.jsonl{z}", [az_meta("P1"), az_meta("P2", price="None", details={}),
                                                    az_meta("P3", price="$12", categories=[], features=None)])],
        }
    if fmt == "amazon2023_benchmark":
        return {
            "splits": [
                (f"All_Beauty.train.csv{z}", [SPLIT_HEADER, "U1,P1,5.0,1000,", "U1,P2,4.0,2000,P1",
                                              "U2,P3,3.0,1500,", "U2,P1,,1600,P3"]),
                (f"All_Beauty.valid.csv{z}", [SPLIT_HEADER, "U1,P3,5.0,3000,P1 P2"]),
                (f"All_Beauty.test.csv{z}", [SPLIT_HEADER, "U1,P4,2.0,4000,P1 P2 P3"]),
            ],
            "meta": [(f"filterd_meta_items.csv{z}", [META_CSV_HEADER, meta_csv_row(0, "P1"),
                                                     meta_csv_row(1, "P2", details="{}", description="Plain text."),
                                                     meta_csv_row(2, "P3", description="['a', 'b']"),
                                                     meta_csv_row(3, "P4", details="")])],
            "reviews": [(f"filtered_user_reviews.json{z}", [user_reviews_array(
                {"U1": [("P1", 1000), ("P2", 2000), ("P2", 2000), ("P9", 5)], "U2": [("P3", 1500)]})])],
        }
    if fmt == "google_local":
        return {
            "reviews": [(f"review-Vermont.json{z}", [gl_review("101", "G1", 1000), gl_review(10**20 + 2, "G2", 2000),
                                                     gl_review("101", "G2", 3000), gl_review("103", "G1", 500)])],
            "meta": [(f"meta-Vermont.json{z}", [gl_meta("G1"), gl_meta("G2", category=None, description=None,
                                                                       price=None)])],
        }
    assert fmt == "seqrec"
    return {
        "sequences": [(f"user2item.jsonl{z}", [seq(100, [10, 11, 12], [5, 5, 5]), seq(101, [12, 10], [7, 8]),
                                               seq(102, [], [])])],
        "titles": [(f"item2title.jsonl{z}", [json.dumps({"item_id": i, "title": f"Item &amp; {i}"}) for i in (10, 11, 12)])],
    }


GOOD_COUNTS = {  # interactions, items
    "amazon2023": (4, 3),
    "amazon2023_benchmark": (6, 4),
    "google_local": (4, 2),
    "seqrec": (5, 3),
}


def write(path: Path, lines: Lines) -> Path:
    data = b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def write_source(tmp: Path, fmt: str, files: dict[str, list[tuple[str, Lines]]]) -> SourceConfig:
    return SourceConfig(format=fmt, **{role: [write(tmp / n, ls) for n, ls in fs] for role, fs in files.items()})


def stage(source: SourceConfig, on_error: str = "raise") -> tuple[duckdb.DuckDBPyConnection, SkipReport]:
    con = duckdb.connect()
    report = SkipReport()
    stage_source(con, source, on_error, report)  # type: ignore[arg-type]
    return con, report


def counts(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    return (con.execute("SELECT count(*) FROM staged_interactions").fetchone()[0],  # type: ignore[index]
            con.execute("SELECT count(*) FROM staged_items").fetchone()[0])  # type: ignore[index]


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, object]]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


FORMATS = list(GOOD_COUNTS)


# ---------------------------------------------------------------------------------------------- good input


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_good_input_stages_every_record(tmp_path: Path, fmt: str, gz: bool) -> None:
    con, report = stage(write_source(tmp_path, fmt, good_files(fmt, gz)))
    assert counts(con) == GOOD_COUNTS[fmt]
    assert report.total == 0
    cols = [r[0] for r in con.execute("DESCRIBE staged_interactions").fetchall()]
    assert tuple(cols) == INTERACTION_COLUMNS
    assert tuple(r[0] for r in con.execute("DESCRIBE staged_items").fetchall()) == ITEM_COLUMNS
    temp = con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()[0]  # type: ignore[index]
    assert temp == 0, "readers must drop their temp tables"


def test_amazon2023_values(tmp_path: Path) -> None:
    con, _ = stage(write_source(tmp_path, "amazon2023", good_files("amazon2023", gz=True)))
    inter = rows(con, "SELECT * FROM staged_interactions ORDER BY source_order")
    assert [(r["user_id"], r["item_id"], r["timestamp"], r["source_order"]) for r in inter] == [
        ("U1", "P1", 1000, 1), ("U1", "P2", 2000, 2), ("U2", "P1", 1500, 3), ("U2", "P3", 900, 4)]
    assert inter[0]["rating"] == 5.0 and inter[1]["rating"] == 4.0
    assert inter[0]["review_title"] == "Nice" and inter[0]["review_text"] == "Works."
    items = {r["item_id"]: r for r in rows(con, "SELECT * FROM staged_items")}
    p1, p2, p3 = items["P1"], items["P2"], items["P3"]
    assert p1["title"] == "Title P1" and p1["main_category"] == "All Beauty" and p1["store"] == "Acme"
    assert p1["categories"] == ["Beauty", "Hair"] and p1["features"] == ["soft"] and p1["description"] == ["A thing."]
    assert json.loads(p1["details"]) == {"Brand": "Acme"} and p1["price"] == "9.99"  # type: ignore[arg-type]
    assert p2["price"] is None and p2["details"] is None  # "None" price and {} details carry nothing
    assert p3["price"] == "$12" and p3["categories"] == [] and p3["features"] == []


def test_benchmark_values_and_review_attachment(tmp_path: Path) -> None:
    con, report = stage(write_source(tmp_path, "amazon2023_benchmark", good_files("amazon2023_benchmark", gz=False)))
    inter = rows(con, "SELECT * FROM staged_interactions ORDER BY source_order")
    assert len(inter) == 6  # the duplicated (U1, P2, 2000) review did not duplicate the interaction
    first = inter[0]
    assert (first["user_id"], first["item_id"], first["timestamp"], first["rating"]) == ("U1", "P1", 1000, 5.0)
    assert (first["review_title"], first["review_text"]) == ("T P1", "about P1")
    assert first["source_order"] == 2  # line 2 (after the header) of file 0
    no_review = [r for r in inter if r["item_id"] == "P4"][0]
    assert no_review["review_text"] is None and no_review["source_order"] == 2 * SOURCE_ORDER_FILE_STRIDE + 2
    u2p1 = [r for r in inter if (r["user_id"], r["item_id"]) == ("U2", "P1")][0]
    assert u2p1["rating"] is None  # empty CSV rating cell (and no matching review)
    items = {r["item_id"]: r for r in rows(con, "SELECT * FROM staged_items")}
    assert items["P1"]["title"] == "Title P1, big" and json.loads(items["P1"]["details"]) == {"Brand": "Acme"}  # type: ignore[arg-type]
    assert items["P2"]["details"] is None and items["P2"]["description"] == ["Plain text."]
    assert items["P3"]["description"] == ["a", "b"] and items["P4"]["details"] is None
    assert items["P1"]["price"] == "9.5" and items["P1"]["categories"] == []
    assert report.total == 0


def test_benchmark_meta_jsonl_and_review_jsonl(tmp_path: Path) -> None:
    files = good_files("amazon2023_benchmark", gz=True)
    files["meta"] = [("meta.jsonl.gz", [az_meta(i) for i in ("P1", "P2", "P3", "P4")])]
    files["reviews"] = [("All_Beauty.jsonl.gz", [az_review("U1", "P1", 1000, title="JT"), az_review("U9", "P1", 1)])]
    con, _ = stage(write_source(tmp_path, "amazon2023_benchmark", files))
    assert counts(con) == (6, 4)
    titles = con.execute("SELECT review_title FROM staged_interactions WHERE review_title IS NOT NULL").fetchall()
    assert titles == [("JT",)]


def test_benchmark_without_reviews(tmp_path: Path) -> None:
    files = good_files("amazon2023_benchmark", gz=False)
    del files["reviews"]
    con, _ = stage(write_source(tmp_path, "amazon2023_benchmark", files))
    assert counts(con) == (6, 4)
    assert con.execute("SELECT count(review_text) FROM staged_interactions").fetchone()[0] == 0  # type: ignore[index]


def test_google_local_values(tmp_path: Path) -> None:
    con, _ = stage(write_source(tmp_path, "google_local", good_files("google_local", gz=False)))
    users = [r[0] for r in con.execute("SELECT user_id FROM staged_interactions ORDER BY source_order").fetchall()]
    assert users == ["101", str(10**20 + 2), "101", "103"]  # integer ids (even beyond 64 bits) become exact text
    r = rows(con, "SELECT * FROM staged_interactions ORDER BY source_order LIMIT 1")[0]
    assert (r["item_id"], r["timestamp"], r["rating"], r["review_title"], r["review_text"]) == ("G1", 1000, 4.0, None, "Good food")
    items = {r["item_id"]: r for r in rows(con, "SELECT * FROM staged_items")}
    g1, g2 = items["G1"], items["G2"]
    assert g1["title"] == "Cafe G1" and g1["categories"] == ["Cafe"] and g1["description"] == ["Cozy."]
    assert json.loads(g1["details"]) == {"address": "1 Main St", "avg_rating": 4.4, "price": "$$"}  # type: ignore[arg-type]
    assert g2["categories"] == [] and g2["description"] == [] and g2["price"] is None
    assert json.loads(g2["details"]) == {"address": "1 Main St", "avg_rating": 4.4}  # type: ignore[arg-type]


def test_seqrec_values_and_order(tmp_path: Path) -> None:
    con, _ = stage(write_source(tmp_path, "seqrec", good_files("seqrec", gz=True)))
    got = con.execute("SELECT user_id, item_id, timestamp, rating FROM staged_interactions ORDER BY source_order").fetchall()
    assert got == [("100", "10", 5000, None), ("100", "11", 5000, None), ("100", "12", 5000, None),
                   ("101", "12", 7000, None), ("101", "10", 8000, None)]  # seconds -> ms; list order kept on ties
    orders = [r[0] for r in con.execute("SELECT source_order FROM staged_interactions ORDER BY source_order").fetchall()]
    assert orders == [0, 1, 2, 3, 4]
    assert con.execute("SELECT title FROM staged_items WHERE item_id = '10'").fetchone() == ("Item &amp; 10",)


def test_multiple_files_concatenate_with_file_stride(tmp_path: Path) -> None:
    files = good_files("amazon2023", gz=False)
    files["reviews"].append(("more.jsonl.gz", [az_review("U3", "P1", 7)]))
    files["meta"].append(("more_meta.jsonl", [az_meta("P1", title="later duplicate"), az_meta("P9")]))
    con, report = stage(write_source(tmp_path, "amazon2023", files))
    assert counts(con) == (5, 4)
    assert con.execute("SELECT source_order FROM staged_interactions WHERE user_id = 'U3'").fetchone() == (
        SOURCE_ORDER_FILE_STRIDE + 1,)
    assert con.execute("SELECT title FROM staged_items WHERE item_id = 'P1'").fetchone() == ("Title P1",)
    assert report.counts[(str(tmp_path / "more_meta.jsonl"), "parent_asin: duplicate item in meta")] == 1


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_duplicate_meta_items_keep_first_and_are_counted(tmp_path: Path, on_error: str) -> None:
    files = good_files("google_local", gz=True)
    files["meta"][0][1].extend([gl_meta("G1", name="dup"), gl_meta("G1", name="dup2")])
    con, report = stage(write_source(tmp_path, "google_local", files), on_error)
    assert con.execute("SELECT title FROM staged_items WHERE item_id = 'G1'").fetchone() == ("Cafe G1",)
    key = (str(tmp_path / "meta-Vermont.json.gz"), "gmap_id: duplicate item in meta")
    assert report.counts == {key: 2}
    assert ":3:" in report.examples[key]


def test_blank_lines_are_skipped_and_line_numbers_stay_exact(tmp_path: Path) -> None:
    files = good_files("amazon2023", gz=True)
    files["reviews"][0] = ("r.jsonl.gz", ["", az_review("U1", "P1", 1), "   ", "", "{bad", az_review("U1", "P2", 2)])
    with pytest.raises(DataError, match=r"r\.jsonl\.gz:5: malformed JSON"):
        stage(write_source(tmp_path, "amazon2023", files))
    con, report = stage(write_source(tmp_path, "amazon2023", files), "skip")
    assert [r[0] for r in con.execute("SELECT source_order FROM staged_interactions ORDER BY 1").fetchall()] == [2, 6]
    assert report.total == 1


def test_line_numbers_exact_across_parallel_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain files are scanned in parallel (gzip is not): numbering must still follow the file."""
    monkeypatch.setattr(_engine, "MAX_LINE_BYTES", 1 << 18)  # small CSV buffers: the ~9 MB file spans many
    n, bad = 40_000, 37_003
    lines = [az_review(f"U{i % 97}", f"P{i % 13}", i) if i != bad else '{"user_id": "U1"' for i in range(1, n + 1)]
    source = SourceConfig(format="amazon2023", reviews=[write(tmp_path / "big.jsonl", lines)],
                          meta=[write(tmp_path / "m.jsonl", [az_meta("P1")])])
    con = duckdb.connect()
    con.execute("SET threads = 4; SET preserve_insertion_order = false")
    with pytest.raises(DataError, match=rf"big\.jsonl:{bad}: malformed JSON"):
        stage_source(con, source, "raise", SkipReport())
    report = SkipReport()
    stage_source(con, source, "skip", report)
    mismatched = con.execute("SELECT count(*) FROM staged_interactions WHERE timestamp <> source_order").fetchone()
    assert mismatched == (0,) and counts(con)[0] == n - 1 and report.total == 1


# ---------------------------------------------------------------------------------------------- bad input
# (format, role, bad line inserted as line 3 of the role's first file, field, reason fragment)

BAD = [
    ("amazon2023", "reviews", '{"user_id": "U1", "parent_asin": ', None, "malformed JSON"),
    ("amazon2023", "reviews", "[1, 2]", None, "malformed JSON (expected an object)"),
    ("amazon2023", "reviews", json.dumps({"parent_asin": "P1", "timestamp": 5}), "user_id", "missing"),
    ("amazon2023", "reviews", az_review("U1", "P1", 5).replace('"user_id": "U1"', '"user_id": null'), "user_id", "missing"),
    ("amazon2023", "reviews", az_review("U1", "P1", 5).replace('"timestamp": 5', '"timestamp": "abc"'), "timestamp", "expected an integer, got string"),
    ("amazon2023", "reviews", az_review("U1", "P1", 5).replace('"timestamp": 5', '"timestamp": 1.5'), "timestamp", "expected an integer, got number"),
    ("amazon2023", "reviews", az_review("U1", "P1", 5).replace('"user_id": "U1"', '"user_id": {"id": 1}'), "user_id", "expected a string or integer id, got object"),
    ("amazon2023", "reviews", az_review("U1", "P1", 5).replace('"user_id": "U1"', '"user_id": ""'), "user_id", "empty id"),
    ("amazon2023", "reviews", az_review("U1", "P1", 5, rating="five"), "rating", "expected a number, got string"),  # type: ignore[arg-type]
    ("amazon2023", "reviews", az_review("U1", "P1", 5, rating=None), "rating", "missing"),
    ("amazon2023", "reviews", az_review("U1", "P1", 5, text=["x"]), "text", "expected a string, got array"),  # type: ignore[arg-type]
    ("amazon2023", "reviews", az_review("U1", "P1", 5).replace('"timestamp": 5', '"timestamp": 99999999999999999999'), "timestamp", "integer"),
    ("amazon2023", "reviews", b'{"user_id": "U\xff\xfe", "parent_asin": "P1", "timestamp": 5}', None, "not valid UTF-8"),
    ("amazon2023", "reviews", b'{"user_id": "U1\x01", "parent_asin": "P1", "timestamp": 5}', None, "control character"),
    ("amazon2023", "reviews", b'{"user_id": "U1", "parent_asin": "P1\r", "timestamp": 5}', None, "carriage return"),
    ("amazon2023", "meta", json.dumps({"title": "no id"}), "parent_asin", "missing"),
    ("amazon2023", "meta", az_meta("P7", features="soft"), "features", "expected a list of strings, got string"),
    ("amazon2023", "meta", az_meta("P7", categories=["a", {"b": 1}]), "categories", "got other values in the list"),
    ("amazon2023", "meta", az_meta("P7", details="Brand: X"), "details", "expected an object, got string"),
    ("amazon2023", "meta", az_meta("P7", price=[1]), "price", "expected a string or number, got array"),
    ("amazon2023_benchmark", "splits", "U1,P1,5.0,1000", None, "expected 5 comma-separated columns"),
    ("amazon2023_benchmark", "splits", "U1,P1,5.0,abc,", "timestamp", "expected an integer"),
    ("amazon2023_benchmark", "splits", "U1,P1,five,1000,", "rating", "expected a number"),
    ("amazon2023_benchmark", "splits", ",P1,5.0,1000,", "user_id", "missing"),
    ("amazon2023_benchmark", "splits", "U1,P2,5.0,1000,P1 NOPE P3", "history", "unknown item (not in meta): 'NOPE'"),
    ("amazon2023_benchmark", "splits", b"U\xff1,P1,5.0,1000,", None, "not valid UTF-8"),
    ("amazon2023_benchmark", "meta", '9,9,"T",,,"{\'a\': ",P9', "details", "expected a Python dict literal"),
    ("amazon2023_benchmark", "meta", '9,9,"T",,,"[1, 2]",P9', "details", "expected a Python dict literal"),
    ("amazon2023_benchmark", "meta", '9,9,"T",,,,', "parent_asin", "missing"),
    ("amazon2023_benchmark", "meta", "9,9,T,P9", None, "expected 7 columns"),
    ("amazon2023_benchmark", "meta", b'9,9,"T\xff",,,,P9', None, "not valid UTF-8"),
    ("google_local", "reviews", "{not json}", None, "malformed JSON"),
    ("google_local", "reviews", json.dumps({"user_id": "1", "time": 5}), "gmap_id", "missing"),
    ("google_local", "reviews", gl_review("1", "G1", 5).replace('"time": 5', '"time": "yesterday"'), "time", "expected an integer, got string"),
    ("google_local", "reviews", gl_review("1", "G1", 5).replace('"rating": 4', '"rating": "five"'), "rating", "expected a number"),
    ("google_local", "reviews", gl_review("1", "G1", 5).replace('"rating": 4', '"rating": null'), "rating", "missing"),
    ("google_local", "reviews", b'{"user_id": "1", "gmap_id": "G1", "time": 5, "text": "caf\xe9"}', None, "not valid UTF-8"),
    ("google_local", "meta", gl_meta("G7", category="Cafe"), "category", "expected a list of strings, got string"),
    ("google_local", "reviews", gl_review(1.5, "G1", 5), "user_id", "expected a string or integer id, got number"),  # type: ignore[arg-type]
    ("seqrec", "sequences", "{'user_id': 1}", None, "malformed JSON"),
    ("seqrec", "sequences", seq(200, [10, 11], [1]), "timestamps", "length differs from item_ids"),
    ("seqrec", "sequences", seq(200, [10, 999], [1, 2]), "item_ids", "unknown item (not in meta): '999'"),
    ("seqrec", "sequences", json.dumps({"item_ids": [10], "timestamps": [1]}), "user_id", "missing"),
    ("seqrec", "sequences", json.dumps({"user_id": 1, "item_ids": [10], "timestamps": ["1"]}), "timestamps", "expected a list of integers"),
    ("seqrec", "sequences", json.dumps({"user_id": 1, "item_ids": [10], "timestamps": [10**14]}), "timestamps", "out of range"),
    ("seqrec", "sequences", json.dumps({"user_id": 1, "item_ids": 10, "timestamps": [1]}), "item_ids", "got integer"),
    ("seqrec", "sequences", json.dumps({"user_id": 1, "item_ids": [10.5], "timestamps": [1]}), "item_ids", "other values"),
    ("seqrec", "titles", json.dumps({"title": "x"}), "item_id", "missing"),
    ("seqrec", "titles", b'{"item_id": 50, "title": "\xc3"}', None, "not valid UTF-8"),
]


def _with_bad_line(fmt: str, role: str, bad: str | bytes, gz: bool) -> dict[str, list[tuple[str, list[str | bytes]]]]:
    files = good_files(fmt, gz)
    files[role][0][1].insert(2, bad)
    return files


# Each case runs once per policy; gz and plain alternate between the cases and the two policies.
CASES = [pytest.param(i % 2 == 0, *case, id=f"{case[0]}-{case[1]}-{i}") for i, case in enumerate(BAD)]


@pytest.mark.parametrize("gz,fmt,role,bad,field,reason", CASES)
def test_bad_line_raises_naming_file_line_field(tmp_path: Path, gz: bool, fmt: str, role: str, bad: str | bytes,
                                                field: str | None, reason: str) -> None:
    files = _with_bad_line(fmt, role, bad, gz)
    name = files[role][0][0]
    with pytest.raises(DataError) as info:
        stage(write_source(tmp_path, fmt, files))
    err = info.value
    assert (Path(err.path).name, err.line, err.field) == (name, 3, field), str(err)
    assert f"{name}:3: " in str(err) and reason in str(err)
    if field:
        assert f"field '{field}'" in str(err)


@pytest.mark.parametrize("gz,fmt,role,bad,field,reason", CASES)
def test_bad_line_is_skipped_and_counted(tmp_path: Path, gz: bool, fmt: str, role: str, bad: str | bytes,
                                         field: str | None, reason: str) -> None:
    files = _with_bad_line(fmt, role, bad, not gz)
    name = files[role][0][0]
    with pytest.warns(UserWarning, match="skipped 1 bad records"):
        con, report = stage(write_source(tmp_path, fmt, files), "skip")
        report.warn()
    assert counts(con) == GOOD_COUNTS[fmt]  # exactly the bad record is gone
    ((path, key), n), = report.counts.items()
    assert Path(path).name == name and n == 1
    assert key.startswith(f"{field}: " if field else "") and reason.split(": '")[0] in key
    assert f"{name}:3" in report.examples[(path, key)]


def test_bad_lines_are_counted_per_reason_in_bulk(tmp_path: Path) -> None:
    files = good_files("amazon2023", gz=True)
    bad = ["{x", "{y", json.dumps({"user_id": "U1"}), az_review("U1", "P1", 1, rating="five")]  # type: ignore[arg-type]
    files["reviews"][0][1].extend(bad * 3)
    con, report = stage(write_source(tmp_path, "amazon2023", files), "skip")
    path = str(tmp_path / "All_Beauty.jsonl.gz")
    assert report.counts == {
        (path, "malformed JSON"): 6,
        (path, "parent_asin: required field is missing or null"): 3,
        (path, "rating: expected a number, got string"): 3,
    }
    assert report.examples[(path, "malformed JSON")].endswith("All_Beauty.jsonl.gz:5: malformed JSON")
    assert counts(con) == GOOD_COUNTS["amazon2023"]


def test_several_unreadable_lines_skip(tmp_path: Path) -> None:
    files = good_files("seqrec", gz=True)
    files["sequences"][0][1].extend([b'{"user_id": 7, "x": "\xff"}', seq(300, [10], [1]), b"\xfe\xfe", b"\x01"])
    con, report = stage(write_source(tmp_path, "seqrec", files), "skip")
    path = str(tmp_path / "user2item.jsonl.gz")
    assert report.counts == {(path, "not valid UTF-8"): 2, (path, "control character \\x01 in line"): 1}
    assert counts(con) == (6, 3)  # the good line after the bad ones is kept


@pytest.mark.parametrize("content,reason", [
    (b"\xff\xfe", "not valid UTF-8"), (b"\x01", "control character \\x01 in line"),
    (b"\n\xff{}\n\n", "not valid UTF-8"), (b"\n\x01\n", "control character \\x01 in line"),
])
@pytest.mark.parametrize("fmt,role", [("amazon2023", "reviews"), ("seqrec", "sequences"), ("google_local", "meta")])
def test_a_file_of_only_unreadable_lines_is_not_called_empty(tmp_path: Path, fmt: str, role: str, content: bytes,
                                                            reason: str) -> None:
    # Found by hypothesis: the line was reported as "file is empty" (no line) under raise and counted twice under skip.
    files = good_files(fmt, gz=False)
    name = files[role][0][0]
    files[role][0] = (name, [content])
    source = write_source(tmp_path, fmt, files)
    line = 1 + content.index(content.strip()[:1])
    with pytest.raises(DataError, match=rf"{re.escape(name)}:{line}: {re.escape(reason)}"):
        stage(source)
    _, report = stage(source, "skip")
    assert report.counts == {(str(tmp_path / name), reason): 1}


def test_benchmark_review_array_errors_are_located_by_record(tmp_path: Path) -> None:
    files = good_files("amazon2023_benchmark", gz=False)
    reviews = json.loads(files["reviews"][0][1][0])  # type: ignore[arg-type]
    reviews[1]["reviews"][0]["timestamp"] = "abc"
    files["reviews"][0] = ("filtered_user_reviews.json", [json.dumps(reviews)])
    with pytest.raises(DataError, match=r"field 'timestamp': expected an integer, got string: \"abc\" \(record 2, review 1\)"):
        stage(write_source(tmp_path, "amazon2023_benchmark", files))
    reviews.append({"user_id": {"x": 1}, "reviews": []})
    files["reviews"][0] = ("filtered_user_reviews.json", [json.dumps(reviews)])
    with pytest.raises(DataError, match=r"field 'user_id': .* \(record 3\)"):  # user records are checked first
        stage(write_source(tmp_path, "amazon2023_benchmark", files))
    con, report = stage(write_source(tmp_path, "amazon2023_benchmark", files), "skip")
    path = str(tmp_path / "filtered_user_reviews.json")
    assert report.counts == {(path, "user_id: expected a string or integer id, got object"): 1,
                             (path, "timestamp: expected an integer, got string"): 1}
    assert counts(con) == (6, 4)
    files["reviews"][0] = ("filtered_user_reviews.json", ['[{"user_id": "U1", "reviews": [}'])
    with pytest.raises(DataError, match="cannot read JSON array"):
        stage(write_source(tmp_path, "amazon2023_benchmark", files), "skip")


EMPTY_CASES = [
    ("amazon2023", "reviews", b""), ("amazon2023", "meta", b""), ("amazon2023_benchmark", "splits", b""),
    ("amazon2023_benchmark", "splits", SPLIT_HEADER.encode() + b"\n"), ("amazon2023_benchmark", "meta", b""),
    ("amazon2023_benchmark", "meta", META_CSV_HEADER.encode() + b"\n"), ("amazon2023_benchmark", "reviews", b"[]"),
    ("amazon2023_benchmark", "reviews", b"\n\n"), ("google_local", "reviews", b"\n \n"), ("google_local", "meta", b""),
    ("google_local", "meta", b""), ("seqrec", "sequences", b""), ("seqrec", "sequences", b""), ("seqrec", "titles", b""),
    ("seqrec", "titles", b""), ("amazon2023", "reviews", b""),
]  # gz and plain alternate by position


@pytest.mark.parametrize(
    "gz,fmt,role,content", [pytest.param(i % 2 == 1, *c, id=f"{c[0]}-{c[1]}-{i}") for i, c in enumerate(EMPTY_CASES)]
)
def test_empty_file(tmp_path: Path, fmt: str, role: str, content: bytes, gz: bool) -> None:
    files = good_files(fmt, gz)
    name = files[role][0][0]
    source = write_source(tmp_path, fmt, files)
    path = tmp_path / name
    path.write_bytes(gzip.compress(content) if gz else content)
    with pytest.raises(DataError, match=rf"{name}: file is empty"):
        stage(source)
    _, report = stage(source, "skip")
    assert report.counts[(str(path), "file is empty")] == 1


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_missing_file_is_a_clear_error(tmp_path: Path, fmt: str, on_error: str) -> None:
    source = write_source(tmp_path, fmt, good_files(fmt, gz=True))
    role = next(iter(good_files(fmt, gz=True)))
    missing = tmp_path / "nope" / "absent.jsonl.gz"
    source = source.model_copy(update={role: [*getattr(source, role), missing]})
    with pytest.raises(DataError, match=r"absent\.jsonl\.gz: file not found"):
        stage(source, on_error)


def test_corrupt_gzip_is_a_clear_error(tmp_path: Path) -> None:
    source = write_source(tmp_path, "seqrec", good_files("seqrec", gz=True))
    broken = tmp_path / "user2item.jsonl.gz"
    broken.write_bytes(broken.read_bytes()[:-12] + b"garbage-tail")
    with pytest.raises(DataError, match=r"user2item\.jsonl\.gz: cannot read file"):
        stage(source, "skip")


def test_bad_split_header(tmp_path: Path) -> None:
    files = good_files("amazon2023_benchmark", gz=False)
    files["splits"][0][1][0] = "user,item,rating,timestamp"
    with pytest.raises(DataError, match=r"All_Beauty\.train\.csv:1: header lacks column"):
        stage(write_source(tmp_path, "amazon2023_benchmark", files), "skip")


def test_meta_csv_literal_parsing_is_safe(tmp_path: Path) -> None:
    from bluerec.data.readers.meta_csv import parse_description, parse_details

    assert parse_details("{'Brand': 'X', 'n': 2}") == '{"Brand": "X", "n": 2}'
    assert parse_details("") is None and parse_details("{}") is None
    for hostile in ("__import__('os').system('true')", "{'a': open('x')}", "(" * 500 + ")" * 500):
        with pytest.raises(ValueError):
            parse_details(hostile)
    assert parse_description("['a', ' ', 'b']") == ["a", "b"]
    assert parse_description("[NEW] text") == ["[NEW] text"] and parse_description("  ") == []


# ---------------------------------------------------------------------------------------------- real data


@pytest.mark.shared_data
def test_real_amazon23_all_beauty_benchmark(shared_data: Path) -> None:
    root = shared_data / "amazon23_all_beauty_5core"
    source = SourceConfig(
        format="amazon2023_benchmark",
        splits=[root / f"All_Beauty.{s}.csv" for s in ("train", "valid", "test")],
        meta=[root / "filterd_meta_items.csv"],
        reviews=[root / "filtered_user_reviews.json.gz"],
    )
    con, report = stage(source)
    assert report.total == 0
    stats = con.execute(
        "SELECT count(*), count(DISTINCT item_id), count(DISTINCT user_id), count(review_text), count(rating), "
        "count(DISTINCT (user_id, item_id)) FROM staged_interactions"
    ).fetchone()
    assert stats == (2535, 356, 253, 2535, 2535, 2535)
    assert counts(con)[1] == 356
    assert con.execute("SELECT count(*) FROM staged_items WHERE title IS NULL").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM staged_items WHERE details IS NOT NULL").fetchone()[0] >= 351  # type: ignore[index]
    assert con.execute("SELECT count(*) FROM staged_items WHERE price IS NOT NULL").fetchone() == (57,)


@pytest.mark.shared_data
def test_real_seqrec_amazon2014_beauty(shared_data: Path) -> None:
    root = shared_data / "seqrec_benchmark_amazon" / "amazon2014-beauty"
    source = SourceConfig(format="seqrec", sequences=[root / "user2item.jsonl.gz"], titles=[root / "item2title.jsonl.gz"])
    con = duckdb.connect()
    con.execute("SET memory_limit = '1GB'; SET threads = 2")
    report = SkipReport()
    start = time.perf_counter()
    stage_source(con, source, "raise", report)
    print(f"staged amazon2014-beauty in {time.perf_counter() - start:.2f}s")
    assert report.total == 0
    stats = con.execute(
        "SELECT count(*), count(DISTINCT item_id), count(DISTINCT user_id), count(DISTINCT source_order), "
        "min(timestamp) > 10^12 FROM staged_interactions"
    ).fetchone()
    assert stats == (198215, 12086, 22332, 198215, True)
    assert counts(con)[1] == 12086
    first = con.execute("SELECT item_id FROM staged_interactions WHERE user_id = '101' ORDER BY source_order").fetchall()
    assert [r[0] for r in first] == ["3408", "4665", "9168", "4233", "11041", "158"]  # the file's own order
