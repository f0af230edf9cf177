"""Exact retrieval over the whole item catalogue, and the target's rank under each evaluation protocol.

Scores are inner products (cosine for L2-normalised vectors). Two interchangeable top-K back-ends:

* :class:`TorchRetriever` — batched matmul, excluded items masked with ``-inf``, ``torch.topk``.
* :class:`FaissRetriever` — ``faiss.IndexFlatIP``; exclusion by over-fetching ``k + max_excluded``
  neighbours and dropping the excluded ones.

Target ranks (see :mod:`bluerec.eval.metrics` for the rank definition and tie handling):

* :func:`full_ranks` — the target against every item, minus the user's excluded (history) items; the
  target itself is never excluded even if it occurs in the history.
* :func:`sample_negatives` + :func:`sampled_ranks` — the target against N seeded negatives drawn
  uniformly or by popularity from the items outside the user's history, never the target.

Results that have fewer than ``k`` allowed items are padded with index ``-1`` and score ``-inf``.

For catalogues too large to score exhaustively, :mod:`bluerec.eval.ann` adds FAISS IVF / HNSW back-ends
with the same ``search`` interface, and :func:`topk_ranks` turns any top-K back-end into target ranks
(exact for ranks below K).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from typing import Protocol

import numpy as np
import torch

ExcludeLists = Sequence[Sequence[int] | np.ndarray]
IndexSearch = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]

# Upper bound of one batch's (queries x items) float32 score matrix in the torch back-end: the batch of
# queries shrinks for large catalogues, so memory stays bounded whatever the number of users.
MAX_SCORE_BYTES = 256 << 20


# ---------------------------------------------------------------------------------------------- helpers


def _as_matrix(x: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got shape {x.shape}")
    return x


@dataclass(frozen=True)
class _CSR:
    """Per-query exclusion lists flattened: query ``i`` excludes ``cols[offsets[i]:offsets[i+1]]``."""

    offsets: np.ndarray  # (n+1,) int64
    cols: np.ndarray  # int64, duplicates removed per query

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    def rows(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """(local row, col) pairs of queries ``start:stop``."""
        lo, hi = self.offsets[start], self.offsets[stop]
        local = np.repeat(np.arange(stop - start), self.counts[start:stop])
        return local, self.cols[lo:hi]


def _build_csr(
    exclude: ExcludeLists | None, n_queries: int, n_items: int, keep: np.ndarray | None = None
) -> _CSR:
    """Flatten and validate exclusion lists; ``keep[i]`` (the target) is removed from list ``i``."""
    if exclude is None:
        return _CSR(np.zeros(n_queries + 1, dtype=np.int64), np.zeros(0, dtype=np.int64))
    if len(exclude) != n_queries:
        raise ValueError(f"need one exclusion list per query: {len(exclude)} lists for {n_queries} queries")
    lists = []
    for i, items in enumerate(exclude):
        arr = np.unique(np.asarray(items, dtype=np.int64).reshape(-1))
        if arr.size and (arr[0] < 0 or arr[-1] >= n_items):
            raise ValueError(f"exclusion list {i} has an item index outside [0, {n_items}): {arr.tolist()[:5]}")
        if keep is not None:
            arr = arr[arr != keep[i]]
        lists.append(arr)
    counts = np.fromiter((a.size for a in lists), dtype=np.int64, count=n_queries)
    offsets = np.zeros(n_queries + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    cols = np.concatenate(lists) if lists else np.zeros(0, dtype=np.int64)
    return _CSR(offsets, cols.astype(np.int64, copy=False))


def _check_targets(targets: np.ndarray | Sequence[int], n_queries: int, n_items: int) -> np.ndarray:
    t = np.asarray(targets, dtype=np.int64).reshape(-1)
    if t.shape[0] != n_queries:
        raise ValueError(f"need one target per query: {t.shape[0]} targets for {n_queries} queries")
    if t.size and (t.min() < 0 or t.max() >= n_items):
        raise ValueError(f"target indices must lie in [0, {n_items})")
    return t


@dataclass
class TopK:
    """Top-k results: ``indices[i, j]`` is the j-th best item of query i (``-1`` = no more items)."""

    scores: np.ndarray  # (n, k) float32, descending
    indices: np.ndarray  # (n, k) int64


@dataclass
class RankResult:
    """The target's rank for each query, plus what is needed to explain it.

    Attributes:
        ranks: number of allowed candidates scored strictly higher than the target (0 = first).
        ties: number of *other* allowed candidates with exactly the target's score.
        target_scores: the target's score.
        n_candidates: number of allowed candidates, target included.
        top_indices / top_scores: the ``top_n`` best allowed candidates (item indices), best first.
    """

    ranks: np.ndarray
    ties: np.ndarray
    target_scores: np.ndarray
    n_candidates: np.ndarray
    top_indices: np.ndarray
    top_scores: np.ndarray


def _cat(parts: list[np.ndarray], dtype: type, empty_shape: tuple[int, ...]) -> np.ndarray:
    """Concatenate per-batch results; ``empty_shape`` when there were no batches (or no columns)."""
    if not parts:
        return np.zeros(empty_shape, dtype=dtype)
    return np.concatenate(parts).astype(dtype, copy=False)


_BLOCK = 1024  # block width of the two-stage top-k for wide score rows


def _blocked_topk(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.topk(scores, k)`` for wide rows in two cheaper stages: the maximum of each block of ``_BLOCK``
    columns, then an exact top-k over the ``k`` blocks with the largest maxima. Every top-k value lies in one
    of those blocks (a block holding one has a maximum at least the k-th value), so the values are exactly
    torch's; only the order of exactly tied values may differ. About 4x faster than ``torch.topk`` on a
    million columns."""
    n, width = scores.shape
    full = width // _BLOCK
    maxima = scores[:, : full * _BLOCK].reshape(n, full, _BLOCK).amax(dim=2)
    if width > full * _BLOCK:  # the last, shorter block
        maxima = torch.cat([maxima, scores[:, full * _BLOCK:].amax(dim=1, keepdim=True)], dim=1)
    blocks = torch.topk(maxima, min(k, maxima.shape[1]), dim=1).indices  # (n, kb)
    cols = (blocks[:, :, None] * _BLOCK + torch.arange(_BLOCK)).reshape(n, -1)  # (n, kb * _BLOCK)
    inside = cols < width
    cand = scores.gather(1, cols.clamp(max=width - 1)).masked_fill(~inside, float("-inf"))
    values, pos = torch.topk(cand, k, dim=1, largest=True, sorted=True)
    return values, cols.gather(1, pos)


def _topk_padded(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    kk = min(k, scores.shape[1])
    if scores.shape[1] >= 64 * _BLOCK and kk * 8 <= scores.shape[1] // _BLOCK and scores.device.type == "cpu":
        values, indices = _blocked_topk(scores, kk)
    else:
        values, indices = torch.topk(scores, kk, dim=1, largest=True, sorted=True)
    indices = torch.where(torch.isneginf(values), torch.full_like(indices, -1), indices)
    if kk < k:  # catalogue smaller than k
        pad = k - kk
        values = torch.cat([values, values.new_full((values.shape[0], pad), float("-inf"))], dim=1)
        indices = torch.cat([indices, indices.new_full((indices.shape[0], pad), -1)], dim=1)
    return values, indices


# ---------------------------------------------------------------------------------------------- torch


class TorchRetriever:
    """Exact inner-product search with torch: batched matmul, ``-inf`` masking, ``torch.topk``.

    Args:
        items: ``(n_items, dim)`` item embeddings.
        batch_size: queries scored per matmul; one batch holds ``batch_size × n_items`` float32 scores.
        device: torch device for the matmul (``"cpu"`` default).
        max_score_bytes: cap on one batch's score matrix; the batch shrinks to fit it (e.g. 64 queries
            for a million items at the default 256 MiB), which bounds peak memory.

    Example:
        ::

            import numpy as np
            from bluerec.eval.retrieval import TorchRetriever

            items = np.eye(4, dtype=np.float32)
            queries = np.array([[0.9, 0.5, 0.1, 0.0]], dtype=np.float32)
            top = TorchRetriever(items).search(queries, k=2, exclude=[[0]])
            print(top.indices)  # [[1 2]]  (item 0 is excluded)
    """

    def __init__(self, items: np.ndarray | torch.Tensor, batch_size: int = 1024, device: str = "cpu",
                 max_score_bytes: int = MAX_SCORE_BYTES) -> None:
        self.items_np = _as_matrix(items, "items")
        self.items = torch.from_numpy(self.items_np).to(device)
        self.batch_size = max(1, min(int(batch_size), int(max_score_bytes) // (4 * max(1, self.items_np.shape[0]))))
        self.device = device

    @property
    def n_items(self) -> int:
        return int(self.items.shape[0])

    def _scores(self, queries: np.ndarray, start: int, stop: int, csr: _CSR) -> torch.Tensor:
        q = torch.from_numpy(queries[start:stop]).to(self.device)
        scores = q @ self.items.T
        rows, cols = csr.rows(start, stop)
        if cols.size:
            scores[torch.from_numpy(rows).to(self.device), torch.from_numpy(cols).to(self.device)] = float("-inf")
        return scores

    @torch.no_grad()
    def search(self, queries: np.ndarray | torch.Tensor, k: int, exclude: ExcludeLists | None = None) -> TopK:
        """The ``k`` highest-scoring items per query, skipping each query's excluded items."""
        queries = _as_matrix(queries, "queries")
        csr = _build_csr(exclude, queries.shape[0], self.n_items)
        all_scores, all_indices = [], []
        for start in range(0, queries.shape[0], self.batch_size):
            stop = min(start + self.batch_size, queries.shape[0])
            values, indices = _topk_padded(self._scores(queries, start, stop, csr), k)
            all_scores.append(values.cpu().numpy())
            all_indices.append(indices.cpu().numpy())
        return TopK(
            scores=np.concatenate(all_scores) if all_scores else np.zeros((0, k), np.float32),
            indices=np.concatenate(all_indices).astype(np.int64) if all_indices else np.zeros((0, k), np.int64),
        )

    @torch.no_grad()
    def rank_targets(
        self,
        queries: np.ndarray | torch.Tensor,
        targets: np.ndarray | Sequence[int],
        exclude: ExcludeLists | None = None,
        top_n: int = 10,
    ) -> RankResult:
        """Rank of each query's target among all items minus its excluded items (the target is kept)."""
        queries = _as_matrix(queries, "queries")
        n = queries.shape[0]
        t = _check_targets(targets, n, self.n_items)
        csr = _build_csr(exclude, n, self.n_items, keep=t)
        ranks, ties, tscores, tops, topi = [], [], [], [], []
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            scores = self._scores(queries, start, stop, csr)
            target = scores.gather(1, torch.from_numpy(t[start:stop]).to(self.device)[:, None])
            # int32 sums of the comparison masks are ~2x faster than the default int64 ones.
            ranks.append((scores > target).sum(dim=1, dtype=torch.int32).cpu().numpy())
            ties.append(((scores == target).sum(dim=1, dtype=torch.int32) - 1).cpu().numpy())
            tscores.append(target[:, 0].cpu().numpy())
            if top_n > 0:
                values, indices = _topk_padded(scores, top_n)
                tops.append(values.cpu().numpy())
                topi.append(indices.cpu().numpy())
            del scores, target  # free this batch's scores before the next batch allocates its own
        return RankResult(
            ranks=_cat(ranks, np.int64, (0,)),
            ties=_cat(ties, np.int64, (0,)),
            target_scores=_cat(tscores, np.float32, (0,)),
            n_candidates=(self.n_items - csr.counts).astype(np.int64),
            top_indices=_cat(topi, np.int64, (n, max(top_n, 0))),
            top_scores=_cat(tops, np.float32, (n, max(top_n, 0))),
        )


# ---------------------------------------------------------------------------------------------- faiss


class FaissRetriever:
    """Exact inner-product search with ``faiss.IndexFlatIP``; same results as :class:`TorchRetriever`
    up to the order of tied scores.

    Exclusion is done by asking faiss for ``k + m`` neighbours, where ``m`` is the largest exclusion
    list in the query batch, and keeping the first ``k`` that are not excluded — exact, since at most
    ``m`` of them can be excluded.

    Args:
        items: ``(n_items, dim)`` item embeddings.
        batch_size: queries per faiss call (bounds the over-fetched result arrays).

    Example:
        ::

            import numpy as np
            from bluerec.eval.retrieval import FaissRetriever

            items = np.eye(4, dtype=np.float32)
            queries = np.array([[0.9, 0.5, 0.1, 0.0]], dtype=np.float32)
            print(FaissRetriever(items).search(queries, k=2, exclude=[[0]]).indices)  # [[1 2]]
    """

    def __init__(self, items: np.ndarray | torch.Tensor, batch_size: int = 4096) -> None:
        import faiss  # heavy import, only when this back-end is used

        self.items_np = _as_matrix(items, "items")
        self.index = faiss.IndexFlatIP(self.items_np.shape[1])
        self.index.add(self.items_np)
        self.batch_size = int(batch_size)

    @property
    def n_items(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray | torch.Tensor, k: int, exclude: ExcludeLists | None = None) -> TopK:
        """The ``k`` highest-scoring items per query, skipping each query's excluded items."""
        queries = _as_matrix(queries, "queries")
        csr = _build_csr(exclude, queries.shape[0], self.n_items)
        return search_excluding(self.index.search, queries, k, csr, self.n_items, self.batch_size)


def search_excluding(
    index_search: IndexSearch, queries: np.ndarray, k: int, csr: _CSR, n_items: int, batch_size: int
) -> TopK:
    """Top-``k`` per query from a FAISS-style ``index_search(queries, n) -> (scores, ids)``, without each
    query's excluded items: over-fetch ``k + m`` (``m`` = the batch's longest exclusion list), drop the
    excluded ids and keep the first ``k`` in the index's order. Exact when the index is exact; missing
    results (``-1`` from an approximate index) are dropped the same way.
    """
    n = queries.shape[0]
    out_s = np.full((n, k), -np.inf, dtype=np.float32)
    out_i = np.full((n, k), -1, dtype=np.int64)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        m = int(csr.counts[start:stop].max(initial=0))
        fetch = min(k + m, n_items)
        scores, indices = index_search(queries[start:stop], fetch)
        indices = indices.astype(np.int64)
        bad = indices < 0
        if m:
            rows, cols = csr.rows(start, stop)
            excluded = np.sort(rows * n_items + cols)
            keys = np.arange(stop - start, dtype=np.int64)[:, None] * n_items + indices
            bad |= np.isin(keys, excluded, assume_unique=False)
        # Keep the first k allowed neighbours of each row, in the index's (descending) order.
        order = np.argsort(bad, axis=1, kind="stable")[:, :k]
        width = order.shape[1]
        picked_bad = np.take_along_axis(bad, order, axis=1)
        out_i[start:stop, :width] = np.where(picked_bad, -1, np.take_along_axis(indices, order, axis=1))
        out_s[start:stop, :width] = np.where(picked_bad, -np.inf, np.take_along_axis(scores, order, axis=1))
    return TopK(scores=out_s, indices=out_i)


class TopKSearcher(Protocol):
    """Anything with ``search(queries, k, exclude) -> TopK`` and ``n_items`` (the FAISS and ANN back-ends)."""

    @property
    def n_items(self) -> int: ...

    def search(self, queries: np.ndarray, k: int, exclude: ExcludeLists | None = None) -> TopK: ...


def topk_ranks(
    searcher: TopKSearcher,
    queries: np.ndarray | torch.Tensor,
    items: np.ndarray | torch.Tensor,
    targets: np.ndarray | Sequence[int],
    exclude: ExcludeLists | None = None,
    *,
    k: int = 20,
    top_n: int = 10,
) -> tuple[RankResult, TopK]:
    """Target ranks from a top-``k`` search: the target's position in the query's top ``k`` (history
    excluded, target kept), or ``k`` when it is not among them, i.e. exact for ranks below ``k`` (metrics at
    cut-offs up to ``k``), a floor beyond. ``ties`` are 0 (a top-K list has no tie count). Returns the rank
    result and the ``k``-wide top list (for recall against exact search).
    """
    queries = _as_matrix(queries, "queries")
    item_mat = _as_matrix(items, "items")
    n = queries.shape[0]
    t = _check_targets(targets, n, searcher.n_items)
    csr = _build_csr(exclude, n, searcher.n_items, keep=t)
    lists = None if exclude is None else [csr.cols[csr.offsets[i]:csr.offsets[i + 1]] for i in range(n)]
    top = searcher.search(queries, max(k, top_n), lists)
    hit = top.indices[:, :k] == t[:, None]
    ranks = np.where(hit.any(axis=1), hit.argmax(axis=1), k).astype(np.int64)
    target_scores = np.einsum("ij,ij->i", queries, item_mat[t]).astype(np.float32)
    return RankResult(
        ranks=ranks,
        ties=np.zeros(n, dtype=np.int64),
        target_scores=target_scores,
        n_candidates=(searcher.n_items - csr.counts).astype(np.int64),
        top_indices=top.indices[:, :top_n].copy(),
        top_scores=top.scores[:, :top_n].copy(),
    ), top


# ---------------------------------------------------------------------------------------------- protocols


def full_ranks(
    queries: np.ndarray | torch.Tensor,
    items: np.ndarray | torch.Tensor,
    targets: np.ndarray | Sequence[int],
    exclude: ExcludeLists | None = None,
    *,
    exclude_history: bool = True,
    top_n: int = 10,
    batch_size: int = 1024,
    device: str = "cpu",
    max_score_bytes: int = MAX_SCORE_BYTES,
) -> RankResult:
    """Target ranks under the full-catalogue protocol.

    Args:
        queries: ``(n, dim)`` query (profile) embeddings.
        items: ``(n_items, dim)`` item embeddings.
        targets: ``(n,)`` item index of each query's target.
        exclude: per-query item indices to remove from the ranking (the user's history); the target is
            never removed, even when it occurs in the list.
        exclude_history: False ranks against every item and ignores ``exclude``.
        top_n: also return the ``top_n`` best allowed items per query.
        batch_size: queries per matmul (fewer when ``batch × n_items`` scores exceed ``max_score_bytes``).

    Example:
        ::

            import numpy as np
            from bluerec.eval.retrieval import full_ranks

            rng = np.random.default_rng(0)
            items = rng.standard_normal((1000, 32)).astype(np.float32)
            queries = items[:5] + 0.1 * rng.standard_normal((5, 32)).astype(np.float32)
            print(full_ranks(queries, items, targets=[0, 1, 2, 3, 4]).ranks)  # [0 0 0 0 0]
    """
    retriever = TorchRetriever(items, batch_size=batch_size, device=device, max_score_bytes=max_score_bytes)
    return retriever.rank_targets(queries, targets, exclude if exclude_history else None, top_n=top_n)


def eligible_negative_counts(
    n_items: int,
    targets: np.ndarray | Sequence[int],
    exclude: ExcludeLists | None,
    *,
    popularity: np.ndarray | None = None,
) -> np.ndarray:
    """How many items :func:`sample_negatives` may draw from for each query: the items with positive
    weight (all, when ``popularity`` is None), less the excluded ones and the target. Cheap (no scoring), so
    a run can check its sampled protocol before any ranking work.

    Example:
        >>> eligible_negative_counts(10, [0, 1], [[2, 3], []]).tolist()
        [7, 9]
    """
    t = _check_targets(targets, len(targets), n_items)
    n = t.shape[0]
    csr = _build_csr(exclude, n, n_items, keep=t)
    eligible = _eligible(n_items, popularity)
    owner = np.repeat(np.arange(n), csr.counts)
    lost = np.bincount(owner, weights=eligible[csr.cols], minlength=n).astype(np.int64) + eligible[t]
    return int(eligible.sum()) - lost


def _eligible(n_items: int, popularity: np.ndarray | None) -> np.ndarray:
    if popularity is None:
        return np.ones(n_items, dtype=bool)
    weights = np.asarray(popularity, dtype=np.float64).reshape(-1)
    if weights.shape[0] != n_items or not np.all(np.isfinite(weights)) or weights.min() < 0:
        raise ValueError(f"popularity must hold {n_items} finite non-negative weights")
    return weights > 0


def sample_negatives(
    n_items: int,
    targets: np.ndarray | Sequence[int],
    exclude: ExcludeLists | None,
    num_negatives: int,
    *,
    seed: int = 0,
    popularity: np.ndarray | None = None,
    chunk_size: int = 1024,
) -> np.ndarray:
    """Draw ``num_negatives`` distinct negative items per query, never the target or an excluded item.

    Uniform by default; with ``popularity`` (one non-negative weight per item, e.g. interaction counts
    over train+valid) items are drawn with probability proportional to their weight, without
    replacement (successive draws), so zero-weight items are never drawn. Deterministic for a given
    ``seed`` and inputs.

    Returns:
        ``(n, num_negatives)`` int64 item indices, in no particular order.

    Raises:
        ValueError: if some query has fewer than ``num_negatives`` eligible items.
    """
    t = _check_targets(targets, len(targets), n_items)
    n = t.shape[0]
    if num_negatives < 1:
        raise ValueError(f"num_negatives must be >= 1, got {num_negatives}")
    csr = _build_csr(exclude, n, n_items, keep=t)  # target dropped here, masked separately below

    if popularity is None:
        weights = np.ones(n_items, dtype=np.float64)
    else:
        weights = np.asarray(popularity, dtype=np.float64).reshape(-1)
        if weights.shape[0] != n_items or not np.all(np.isfinite(weights)) or weights.min() < 0:
            raise ValueError(f"popularity must hold {n_items} finite non-negative weights")
    eligible = weights > 0
    # Eligible pool per query = eligible items - eligible excluded items - the target (if eligible).
    owner = np.repeat(np.arange(n), csr.counts)
    lost = np.bincount(owner, weights=eligible[csr.cols], minlength=n).astype(np.int64) + eligible[t]
    pool = int(eligible.sum()) - lost
    if n and pool.min() < num_negatives:
        bad = int(np.argmin(pool))
        raise ValueError(
            f"query {bad} has only {int(pool[bad])} eligible negative items, fewer than num_negatives={num_negatives}"
        )

    # Weighted sampling without replacement by random keys (Efraimidis & Spirakis): the N items with
    # the largest log(U)/w are distributed as N successive weighted draws (for uniform weights the
    # largest U will do). One vectorised pass per chunk and no rejection loop, so a heavy popularity
    # skew costs nothing extra. log1p(-U) with U in [0, 1) is finite, so only masked items are -inf.
    inv_w = torch.from_numpy((1.0 / np.where(eligible, weights, 1.0)).astype(np.float32))
    never = torch.from_numpy(~eligible)
    generator = torch.Generator().manual_seed(int(seed))
    out = np.empty((n, num_negatives), dtype=np.int64)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        keys = torch.rand((stop - start, n_items), generator=generator)
        if popularity is not None:
            keys = torch.log1p(keys.neg_()).mul_(inv_w)
            keys[:, never] = float("-inf")
        rows, cols = csr.rows(start, stop)
        keys[torch.from_numpy(rows), torch.from_numpy(cols)] = float("-inf")
        keys[torch.arange(stop - start), torch.from_numpy(t[start:stop])] = float("-inf")
        out[start:stop] = torch.topk(keys, num_negatives, dim=1, largest=True, sorted=False).indices.numpy()
    return out


@torch.no_grad()
def sampled_ranks(
    queries: np.ndarray | torch.Tensor,
    items: np.ndarray | torch.Tensor,
    targets: np.ndarray | Sequence[int],
    negatives: np.ndarray,
    *,
    top_n: int = 10,
    batch_size: int = 1024,
) -> RankResult:
    """Target ranks under the sampled protocol: the target against its own row of ``negatives``.

    ``top_indices`` are item indices of the best candidates within ``{target} ∪ negatives``.

    Example:
        ::

            import numpy as np
            from bluerec.eval.retrieval import sample_negatives, sampled_ranks

            rng = np.random.default_rng(0)
            items = rng.standard_normal((1000, 32)).astype(np.float32)
            negs = sample_negatives(1000, targets=[0, 1], exclude=[[5, 6], []], num_negatives=99, seed=0)
            print(sampled_ranks(items[:2], items, [0, 1], negs).ranks)  # [0 0]
    """
    q_all = _as_matrix(queries, "queries")
    item_mat = torch.from_numpy(_as_matrix(items, "items"))
    n = q_all.shape[0]
    t = _check_targets(targets, n, item_mat.shape[0])
    negatives = np.asarray(negatives, dtype=np.int64)
    if negatives.ndim != 2 or negatives.shape[0] != n:
        raise ValueError(f"negatives must have shape (n_queries, N), got {negatives.shape}")
    cand = np.concatenate([t[:, None], negatives], axis=1)  # column 0 = target
    width = cand.shape[1]
    # Bound the gathered (batch, N+1, dim) block to ~128 MiB.
    step = max(1, min(batch_size, (1 << 25) // max(1, width * item_mat.shape[1])))
    ranks, ties, tscores, tops, topi = [], [], [], [], []
    for start in range(0, n, step):
        stop = min(start + step, n)
        c = torch.from_numpy(cand[start:stop])
        q = torch.from_numpy(q_all[start:stop])
        scores = torch.bmm(item_mat[c], q[:, :, None])[:, :, 0]  # (b, N+1)
        target = scores[:, :1]
        ranks.append((scores[:, 1:] > target).sum(1, dtype=torch.int32).numpy())
        ties.append((scores[:, 1:] == target).sum(1, dtype=torch.int32).numpy())
        tscores.append(target[:, 0].numpy())
        if top_n > 0:
            values, pos = _topk_padded(scores, top_n)
            idx = torch.where(pos >= 0, c.gather(1, pos.clamp(min=0)), pos)
            tops.append(values.numpy())
            topi.append(idx.numpy())
    return RankResult(
        ranks=_cat(ranks, np.int64, (0,)),
        ties=_cat(ties, np.int64, (0,)),
        target_scores=_cat(tscores, np.float32, (0,)),
        n_candidates=np.full(n, width, dtype=np.int64),
        top_indices=_cat(topi, np.int64, (n, max(top_n, 0))),
        top_scores=_cat(tops, np.float32, (n, max(top_n, 0))),
    )
