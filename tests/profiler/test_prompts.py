from __future__ import annotations

import pytest

from bluerec.config import ConfigError, parse_config
from bluerec.profiler.prompts import (
    NO_HISTORY,
    HistoryItem,
    PromptConfig,
    build_messages,
    clip,
    fit_to_budget,
    history_items_for,
    messages_text,
    render_prompt,
)


def words(text: str) -> int:
    return len(text.split())


def test_messages_newest_last_with_ratings_and_snippets():
    history = [HistoryItem("Old Shampoo", 3.0, None), HistoryItem("Red Lipstick", 4.5, "Lovely colour, very long lasting"),
               HistoryItem("New Mascara", None, None)]
    msgs = build_messages(history, PromptConfig(review_snippet_chars=14))
    assert [m["role"] for m in msgs] == ["system", "user"]
    user = msgs[1]["content"]
    lines = [line for line in user.splitlines() if line[:1].isdigit()]
    assert lines[0] == "1. Old Shampoo (rated 3/5)"
    assert lines[1].startswith("2. Red Lipstick (rated 4.5/5) — review: \"Lovely colour") and lines[1].endswith('…"')
    assert lines[2] == "3. New Mascara"  # newest last, no rating shown when absent
    assert "what they are likely to want next" in user and "oldest first, newest last" in user


def test_ratings_and_reviews_can_be_switched_off():
    msgs = build_messages([HistoryItem("Soap", 5.0, "good")], PromptConfig(include_ratings=False, review_snippet_chars=0))
    assert "rated" not in msgs[1]["content"] and "review" not in msgs[1]["content"]


def test_max_history_items_keeps_newest():
    history = [HistoryItem(f"item{i}") for i in range(30)]
    user = build_messages(history, PromptConfig(max_history_items=5))[1]["content"]
    assert "item25" in user and "item29" in user and "item24" not in user


def test_empty_history_renders_placeholder():
    msgs = fit_to_budget([], PromptConfig(), words)
    assert NO_HISTORY in msgs[1]["content"]
    assert NO_HISTORY in build_messages([], None)[1]["content"]


def test_budget_trims_then_drops_oldest():
    long = "word " * 60
    history = [HistoryItem(f"item{i} {long}", 4.0, "review " * 30) for i in range(12)]
    cfg = PromptConfig(max_prompt_tokens=150, max_item_chars=300, min_item_chars=40)
    msgs = fit_to_budget(history, cfg, words)
    text = messages_text(msgs)
    assert words(text) <= 150
    assert "item11" in text  # newest kept
    assert "item0 " not in text  # oldest dropped first
    kept = [i for i in range(12) if f"item{i} " in text]
    assert kept == list(range(kept[0], 12))  # a contiguous newest suffix
    assert "review:" not in text  # snippets go before items do


def test_budget_fits_untouched_when_small_enough():
    history = [HistoryItem("a b c", 5.0, "fine")]
    cfg = PromptConfig(max_prompt_tokens=500)
    assert fit_to_budget(history, cfg, words) == build_messages(history, cfg)


def test_budget_never_fails_even_if_too_small():
    cfg = PromptConfig(max_prompt_tokens=32)
    msgs = fit_to_budget([HistoryItem("x " * 500)], cfg, words)  # the instruction alone is over 32 words
    assert msgs[1]["content"].endswith(cfg.instruction)


def test_clip_word_boundary():
    assert clip("hello   wonderful world", 100) == "hello wonderful world"
    assert clip("hello wonderful world", 18) == "hello wonderful…"
    assert clip("hello wonderful world", 12) == "hello wonde…"  # no boundary in the second half


def test_render_prompt_plain_and_chat_template():
    msgs = build_messages([HistoryItem("Soap")])
    plain = render_prompt(msgs, None)
    assert plain.startswith("System: ") and "\nUser: " in plain and plain.endswith("\nProfile:")

    class Tok:
        chat_template = "x"

        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            if messages[0]["role"] == "system":
                raise ValueError("System role not supported")
            return "|".join(m["content"][:4] for m in messages) + ("<gen>" if add_generation_prompt else "")

    merged = render_prompt(msgs, Tok())
    assert merged.endswith("<gen>") and merged.startswith("You ")  # system merged into the user turn


def test_prompt_config_is_strict():
    with pytest.raises(ConfigError, match="max_history"):
        parse_config(PromptConfig, {"max_history": 3})


def test_history_items_for_uses_user_feedback(tiny_dataset):
    ex = tiny_dataset.split("test")[0]  # u1 -> i3 after i1, i2, i5, i4
    items = history_items_for(tiny_dataset, ex)
    assert [h.text.split(" |")[0] for h in items] == [
        "Maybelline Matte Lipstick Red", "L'Oreal Infallible Foundation Matte", "Maybelline Fit Me Foundation",
        "Pink Glitter Nail Polish"]
    assert [h.rating for h in items] == [5.0, 4.0, 2.0, 5.0]
    assert items[0].review == "Love it. Great red colour, lasts all day."
    assert items[1].review == "Nice finish" and items[3].review is None
    titles = history_items_for(tiny_dataset, ex, field="title")
    assert titles[0].text == "Maybelline Matte Lipstick Red"
    u3 = [e for e in tiny_dataset.split("test") if e.user_id == "u3"][0]
    assert all(h.rating is None and h.review is None for h in history_items_for(tiny_dataset, u3))
