"""``bluerec data prepare``: staged tables → prepared dataset folder.

Most tests fill the staged tables by hand (DDL from bluerec.data.schema), so they do not depend on the readers.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import random
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bluerec.data.config import PrepareConfig, SourceConfig
from bluerec.data.dataset import PreparedDataset
from bluerec.data.errors import DataError, SkipReport
from bluerec.data.prepare import file_checksum, prepare_from_staged
from bluerec.data.schema import (
    FORMAT_VERSION,
    INTERACTION_COLUMNS,
    ITEM_COLUMNS,
    STAGED_INTERACTIONS_DDL,
    STAGED_ITEMS_DDL,
)


@pytest.fixture(autouse=True)
def _toy_timestamps(monkeypatch):
    """These fixtures use toy timestamps (1, 2, 1000 ms); the sane-window check has its own tests
    (tests/data/test_value_ranges.py), so it is turned off here."""
    monkeypatch.setattr("bluerec.data.readers._engine.timestamp_checks", lambda unit="ms": ())

HAVE_READERS = importlib.util.find_spec("bluerec.data.readers") is not None
SPLIT_COLUMNS = ["user_id", "item_id", "timestamp", "rating", "seq", "history", "history_len"]
INTERACTIONS_PARQUET_COLUMNS = [
    "user_id", "item_id", "timestamp", "rating", "review_title", "review_text", "seq", "split"
]


# ----------------------------------------------------------------------------------------------- helpers


def make_config(**overrides: Any) -> PrepareConfig:
    source = SourceConfig(format="seqrec", sequences=[Path("user2item.jsonl")], titles=[Path("item2title.jsonl")])
    return PrepareConfig(source=source, **overrides)


def staged_con(interactions: list[tuple], items: dict[str, Any], threads: int = 2) -> duckdb.DuckDBPyConnection:
    """A connection with hand-made staged tables.

    ``interactions``: ``(user, item, timestamp[, rating[, source_order]])``; source_order defaults to the row index.
    ``items``: item_id → title (str / None) or a dict of staged_items fields.
    """
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute(STAGED_INTERACTIONS_DDL)
    con.execute(STAGED_ITEMS_DDL)
    cols: dict[str, list[Any]] = {c: [] for c in INTERACTION_COLUMNS}
    for n, row in enumerate(interactions):
        user, item, ts = row[:3]
        rating = row[3] if len(row) > 3 else None
        order = row[4] if len(row) > 4 else n
        for key, value in zip(INTERACTION_COLUMNS, (user, item, ts, rating, f"title {n}", f"text {n}", order)):
            cols[key].append(value)
    inter = pa.table(  # noqa: F841 (read by SQL)
        cols,
        schema=pa.schema([("user_id", pa.string()), ("item_id", pa.string()), ("timestamp", pa.int64()),
                          ("rating", pa.float64()), ("review_title", pa.string()), ("review_text", pa.string()),
                          ("source_order", pa.int64())]),
    )
    con.execute("INSERT INTO staged_interactions SELECT * FROM inter")
    rows: dict[str, list[Any]] = {c: [] for c in ITEM_COLUMNS}
    for item_id, value in items.items():
        fields = value if isinstance(value, dict) else {"title": value}
        for key in ITEM_COLUMNS:
            default = [] if key in ("categories", "features", "description") else None
            rows[key].append(item_id if key == "item_id" else fields.get(key, default))
    list_str = pa.list_(pa.string())
    meta = pa.table(  # noqa: F841 (read by SQL)
        rows,
        schema=pa.schema([("item_id", pa.string()), ("title", pa.string()), ("main_category", pa.string()),
                          ("categories", list_str), ("store", pa.string()), ("features", list_str),
                          ("description", list_str), ("details", pa.string()), ("price", pa.string())]),
    )
    con.execute("INSERT INTO staged_items SELECT * FROM meta")
    return con


def run(con, out: Path, **overrides: Any) -> tuple[dict[str, Any], PreparedDataset]:
    manifest = prepare_from_staged(con, make_config(**overrides), out, SkipReport(), [])
    return manifest, PreparedDataset(out)


def titled(*items: str) -> dict[str, str]:
    return {i: f"Item {i}" for i in items}


def rows_of(path: Path) -> list[dict[str, Any]]:
    return pq.read_table(path).to_pylist()


def user_rows(n_items: int, user: str = "u", start: int = 0) -> list[tuple]:
    return [(user, f"i{j}", 1000 * (start + j)) for j in range(n_items)]


# ----------------------------------------------------------------------------------------------- steps


def test_dedupe_keeps_earliest(tmp_path):
    inter = [
        ("u", "a", 500, 1.0, 0),
        ("u", "a", 200, 2.0, 9),  # earliest timestamp ...
        ("u", "a", 200, 3.0, 5),  # ... tie on timestamp: lowest source_order wins
        ("u", "b", 300), ("u", "c", 400), ("u", "d", 600),
    ]
    con = staged_con(inter, titled("a", "b", "c", "d"))
    manifest, ds = run(con, tmp_path / "out", k_core=0)
    got = [(r["item_id"], r["timestamp"], r["rating"]) for r in ds.interactions().to_pylist()]
    assert got == [("a", 200, 3.0, ), ("b", 300, None), ("c", 400, None), ("d", 600, None)]
    assert manifest["counts"]["duplicates_removed"] == 2

    manifest, ds = run(con, tmp_path / "nodedupe", k_core=0, dedupe=False)
    assert manifest["counts"]["duplicates_removed"] == 0
    assert [r["item_id"] for r in ds.interactions().to_pylist()] == ["a", "a", "b", "c", "a", "d"]


KCORE_CASE = {  # k = 3; one pass removes only x; it takes 4 passes to reach the 3-core {u1,u2,u3} x {a,b,c}
    "u1": "abc", "u2": "abc", "u3": "abc",
    "u4": "adx",  # pass 1 drops x -> u4 has 2 -> pass 2 drops u4 -> d has 2 -> pass 3 drops d
    "u5": "abd", "u6": "bcd",  # -> u5, u6 have 2 -> pass 4 drops them
}


def test_kcore_is_iterative(tmp_path):
    inter = [(u, i, 1000 * n) for u, items in KCORE_CASE.items() for n, i in enumerate(items)]
    con = staged_con(inter, titled(*"abcdx"))
    manifest, ds = run(con, tmp_path / "out", k_core=3)
    c = manifest["counts"]
    assert sorted(set(ds.interactions().column("user_id").to_pylist())) == ["u1", "u2", "u3"]
    assert ds.items.ids == ["a", "b", "c"]
    assert c["kcore_iterations"] == 4
    assert (c["kcore_users_removed"], c["kcore_items_removed"], c["kcore_interactions_removed"]) == (3, 2, 9)
    assert (c["users"], c["items"], c["interactions"]) == (3, 3, 9)

    # k <= 1 disables the k-core; the minimum history length still applies
    manifest, ds = run(con, tmp_path / "off", k_core=1)
    assert manifest["counts"]["kcore_iterations"] == 0
    assert manifest["counts"]["interactions"] == len(inter)


def test_min_user_interactions_drops_short_users(tmp_path):
    inter = user_rows(3, "long") + user_rows(2, "short") + user_rows(4, "longer")
    con = staged_con(inter, titled("i0", "i1", "i2", "i3"))
    manifest, ds = run(con, tmp_path / "out", k_core=0, min_user_interactions=3)
    c = manifest["counts"]
    assert (c["users_dropped_min_interactions"], c["interactions_dropped_min_interactions"]) == (1, 2)
    assert {e.user_id for e in ds.split("test")} == {"long", "longer"}


def test_equal_timestamps_tie_break(tmp_path):
    inter = [
        ("u", "b", 10, None, 2),
        ("u", "c", 10, None, 1),
        ("u", "a", 10, None, 1),  # same timestamp and source_order as c: item_id decides
        ("u", "z", 5, None, 99),
        ("u", "y", 20, None, 0),
    ]
    con = staged_con(inter, titled(*"abcyz"))
    manifest, ds = run(con, tmp_path / "out", k_core=0)
    assert manifest["order"] == "timestamp, source_order, item_id"
    assert [(r["item_id"], r["seq"]) for r in ds.interactions().to_pylist()] == [
        ("z", 0), ("a", 1), ("c", 2), ("b", 3), ("y", 4)
    ]
    # preparing again gives the same order
    _, again = run(con, tmp_path / "again", k_core=0)
    assert again.interactions().to_pylist() == ds.interactions().to_pylist()


def test_leave_last_out_split_and_history(tmp_path):
    inter = user_rows(6, "u") + user_rows(3, "v", start=10)
    con = staged_con(inter, titled(*(f"i{j}" for j in range(6))))
    _, ds = run(con, tmp_path / "out", k_core=0, max_history=2)
    test = {e.user_id: e for e in ds.split("test")}
    valid = {e.user_id: e for e in ds.split("valid")}
    train = [e for e in ds.split("train") if e.user_id == "u"]
    assert (test["u"].item_id, test["u"].seq, test["u"].history, test["u"].history_len) == ("i5", 5, ("i3", "i4"), 5)
    assert (valid["u"].item_id, valid["u"].seq, valid["u"].history, valid["u"].history_len) == ("i4", 4, ("i2", "i3"), 4)
    assert [(e.item_id, e.seq, e.history, e.history_len) for e in train] == [
        ("i0", 0, (), 0), ("i1", 1, ("i0",), 1), ("i2", 2, ("i0", "i1"), 2), ("i3", 3, ("i1", "i2"), 3)
    ]
    assert test["v"].history == ("i0", "i1") and valid["v"].history == ("i0",)
    assert [(e.item_id, e.history) for e in ds.split("train") if e.user_id == "v"] == [("i0", ())]
    assert test["u"].timestamp == 5000 and test["v"].timestamp == 12000
    # full_history is the untruncated sequence before the target
    assert ds.full_history(test["u"]) == ["i0", "i1", "i2", "i3", "i4"]
    assert ds.full_history(valid["v"]) == ["i0"]
    for name in ("train", "valid", "test"):
        assert pq.read_schema(tmp_path / "out" / f"{name}.parquet").names == SPLIT_COLUMNS
    assert ds.counts["train"] + ds.counts["valid"] + ds.counts["test"] == ds.counts["interactions"] == 9


def test_items_without_text_are_dropped_and_counted(tmp_path):
    inter = user_rows(4, "u") + [("u", "nometa", 9000), ("u", "blank", 9500), ("w", "nometa", 1)]
    inter += user_rows(3, "w", start=1)
    items = {**titled("i0", "i1", "i2", "i3"), "blank": {"title": " <br> ", "features": ["&nbsp;"]}}
    con = staged_con(inter, items)
    manifest, ds = run(con, tmp_path / "out", k_core=0)
    c = manifest["counts"]
    assert (c["items_without_meta"], c["items_with_empty_text"], c["items_dropped_without_text"]) == (1, 1, 2)
    assert c["interactions_dropped_item_without_text"] == 3
    assert "nometa" not in ds.items.ids and "blank" not in ds.items.ids
    assert c["interactions"] == c["raw_interactions"] - 3

    manifest, ds = run(con, tmp_path / "kept", k_core=0, drop_items_without_text=False)
    c = manifest["counts"]
    assert (c["items_dropped_without_text"], c["interactions_dropped_item_without_text"]) == (0, 0)
    texts = dict(zip(ds.items.ids, ds.items.texts))
    assert texts["nometa"] == "" and texts["blank"] == ""


def test_items_table_text_title_and_popularity_excludes_test(tmp_path):
    inter = [("u1", "a", 1), ("u1", "b", 2), ("u1", "t", 3), ("u2", "a", 1), ("u2", "b", 2), ("u2", "c", 3),
             ("u2", "t", 4), ("u3", "b", 1), ("u3", "a", 2), ("u3", "t", 3)]
    items = {
        "a": {"title": "Alpha &amp;amp; Co", "main_category": "Beauty", "store": "Acme"},
        "b": {"title": "Beta", "categories": ["Skin", "Face"], "features": ["soft"]},
        "c": "Gamma", "t": "Only tested",
    }
    con = staged_con(inter, items)
    manifest, ds = run(con, tmp_path / "out", k_core=0)
    table = {r["item_id"]: r for r in rows_of(tmp_path / "out" / "items.parquet")}
    assert list(table) == ["a", "b", "c", "t"]  # sorted by item_id
    # popularity = train + valid counts; "t" is every user's test item
    assert {i: r["popularity"] for i, r in table.items()} == {"a": 3, "b": 3, "c": 1, "t": 0}
    counted = Counter(r["item_id"] for r in ds.interactions().to_pylist() if r["split"] != "test")
    assert dict(zip(ds.items.ids, ds.items.popularity.tolist())) == {i: counted.get(i, 0) for i in ds.items.ids}
    assert manifest["counts"]["items_only_in_test"] == 1
    assert table["a"]["text"] == "Alpha & Co | Beauty" and table["a"]["title"] == "Alpha & Co"
    assert table["b"]["text"] == "Beta | Skin > Face | soft"
    assert table["a"]["store"] == "Acme" and table["b"]["categories"] == ["Skin", "Face"]
    assert table["a"]["main_category"] == "Beauty"


def test_duplicate_meta_rows_resolved_deterministically(tmp_path):
    con = staged_con(user_rows(3, "u"), titled("i1", "i2"))
    con.execute("INSERT INTO staged_items (item_id, title) VALUES ('i0', NULL), ('i0', 'Real title'), ('i0', NULL)")
    manifest, ds = run(con, tmp_path / "out", k_core=0)
    assert manifest["counts"]["meta_duplicate_rows"] == 2
    assert dict(zip(ds.items.ids, ds.items.texts))["i0"] == "Real title"


def test_interactions_file_layout(tmp_path):
    inter = [("b", "x", 3, 4.0), ("a", "y", 2, 5.0), ("b", "y", 1, 1.0), ("a", "x", 1, 2.0), ("a", "z", 3, None),
             ("b", "z", 2, 3.0)]
    con = staged_con(inter, titled("x", "y", "z"))
    _, ds = run(con, tmp_path / "out", k_core=0)
    table = ds.interactions()
    assert table.column_names == INTERACTIONS_PARQUET_COLUMNS
    rows = table.to_pylist()
    assert [(r["user_id"], r["seq"]) for r in rows] == [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1), ("b", 2)]
    assert [r["split"] for r in rows] == ["train", "valid", "test"] * 2
    first = rows[0]  # (a, x, 1, 2.0) is staged row 3
    assert (first["item_id"], first["rating"], first["review_title"], first["review_text"]) == ("x", 2.0, "title 3", "text 3")
    assert ds.user_sequences == {"a": ["x", "y", "z"], "b": ["y", "z", "x"]}


def test_manifest_contents(tmp_path):
    src = tmp_path / "src.jsonl"
    src.write_bytes(b"x" * (3 << 20) + b"tail")  # > 1 chunk
    report = SkipReport()
    report.add(DataError(src, 7, "item_ids", "not a list"), 2)
    con = staged_con(user_rows(4, "u"), titled("i0", "i1", "i2", "i3"))
    manifest = prepare_from_staged(con, make_config(k_core=0), tmp_path / "out", report, [src])
    on_disk = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert on_disk == manifest
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["created_with"]["bluerec"] and manifest["created_with"]["duckdb"] == duckdb.__version__
    assert manifest["config"] == make_config(k_core=0).model_dump(mode="json")
    assert manifest["sources"] == [
        {"path": str(src), "size": src.stat().st_size, "sha256": hashlib.sha256(src.read_bytes()).hexdigest()}
    ]
    assert file_checksum(src) == manifest["sources"][0]
    assert manifest["skipped"] == [
        {"file": str(src), "reason": "item_ids: not a list", "count": 2, "example": f"{src}:7: field 'item_ids': not a list"}
    ]
    c = manifest["counts"]
    for key in ("raw_interactions", "raw_users", "raw_items", "users", "items", "interactions", "train", "valid",
                "test", "duplicates_removed", "kcore_iterations", "interactions_dropped_item_without_text",
                "items_dropped_without_text", "users_dropped_min_interactions"):
        assert isinstance(c[key], int), key
    # work tables are dropped from the caller's connection
    assert sorted(r[0] for r in con.execute("SHOW TABLES").fetchall()) == ["staged_interactions", "staged_items"]


def test_nothing_left_is_an_error(tmp_path):
    con = staged_con(user_rows(2, "u"), titled("i0", "i1"))
    with pytest.raises(DataError, match="no interactions left"):
        run(con, tmp_path / "out", k_core=0)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------------------- reference model


def reference(inter: list[tuple], with_text: set[str], k: int, min_user: int, dedupe: bool, max_history: int):
    """A plain-Python version of the pipeline (rows: user, item, ts, source_order)."""
    rows = [r for r in inter if r[1] in with_text]
    if dedupe:
        best: dict[tuple[str, str], tuple] = {}
        for r in rows:
            key = (r[0], r[1])
            if key not in best or (r[2], r[3]) < (best[key][2], best[key][3]):
                best[key] = r
        rows = list(best.values())
    if k > 1:
        while True:
            users, items = Counter(r[0] for r in rows), Counter(r[1] for r in rows)
            kept = [r for r in rows if users[r[0]] >= k and items[r[1]] >= k]
            if len(kept) == len(rows):
                break
            rows = kept
    users = Counter(r[0] for r in rows)
    rows = [r for r in rows if users[r[0]] >= min_user]
    seqs: dict[str, list[tuple]] = defaultdict(list)
    for r in rows:
        seqs[r[0]].append(r)
    out: dict[str, list[tuple]] = {"train": [], "valid": [], "test": []}
    for user in sorted(seqs):
        ordered = [r[1] for r in sorted(seqs[user], key=lambda r: (r[2], r[3], r[1]))]
        for seq, item in enumerate(ordered):
            split = "test" if seq == len(ordered) - 1 else "valid" if seq == len(ordered) - 2 else "train"
            out[split].append((user, item, seq, tuple(ordered[max(0, seq - max_history):seq]), seq))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 7), st.integers(0, 4)), min_size=0, max_size=70),
    st.sets(st.integers(0, 7), max_size=3),
    st.integers(0, 4),
    st.booleans(),
    st.integers(1, 4),
)
def test_matches_reference_model(tmp_path_factory, triples, no_text, k, dedupe, max_history):
    inter = [(f"u{u}", f"i{i}", ts, None, n) for n, (u, i, ts) in enumerate(triples)]
    items = {f"i{i}": (None if i in no_text else f"Item {i}") for i in range(8)}
    with_text = {i for i, t in items.items() if t}
    expected = reference([(u, i, ts, n) for u, i, ts, _, n in inter], with_text, k, 3, dedupe, max_history)
    out = tmp_path_factory.mktemp("ref") / "out"
    con = staged_con(inter, items)
    if not any(expected.values()):
        with pytest.raises(DataError):
            run(con, out, k_core=k, dedupe=dedupe, max_history=max_history)
        return
    manifest, ds = run(con, out, k_core=k, dedupe=dedupe, max_history=max_history)
    for split in ("train", "valid", "test"):
        got = [(e.user_id, e.item_id, e.seq, e.history, e.history_len) for e in ds.split(split)]
        assert got == expected[split], split
    assert manifest["counts"]["interactions"] == sum(len(v) for v in expected.values())


# ----------------------------------------------------------------------------------------------- files


def random_interactions(n: int, seed: int = 0) -> tuple[list[tuple], dict[str, Any]]:
    rng = random.Random(seed)
    inter = [(f"u{rng.randrange(n // 8)}", f"i{rng.randrange(n // 20)}", rng.randrange(50) * 1000, float(rng.randint(1, 5)))
             for _ in range(n)]
    items = {f"i{j}": {"title": f"Item {j} &amp; more", "description": [f"<p>about {j}</p>"]} for j in range(n // 20)}
    return inter, items


def test_same_input_gives_byte_identical_files(tmp_path):
    inter, items = random_interactions(20_000)
    digests = []
    for name in ("one", "two"):
        con = staged_con(inter, items, threads=4)
        run(con, tmp_path / name, k_core=2, max_history=5)
        con.close()
        digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((tmp_path / name).iterdir())})
    assert digests[0] == digests[1]
    assert set(digests[0]) == {"items.parquet", "interactions.parquet", "train.parquet", "valid.parquet",
                               "test.parquet", "manifest.json"}


def test_output_folder_is_replaced_atomically(tmp_path):
    con = staged_con(user_rows(5, "u") + user_rows(5, "v", start=3), titled(*(f"i{j}" for j in range(5))))
    out = tmp_path / "out"
    run(con, out, k_core=0, max_history=3)
    (out / "stale.txt").write_text("from the previous run")

    # a failure half-way leaves the previous dataset untouched and no temporary folders behind
    def explode(msg: str) -> None:
        if msg.startswith("writing items"):
            raise RuntimeError("crash while writing")

    with pytest.raises(RuntimeError, match="crash while writing"):
        prepare_from_staged(con, make_config(k_core=0, max_history=1), out, SkipReport(), [], progress=explode)
    assert json.loads((out / "manifest.json").read_text())["config"]["max_history"] == 3
    assert (out / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(r[0] for r in con.execute("SHOW TABLES").fetchall()) == ["staged_interactions", "staged_items"]

    # success replaces the whole folder
    messages: list[str] = []
    prepare_from_staged(con, make_config(k_core=0, max_history=1), out, SkipReport(), [], progress=messages.append)
    assert json.loads((out / "manifest.json").read_text())["config"]["max_history"] == 1
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert max(len(e.history) for e in PreparedDataset(out).split("test")) == 1
    assert any("k-core" in m or "dedup" in m for m in messages) and any(m.startswith("writing train") for m in messages)


def test_refuses_to_replace_a_folder_that_is_not_a_dataset(tmp_path):
    con = staged_con(user_rows(3, "u"), titled("i0", "i1", "i2"))
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    with pytest.raises(FileExistsError, match="not a prepared dataset"):
        run(con, precious, k_core=0)
    assert (precious / "thesis.tex").exists()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(FileExistsError):
        run(con, tmp_path / "afile", k_core=0)
    (tmp_path / "empty").mkdir()
    run(con, tmp_path / "empty", k_core=0)  # an empty folder is fine
    assert (tmp_path / "empty" / "manifest.json").exists()


# ----------------------------------------------------------------------------------------------- with the readers


@pytest.mark.skipif(not HAVE_READERS, reason="bluerec.data.readers not available yet")
def test_prepare_dataset_end_to_end_with_reader(tmp_path):
    from bluerec.data.prepare import prepare_dataset

    seqs = tmp_path / "user2item.jsonl.gz"
    titles = tmp_path / "item2title.jsonl.gz"
    users = {1: [10, 11, 12, 13], 2: [11, 12, 10], 3: [12, 10, 11, 13]}
    with gzip.open(seqs, "wt") as fh:
        for u, items in users.items():
            fh.write(json.dumps({"user_id": u, "item_ids": items, "timestamps": [100 + n for n in range(len(items))]}) + "\n")
    with gzip.open(titles, "wt") as fh:
        for i in (10, 11, 12, 13):
            fh.write(json.dumps({"item_id": i, "title": f"Title &amp; {i}"}) + "\n")
    config = PrepareConfig(source=SourceConfig(format="seqrec", sequences=[seqs], titles=[titles]), k_core=0)
    messages: list[str] = []
    manifest = prepare_dataset(config, tmp_path / "out", progress=messages.append)
    ds = PreparedDataset(tmp_path / "out")
    assert ds.counts["users"] == 3 and ds.counts["interactions"] == 11
    assert {e.user_id: e.item_id for e in ds.split("test")} == {"1": "13", "2": "10", "3": "13"}
    assert ds.split("test")[0].timestamp == 103_000  # seconds -> milliseconds
    assert ds.items.texts[0] == "Title & 10"
    assert [s["path"] for s in manifest["sources"]] == [str(seqs), str(titles)]
    assert manifest["sources"][0]["sha256"] == hashlib.sha256(seqs.read_bytes()).hexdigest()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["item2title.jsonl.gz", "out", "user2item.jsonl.gz"]
    assert messages[0].startswith("reading seqrec")


@pytest.mark.shared_data
@pytest.mark.skipif(not HAVE_READERS, reason="bluerec.data.readers not available yet")
def test_real_amazon2014_beauty(shared_data, tmp_path):
    from bluerec.data.prepare import prepare_dataset

    root = shared_data / "seqrec_benchmark_amazon" / "amazon2014-beauty"
    source = SourceConfig(format="seqrec", sequences=[root / "user2item.jsonl.gz"], titles=[root / "item2title.jsonl.gz"])
    started = time.perf_counter()
    manifest = prepare_dataset(PrepareConfig(source=source, k_core=5), tmp_path / "beauty")
    elapsed = time.perf_counter() - started
    c = manifest["counts"]
    assert c["users"] == 22_332 and c["test"] == 22_332 and c["valid"] == 22_332
    assert c["items"] == 12_086 and c["interactions"] == 198_215  # already 5-core: nothing removed
    assert c["duplicates_removed"] == 0 and c["kcore_iterations"] == 0
    assert c["items_dropped_without_text"] == 0 and manifest["skipped"] == []
    ds = PreparedDataset(tmp_path / "beauty")
    test = ds.split("test")
    assert len(test) == 22_332
    example = max(test, key=lambda e: e.history_len)
    assert list(example.history) == ds.full_history(example)[-50:]
    assert all("&amp;" not in t for t in ds.items.texts)
    assert elapsed < 30, f"prepare took {elapsed:.1f}s"
