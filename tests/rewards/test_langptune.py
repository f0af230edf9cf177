"""LangPTune-style reward: NDCG@k / MRR of the next item over the whole catalogue, on small arrays."""

from __future__ import annotations

import numpy as np
import pytest

from bluerec.eval.metrics import mrr, ndcg_at_k
from bluerec.rewards.langptune import LangPTuneReward, LangPTuneRewardConfig, rank_rewards
from bluerec.rewards.registry import RewardContext, get_reward

ITEMS = np.eye(6, dtype=np.float32)  # item k is the k-th axis
INDEX = {f"i{k}": k for k in range(6)}


class VectorEncoder:
    """Profiles are written as "v=<comma-separated floats>"; anything else is the first axis."""

    def encode_queries(self, texts):
        out = []
        for t in texts:
            vec = np.array([float(x) for x in t.split("=")[1].split(",")]) if t.startswith("v=") else np.eye(6)[0]
            out.append(vec / np.linalg.norm(vec))
        return np.asarray(out, dtype=np.float32)


def test_ndcg_of_the_target_rank_over_the_whole_catalogue():
    reward = LangPTuneReward(VectorEncoder(), ITEMS, INDEX, LangPTuneRewardConfig(k=3))
    # scores: i0 .9, i1 .5, i2 .3, i3 .2, i4 .1, i5 0 (strictly ordered) → target i2 is at rank 2, i4 at 4
    profile = "v=.9,.5,.3,.2,.1,0"
    out = reward(completions=[profile, profile, profile], target_item=["i0", "i2", "i4"], history_items=[[], [], []])
    assert out == pytest.approx([1.0, 1 / np.log2(4), 0.0])  # i4 is outside the top 3
    assert out == pytest.approx(ndcg_at_k(np.array([0, 2, 4]), 3).tolist())
    assert reward.last_components["mean_rank"] == pytest.approx(2.0)
    assert reward.last_components["hit@3"] == pytest.approx(2 / 3)


def test_history_is_excluded_but_never_the_target():
    reward = LangPTuneReward(VectorEncoder(), ITEMS, INDEX, LangPTuneRewardConfig(metric="mrr"))
    profile = "v=.9,.5,.3,.2,.1,0"
    out = reward(completions=[profile] * 3, target_item=["i2", "i2", "i2"],
                 history_items=[[], ["i0", "i1"], ["i0", "i2", "unknown-id"]])
    assert out == pytest.approx([1 / 3, 1.0, 1 / 2])  # i2 in its own history stays ranked
    kept = LangPTuneReward(VectorEncoder(), ITEMS, INDEX, LangPTuneRewardConfig(metric="mrr", exclude_history=False))
    assert kept(completions=[profile], target_item=["i2"], history_items=[["i0", "i1"]]) == pytest.approx([1 / 3])


def test_ties_count_at_their_average_rank_by_default():
    tied = "v=1,1,1,1,0,0"  # i0..i3 tie
    average = LangPTuneReward(VectorEncoder(), ITEMS, INDEX, LangPTuneRewardConfig(metric="mrr"))
    assert average(completions=[tied], target_item=["i0"], history_items=[[]]) == pytest.approx([1 / 2.5])
    optimistic = LangPTuneReward(VectorEncoder(), ITEMS, INDEX, LangPTuneRewardConfig(metric="mrr", ties="optimistic"))
    assert optimistic(completions=[tied], target_item=["i3"], history_items=[[]]) == pytest.approx([1.0])
    pessimistic = LangPTuneReward(VectorEncoder(), ITEMS, INDEX,
                                  LangPTuneRewardConfig(metric="mrr", ties="pessimistic"))
    assert pessimistic(completions=[tied], target_item=["i0"], history_items=[[]]) == pytest.approx([1 / 4])


def test_degenerate_profiles_get_the_floor_and_are_not_encoded():
    calls = []

    class Counting(VectorEncoder):
        def encode_queries(self, texts):
            calls.append(list(texts))
            return super().encode_queries(texts)

    reward = LangPTuneReward(Counting(), ITEMS, INDEX, LangPTuneRewardConfig(floor=-1.0))
    out = reward(completions=["", "x x x", "v=1,0,0,0,0,0"], target_item=["i0"] * 3, history_items=[[]] * 3)
    assert out == pytest.approx([-1.0, -1.0, 1.0])
    assert calls == [["v=1,0,0,0,0,0"]]


def test_rank_rewards_match_the_evaluation_metrics():
    ranks = np.array([0.0, 1.5, 9.0, 10.0, 99.0])
    assert rank_rewards(ranks, "ndcg", 10) == pytest.approx(ndcg_at_k(ranks, 10))
    assert rank_rewards(ranks, "mrr", 10) == pytest.approx(mrr(ranks))


def test_dcg_is_ndcg_without_its_cutoff_and_still_orders_the_tail():
    ranks = np.array([0.0, 1.5, 9.0, 10.0, 99.0, 999.0])
    dcg = rank_rewards(ranks, "dcg", 10)
    assert dcg == pytest.approx(ndcg_at_k(ranks, 10_000))        # one relevant item: the same gain, no cut-off
    with pytest.raises(ValueError, match="finite and >= 0"):      # the evaluation metrics' own rank checks
        rank_rewards(np.array([-1.0]), "dcg", 10)
    assert dcg[:3] == pytest.approx(rank_rewards(ranks, "ndcg", 10)[:3])
    assert np.all(np.diff(dcg) < 0) and dcg[-1] > 0               # rank 10 → 100 → 1000 still pays less and less


def test_bad_inputs_fail_clearly():
    reward = LangPTuneReward(VectorEncoder(), ITEMS, INDEX)
    with pytest.raises(ValueError, match="target_item"):
        reward(completions=["a b"])
    with pytest.raises(KeyError, match="not in the catalogue"):
        reward(completions=["a b"], target_item=["nope"], history_items=[[]])
    with pytest.raises(TypeError, match="encode_queries"):
        LangPTuneReward(object(), ITEMS, INDEX)


def test_registry_entry_builds_from_the_training_context(word_dataset_small):
    from bluerec.data.dataset import PreparedDataset

    ds = PreparedDataset(word_dataset_small)
    spec = get_reward("langptune")
    assert not spec.needs_reader and set(spec.columns) == {"target_item", "history_items"}
    emb = np.eye(len(ds.items), dtype=np.float32)

    class ByTitle:
        def encode_queries(self, texts):
            return np.asarray([[1.0 if t in text else 0.0 for t in ds.items.titles] for text in texts],
                              dtype=np.float32) + 1e-3

    ctx = RewardContext(encoder=ByTitle(), item_emb=emb, dataset=ds)
    (func, weight), = spec.functions(LangPTuneRewardConfig(k=1), ctx, weight=2.0)
    assert weight == 2.0 and func.__name__ == "langptune"
    assert func(completions=["loves desk lamp"], target_item=["i2"], history_items=[[]]) == [1.0]
