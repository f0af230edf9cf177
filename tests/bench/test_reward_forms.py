"""bench/reward_forms.py: the forms it scores hold the prompt's texts exactly as the warm start writes them."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def bench():
    from support.benches import load_bench

    return load_bench("reward_forms")


def test_forms_use_the_prompt_texts_as_the_warm_start_target_does(bench):
    from bluerec.profiler.prompts import CollaborativeContext, HistoryItem, PromptConfig, build_prompt
    from bluerec.profiler.warmstart import make_target

    long_title = "Rose  Water Facial Toner with Witch Hazel and Aloe for Sensitive Skin, Alcohol Free, 8 Fl Oz Bottle"
    history = [HistoryItem("Clay Mask"), HistoryItem(long_title)]
    config = PromptConfig(max_item_chars=40, collaborative=CollaborativeContext(enabled=True))
    prompt = build_prompt(history, config, ["Sheet   Mask Set"])
    forms = bench.forms_for(prompt.item_texts, prompt.context_texts)
    newest = prompt.item_texts[-1]
    assert newest.endswith("…") and "  " not in newest  # the prompt's clip: word boundary, whitespace collapsed
    assert forms["taught"] == make_target("newest_item+successor", [], None, history_texts=prompt.item_texts,
                                          context_texts=prompt.context_texts)
    assert forms["taught"] == f"Recently: {newest}. Often bought next: Sheet Mask Set."
    assert forms["swap"] == f"Recently: Clay Mask. Often bought next: {newest}."
    assert forms["newest"] == f"Recently: {newest}."
    assert forms["successor"] == "Often bought next: Sheet Mask Set."
