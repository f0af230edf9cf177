"""The collaborative prompt section: other users' next items, history removed, no leakage, within the budget."""

from __future__ import annotations

from bluerec.profiler.prompts import (
    CollaborativeContext,
    HistoryItem,
    PromptConfig,
    build_messages,
    context_for,
    context_texts,
    fit_prompt,
)

ON = PromptConfig(collaborative=CollaborativeContext(enabled=True, max_items=3, from_recent=2))


def test_off_by_default_leaves_prompts_and_their_hash_unchanged(tiny_dataset):
    history = [HistoryItem("Red lipstick"), HistoryItem("Foundation")]
    plain = PromptConfig()
    assert build_messages(history, plain) == build_messages(history, plain, context=[])
    assert context_texts(tiny_dataset, ["i1", "i2"], plain) == []
    assert "collaborative" not in plain.fingerprint() and "collaborative" in ON.fingerprint()


def test_section_is_readable_text_after_the_history():
    user = build_messages([HistoryItem("Red lipstick")], ON, context=["Nail polish", "Nail polish", "Hair mask"])[1]
    text = user["content"]
    assert ON.collaborative.header in text
    assert text.index("1. Red lipstick") < text.index("- Nail polish") < text.index(ON.instruction)
    assert text.count("- Nail polish") == 1  # deduplicated


def test_successors_come_from_training_sequences_without_history_items(tiny_dataset):
    # tiny_dataset (tests/profiler/conftest.py): u1 = i1 i2 i5 | i4 (valid) | i3 (test); u2 = i3 i6 | i4 | i1;
    # u3 = i4 i1 | i2 | i5. Train-only transitions: i1→i2, i1→i5, i2→i5, i3→i6, i4→i1.
    u1 = next(ex for ex in tiny_dataset.split("test") if ex.user_id == "u1")
    assert context_for(tiny_dataset, u1, ON, "test") == []  # every successor of u1's items is in its history
    titles = dict(zip(tiny_dataset.items.ids, tiny_dataset.items.texts))
    assert context_texts(tiny_dataset, ["i4"], ON, "test") == [titles["i1"]]
    assert context_texts(tiny_dataset, ["i3"], ON, "test") == [titles["i6"]]
    # i6 → i4 and i6 → i1 are only evidenced by u2's validation and test targets: never shown.
    assert context_texts(tiny_dataset, ["i6"], ON, "test") == []
    assert context_texts(tiny_dataset, ["i6"], ON, "valid") == []


def test_budget_keeps_history_first():
    count = lambda text: len(text.split())  # noqa: E731
    history = [HistoryItem(f"item {i} with a fairly long descriptive title") for i in range(10)]
    context = [f"suggested product number {i} with words" for i in range(3)]
    roomy = fit_prompt(history, ON.model_copy(update={"max_prompt_tokens": 400}), count, context)
    assert len(roomy.context_texts) == 3 and len(roomy.item_texts) == 10
    # ~67 words of system prompt, header and instruction; the section takes ~28 more.
    tight = fit_prompt(history, ON.model_copy(update={"max_prompt_tokens": 115}), count, context)
    assert count("\n\n".join(m["content"] for m in tight.messages)) <= 115
    assert len(tight.context_texts) == 3 and 0 < len(tight.item_texts) < 10  # older items dropped first
    tiny = fit_prompt(history, ON.model_copy(update={"max_prompt_tokens": 80}), count, context)
    assert tiny.item_texts and not tiny.context_texts  # the section never crowds out the whole history
