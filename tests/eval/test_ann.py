"""Approximate search: recall against exact search, history exclusion, seeded IVF, the evaluator's switch."""

from __future__ import annotations

import numpy as np
import pytest

from bluerec.eval.ann import AnnRetriever, default_nlist, recall_at_k, sample_queries
from bluerec.eval.evaluator import EvalConfig, RetrievalEvaluator
from bluerec.eval.retrieval import FaissRetriever, TorchRetriever, full_ranks, topk_ranks


def clustered(n: int = 6000, d: int = 24, clusters: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + 0.35 * rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data():
    items = clustered()
    rng = np.random.default_rng(1)
    targets = rng.integers(0, len(items), 150)
    queries = items[targets] + 0.15 * rng.standard_normal((150, items.shape[1])).astype(np.float32)
    history = [rng.integers(0, len(items), int(rng.integers(0, 25))) for _ in range(150)]
    history[0] = np.append(history[0], targets[0])  # a target inside its own history stays rankable
    return items, queries, targets, history


def test_recall_at_k_by_hand() -> None:
    exact = np.array([[1, 2, 3, 4], [5, 6, -1, -1], [-1, -1, -1, -1]])
    approx = np.array([[4, 3, 9, 8], [6, 5, 7, -1], [1, 2, 3, 4]])
    # row 0: 2 of 4, row 1: 2 of 2, row 2: no exact items -> skipped
    assert recall_at_k(approx, exact, k=4) == pytest.approx(0.75)
    assert recall_at_k(approx, exact, k=2) == pytest.approx((0.0 + 1.0) / 2)
    assert np.isnan(recall_at_k(approx[2:], exact[2:]))
    assert default_nlist(1_000_000) == 4000 and default_nlist(1) == 4
    assert sample_queries(10, 20, 0).tolist() == list(range(10))
    assert sample_queries(1000, 5, 3).tolist() == sample_queries(1000, 5, 3).tolist()


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_ann_agrees_with_exact_and_excludes_history(data, kind: str) -> None:
    items, queries, _, history = data
    ann = AnnRetriever(items, kind, nprobe=24, seed=0)
    exact = TorchRetriever(items).search(queries, 10, history)
    approx = ann.search(queries, 10, history)
    assert recall_at_k(approx.indices, exact.indices) >= 0.95
    for row, hist in zip(approx.indices, history):
        assert not set(row.tolist()) & set(np.asarray(hist).tolist())
    assert np.all(np.diff(approx.scores, axis=1) <= 1e-6)  # best first
    # excluding the exact top-5 of every query: those never come back, the next ones do
    top5 = [row[:5] for row in TorchRetriever(items).search(queries, 5).indices]
    shifted = ann.search(queries, 10, top5)
    assert all(not set(r.tolist()) & set(t.tolist()) for r, t in zip(shifted.indices, top5))
    assert recall_at_k(shifted.indices, TorchRetriever(items).search(queries, 10, top5).indices) >= 0.9


def test_ivf_is_seeded(data) -> None:
    items, queries, _, history = data
    a = AnnRetriever(items, "ivf", nprobe=2, seed=3).search(queries, 10, history)
    b = AnnRetriever(items, "ivf", nprobe=2, seed=3).search(queries, 10, history)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert AnnRetriever(items, "ivf", seed=0).nlist == default_nlist(len(items))
    with pytest.raises(ValueError, match="unknown ANN index"):
        AnnRetriever(items, "lsh")  # type: ignore[arg-type]


def test_topk_ranks_match_exact_full_ranks(data) -> None:
    items, queries, targets, history = data
    exact = full_ranks(queries, items, targets, history, top_n=10)
    result, top = topk_ranks(FaissRetriever(items), queries, items, targets, history, k=20, top_n=10)
    np.testing.assert_array_equal(result.ranks, np.minimum(exact.ranks, 20))
    np.testing.assert_array_equal(result.n_candidates, exact.n_candidates)
    np.testing.assert_array_equal(result.top_indices, exact.top_indices)
    np.testing.assert_allclose(result.target_scores, exact.target_scores, rtol=1e-5, atol=1e-6)
    assert result.ranks[0] < 20  # target 0 sits in its own history and is still found
    assert top.indices.shape == (len(queries), 20)


def test_memory_bounded_torch_batches_give_the_same_ranks(data) -> None:
    items, queries, targets, history = data
    small = TorchRetriever(items, batch_size=1024, max_score_bytes=4 * len(items) * 7)
    assert small.batch_size == 7
    a = small.rank_targets(queries, targets, history)
    b = TorchRetriever(items).rank_targets(queries, targets, history)
    np.testing.assert_array_equal(a.ranks, b.ranks)
    np.testing.assert_array_equal(a.top_indices, b.top_indices)


def test_evaluator_switches_at_the_threshold(data, caplog: pytest.LogCaptureFixture) -> None:
    items, queries, targets, history = data
    exact = RetrievalEvaluator(items, targets, history, EvalConfig(ks=[10, 20]))
    m_exact = exact(queries)
    assert exact.last_result.search is None and "mrr" in m_exact
    # at the default threshold (1,000,000) a 6,000-item catalogue stays exact
    assert not exact.uses_ann(items)
    cfg = EvalConfig(ks=[10, 20], ann_threshold=len(items), ann_nprobe=24, ann_recall_queries=100)
    approx = RetrievalEvaluator(items, targets, history, cfg)
    with caplog.at_level("INFO", logger="bluerec.eval.evaluator"):
        m_ann = approx(queries)
    info = approx.last_result.search
    assert info is not None and info["index"] == "ivf" and info["recall_queries"] == 100
    assert info["recall@10"] >= 0.95 and info["rank_cutoff"] == 20
    assert "recall@10 against exact search" in caplog.text
    assert "mrr" not in m_ann
    for key in ("ndcg@10", "recall@10", "recall@20"):
        assert m_ann[key] == pytest.approx(m_exact[key], abs=0.03)
    with pytest.raises(ValueError, match="approximate search"):
        approx.last_result.per_user("mrr")
    approx.last_result.per_user("ndcg@10")  # per-user metrics for the intervals still work
    # one more item than the catalogue: exact again; the sampled protocol and 1-d items never use ANN
    assert not RetrievalEvaluator(items, targets, history, cfg.model_copy(update={"ann_threshold": len(items) + 1})).uses_ann(items)
    assert not RetrievalEvaluator(items, targets, history, cfg.model_copy(update={"protocol": "sampled"})).uses_ann(items)
    assert not approx.uses_ann(np.ones((len(items), 1), np.float32))
    hnsw = RetrievalEvaluator(items, targets, history, cfg.model_copy(update={"ann_index": "hnsw"}))
    hnsw(queries)
    assert hnsw.last_result.search["index"] == "hnsw" and hnsw.last_result.search["recall@10"] >= 0.95
