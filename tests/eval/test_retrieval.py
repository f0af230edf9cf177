from __future__ import annotations

import numpy as np
import pytest

from bluerec.eval.retrieval import (
    FaissRetriever,
    TorchRetriever,
    full_ranks,
    sample_negatives,
    sampled_ranks,
)


def _data(n: int = 200, m: int = 400, d: int = 24, seed: int = 0):
    rng = np.random.default_rng(seed)
    items = rng.standard_normal((m, d)).astype(np.float32)
    queries = rng.standard_normal((n, d)).astype(np.float32)
    targets = rng.integers(0, m, n)
    exclude = [rng.choice(m, size=int(rng.integers(0, min(40, m))), replace=False) for _ in range(n)]
    return rng, items, queries, targets, exclude


def _brute_topk(queries, items, k, exclude):
    scores = queries @ items.T
    for i, ex in enumerate(exclude or []):
        scores[i, np.asarray(ex, dtype=int)] = -np.inf
    idx = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, idx, axis=1), idx


def _same_up_to_ties(a_idx, a_s, b_idx, b_s, atol=1e-4):
    np.testing.assert_allclose(a_s, b_s, atol=atol)
    # Where two neighbouring scores are (nearly) tied the order may legitimately differ.
    gap = np.abs(np.diff(a_s, axis=1, prepend=np.inf)) > atol
    gap &= np.abs(np.diff(a_s, axis=1, append=-np.inf)) > atol
    np.testing.assert_array_equal(a_idx[gap], b_idx[gap])


def test_torch_and_faiss_agree_with_exclusions() -> None:
    _, items, queries, _, exclude = _data()
    a = TorchRetriever(items, batch_size=37).search(queries, 20, exclude)
    b = FaissRetriever(items, batch_size=50).search(queries, 20, exclude)
    s, idx = _brute_topk(queries, items, 20, exclude)
    _same_up_to_ties(a.indices, a.scores, b.indices, b.scores)
    _same_up_to_ties(a.indices, a.scores, idx, s)
    for i, ex in enumerate(exclude):
        assert not np.isin(a.indices[i], ex).any() and not np.isin(b.indices[i], ex).any()


def test_search_without_exclusion_and_padding() -> None:
    _, items, queries, _, _ = _data(n=5, m=6)
    exclude = [[0, 1, 2, 3], [], [5], [0, 1, 2, 3, 4, 5], [2]]
    for retriever in (TorchRetriever(items), FaissRetriever(items)):
        top = retriever.search(queries, 4, exclude)
        assert top.indices.shape == (5, 4)
        assert top.indices[0, 2:].tolist() == [-1, -1] and np.isneginf(top.scores[0, 2:]).all()
        assert (top.indices[3] == -1).all()
        wide = retriever.search(queries, 10)  # k larger than the catalogue
        assert (wide.indices[:, 6:] == -1).all() and sorted(wide.indices[0, :6]) == list(range(6))


def _brute_ranks(queries, items, targets, exclude):
    scores = queries @ items.T
    ranks, ties = [], []
    for i, t in enumerate(targets):
        allowed = np.ones(items.shape[0], dtype=bool)
        if exclude is not None:
            allowed[np.asarray(exclude[i], dtype=int)] = False
        allowed[t] = True  # the target is never excluded
        s = scores[i, allowed]
        ranks.append(int((s > scores[i, t]).sum()))
        ties.append(int((s == scores[i, t]).sum()) - 1)
    return np.array(ranks), np.array(ties)


def test_full_ranks_match_brute_force_and_keep_target() -> None:
    rng, items, queries, targets, exclude = _data()
    exclude = [np.append(ex, targets[i]) if i % 3 == 0 else ex for i, ex in enumerate(exclude)]  # target in history
    res = full_ranks(queries, items, targets, exclude, top_n=10, batch_size=16)
    ranks, ties = _brute_ranks(queries, items, targets, exclude)
    np.testing.assert_array_equal(res.ranks, ranks)
    np.testing.assert_array_equal(res.ties, ties)
    assert res.n_candidates.tolist() == [
        items.shape[0] - len(set(ex.tolist()) - {int(t)}) for ex, t in zip(exclude, targets)
    ]
    s, idx = _brute_topk(queries, items, 10, [np.setdiff1d(ex, [t]) for ex, t in zip(exclude, targets)])
    _same_up_to_ties(res.top_indices, res.top_scores, idx, s)
    # History on/off.
    off = full_ranks(queries, items, targets, exclude, exclude_history=False, top_n=0)
    np.testing.assert_array_equal(off.ranks, _brute_ranks(queries, items, targets, None)[0])
    assert (off.ranks >= res.ranks).all() and (off.ranks > res.ranks).any()
    assert off.top_indices.shape == (len(targets), 0)


def test_ties_are_optimistic_and_counted() -> None:
    items = np.array([[1, 0], [1, 0], [0, 1], [1, 0]], dtype=np.float32)  # items 0, 1, 3 identical
    res = full_ranks(np.array([[1, 0]], np.float32), items, [1], top_n=0)
    assert res.ranks.tolist() == [0] and res.ties.tolist() == [2]
    res = full_ranks(np.array([[1, 0]], np.float32), items, [1], [[0, 3]], top_n=0)
    assert res.ties.tolist() == [0]


def test_negatives_are_valid_and_seeded() -> None:
    rng, items, _, targets, exclude = _data(n=300, m=400)
    negs = sample_negatives(400, targets, exclude, 99, seed=3)
    assert negs.shape == (300, 99) and negs.dtype == np.int64
    for i in range(300):
        assert len(set(negs[i].tolist())) == 99
        assert targets[i] not in negs[i] and not np.isin(negs[i], exclude[i]).any()
    np.testing.assert_array_equal(negs, sample_negatives(400, targets, exclude, 99, seed=3))
    assert not np.array_equal(negs, sample_negatives(400, targets, exclude, 99, seed=4))


def test_popularity_sampling_follows_weights() -> None:
    weights = np.array([1.0, 2.0, 3.0, 4.0, 0.0, 0.0])
    n = 20000
    negs = sample_negatives(6, np.full(n, 5), None, 1, seed=0, popularity=weights)
    freq = np.bincount(negs[:, 0], minlength=6) / n
    np.testing.assert_allclose(freq[:4], weights[:4] / 10, atol=0.015)
    assert freq[4] == 0 and freq[5] == 0
    # Zero-weight items are never drawn, so a pool of exactly N positive-weight items is all of them.
    negs = sample_negatives(6, np.full(50, 5), [[4]] * 50, 4, seed=1, popularity=weights)
    assert all(sorted(row) == [0, 1, 2, 3] for row in negs.tolist())


def test_too_small_pool_is_an_error() -> None:
    with pytest.raises(ValueError, match="query 1 has only 2 eligible"):
        sample_negatives(5, [0, 0], [[], [1, 2]], 3)
    with pytest.raises(ValueError, match="eligible"):
        sample_negatives(5, [0], None, 2, popularity=np.array([1.0, 1.0, 0.0, 0.0, 0.0]))


def test_sampled_ranks_match_brute_force() -> None:
    rng, items, queries, targets, exclude = _data(n=100, m=300)
    negs = sample_negatives(300, targets, exclude, 49, seed=0)
    res = sampled_ranks(queries, items, targets, negs, top_n=5, batch_size=7)
    scores = queries @ items.T
    for i in range(100):
        neg = scores[i, negs[i]]
        t = scores[i, targets[i]]
        assert res.ranks[i] == (neg > t + 1e-6).sum() or res.ranks[i] == (neg > t).sum()
        cand = np.concatenate([[targets[i]], negs[i]])
        best = cand[np.argsort(-scores[i, cand], kind="stable")[:5]]
        assert res.top_indices[i].tolist() == best.tolist()
    assert (res.n_candidates == 50).all()


def test_input_validation() -> None:
    _, items, queries, targets, exclude = _data(n=4, m=10)
    with pytest.raises(ValueError, match="one target per query"):
        full_ranks(queries, items, targets[:3])
    with pytest.raises(ValueError, match="outside"):
        full_ranks(queries, items, targets, [[10], [], [], []])
    with pytest.raises(ValueError, match="one exclusion list per query"):
        TorchRetriever(items).search(queries, 3, [[1]])


def test_blocked_topk_equals_torch_topk() -> None:
    """The two-stage top-k used for wide rows returns torch.topk's values (ties, -inf and a short last block)."""
    import torch

    from bluerec.eval.retrieval import _blocked_topk, _topk_padded

    gen = torch.Generator().manual_seed(0)
    width = 70 * 1024 + 517  # a short last block
    scores = torch.randn(6, width, generator=gen)
    scores[1] = torch.round(scores[1] * 4) / 4  # heavy ties
    scores[2, : width - 5] = float("-inf")  # only 5 allowed items: padding with -1 / -inf
    scores[3, -3:] = 50.0  # the best items in the short last block
    scores[4, 5 * 1024 : 5 * 1024 + 30] = 40.0  # all top items inside one block
    for k in (1, 10, 20):
        want_v, want_i = torch.topk(scores, k, dim=1)
        got_v, got_i = _blocked_topk(scores, k)
        torch.testing.assert_close(got_v, want_v)
        torch.testing.assert_close(scores.gather(1, got_i), got_v)  # the indices point at those values
        assert all(len(set(r.tolist())) == k for r in got_i)  # no item twice
    values, indices = _topk_padded(scores, 10)
    assert indices[2, :5].ge(0).all() and (indices[2, 5:] == -1).all() and torch.isneginf(values[2, 5:]).all()
    assert set(indices[3, :3].tolist()) == {width - 3, width - 2, width - 1}
