"""Hostile input for the prompt builder (property-based): arbitrary unicode, 100 KB item texts and reviews,
0..500 items, tiny budgets and several token counters.

Invariants: ``build_messages`` / ``fit_to_budget`` never raise; the result fits the budget whenever the
``(no history)`` prompt does; the kept items are a contiguous run of the newest ones, oldest first, with the
newest item last (the oldest are dropped first).
"""

from __future__ import annotations

import math
import re
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from bluerec.profiler.prompts import (
    NO_HISTORY,
    HistoryItem,
    PromptConfig,
    build_messages,
    fit_to_budget,
    messages_text,
    render_prompt,
)

UNI = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=60)
SPECIAL = st.sampled_from([
    "", "   ", "\u202eevil\u202c", "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627", "\U0001f469\u200d\U0001f469\u200d\U0001f467" * 30,
    "a\u2028b\u2029c\x85d", "\x1b[31m", "{title} {profile} {{}}", "ITEM", "…" * 50, "\t\n\r\x0b\x0c",
])
TEXT = st.one_of(UNI, SPECIAL)
HUGE = ("lorem ipsum \u00e9\U0001f600 " * 7000)[:100_000]
MARK = re.compile(r"ITEM(\d{3})")


def words(text: str) -> int:
    return len(text.split())


def chars(text: str) -> int:
    return len(text)


def utf8_pieces(text: str) -> int:  # a BPE-like counter: ~3 bytes a token, every non-ASCII char its own token
    return math.ceil(sum(1 if ord(c) < 128 else 3 for c in text) / 3)


def graphemeish(text: str) -> int:  # combining marks and format chars count, like odd tokenizers do
    return sum(2 if unicodedata.category(c) in ("Mn", "Cf", "So") else 1 for c in text) // 4 + 1


COUNTERS = st.sampled_from([words, chars, utf8_pieces, graphemeish])


@st.composite
def histories(draw: st.DrawFn) -> list[HistoryItem]:
    n = draw(st.sampled_from([0, 1, 2, 3, 5, 20, 120, 500]))
    pool = draw(st.lists(TEXT, min_size=1, max_size=8))  # reused texts keep 500-item histories cheap
    huge_at = set(draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=3)))
    out = []
    for i in range(n):
        body = HUGE if i in huge_at else pool[i % len(pool)]
        rating = draw(st.one_of(st.none(), st.sampled_from([0.0, 1.0, 4.5, 5.0, -1.0, 1e9, float("nan"), float("inf")])))
        review = draw(st.one_of(st.none(), TEXT, st.just(HUGE))) if i >= n - 30 else None
        out.append(HistoryItem(text=f"ITEM{i:03d} {body}", rating=rating, review=review))
    return out


@st.composite
def configs(draw: st.DrawFn) -> PromptConfig:
    return PromptConfig(
        system_prompt=draw(st.one_of(st.just("sys"), TEXT)),
        instruction=draw(st.one_of(st.just("write it"), TEXT)),
        include_ratings=draw(st.booleans()),
        review_snippet_chars=draw(st.sampled_from([0, 1, 5, 120, 5000])),
        max_item_chars=draw(st.sampled_from([8, 9, 20, 200, 100_000])),
        min_item_chars=draw(st.sampled_from([8, 30, 60])),
        max_history_items=draw(st.sampled_from([1, 2, 20, 500])),
        max_prompt_tokens=draw(st.sampled_from([32, 33, 40, 64, 200, 768, 5000])),
    )


def kept_items(msgs: list[dict]) -> list[int]:
    return [int(m) for m in MARK.findall(msgs[1]["content"])]


def check_shape(msgs: list[dict], config: PromptConfig) -> None:
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert msgs[0]["content"] == config.system_prompt
    assert msgs[1]["content"].endswith(config.instruction)


def suffix_of(kept: list[int], history: list[HistoryItem], config: PromptConfig) -> None:
    """kept is a contiguous run of the newest items, oldest first, newest last."""
    n = len(history)
    if not kept:
        return
    assert kept == list(range(kept[0], n)), kept
    assert n - len(kept) >= max(0, n - config.max_history_items)


@settings(max_examples=40, deadline=None)
@given(history=histories(), config=configs())
def test_build_messages_keeps_the_newest_items_in_order(history, config):
    msgs = build_messages(history, config)
    check_shape(msgs, config)
    kept = kept_items(msgs)
    if not history:
        assert NO_HISTORY in msgs[1]["content"]
        return
    assert kept == list(range(max(0, len(history) - config.max_history_items), len(history)))
    assert "(rated nan" not in msgs[1]["content"] and "(rated inf" not in msgs[1]["content"]
    render_prompt(msgs, None)  # the plain-text rendering accepts anything too


@settings(max_examples=40, deadline=None)
@given(history=histories(), config=configs(), count=COUNTERS)
def test_fit_to_budget_never_raises_and_fits(history, config, count):
    msgs = fit_to_budget(history, config, count)
    check_shape(msgs, config)
    budget = config.max_prompt_tokens
    empty_fits = count(messages_text(build_messages([], config))) <= budget
    if empty_fits:
        assert count(messages_text(msgs)) <= budget
    kept = kept_items(msgs)
    suffix_of(kept, history, config)
    if history and not kept:
        assert NO_HISTORY in msgs[1]["content"]  # nothing fits: the placeholder, never a broken prompt
    if history and kept:
        assert kept[-1] == len(history) - 1  # the newest item is the last to go
    # budget monotonicity: a larger budget never keeps fewer items
    bigger = fit_to_budget(history, config.model_copy(update={"max_prompt_tokens": budget * 4}), count)
    assert len(kept_items(bigger)) >= len(kept)


def test_non_finite_rating_is_not_shown():
    """Regression: a NaN rating (e.g. from a dataset prepared before the readers rejected it) rendered as
    "(rated nan/5)"; now it is shown like a missing rating."""
    msgs = build_messages([HistoryItem("Soap", float("nan")), HistoryItem("Mug", float("inf")), HistoryItem("Pen", 4.0)])
    user = msgs[1]["content"]
    assert "1. Soap\n" in user and "2. Mug\n" in user and "3. Pen (rated 4/5)" in user


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 500), budget=st.integers(32, 400), body=TEXT)
def test_oldest_items_are_dropped_first(n, budget, body):
    history = [HistoryItem(f"ITEM{i:03d} {body} words here", 4.0, "fine") for i in range(n)]
    config = PromptConfig(max_history_items=500, max_prompt_tokens=budget)
    msgs = fit_to_budget(history, config, words)
    kept = kept_items(msgs)
    if words(messages_text(build_messages([], config))) <= budget:
        assert words(messages_text(msgs)) <= budget
    if kept:
        assert kept == list(range(n - len(kept), n))
        if len(kept) < n:  # dropping happened: one more (older) item would not have fit
            one_more = fit_to_budget(history[n - len(kept) - 1:], config.model_copy(update={"max_history_items": len(kept) + 1}), words)
            assert len(kept_items(one_more)) <= len(kept)
