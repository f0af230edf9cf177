"""The GRPO dataset builder: columns, row selection, seeded negatives and options, determinism."""

from __future__ import annotations

import pytest

from bluerec.data.dataset import PreparedDataset
from bluerec.profiler.prompts import PromptConfig, messages_text
from bluerec.train import RLDataConfig, build_rl_dataset, select_train_rows

PROMPT = PromptConfig(system_prompt="write the user profile", instruction="write the profile", include_ratings=False,
                      review_snippet_chars=0)


@pytest.fixture(scope="module")
def ds(word_dataset) -> PreparedDataset:
    return PreparedDataset(word_dataset)


def test_columns_and_latest_rows(ds):
    rl = build_rl_dataset(ds, RLDataConfig(), PROMPT)
    assert rl.column_names == ["prompt", "user_id", "target_item", "history_items"]
    train = ds.split("train")
    users = sorted({ex.user_id for ex in train})
    assert sorted(rl["user_id"]) == users  # one row per user ...
    for row in rl:
        latest = max((ex for ex in train if ex.user_id == row["user_id"]), key=lambda ex: ex.seq)
        assert row["target_item"] == latest.item_id  # ... its most recent train row
        assert row["history_items"] == list(ds.full_history(latest))
        roles = [m["role"] for m in row["prompt"]]
        assert roles == ["system", "user"] and row["prompt"][0]["content"] == PROMPT.system_prompt
        for item in row["history_items"]:
            assert ds.items.texts[ds.items.index[item]] in row["prompt"][1]["content"]


def test_row_selection(ds):
    train = ds.split("train")
    assert len(select_train_rows(train, RLDataConfig(rows="all"))) == len(train)
    assert len(select_train_rows(train, RLDataConfig(rows_per_user=2))) == len(train)  # 2 train rows per user
    assert all(len(ex.history) >= 2 for ex in select_train_rows(train, RLDataConfig(rows="all", min_history=2)))
    a = select_train_rows(train, RLDataConfig(rows="all", seed=1), max_examples=5)
    assert len(a) == 5 and a == select_train_rows(train, RLDataConfig(rows="all", seed=1), max_examples=5)
    assert a != select_train_rows(train, RLDataConfig(rows="all", seed=2), max_examples=5)
    positions = [train.index(ex) for ex in a]
    assert positions == sorted(positions)  # dataset order is kept


def test_negatives_and_options_are_seeded_valid_and_per_row(ds):
    cfg = RLDataConfig(rows="all", negatives="fixed", seed=3)
    full = build_rl_dataset(ds, cfg, PROMPT, num_negatives=4, mc_choices=4)
    assert full.column_names == ["prompt", "user_id", "target_item", "history_items", "negatives", "mc_options",
                                 "mc_answer"]
    items = ds.items
    for row in full:
        neg = row["negatives"]
        assert len(neg) == 4 == len(set(neg))
        assert not set(neg) & (set(row["history_items"]) | {row["target_item"]})
        options, answer = row["mc_options"], row["mc_answer"]
        assert len(options) == 4 == len(set(options))
        assert options[answer] == items.titles[items.index[row["target_item"]]]
        history_titles = {items.titles[items.index[i]] for i in row["history_items"]}
        assert not history_titles & set(options)

    # deterministic, seed-dependent, and a row's draws do not depend on the other rows selected
    again = build_rl_dataset(ds, cfg, PROMPT, num_negatives=4, mc_choices=4)
    assert again.to_list() == full.to_list()
    other = build_rl_dataset(ds, cfg.model_copy(update={"seed": 4}), PROMPT, num_negatives=4, mc_choices=4)
    assert other["negatives"] != full["negatives"] and other["target_item"] == full["target_item"]
    sample = build_rl_dataset(ds, cfg, PROMPT, max_examples=7, num_negatives=4, mc_choices=4)
    by_key = {(r["user_id"], r["target_item"]): r for r in full}
    assert len(sample) == 7
    for row in sample:
        assert row == by_key[(row["user_id"], row["target_item"])]
    answers = set(full["mc_answer"])
    assert len(answers) > 1  # the true item is shuffled among the options


def test_per_step_negatives_write_no_column_and_prompts_fit_budget(ds):
    budget = PROMPT.model_copy(update={"max_prompt_tokens": 40})

    def count(text: str) -> int:
        return len(text.split())

    rl = build_rl_dataset(ds, RLDataConfig(rows="all"), budget, count_tokens=count, num_negatives=4,
                          render=lambda chat: [chat[1]])
    assert "negatives" not in rl.column_names and "mc_options" not in rl.column_names
    assert all(len(p) == 1 and p[0]["role"] == "user" for p in rl["prompt"])  # render is applied
    assert all(count(messages_text(p)) <= 40 for p in rl["prompt"])
    with pytest.raises(ValueError, match="mc_choices"):
        build_rl_dataset(ds, RLDataConfig(), PROMPT, mc_choices=1)
    with pytest.raises(ValueError, match="distinct distractor"):
        build_rl_dataset(ds, RLDataConfig(), PROMPT, mc_choices=10)
