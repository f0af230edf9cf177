"""Approximate nearest-neighbour search for large catalogues: FAISS IVF (``IndexIVFFlat``) or HNSW
(``IndexHNSWFlat``), inner product, with the same ``search(queries, k, exclude)`` interface as the exact
back-ends in :mod:`bluerec.eval.retrieval`.

The evaluator switches to it for the full-ranking protocol when the catalogue has at least
``EvalConfig.ann_threshold`` items, and measures the recall@10 of the approximate top-10 against exact
top-10 on a seeded sample of queries (:func:`recall_at_k`), so every approximate result says how
approximate it was. History exclusion works as in the exact FAISS back-end: over-fetch
``k + longest history`` neighbours and drop the excluded ones.

Example:
    ::

        import numpy as np
        from bluerec.eval.ann import AnnRetriever, recall_at_k
        from bluerec.eval.retrieval import TorchRetriever

        rng = np.random.default_rng(0)
        centres = rng.standard_normal((50, 32)).astype(np.float32)
        items = centres[rng.integers(0, 50, 20_000)] + 0.3 * rng.standard_normal((20_000, 32)).astype(np.float32)
        items /= np.linalg.norm(items, axis=1, keepdims=True)
        queries = items[:200] + 0.1 * rng.standard_normal((200, 32)).astype(np.float32)

        ann = AnnRetriever(items, kind="ivf", nprobe=16, seed=0)    # nlist = 4 * sqrt(20,000) = 565
        exact = TorchRetriever(items).search(queries, 10)
        print(recall_at_k(ann.search(queries, 10).indices, exact.indices))   # ~0.99
"""

from __future__ import annotations

import logging
import math
import time
from typing import Literal

import numpy as np
import torch

from bluerec.eval.retrieval import ExcludeLists, TopK, _as_matrix, _build_csr, search_excluding

logger = logging.getLogger(__name__)

AnnKind = Literal["ivf", "hnsw"]


def default_nlist(n_items: int) -> int:
    """IVF lists for a catalogue: ``4 * sqrt(n_items)`` (FAISS' rule of thumb), at least 1."""
    return max(1, int(round(4 * math.sqrt(n_items))))


class AnnRetriever:
    """Approximate inner-product top-K search with FAISS.

    Args:
        items: ``(n_items, dim)`` item embeddings (L2-normalised for cosine).
        kind: ``"ivf"`` (``IndexIVFFlat``: k-means cells, ``nprobe`` cells scanned per query) or ``"hnsw"``
            (``IndexHNSWFlat`` graph, ``ef_search`` candidates per query).
        nlist: IVF cells (default :func:`default_nlist`); nprobe: IVF cells visited per query.
        train_size: items used to train the IVF centroids (default ``min(n_items, 39 * nlist)``, FAISS'
            minimum for stable k-means), drawn with ``seed``; the k-means itself is seeded too.
        hnsw_m / ef_construction / ef_search: HNSW graph degree and beam widths.
        batch_size: queries per FAISS call (bounds the over-fetched result arrays).

    ``build_s`` holds the index build (training + adding) time in seconds.
    """

    def __init__(
        self,
        items: np.ndarray | torch.Tensor,
        kind: AnnKind = "ivf",
        *,
        nlist: int | None = None,
        nprobe: int = 32,
        train_size: int | None = None,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 128,
        seed: int = 0,
        batch_size: int = 4096,
    ) -> None:
        import faiss  # heavy import, only when this back-end is used

        self.items_np = _as_matrix(items, "items")
        n, dim = self.items_np.shape
        if n == 0:
            raise ValueError("cannot build an ANN index over an empty catalogue")
        self.kind = kind
        self.batch_size = int(batch_size)
        start = time.perf_counter()
        if kind == "ivf":
            self.nlist = min(nlist or default_nlist(n), n)
            self.nprobe = max(1, min(int(nprobe), self.nlist))
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, self.nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = int(seed)  # k-means initialisation
            index.cp.spherical = True  # unit-norm centroids: inner-product cells are not won by long centroids
            size = min(n, train_size or 39 * self.nlist)
            rows = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False)) if size < n else None
            index.train(self.items_np if rows is None else self.items_np[rows])
            index.add(self.items_np)
            index.nprobe = self.nprobe
            self.train_size = size
        elif kind == "hnsw":
            self.hnsw_m, self.ef_search = int(hnsw_m), int(ef_search)
            index = faiss.IndexHNSWFlat(dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = int(ef_construction)
            index.hnsw.efSearch = self.ef_search
            index.add(self.items_np)
        else:
            raise ValueError(f"unknown ANN index {kind!r}; allowed: ['ivf', 'hnsw']")
        self.index = index
        self.build_s = time.perf_counter() - start

    @property
    def n_items(self) -> int:
        return int(self.index.ntotal)

    def settings(self) -> dict[str, int | str]:
        """The index kind and its parameters, for logs and result files."""
        if self.kind == "ivf":
            return {"index": "ivf", "nlist": self.nlist, "nprobe": self.nprobe, "train_size": self.train_size}
        return {"index": "hnsw", "m": self.hnsw_m, "ef_search": self.ef_search}

    def search(self, queries: np.ndarray | torch.Tensor, k: int, exclude: ExcludeLists | None = None) -> TopK:
        """Approximately the ``k`` highest-scoring items per query, skipping each query's excluded items."""
        queries = _as_matrix(queries, "queries")
        csr = _build_csr(exclude, queries.shape[0], self.n_items)
        return search_excluding(self.index.search, queries, k, csr, self.n_items, self.batch_size)


def recall_at_k(approx: np.ndarray, exact: np.ndarray, k: int = 10) -> float:
    """Mean over queries of ``|approx top-k ∩ exact top-k| / |exact top-k|`` (``-1`` padding ignored).

    Queries whose exact list is empty are skipped; NaN when none is left.
    """
    a = np.asarray(approx)[:, :k]
    e = np.asarray(exact)[:, :k]
    if a.shape[0] != e.shape[0]:
        raise ValueError(f"{a.shape[0]} approximate vs {e.shape[0]} exact result rows")
    valid = e >= 0
    found = ((a[:, :, None] == e[:, None, :]) & valid[:, None, :] & (a[:, :, None] >= 0)).any(axis=1)
    sizes = valid.sum(axis=1)
    keep = sizes > 0
    if not keep.any():
        return float("nan")
    return float((found.sum(axis=1)[keep] / sizes[keep]).mean())


def sample_queries(n_queries: int, n_sample: int, seed: int) -> np.ndarray:
    """Sorted seeded sample of ``n_sample`` query rows (all rows when there are fewer)."""
    if n_sample >= n_queries:
        return np.arange(n_queries)
    return np.sort(np.random.default_rng(seed).choice(n_queries, size=n_sample, replace=False))
