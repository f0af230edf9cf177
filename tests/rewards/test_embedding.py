"""The InfoNCE reward's math is pinned on hand-built 2-D/3-D embeddings with hand-computed log-softmaxes."""

from __future__ import annotations

import math
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from bluerec.config import ConfigError, parse_config
from bluerec.rewards import (
    InfoNCEReward,
    InfoNCERewardConfig,
    ProfileEmbeddingCache,
    TextEncoder,
    info_nce_log_prob,
    masked_log_softmax,
    sample_negatives,
)
from bluerec.rewards.embedding import hard_negative_indices, row_rng


def unit(*v: float) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    return a / np.linalg.norm(a)


class FakeEncoder:
    """Maps chosen strings to chosen vectors; any other text is an error (so degenerate texts must not reach it)."""

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table
        self.calls: list[list[str]] = []

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.stack([np.asarray(self.table[t], dtype=np.float32) for t in texts])


ITEMS = {"A": unit(1, 0, 0), "B": unit(0, 1, 0), "C": unit(0, 0, 1), "D": unit(1, 1, 0)}


def item_space(items: dict[str, np.ndarray] = ITEMS) -> tuple[np.ndarray, dict[str, int]]:
    ids = list(items)
    return np.stack([items[i] for i in ids]).astype(np.float32), {i: k for k, i in enumerate(ids)}


def lse(*xs: float) -> float:
    return math.log(sum(math.exp(x) for x in xs))


# --- pure functions -------------------------------------------------------------------------------------------------


def test_info_nce_log_prob_by_hand():
    q = unit(1, 0)
    cands = np.stack([unit(1, 0), unit(0, 1), unit(-1, 0)])
    tau = 0.5
    assert info_nce_log_prob(q, 0, cands, tau) == pytest.approx(2.0 - lse(2.0, 0.0, -2.0))
    assert info_nce_log_prob(q, 2, cands, tau) == pytest.approx(-2.0 - lse(2.0, 0.0, -2.0))


def test_masked_log_softmax_ignores_masked_entries_and_is_stable():
    out = masked_log_softmax(np.array([[1000.0, 1000.0, 5000.0]]), np.array([[True, True, False]]))
    assert out[0, :2] == pytest.approx([-math.log(2)] * 2)
    assert out[0, 2] == -np.inf
    with pytest.raises(ValueError):
        masked_log_softmax(np.zeros((1, 2)), np.zeros((1, 2), dtype=bool))


# --- profile -> item ------------------------------------------------------------------------------------------------


def test_profile_to_item_with_dataset_negatives_matches_hand_computation():
    emb, index = item_space()
    enc = FakeEncoder({"likes a": unit(1, 0, 0), "likes b": unit(0, 1, 0), "likes ab": unit(1, 1, 0)})
    reward = InfoNCEReward(enc, emb, index, InfoNCERewardConfig(temperature=0.1))
    out = reward(
        completions=["likes a", "likes b", "likes ab"],
        target_item=["A", "A", "A"],
        negatives=[["B", "C"], ["B", "C"], ["B", "D", "A", "B"]],  # target and duplicates are dropped
        user_id=["u1", "u1", "u1"],
    )
    s = math.sqrt(0.5)
    expected = [
        10.0 - lse(10.0, 0.0, 0.0),
        0.0 - lse(0.0, 10.0, 0.0),
        10 * s - lse(10 * s, 10 * s, 10.0),  # "likes ab" vs {A, B, D}
    ]
    assert out == pytest.approx(expected)  # one user: item->profile is log 1 = 0
    assert reward.item_to_profile(completions=["likes a", "likes b", "likes ab"], target_item=["A"] * 3,
                                  negatives=[["B", "C"], ["B", "C"], ["B", "D"]], user_id=["u1"] * 3) == [0.0] * 3
    assert reward.last_components["profile_to_item_accuracy"] == pytest.approx(1 / 3)


# --- item -> profile ------------------------------------------------------------------------------------------------


def test_item_to_profile_two_users_two_generations_excludes_siblings():
    emb, index = item_space()
    p1, p2, p3, p4 = unit(1, 0, 0), unit(0.6, 0.8, 0), unit(0, 1, 0), unit(0, 0, 1)
    enc = FakeEncoder({"p one": p1, "p two": p2, "p three": p3, "p four": p4})
    cfg = InfoNCERewardConfig(temperature=1.0, weight_profile_to_item=0.5, weight_item_to_profile=2.0)
    reward = InfoNCEReward(enc, emb, index, cfg)
    cols = dict(
        completions=["p one", "p two", "p three", "p four"],
        target_item=["A", "A", "B", "B"],
        user_id=["u1", "u1", "u2", "u2"],
        negatives=[["C"], ["C"], ["C"], ["C"]],
    )
    i2p = reward.item_to_profile(**cols)
    # Row j: target item of j against {profile j} ∪ {profiles of the other user}; the sibling is not a candidate.
    e = math.exp
    expected_i2p = [
        math.log(e(1.0) / (e(1.0) + e(0.0) + e(0.0))),  # A·p1=1 vs A·p3=0, A·p4=0
        math.log(e(0.6) / (e(0.6) + e(0.0) + e(0.0))),  # A·p2=.6 vs A·p3, A·p4
        math.log(e(1.0) / (e(1.0) + e(0.0) + e(0.8))),  # B·p3=1 vs B·p1=0, B·p2=.8
        math.log(e(0.0) / (e(0.0) + e(0.0) + e(0.8))),  # B·p4=0 vs B·p1, B·p2
    ]
    assert i2p == pytest.approx(expected_i2p)
    p2i = reward.profile_to_item(**cols)
    expected_p2i = [
        1.0 - lse(1.0, 0.0),  # p1 vs {A, C}
        0.6 - lse(0.6, 0.0),
        1.0 - lse(1.0, 0.0),  # p3 vs {B, C}
        0.0 - lse(0.0, 1.0),  # p4 vs {B, C}
    ]
    assert p2i == pytest.approx(expected_p2i)
    assert reward(**cols) == pytest.approx([0.5 * a + 2.0 * b for a, b in zip(expected_p2i, expected_i2p)])
    assert len(enc.calls) == 1  # three callables, one embedding pass
    assert reward.component_weights() == [0.5, 2.0]


def test_item_to_profile_excludes_other_users_with_the_same_target():
    emb, index = item_space()
    enc = FakeEncoder({"p one": unit(1, 0, 0), "p other": unit(1, 0, 0), "p far": unit(0, 0, 1)})
    reward = InfoNCEReward(enc, emb, index, InfoNCERewardConfig(temperature=1.0))
    b = reward.compute(["p one", "p other", "p far"], target_item=["A", "A", "B"], user_id=["u1", "u2", "u3"],
                       negatives=[["C"]] * 3)
    assert b.num_profile_candidates.tolist() == [2, 2, 3]
    assert b.item_to_profile[0] == pytest.approx(1.0 - lse(1.0, 0.0))  # u2 (same target A) is not a negative


def test_group_falls_back_to_prompt_when_user_id_is_missing():
    emb, index = item_space()
    enc = FakeEncoder({"x one": unit(1, 0, 0), "x two": unit(0, 1, 0)})
    reward = InfoNCEReward(enc, emb, index, InfoNCERewardConfig(temperature=1.0))
    same_prompt = reward.compute(["x one", "x two"], target_item=["A", "B"], prompts=["p", "p"], negatives=[["C"]] * 2)
    assert same_prompt.item_to_profile.tolist() == [0.0, 0.0]
    other_prompt = reward.compute(["x one", "x two"], target_item=["A", "B"], prompts=["p", "q"], negatives=[["C"]] * 2)
    assert other_prompt.item_to_profile[0] == pytest.approx(1.0 - lse(1.0, 0.0))


# --- sampled negatives ----------------------------------------------------------------------------------------------


def test_sample_negatives_excludes_and_is_distinct():
    rng = np.random.default_rng(0)
    for _ in range(50):
        neg = sample_negatives(rng, 20, 5, exclude={0, 3, 7})
        assert len(set(neg.tolist())) == 5 and not set(neg.tolist()) & {0, 3, 7}
    assert sorted(sample_negatives(rng, 4, 10, exclude={1}).tolist()) == [0, 2, 3]  # fewer items than k


def test_popularity_negatives_follow_weights():
    weights = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 0.0])
    rng = np.random.default_rng(123)
    n = 8000
    counts = Counter(int(sample_negatives(rng, 6, 1, exclude={0}, weights=weights)[0]) for _ in range(n))
    assert counts[5] == 0 and counts[0] == 0
    for item, w in zip(range(1, 5), [1, 2, 3, 4]):
        p = w / 10
        assert abs(counts[item] / n - p) < 4 * math.sqrt(p * (1 - p) / n)
    # fewer positive-weight items than k: all of them, then zero-weight ones fill up
    filled = sample_negatives(rng, 6, 5, exclude={1}, weights=weights)
    assert set(filled.tolist()) == {0, 2, 3, 4, 5}


def test_reward_popularity_negatives_seeded_shared_by_siblings_and_outside_history():
    rng = np.random.default_rng(0)
    n_items = 50
    emb = rng.normal(size=(n_items, 8))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    index = {f"i{k}": k for k in range(n_items)}
    popularity = np.zeros(n_items)
    popularity[:30] = np.arange(1, 31)
    texts = {f"profile {k}": unit(*rng.normal(size=8)) for k in range(4)}
    cfg = InfoNCERewardConfig(negatives="popularity", num_negatives=5, seed=7)
    reward = InfoNCEReward(FakeEncoder(texts), emb, index, cfg, popularity=popularity)
    cols = dict(target_item=["i1", "i1", "i2", "i2"], user_id=["u1", "u1", "u2", "u2"],
                history_items=[["i3", "i4"], ["i3", "i4"], ["i5"], ["i5"]])
    state = SimpleNamespace(global_step=4)
    b = reward.compute(list(texts), trainer_state=state, **cols)
    neg = b.negative_idx
    assert (neg[0] == neg[1]).all() and (neg[2] == neg[3]).all()  # siblings share their negatives
    assert not {1, 3, 4} & set(neg[0].tolist()) and not {2, 5} & set(neg[2].tolist())
    assert (neg < 30).all()  # zero-popularity items are never drawn while enough positive ones exist
    again = reward.compute(list(texts), trainer_state=SimpleNamespace(global_step=4), **cols)
    assert (again.negative_idx == neg).all()
    assert (row_rng(7, 4, "u1", "i1").random(3) == row_rng(7, 4, "u1", "i1").random(3)).all()
    later = reward.compute(list(texts), trainer_state=SimpleNamespace(global_step=5), **cols)
    assert not (later.negative_idx == neg).all()


def test_history_negatives_put_the_users_older_items_among_the_negatives_by_hand():
    items = {"T": unit(1, 0, 0), "H1": unit(0, 1, 0), "H2": unit(0.6, 0.8, 0), "N": unit(0.8, 0.6, 0),
             "X": unit(0, 0, 1)}
    emb, index = item_space(items)
    tau = 0.5
    older_like = unit(0.6, 0.8, 0)  # a profile that restates the older purchase H2
    enc = FakeEncoder({"older": older_like, "next": unit(1, 0, 0)})
    cfg = InfoNCERewardConfig(num_negatives=1, history_negatives=2, history_negatives_skip_newest=1,
                              temperature=tau, weight_item_to_profile=0.0)
    reward = InfoNCEReward(enc, emb, index, cfg)
    # history oldest → newest: H1, H2, N; N (the newest) is skipped, H2 and H1 become negatives, newest first; the one
    # sampled negative can only be X (the target and the whole history are excluded from sampling)
    b = reward.compute(["older", "next"], target_item=["T", "T"], user_id=["u", "v"],
                       history_items=[["H1", "H2", "N"], ["H1", "H2", "N"]])
    assert b.negative_idx[0].tolist() == [index["H2"], index["H1"], index["X"]]
    assert b.num_negatives.tolist() == [3, 3]
    # cos(older_like, ·) for T, H2, H1, X = 0.6, 1.0, 0.8, 0.0, over τ = 0.5
    assert b.profile_to_item[0] == pytest.approx(1.2 - lse(1.2, 2.0, 1.6, 0.0))
    assert b.reward[0] < b.reward[1]  # restating what the user has scores below pointing at what comes next
    # without the option the same profile only competes with sampled items
    plain = InfoNCEReward(enc, emb, index, InfoNCERewardConfig(num_negatives=1, temperature=tau))
    assert plain.compute(["older"], target_item=["T"], user_id=["u"],
                         history_items=[["H1", "H2", "N"]]).negative_idx.tolist() == [[index["X"]]]
    with pytest.raises(ValueError, match="history_negatives needs sampled negatives"):
        InfoNCERewardConfig(negatives="hard", history_negatives=2)
    # repeats count once (the skipped newest item's earlier copy is skipped too), the target and ids unknown to the
    # index never become negatives, and at most history_negatives are taken
    one = InfoNCEReward(enc, emb, index, cfg.model_copy(update={"history_negatives": 1}))
    b = one.compute(["older"], target_item=["T"], user_id=["u"],
                    history_items=[["H1", "T", "N", "H2", "gone", "N"]])
    assert b.negative_idx[0].tolist() == [index["H2"], index["X"]]
    b = reward.compute(["older"], target_item=["T"], user_id=["u"], history_items=[["T", "N", "H1", "N"]])
    assert b.negative_idx[0].tolist() == [index["H1"], index["X"]]


def test_history_negatives_refuse_fixed_negative_columns():
    from bluerec.train.config import BlueTrainConfig

    base = {"dataset": "d", "output_dir": "o", "profiler": {"backend": "micro", "model": "m"},
            "rewards": {"enabled": ["infonce"], "infonce": {"history_negatives": 2}}}
    assert BlueTrainConfig.model_validate(base).rewards.infonce.history_negatives == 2
    with pytest.raises(ValueError, match="data.negatives 'fixed'"):
        BlueTrainConfig.model_validate({**base, "data": {"negatives": "fixed"}})


# --- hard negatives -------------------------------------------------------------------------------------------------


def test_hard_negatives_pick_top_non_target_non_history_items():
    items = {
        "A": unit(1, 0, 0),  # target
        "B": unit(0.8, 0.6, 0),
        "C": unit(0.6, 0.8, 0),
        "D": unit(0, 1, 0),
        "E": unit(0, 0, 1),
        "H": unit(0.96, 0.28, 0),  # in the history
    }
    emb, index = item_space(items)
    enc = FakeEncoder({"likes a": unit(1, 0, 0)})
    tau = 0.2
    reward = InfoNCEReward(enc, emb, index, InfoNCERewardConfig(negatives="hard", num_negatives=2, temperature=tau))
    b = reward.compute(["likes a"], target_item=["A"], user_id=["u"], history_items=[["H"]],
                       negatives=[["E"]])  # a negatives column is ignored for hard negatives
    assert b.negative_idx.tolist() == [[index["B"], index["C"]]]
    assert b.profile_to_item[0] == pytest.approx(1 / tau - lse(1 / tau, 0.8 / tau, 0.6 / tau))
    keep_history = InfoNCEReward(enc, emb, index, InfoNCERewardConfig(negatives="hard", num_negatives=2,
                                                                        exclude_history=False))
    b2 = keep_history.compute(["likes a"], target_item=["A"], user_id=["u"], history_items=[["H"]])
    assert b2.negative_idx.tolist() == [[index["H"], index["B"]]]
    # more negatives than allowed items: padded with -1
    assert hard_negative_indices(unit(1, 0, 0)[None], emb, 7, [{0}]).tolist()[0][-2:] == [-1, -1]


# --- degenerate profiles --------------------------------------------------------------------------------------------


def test_degenerate_profiles_get_the_chance_floor_and_never_nan():
    emb, index = item_space()
    enc = FakeEncoder({"p one": unit(1, 0, 0), "p three": unit(0, 1, 0), "zero vector": np.zeros(3)})
    reward = InfoNCEReward(enc, emb, index, InfoNCERewardConfig(temperature=0.05))
    completions = ["p one", "", "   ", "good good good", "p three", "zero vector"]
    cols = dict(target_item=["A", "A", "A", "A", "B", "B"], user_id=["u1", "u1", "u1", "u1", "u2", "u2"],
                negatives=[["B", "C", "D"]] * 4 + [["A", "C"]] * 2)
    b = reward.compute(completions, **cols)
    assert b.degenerate.tolist() == [False, True, True, True, False, True]
    for j in (1, 2, 3):
        # chance: p2i over 3 negatives + target; i2p over itself + u2's one valid profile
        assert b.profile_to_item[j] == pytest.approx(-math.log(4))
        assert b.item_to_profile[j] == pytest.approx(-math.log(2))
        assert b.reward[j] == pytest.approx(-math.log(4) - math.log(2))
    assert b.profile_to_item[5] == pytest.approx(-math.log(3))
    assert b.item_to_profile[5] == pytest.approx(-math.log(2))  # itself + u1's valid profile
    assert np.isfinite(b.reward).all()
    assert all("" not in call and "zero vector" not in call[:0] for call in enc.calls)
    assert reward.last_components["degenerate_fraction"] == pytest.approx(4 / 6)

    fixed = InfoNCEReward(enc, emb, index, InfoNCERewardConfig(floor=-9.0))
    out = fixed(completions=["", "p one"], target_item=["A", "A"], user_id=["u", "u"], negatives=[["B"], ["B"]])
    assert out[0] == -9.0 and math.isfinite(out[1])
    assert fixed.profile_to_item(completions=["", "p one"], target_item=["A", "A"], user_id=["u", "u"],
                                 negatives=[["B"], ["B"]])[0] == -9.0


def test_all_degenerate_and_empty_batches():
    emb, index = item_space()
    reward = InfoNCEReward(FakeEncoder({}), emb, index, InfoNCERewardConfig(num_negatives=2))
    out = reward(completions=["", "..."], target_item=["A", "B"], user_id=["u1", "u2"])
    assert out == pytest.approx([-math.log(3)] * 2)  # i2p: no valid other profile -> log 1
    assert reward(completions=[], target_item=[]) == []


# --- TRL contract ---------------------------------------------------------------------------------------------------


def test_called_exactly_like_trl_with_conversational_completions():
    from trl.trainer.utils import get_callable_name

    emb, index = item_space()
    enc = FakeEncoder({"likes a": unit(1, 0, 0), "likes b": unit(0, 1, 0)})
    reward = InfoNCEReward(enc, emb, index, InfoNCERewardConfig(num_negatives=2, negatives="uniform"))
    metrics: dict[str, list[float]] = {}
    completions = [[{"role": "assistant", "content": t}] for t in ["likes a", "likes b", "likes b", "likes a"]]
    kwargs = dict(
        prompts=[[{"role": "user", "content": "history 1"}]] * 2 + [[{"role": "user", "content": "history 2"}]] * 2,
        completions=completions,
        completion_ids=[[1, 2], [3], [4], [5, 6]],
        user_id=["u1", "u1", "u2", "u2"],
        target_item=["A", "A", "B", "B"],
        history_items=[["C"], ["C"], ["D"], ["D"]],
        split=["train"] * 4,  # an unrelated dataset column
        trainer_state=SimpleNamespace(global_step=1),
        log_extra=lambda column, values: None,
        log_metric=lambda name, value: metrics.setdefault(name, []).append(value),
    )
    funcs = [reward, *reward.components()]
    assert [get_callable_name(f) for f in funcs] == ["infonce", "infonce_profile_to_item", "infonce_item_to_profile"]
    results = [f(**kwargs) for f in funcs]
    for r in results:
        assert len(r) == 4 and all(isinstance(v, float) and math.isfinite(v) for v in r)
    assert results[0] == pytest.approx([a + b for a, b in zip(results[1], results[2])])
    assert len(enc.calls) == 1 and enc.calls[0] == ["likes a", "likes b"]  # embedded once, duplicates once
    assert set(metrics) == {"infonce/degenerate_fraction", "infonce/profile_to_item_accuracy"}
    assert isinstance(enc, TextEncoder)


def test_validation_errors():
    emb, index = item_space()
    enc = FakeEncoder({"likes a": unit(1, 0, 0)})
    reward = InfoNCEReward(enc, emb, index)
    with pytest.raises(ValueError, match="target_item"):
        reward(completions=["likes a"], user_id=["u"])
    with pytest.raises(KeyError, match="not in item_index"):
        reward(completions=["likes a"], target_item=["nope"])
    with pytest.raises(ValueError, match="popularity"):
        InfoNCEReward(enc, emb, index, InfoNCERewardConfig(negatives="popularity"))
    with pytest.raises(ValueError, match="normalised"):
        InfoNCEReward(enc, emb * 2, index)
    with pytest.raises(TypeError):
        InfoNCEReward(object(), emb, index)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="allowed values"):
        parse_config(InfoNCERewardConfig, {"negatives": "random"})
    assert parse_config(InfoNCERewardConfig, {"floor": -3}).floor == -3.0
    assert parse_config(InfoNCERewardConfig, {"floor": "chance"}).floor == "chance"


def test_shared_embedding_cache_between_rewards():
    emb, index = item_space()
    enc = FakeEncoder({"likes a": unit(1, 0, 0), "likes b": unit(0, 1, 0)})
    cache = ProfileEmbeddingCache(enc)
    r1 = InfoNCEReward(cache, emb, index, InfoNCERewardConfig(temperature=0.05))
    r2 = InfoNCEReward(cache, emb, index, InfoNCERewardConfig(temperature=0.5, negatives="hard", num_negatives=1))
    cols = dict(completions=["likes a", "likes b"], target_item=["A", "B"], user_id=["u1", "u2"])
    r1(**cols), r2(**cols)
    assert cache.calls == 1 and len(enc.calls) == 1


# --- properties -----------------------------------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    texts=st.lists(st.sampled_from(["", " ", "a a", "likes a", "likes b", "likes c", "!!"]), min_size=1, max_size=8),
    negatives=st.sampled_from(["uniform", "popularity", "hard"]),
    tau=st.floats(0.01, 2.0),
)
def test_rewards_are_finite_log_probabilities(seed, texts, negatives, tau):
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(7, 3))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    index = {f"i{k}": k for k in range(7)}
    enc = FakeEncoder({t: unit(*rng.normal(size=3)) for t in ["likes a", "likes b", "likes c"]})
    cfg = InfoNCERewardConfig(negatives=negatives, num_negatives=3, temperature=tau)
    popularity = rng.integers(0, 5, size=7)
    popularity[0] = 1
    reward = InfoNCEReward(enc, emb, index, cfg, popularity=popularity)
    n = len(texts)
    b = reward.compute(texts, target_item=[f"i{rng.integers(7)}" for _ in range(n)],
                       user_id=[f"u{rng.integers(3)}" for _ in range(n)],
                       history_items=[[f"i{rng.integers(7)}"] for _ in range(n)])
    for arr in (b.profile_to_item, b.item_to_profile, b.reward):
        assert np.isfinite(arr).all() and (arr <= 1e-12).all()


# --- multi-process: the item→profile direction over the profiles of every rank --------------------------------------


def test_item_to_profile_gathers_every_rank_and_equals_the_single_process_batch():
    """Two simulated ranks (an injected all-gather) give each row exactly what one process computes on the
    concatenated batch, in both directions; without the gather the item→profile negatives shrink."""
    rng = np.random.default_rng(3)
    items = {f"i{k}": unit(*rng.normal(size=6)) for k in range(12)}
    emb, index = item_space(items)
    users = [f"u{k}" for k in range(8)]
    texts = [f"profile {u} {g}" for u in users for g in range(3)]
    table = {t: unit(*rng.normal(size=6)) for t in texts}
    texts[4] = "   "  # a degenerate profile on rank 0
    targets = [f"i{k % 5}" for k, u in enumerate(users) for _ in range(3)]  # users 0 and 5 share a target
    cols = {"completions": texts, "target_item": targets, "user_id": [u for u in users for _ in range(3)]}
    cfg = InfoNCERewardConfig(temperature=0.2, num_negatives=4, weight_item_to_profile=0.7)

    def run(sl: slice, gather=None):
        reward = InfoNCEReward(FakeEncoder(table), emb, index, cfg, all_gather=gather)
        return reward.compute(**{k: v[sl] for k, v in cols.items()}, trainer_state=SimpleNamespace(global_step=3))

    whole = run(slice(None))
    halves = [slice(0, 12), slice(12, 24)]
    payloads: list = [None, None]

    def recorder(r):
        def gather(obj):
            payloads[r] = obj
            return [obj], 0
        return gather

    local = [run(sl, recorder(r)) for r, sl in enumerate(halves)]  # also: what each rank sees alone
    ranks = [run(sl, lambda obj, r=r: (payloads, r)) for r, sl in enumerate(halves)]
    for field in ("profile_to_item", "item_to_profile", "reward", "num_profile_candidates", "degenerate"):
        joined = np.concatenate([getattr(b, field) for b in ranks])
        np.testing.assert_allclose(joined, getattr(whole, field), rtol=0, atol=1e-12, err_msg=field)
    assert (np.concatenate([b.num_profile_candidates for b in local]) < whole.num_profile_candidates).all()
    assert not np.allclose(np.concatenate([b.item_to_profile for b in local]), whole.item_to_profile)


def test_torch_all_gather_is_a_no_op_without_a_process_group():
    from bluerec.rewards.embedding import torch_all_gather

    assert torch_all_gather({"x": 1}) == ([{"x": 1}], 0)
