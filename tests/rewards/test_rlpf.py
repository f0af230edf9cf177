"""RLPF-style reward: the reader's likelihood of the true next item's title, on a fake scorer and small arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bluerec.rewards.registry import RewardContext, RowInfo, get_reward
from bluerec.rewards.rlpf import RLPFReward, RLPFRewardConfig, next_item_rewards, target_text_column


class FakeScorer:
    """Per-token mean log-likelihood: -0.5 when the context mentions the option's word, else -4."""

    length_normalise = True

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[list[str]]]] = []

    def score(self, contexts, options):
        self.calls.append((list(contexts), [list(o) for o in options]))
        return np.array([[-0.5 if o[0].strip() in c else -4.0] for c, o in zip(contexts, options)])


def test_reward_is_the_per_token_probability_of_the_true_title():
    scorer = FakeScorer()
    reward = RLPFReward(scorer)
    out = reward(completions=["likes green tea", "likes hats and socks"], target_text=["tea", "tea"])
    assert out == pytest.approx([math.exp(-0.5), math.exp(-4.0)])
    contexts, options = scorer.calls[0]
    assert "likes green tea" in contexts[0] and contexts[0].endswith("Answer:")
    assert options == [[" tea"], [" tea"]]  # the title alone, prefixed: no options, no distractors
    assert reward.last_components["mean_log_likelihood"] == pytest.approx((-0.5 - 4.0) / 2)


def test_log_likelihood_mode_and_the_degenerate_floor():
    scorer = FakeScorer()
    reward = RLPFReward(scorer, RLPFRewardConfig(score="log_likelihood"))
    out = reward(completions=["likes tea", "", "tea tea tea"], target_text=["tea"] * 3)
    assert out[0] == pytest.approx(-0.5)
    assert out[1] == out[2] == pytest.approx(math.log(1e-6))  # degenerate: the floor, below any real profile
    assert len(scorer.calls[0][0]) == 1  # degenerate profiles are never sent to the reader
    assert reward.last_components["degenerate_fraction"] == pytest.approx(2 / 3)
    assert RLPFReward(scorer, RLPFRewardConfig(floor=-2.0))(completions=[""], target_text=["tea"]) == [-2.0]
    assert RLPFReward(scorer)(completions=["..."], target_text=["tea"]) == [0.0]


def test_pure_mapping():
    ll = np.log(np.array([1.0, 0.5, 0.1]))
    assert next_item_rewards(ll, "probability") == pytest.approx([1.0, 0.5, 0.1])
    assert next_item_rewards(ll, "log_likelihood") == pytest.approx(ll)
    assert np.isnan(next_item_rewards(np.array([np.inf]), "probability")[0])


def test_bad_inputs_fail_clearly():
    with pytest.raises(ValueError, match="target_text"):
        RLPFReward(FakeScorer())(completions=["x y"], user_id=["u"])
    with pytest.raises(ValueError, match="entries"):
        RLPFReward(FakeScorer())(completions=["x y"], target_text=["a", "b"])

    class Raw(FakeScorer):
        length_normalise = False

    with pytest.raises(ValueError, match="length-normalised"):
        RLPFReward(Raw())
    with pytest.raises(TypeError, match="score"):
        RLPFReward(object())
    with pytest.raises(ValueError, match="profile"):
        RLPFRewardConfig(question_template="no field")


def test_registry_entry_writes_the_target_text_column_and_needs_the_reader(word_dataset_small):
    from bluerec.data.dataset import PreparedDataset

    spec = get_reward("rlpf")
    assert spec.needs_reader and spec.columns == ("target_text",)
    ds = PreparedDataset(word_dataset_small)
    ex = ds.split("train")[0]
    row = RowInfo(ds, ex, ds.items.index[ex.item_id], [str(i) for i in ds.full_history(ex)])
    column = spec.add_columns(RLPFRewardConfig(max_item_chars=8))["target_text"]
    assert column(row) == ds.items.titles[ds.items.index[ex.item_id]][:8]
    assert target_text_column(RLPFRewardConfig(item_field="text"))(row) == ds.items.texts[row.target_row][:80]
    ctx = RewardContext(encoder=None, item_emb=np.zeros((1, 1)), dataset=ds, reader=None)
    with pytest.raises(ValueError, match="'rlpf' reward needs a reader"):
        spec.build(RLPFRewardConfig(), ctx)


def test_non_finite_reader_scores_fall_back_to_the_floor():
    class Broken:
        length_normalise = True

        def score(self, contexts, options):
            return np.array([[np.nan], [-np.inf], [np.inf], [-1.0]][: len(contexts)])

    out = RLPFReward(Broken())(completions=["a b", "c d", "e f", "g h"], target_text=["x"] * 4)
    assert out == pytest.approx([0.0, 0.0, 0.0, math.exp(-1.0)])
    assert all(math.isfinite(v) for v in out)
