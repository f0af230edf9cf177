"""Ranking metrics for next-item retrieval, where every query has exactly one relevant item (the target).

Everything is a function of the target's 0-based **rank**. The retrieval functions return the number of
allowed candidates scored *strictly higher* than the target and the number *tied* with it;
:func:`tie_adjusted_ranks` turns (rank, ties) into the rank the metrics use. The default policy is
``"average"`` (the expected rank under random tie-breaking, ``rank + ties / 2``); ``"optimistic"`` (the
target first among its ties) and ``"pessimistic"`` (last) are the bounds. With float32 embeddings of real
text exact ties only arise from identical vectors (e.g. two items with the same text); they are common for
degenerate queries (an all-zero query ties every item) and for low-dimensional baselines such as
popularity, where the optimistic policy would rank a target first among hundreds of equally popular items.

With a single relevant item the ideal DCG is 1, so NDCG@k = 1/log2(rank+2) when rank < k, and
Recall@k equals the hit rate. All functions are vectorised and return one value per query; average
them (or use :func:`summarize`) for the dataset score.

Example:
    ::

        import numpy as np
        from bluerec.eval.metrics import ndcg_at_k, summarize

        ranks = np.array([0, 1, 9, 10])
        print(ndcg_at_k(ranks, 10).round(3))  # [1.    0.631 0.289 0.   ]
        print(summarize(ranks, ks=[10]))      # ndcg@10 0.480, recall@10 0.75, mrr@10 0.4, mrr 0.423
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike


def _as_ranks(ranks: ArrayLike) -> np.ndarray:
    r = np.asarray(ranks)
    if r.ndim != 1:
        raise ValueError(f"ranks must be 1-D, got shape {r.shape}")
    if r.size and (not np.all(np.isfinite(r)) or r.min() < 0):
        raise ValueError("ranks must be finite and >= 0 (0 = target ranked first)")
    return r.astype(np.float64, copy=False)


TiePolicy = Literal["optimistic", "pessimistic", "average"]


DEFAULT_TIES: TiePolicy = "average"


def tie_adjusted_ranks(ranks: ArrayLike, ties: ArrayLike, policy: TiePolicy = DEFAULT_TIES) -> np.ndarray:
    """Ranks under a tie policy, from the strictly-higher count ``ranks`` and the tie count ``ties``.

    ``"average"`` (default): ``rank + ties / 2``, the expected rank when ties are broken at random;
    ``"optimistic"``: ``rank`` (the target first among its ties); ``"pessimistic"``: ``rank + ties`` (last).
    """
    r = _as_ranks(ranks)
    t = np.asarray(ties, dtype=np.float64)
    if t.shape != r.shape or (t.size and t.min() < 0):
        raise ValueError("ties must be non-negative counts, one per rank")
    if policy == "optimistic":
        return r
    if policy == "pessimistic":
        return r + t
    if policy == "average":
        return r + t / 2.0
    raise ValueError(f"unknown tie policy {policy!r}; allowed: ['optimistic', 'pessimistic', 'average']")


def _check_k(k: int) -> None:
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")


def dcg(ranks: ArrayLike) -> np.ndarray:
    """DCG of one relevant item over the full list, NDCG's gain without its cut-off: ``1/log2(rank+2)``."""
    return 1.0 / np.log2(_as_ranks(ranks) + 2.0)


def ndcg_at_k(ranks: ArrayLike, k: int) -> np.ndarray:
    """NDCG@k for one relevant item per query: ``1/log2(rank+2)`` if ``rank < k`` else 0."""
    _check_k(k)
    r = _as_ranks(ranks)
    return np.where(r < k, dcg(r), 0.0)


def recall_at_k(ranks: ArrayLike, k: int) -> np.ndarray:
    """Recall@k (= hit rate@k with one relevant item): 1 if ``rank < k`` else 0."""
    _check_k(k)
    return (_as_ranks(ranks) < k).astype(np.float64)


hit_rate_at_k = recall_at_k


def mrr(ranks: ArrayLike) -> np.ndarray:
    """Reciprocal rank over the full list: ``1/(rank+1)``."""
    return 1.0 / (_as_ranks(ranks) + 1.0)


def mrr_at_k(ranks: ArrayLike, k: int) -> np.ndarray:
    """Reciprocal rank cut at k: ``1/(rank+1)`` if ``rank < k`` else 0 (sentence-transformers' ``mrr@k``)."""
    _check_k(k)
    r = _as_ranks(ranks)
    return np.where(r < k, 1.0 / (r + 1.0), 0.0)


# Metrics "registered by name": name -> per-query function of (ranks, k).
METRICS_AT_K: dict[str, Callable[[ArrayLike, int], np.ndarray]] = {
    "ndcg": ndcg_at_k,
    "recall": recall_at_k,
    "mrr": mrr_at_k,
}


def summarize(ranks: ArrayLike, ks: Sequence[int] = (10, 20)) -> dict[str, float]:
    """Mean of every metric: ``ndcg@k``, ``recall@k``, ``mrr@k`` for each k, then full ``mrr``.

    An empty ``ranks`` gives NaN for every metric rather than a misleading 0.
    """
    r = _as_ranks(ranks)
    out: dict[str, float] = {}
    for name, fn in METRICS_AT_K.items():
        for k in ks:
            out[f"{name}@{k}"] = float(fn(r, k).mean()) if r.size else float("nan")
    out["mrr"] = float(mrr(r).mean()) if r.size else float("nan")
    return out
