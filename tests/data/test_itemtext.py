"""Item-text rendering: cleaning (entities, tags, whitespace), trimming, template rules, the DuckDB UDF."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bluerec.data.config import ItemTextConfig
from bluerec.data.itemtext import (
    META_COLUMNS,
    clean_part,
    clean_text,
    join_part,
    parse_template,
    render_item_text,
    render_items_table,
    trim_words,
)
from bluerec.data.schema import STAGED_ITEMS_DDL

CFG = ItemTextConfig()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Tom &amp; Jerry", "Tom & Jerry"),
        ("Tom &amp;amp; Jerry", "Tom & Jerry"),  # double-escaped
        ("Tom &amp;amp;amp; Jerry", "Tom & Jerry"),  # triple-escaped
        ("&quot;Best&quot; &#39;ever&#x27; &lt;3", "\"Best\" 'ever' <3"),
        ("<b>Bold</b> text<br/>more<p>para</p>", "Bold text more para"),
        ("a<span class='x'>b</span>c", "abc"),  # inline tags vanish without adding spaces
        ("&lt;p&gt;escaped tag&lt;/p&gt;", "escaped tag"),
        ("&amp;lt;li&amp;gt;double escaped tag", "double escaped tag"),
        ("x <!-- a comment --> y <script>var a = 1;</script> z", "x y z"),
        ("  many\n\n spaces\t and\u00a0nbsp&nbsp;here  ", "many spaces and nbsp here"),
        ("5 < 6 and 7 > 3", "5 < 6 and 7 > 3"),  # comparisons are not tags
        (None, ""),
        ("", ""),
        ("<br><br>", ""),
    ],
)
def test_clean_text(raw, expected):
    assert clean_text(raw) == expected


def test_trim_words_cuts_at_a_word_boundary():
    assert trim_words("alpha beta gamma delta", 16) == "alpha beta gamma"  # exactly at a boundary
    assert trim_words("alpha beta gammadelta", 16) == "alpha beta"
    assert trim_words("short", 16) == "short"
    assert trim_words("x" * 40, 16) == "x" * 16  # one long word: hard cut
    assert trim_words("alpha beta, gammadelta", 16) == "alpha beta"  # dangling separator removed
    for n in range(16, 40):
        assert len(trim_words("word " * 20, n)) <= n


def test_parts_are_trimmed_to_max_part_chars():
    cfg = ItemTextConfig(max_part_chars=20, max_chars=512)
    text = render_item_text(
        {"title": "A very long product title that goes on", "description": ["lorem ipsum dolor sit amet " * 5]}, cfg
    )
    title, description = text.split(" | ")
    assert title == "A very long product"
    assert description == "lorem ipsum dolor"
    assert all(len(p) <= 20 for p in text.split(" | "))


def test_final_text_trimmed_to_max_chars():
    cfg = ItemTextConfig(max_part_chars=200, max_chars=30)
    text = render_item_text({"title": "word " * 30, "description": ["desc " * 30]}, cfg)
    assert len(text) <= 30 and text == trim_words(("word " * 30).strip(), 30)


def test_default_template_parts_and_fallbacks():
    fields = {
        "title": "Cream &amp; Co",
        "categories": ["Beauty", "", "Skin &amp; Care"],
        "main_category": "All Beauty",
        "store": "Acme",
        "features": ["<li>soft</li>", "", "  ", "mild"],
        "description": ["First&nbsp;para.", "<p>Second para.</p>"],
    }
    assert render_item_text(fields, CFG) == "Cream & Co | Beauty > Skin & Care | soft; mild | First para. Second para."
    # {category}: categories, else main_category, else store
    assert render_item_text({"title": "T", "main_category": "All Beauty", "store": "Acme"}, CFG) == "T | All Beauty"
    assert render_item_text({"title": "T", "categories": [], "store": "Acme"}, CFG) == "T | Acme"


def test_empty_parts_and_their_separators_are_dropped():
    assert render_item_text({"title": "T", "description": ["D"]}, CFG) == "T | D"
    assert render_item_text({"description": ["D"]}, CFG) == "D"
    assert render_item_text({"features": ["a", "b"]}, CFG) == "a; b"
    assert render_item_text({"title": "  ", "features": ["<br>"], "description": []}, CFG) == ""
    assert render_item_text({}, CFG) == ""
    assert render_item_text({"title": None, "categories": None, "features": None, "description": None}, CFG) == ""


def test_custom_templates():
    labelled = ItemTextConfig(template="Title: {title} | Store: {store}")
    assert render_item_text({"title": "T", "store": "S"}, labelled) == "Title: T | Store: S"
    assert render_item_text({"store": "S"}, labelled) == "Store: S"
    assert render_item_text({"title": "T"}, labelled) == "Title: T"
    paren = ItemTextConfig(template="{title} ({store})")
    assert render_item_text({"title": "T", "store": "S"}, paren) == "T (S)"
    assert render_item_text({"title": "T"}, paren) == "T"
    lines = ItemTextConfig(template="{title}\n{description}")
    assert render_item_text({"title": "T", "description": ["D"]}, lines) == "T\nD"
    assert render_item_text({"description": ["D"]}, lines) == "D"


def test_bad_templates_are_rejected():
    with pytest.raises(ValueError, match="unknown placeholder"):
        parse_template("{title} {brand}")
    with pytest.raises(ValueError, match="no placeholder"):
        parse_template("just text")
    with pytest.raises(ValueError, match="format specs"):
        parse_template("{title:>10}")


# The lazy cleaner (only a window of a long raw string is cleaned) must equal cleaning everything.
_FRAGMENTS = [
    "a", "bc", "word ", " ", "\n", "&", "&amp;", "&amp;amp;", "&lt;", "&gt;", "&lt;b&gt;", "&#39;", "&#x27;",
    "&notin;", "&notit", "&amp;lt;p&amp;gt;", ";", "<", ">", "<b>", "</b>", "<br/>", "<p class='x'>", "</p>",
    "<!--", "-->", "<script>", "</script>", "&nbsp;", "\u00a0", "x<y", "& ",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=50), st.integers(16, 40), st.integers(1, 80))
def test_lazy_clean_part_equals_full_cleaning(parts, limit, window):
    raw = "".join(parts)
    assert clean_part(raw, limit, window=window) == trim_words(clean_text(raw), limit)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(_FRAGMENTS), max_size=15).map("".join), max_size=6),
    st.integers(16, 40),
    st.integers(1, 60),
)
def test_lazy_join_part_equals_full_join(values, limit, window):
    full = trim_words("; ".join(c for c in (clean_text(v) for v in values) if c), limit)
    assert join_part(values, "; ", limit, window=window) == full


def test_udf_matches_python_function():
    con = duckdb.connect()
    con.execute(STAGED_ITEMS_DDL)
    rows = [
        ("i1", "Cream &amp;amp; Co", "All Beauty", ["Beauty"], "Acme", ["soft"], ["<p>Nice</p>"], None, None),
        ("i2", None, None, None, None, None, None, None, None),
        ("i3", "<br>", None, [], None, [], [], None, None),
        ("i4", "Only title", None, [], "Shop", [], ["long " * 100], None, None),
    ] + [(f"x{i}", f"Item {i} &amp; more", "Cat", [], None, [f"f{i}"], [], None, None) for i in range(5000)]
    names = ("item_id", *META_COLUMNS, "details", "price")
    batch = pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})  # noqa: F841 (used by SQL)
    con.execute(f"INSERT INTO staged_items SELECT {', '.join(names)} FROM batch")
    cfg = ItemTextConfig(max_part_chars=50)
    render_items_table(con, "SELECT * FROM staged_items", "rendered", cfg)
    got = dict(con.execute("SELECT item_id, text FROM rendered").fetchall())
    titles = dict(con.execute("SELECT item_id, title_clean FROM rendered").fetchall())
    assert len(got) == len(rows)
    for row in rows:
        fields = dict(zip(("item_id", *META_COLUMNS), row[:7]))
        assert got[row[0]] == render_item_text(fields, cfg)
    assert got["i2"] == "" and got["i3"] == ""
    assert titles["i1"] == "Cream & Co" and titles["i2"] == ""
    # the functions are unregistered afterwards
    with pytest.raises(duckdb.Error):
        con.execute("SELECT bluerec_render_item_text(NULL, NULL, NULL, NULL, NULL, NULL)")
