"""Offline retrieval evaluation: metrics over target ranks, exact top-K back-ends and the evaluator.

``metrics``, ``retrieval``, ``ann`` (FAISS imported on first index) and ``bootstrap`` are imported eagerly (numpy/torch only); the evaluator subclasses
sentence-transformers' ``BaseEvaluator`` and is imported on first use, so ``import bluerec.eval``
stays cheap. Evaluation tasks (retrieval ``full`` / ``sampled``, QA ``choice`` / ``rating``) are registered by name in
:mod:`bluerec.eval.tasks`, where every run, the training validation and the benchmarks build their evaluators.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bluerec.eval.ann import AnnRetriever, recall_at_k
from bluerec.eval.bootstrap import PairedInterval, bootstrap_mean_intervals, paired_bootstrap
from bluerec.eval.metrics import METRICS_AT_K, hit_rate_at_k, mrr, mrr_at_k, ndcg_at_k, recall_at_k, summarize
from bluerec.eval.retrieval import (
    FaissRetriever,
    RankResult,
    TopK,
    TorchRetriever,
    full_ranks,
    sample_negatives,
    sampled_ranks,
    topk_ranks,
)

if TYPE_CHECKING:
    from bluerec.eval.evaluator import EvalConfig, EvalResult, RetrievalEvaluator, print_summary, save_user_results

_LAZY = {"EvalConfig", "EvalResult", "RetrievalEvaluator", "print_summary", "save_user_results"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from bluerec.eval import evaluator

        return getattr(evaluator, name)
    raise AttributeError(f"module 'bluerec.eval' has no attribute {name!r}")


__all__ = [
    "METRICS_AT_K",
    "AnnRetriever",
    "PairedInterval",
    "bootstrap_mean_intervals",
    "paired_bootstrap",
    "recall_at_k",
    "topk_ranks",
    "EvalConfig",
    "EvalResult",
    "FaissRetriever",
    "RankResult",
    "RetrievalEvaluator",
    "TopK",
    "TorchRetriever",
    "full_ranks",
    "hit_rate_at_k",
    "mrr",
    "mrr_at_k",
    "ndcg_at_k",
    "print_summary",
    "recall_at_k",
    "sample_negatives",
    "sampled_ranks",
    "save_user_results",
    "summarize",
]
