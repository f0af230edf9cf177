from __future__ import annotations

from bluerec.profiler.template import (
    TemplateItem,
    raw_history_text,
    summarize,
    template_items_for,
    template_profile,
    tokenize_keywords,
)

LIPS = ["Beauty", "Makeup", "Lips"]
FACE = ["Beauty", "Makeup", "Face"]


def history() -> list[TemplateItem]:
    return [
        TemplateItem("Curly Hair Shampoo 12 oz", ["Beauty", "Hair"], "Curlsmith", 4.0),
        TemplateItem("Maybelline Matte Lipstick Red", LIPS, "Maybelline", 5.0),
        TemplateItem("L&#39;Oreal Infallible Foundation Matte", FACE, "L'Oreal", 4.0),
        TemplateItem("Maybelline Fit Me Foundation, 2 Pack", FACE, "Maybelline", 5.0),
    ]


def test_raw_history_text_last_n_oldest_first_unescaped():
    titles = ["a &amp; b", "", "c", "d &amp;amp; e", "f"]
    assert raw_history_text(titles) == "a & b | c | d & e | f"
    assert raw_history_text(titles, n=2) == "d & e | f"
    assert raw_history_text(titles, n=2, sep="; ") == "d & e; f"
    assert raw_history_text([]) == ""


def test_keywords_drop_stop_words_numbers_units():
    assert tokenize_keywords("The Best 12 oz Crème Lipstick &amp; Liner, 2 Pack for Women") == ["crème", "lipstick", "liner"]


def test_template_profile_content():
    text = template_profile(history())
    assert text.startswith("Interests: foundation, matte, ")
    assert "Favourite brands: Maybelline, L'Oreal." in text
    assert "Categories: Beauty > Makeup > Face; " in text
    assert text.endswith("Recently: Maybelline Fit Me Foundation, 2 Pack; L'Oreal Infallible Foundation Matte; "
                         "Maybelline Matte Lipstick Red.")
    assert "maybelline" not in text.split("Favourite")[0].lower()  # brands do not repeat as keywords
    assert "&#39;" not in text


def test_recency_weighting_and_low_ratings():
    old_heavy = [TemplateItem("Shampoo")] * 3 + [TemplateItem("Lipstick")] * 2
    assert summarize(old_heavy, decay=0.5).keywords[0] == "lipstick"  # 1 + .5 beats .25 + .125 + .0625
    assert summarize(old_heavy, decay=1.0).keywords[0] == "shampoo"
    disliked = [TemplateItem("Shampoo", rating=5.0), TemplateItem("Lipstick", rating=1.0)]
    assert summarize(disliked, decay=1.0).keywords == ["shampoo", "lipstick"]


def test_template_profile_is_deterministic_with_ties():
    items = [TemplateItem("zeta alpha"), TemplateItem("beta gamma")]
    a = template_profile(items, decay=1.0)
    assert a == template_profile(list(items), decay=1.0)
    # equal weights: the most recently seen first, then alphabetical
    assert summarize(items, decay=1.0).keywords == ["beta", "gamma", "alpha", "zeta"]


def test_template_profile_empty_and_sparse():
    assert template_profile([]) == "No history yet."
    assert template_profile([TemplateItem("Soap")]) == "Interests: soap. Recently: Soap."


def test_template_items_for_dataset(tiny_dataset):
    ex = [e for e in tiny_dataset.split("test") if e.user_id == "u2"][0]  # i3, i6, i4 before i1
    items = template_items_for(tiny_dataset, ex)
    assert [i.store for i in items] == ["Curlsmith", None, "Essie"]
    assert items[1].categories == ("All Beauty",)  # empty categories fall back to main_category
    assert [i.rating for i in items] == [5.0, 4.0, 3.0]
    assert "Recently: Pink Glitter Nail Polish;" in template_profile(items)
