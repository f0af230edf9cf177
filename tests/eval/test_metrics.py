from __future__ import annotations

import math

import numpy as np
import pytest

from bluerec.eval.metrics import dcg, hit_rate_at_k, mrr, mrr_at_k, ndcg_at_k, recall_at_k, summarize

RANKS = np.array([0, 1, 2, 9, 10, 50])


def test_ndcg_hand_computed() -> None:
    expected = [1.0, 1 / math.log2(3), 0.5, 1 / math.log2(11), 0.0, 0.0]
    np.testing.assert_allclose(ndcg_at_k(RANKS, 10), expected)
    np.testing.assert_allclose(ndcg_at_k(RANKS, 1), [1, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(ndcg_at_k(RANKS, 11)[4], 1 / math.log2(12))


def test_dcg_is_ndcg_without_cutoff() -> None:
    np.testing.assert_allclose(dcg(RANKS), [1.0, 1 / math.log2(3), 0.5, 1 / math.log2(11), 1 / math.log2(12),
                                            1 / math.log2(52)])
    np.testing.assert_allclose(ndcg_at_k(RANKS, 10), np.where(RANKS < 10, dcg(RANKS), 0.0))


def test_recall_is_hit_rate() -> None:
    np.testing.assert_array_equal(recall_at_k(RANKS, 10), [1, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(recall_at_k(RANKS, 3), [1, 1, 1, 0, 0, 0])
    assert hit_rate_at_k is recall_at_k


def test_mrr_full_and_cut() -> None:
    np.testing.assert_allclose(mrr(RANKS), [1, 1 / 2, 1 / 3, 1 / 10, 1 / 11, 1 / 51])
    np.testing.assert_allclose(mrr_at_k(RANKS, 10), [1, 1 / 2, 1 / 3, 1 / 10, 0, 0])


def test_summarize_means_and_names() -> None:
    out = summarize([0, 3], ks=[1, 5])
    assert list(out) == ["ndcg@1", "ndcg@5", "recall@1", "recall@5", "mrr@1", "mrr@5", "mrr"]
    assert out["ndcg@5"] == pytest.approx((1 + 1 / math.log2(5)) / 2)
    assert out["recall@1"] == 0.5 and out["recall@5"] == 1.0
    assert out["mrr"] == pytest.approx((1 + 0.25) / 2)
    assert all(math.isnan(v) for v in summarize([], ks=[10]).values())


@pytest.mark.parametrize("bad", [[-1], [[0, 1]], [np.nan]])
def test_bad_ranks_are_rejected(bad: list) -> None:
    with pytest.raises(ValueError):
        ndcg_at_k(np.array(bad, dtype=float), 10)


def test_bad_k_is_rejected() -> None:
    with pytest.raises(ValueError, match="positive integer"):
        recall_at_k(RANKS, 0)


def test_tie_policies() -> None:
    from bluerec.eval.metrics import tie_adjusted_ranks

    ranks, ties = np.array([0, 3, 5]), np.array([0, 4, 1])
    np.testing.assert_array_equal(tie_adjusted_ranks(ranks, ties), [0, 5, 5.5])  # average by default
    np.testing.assert_array_equal(tie_adjusted_ranks(ranks, ties, "optimistic"), [0, 3, 5])
    np.testing.assert_array_equal(tie_adjusted_ranks(ranks, ties, "pessimistic"), [0, 7, 6])
    np.testing.assert_array_equal(tie_adjusted_ranks(ranks, ties, "average"), [0, 5, 5.5])
    with pytest.raises(ValueError, match="allowed"):
        tie_adjusted_ranks(ranks, ties, "random")  # type: ignore[arg-type]
