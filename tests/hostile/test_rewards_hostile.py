"""Degenerate and hostile profiles get a floor reward, never NaN (property-based).

tests/rewards/test_embedding.py pins the InfoNCE chance floor on a fixed list of degenerate texts and a fixed
vocabulary; tests/rewards/test_multiple_choice.py checks one empty profile. What is covered here in addition:
arbitrary completions (empty, whitespace, one token repeated, 100 KB, any unicode, conversational message lists,
``None``) together with misbehaving encoders / scorers (zero, NaN, inf vectors; NaN, ±inf, 1e308 scores), for both
rewards and both floor kinds: every reward is finite, degenerate profiles get exactly the floor (``1/C`` or the
configured value for multiple choice; the configured value for InfoNCE), and the encoder/scorer never sees them.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bluerec.rewards import (
    InfoNCEReward,
    InfoNCERewardConfig,
    MultipleChoiceReward,
    MultipleChoiceRewardConfig,
    is_degenerate,
)
from bluerec.rewards.text import completion_text

DIM = 4
UNI = st.text(st.characters(blacklist_categories=("Cs",)), max_size=50)
WORD = st.sampled_from(["good", "tea", "\u05e9\u05dc\u05d5\u05dd", "\U0001f600", "a", "_", "9"])
PROFILE = st.one_of(
    st.just(""),
    st.text(st.sampled_from(" \t\n\r\x0b\x0c\u00a0\u2028\u3000"), max_size=20),  # whitespace only
    st.builds(lambda w, k, sep: sep.join([w] * k), WORD, st.integers(2, 400), st.sampled_from([" ", "\n", ", "])),
    st.builds(lambda w, k: (w + " ") * k, st.sampled_from(["likes tea", "red shoes \U0001f600"]), st.integers(1, 6000)),
    st.text(st.sampled_from("!?.,;:-\u2026\U0001f600\u200d"), max_size=30),  # no word characters
    UNI,
    st.sampled_from(["likes tea", "red shoes and blue hats", "nan", "inf", "zero vector please", "nan vector here",
                     "inf vector here"]),
)


def as_completion(text: str, kind: int):
    if kind == 0:
        return text
    if kind == 1:
        return [{"role": "assistant", "content": text}]
    return [{"role": "assistant", "content": [{"type": "text", "text": text}]}]


COMPLETIONS = st.lists(st.tuples(PROFILE, st.integers(0, 2)), min_size=1, max_size=10)


def digest_vector(text: str, dim: int = DIM) -> np.ndarray:
    h = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    return np.frombuffer(h[: 4 * dim], dtype=np.uint32).astype(np.float64) / 2**31 - 1.0


class HostileEncoder:
    """Any text → a hashed vector; some texts → zero / NaN / inf vectors (a broken encoder)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        self.seen.extend(texts)
        rows = []
        for t in texts:
            if "zero vector" in t:
                rows.append(np.zeros(DIM))
            elif "nan vector" in t:
                rows.append(np.full(DIM, np.nan))
            elif "inf vector" in t:
                rows.append(np.full(DIM, np.inf))
            else:
                rows.append(digest_vector(t) * 1e3)  # unnormalised on purpose
        return np.stack(rows).astype(np.float32)


class HostileScorer:
    """Scores from a hash of the context; some contexts get NaN / ±inf / 1e308 rows or entries."""

    def __init__(self, mode: int) -> None:
        self.mode = mode
        self.seen: list[str] = []

    def score(self, contexts: list[str], options: list[list[str]]) -> np.ndarray:
        self.seen.extend(contexts)
        out = np.stack([digest_vector(c, len(o)) * 50 for c, o in zip(contexts, options)])
        if self.mode == 1:
            out[:, 0] = np.nan
        elif self.mode == 2:
            out[:] = -np.inf
        elif self.mode == 3:
            out[:, -1] = np.inf
        elif self.mode == 4:
            out[:, ::2] = 1e308
            out[:, 1::2] = -1e308
        elif self.mode == 5:
            out[::2] = np.nan  # whole rows unusable
        return out


def item_space(n: int = 6) -> tuple[np.ndarray, dict[str, int]]:
    emb = np.stack([digest_vector(f"item{i}") for i in range(n)])
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return emb.astype(np.float32), {f"i{k}": k for k in range(n)}


@settings(max_examples=40, deadline=None)
@given(completions=COMPLETIONS, negatives=st.sampled_from(["uniform", "hard"]),
       floor=st.sampled_from(["chance", -7.5]), seed=st.integers(0, 1000), tau=st.sampled_from([0.01, 0.1, 1.0]))
def test_infonce_is_finite_and_floors_degenerate_profiles(completions, negatives, floor, seed, tau):
    emb, index = item_space()
    enc = HostileEncoder()
    reward = InfoNCEReward(enc, emb, index, InfoNCERewardConfig(negatives=negatives, num_negatives=3, floor=floor,
                                                                temperature=tau))
    rng = np.random.default_rng(seed)
    n = len(completions)
    comps = [as_completion(t, k) for t, k in completions]
    cols = dict(target_item=[f"i{rng.integers(6)}" for _ in range(n)], user_id=[f"u{rng.integers(3)}" for _ in range(n)],
                history_items=[[f"i{rng.integers(6)}"] for _ in range(n)])
    out = reward(completions=comps, **cols)
    assert len(out) == n and all(isinstance(v, float) and math.isfinite(v) for v in out)
    b = reward.compute(comps, **cols)
    for arr in (b.profile_to_item, b.item_to_profile, b.reward):
        assert np.isfinite(arr).all()
    texts = [completion_text(c) for c in comps]
    broken = [any(k in t for k in ("zero vector", "nan vector", "inf vector")) for t in texts]
    for j, t in enumerate(texts):
        if is_degenerate(t) or broken[j]:
            assert b.degenerate[j]
            if floor != "chance":
                assert out[j] == floor
            else:
                assert out[j] <= 0.0
    assert not any(is_degenerate(t) for t in enc.seen)  # degenerate profiles never reach the encoder
    for view in reward.components():
        assert all(math.isfinite(v) for v in view(completions=comps, **cols))


@settings(max_examples=40, deadline=None)
@given(completions=COMPLETIONS, mode=st.integers(0, 5), floor=st.sampled_from(["chance", 0.0, -1.0]),
       c=st.sampled_from([2, 4, 7]), seed=st.integers(0, 1000))
def test_multiple_choice_is_finite_and_floors_degenerate_profiles(completions, mode, floor, c, seed):
    scorer = HostileScorer(mode)
    reward = MultipleChoiceReward(scorer, MultipleChoiceRewardConfig(num_choices=c, floor=floor))
    rng = np.random.default_rng(seed)
    n = len(completions)
    comps = [as_completion(t, k) for t, k in completions]
    options = [[f"opt {j} \U0001f600" * int(rng.integers(1, 3)) for j in range(c)] for _ in range(n)]
    answers = [int(rng.integers(c)) for _ in range(n)]
    metrics: dict[str, float] = {}
    out = reward(completions=comps, mc_options=options, mc_answer=answers,
                 log_metric=lambda k, v: metrics.__setitem__(k, v))
    assert len(out) == n and all(isinstance(v, float) and math.isfinite(v) for v in out)
    floor_value = 1.0 / c if floor == "chance" else floor
    for j, comp in enumerate(comps):
        text = completion_text(comp)
        if is_degenerate(text):
            assert out[j] == pytest.approx(floor_value)
        else:
            assert 0.0 <= out[j] <= 1.0 or out[j] == floor_value
    assert all(math.isfinite(v) for v in metrics.values())
    assert all(math.isfinite(v) for v in reward.last_components.values())
    assert len(scorer.seen) == sum(not is_degenerate(completion_text(x)) for x in comps)


def test_all_degenerate_batch_and_none_completions():
    emb, index = item_space()
    reward = InfoNCEReward(HostileEncoder(), emb, index, InfoNCERewardConfig(num_negatives=2))
    out = reward(completions=[None, "", "ok ok ok", [{"role": "assistant", "content": None}]],
                 target_item=["i0", "i1", "i2", "i3"], user_id=["a", "b", "c", "d"])
    assert all(math.isfinite(v) for v in out)
    mc = MultipleChoiceReward(HostileScorer(0))
    assert mc(completions=[None, " "], mc_options=[["a", "b", "c", "d"]] * 2, mc_answer=[0, 3]) == [0.25, 0.25]
