"""Retrieval evaluation of user profiles: one call → a dict of named metrics, plus per-user rows.

The evaluator holds what does not change between calls (item matrix, targets, histories, protocol and,
for the sampled protocol, the seeded negatives), so different profile writers or training checkpoints
are compared on exactly the same candidates.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator
from sentence_transformers.base.evaluation.evaluator import BaseEvaluator

from bluerec.config import StrictModel
from bluerec.eval.metrics import DEFAULT_TIES, METRICS_AT_K, TiePolicy, summarize, tie_adjusted_ranks
from bluerec.eval.retrieval import RankResult, full_ranks, sample_negatives, sampled_ranks
from bluerec.io import atomic_path, write_jsonl_atomic

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

logger = logging.getLogger(__name__)


class EvalConfig(StrictModel):
    """How target ranks are computed and which metrics are reported.

    Parameters that define the protocol:
        protocol: ``"full"`` (default) ranks the target against the whole catalogue; ``"sampled"`` against
            ``num_negatives`` sampled items.
        exclude_history: remove the user's history items from the candidates (default True); for
            ``"sampled"`` it keeps them out of the negatives. The target is never removed.
        num_negatives: negatives per user for ``"sampled"`` (default 99, i.e. 100 candidates).
        negative_sampling: ``"uniform"`` (default) or ``"popularity"`` (∝ train+valid interaction count;
            items with count 0 are never drawn).
        seed: seed of the negative sampler (default 0).
        ties: how a target tied with other candidates is ranked: ``"average"`` (default; the expected rank
            under random tie-breaking), ``"optimistic"`` (rank = number of candidates scored strictly higher,
            i.e. first among its ties) or ``"pessimistic"`` (after all its ties). Matters for all-zero or
            low-dimensional queries such as the popularity baseline, whose target ties with every item of the
            same count.

    Approximate search (full protocol only; exact search below the threshold):
        ann_threshold: catalogues with at least this many items are searched with a FAISS ANN index
            (default 1,000,000; None = always exact). Ranks are then exact below ``max(ks, top_n)`` and a
            floor beyond it, so ``ndcg@k`` / ``recall@k`` / ``mrr@k`` are approximate only through the
            index's recall, ties are not counted, and the full ``mrr`` is left out.
        ann_index: ``"ivf"`` (default; ``IndexIVFFlat``) or ``"hnsw"`` (``IndexHNSWFlat``), inner product.
        ann_nlist: IVF cells (default ``4 * sqrt(n_items)``); ann_nprobe: cells visited per query (default 64).
        ann_hnsw_m / ann_ef_search: HNSW degree (32) and search beam (128).
        ann_recall_queries: queries (seeded sample) whose ANN top-10 is compared with exact top-10; the
            recall@10 is logged and kept in ``EvalResult.search`` (default 1000; 0 = not measured).

    Parameters that control the output:
        ks: cut-offs for ``ndcg@k``, ``recall@k`` and ``mrr@k`` (default [10, 20]).
        primary_metric: the metric that ranks methods and chooses checkpoints (higher is better): ``mrr`` or
            ``ndcg|recall|mrr@k`` with k in ``ks``. Default ``None`` = ``ndcg@{ks[0]}`` (see :attr:`primary`).
        top_n: best items kept per user in the rows (default 10).
        batch_size: queries per matmul (default 1024, ≈ 50 MB of scores for 12k items).
    """

    protocol: Literal["full", "sampled"] = "full"
    ks: list[int] = Field(default_factory=lambda: [10, 20])
    exclude_history: bool = True
    num_negatives: int = Field(99, ge=1)
    negative_sampling: Literal["uniform", "popularity"] = "uniform"
    seed: int = 0
    ties: TiePolicy = DEFAULT_TIES
    batch_size: int = Field(1024, ge=1)
    top_n: int = Field(10, ge=0)
    ann_threshold: int | None = Field(1_000_000, ge=1)
    ann_index: Literal["ivf", "hnsw"] = "ivf"
    ann_nlist: int | None = Field(None, ge=1)
    ann_nprobe: int = Field(64, ge=1)
    ann_hnsw_m: int = Field(32, ge=2)
    ann_ef_search: int = Field(128, ge=1)
    ann_recall_queries: int = Field(1000, ge=0)
    primary_metric: str | None = None

    @property
    def primary(self) -> str:
        """The primary metric's name: ``primary_metric``, or ``ndcg@{ks[0]}`` when it is not set."""
        return self.primary_metric or f"ndcg@{self.ks[0]}"

    @model_validator(mode="after")
    def _check_primary(self) -> EvalConfig:
        name, at, k = self.primary.partition("@")
        if not (self.primary == "mrr" or (name in METRICS_AT_K and at and k.isdigit() and int(k) in self.ks)):
            raise ValueError(f"primary_metric {self.primary!r}: expected mrr or one of "
                             f"{[f'{m}@{k}' for m in METRICS_AT_K for k in self.ks]}")
        return self

    @field_validator("ks")
    @classmethod
    def _check_ks(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("ks must name at least one cut-off")
        if any(k < 1 for k in value):
            raise ValueError("every k must be >= 1")
        return list(dict.fromkeys(value))  # drop repeats, keep the given order


@dataclass
class EvalResult:
    """Metrics plus one entry per user; :meth:`rows` turns them into saveable dicts.

    ``ranks`` are the ranks the metrics were computed from (after the tie policy; float only for
    ``"average"``); ``ties`` is the number of other candidates with exactly the target's score.
    ``search`` is None for exact search; for approximate search it holds the index settings, the rank
    cut-off (ranks equal to it mean "not in the top list") and the measured ``recall@10`` against exact search.
    """

    metrics: dict[str, float]
    user_ids: list[Any]
    target_ids: list[Any]
    ranks: np.ndarray
    ties: np.ndarray
    target_scores: np.ndarray
    n_candidates: np.ndarray
    top_ids: list[list[Any]]
    top_scores: np.ndarray
    ks: list[int] = field(default_factory=lambda: [10, 20])
    search: dict[str, Any] | None = None

    def __len__(self) -> int:
        return len(self.user_ids)

    def per_user(self, metric: str) -> np.ndarray:
        """One metric per user, e.g. ``per_user("ndcg@10")`` (usable as a reward) or ``per_user("mrr")``."""
        if metric == "mrr":
            if self.search is not None:
                raise ValueError("the full mrr is not available with approximate search; use mrr@k")
            return 1.0 / (self.ranks + 1.0)
        name, _, k = metric.partition("@")
        if name not in METRICS_AT_K or not k.isdigit():
            raise ValueError(f"unknown metric {metric!r}; allowed: mrr or {sorted(METRICS_AT_K)} with @k")
        return METRICS_AT_K[name](self.ranks, int(k))

    def rows(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per user: ids, rank, ties, per-user metrics and the top items with scores."""
        per_k = {f"ndcg@{k}": self.per_user(f"ndcg@{k}") for k in self.ks}
        out = []
        for i, user in enumerate(self.user_ids):
            row: dict[str, Any] = {
                "user_id": user,
                "target": self.target_ids[i],
                "rank": self.ranks[i].item(),
                "ties": int(self.ties[i]),
                "n_candidates": int(self.n_candidates[i]),
                "target_score": float(self.target_scores[i]),
            }
            row.update({name: float(values[i]) for name, values in per_k.items()})
            valid = [j for j, item in enumerate(self.top_ids[i]) if item is not None]
            row["top_items"] = [self.top_ids[i][j] for j in valid]
            row["top_scores"] = [float(self.top_scores[i, j]) for j in valid]
            out.append(row)
        return out


def _to_indices(values: Sequence[Any], index: Mapping[Any, int] | None, what: str) -> np.ndarray:
    """Item ids or item indices → int64 indices (ids need ``index``)."""
    values = list(values)
    if values and isinstance(values[0], str):
        if index is None:
            raise ValueError(f"{what} are item ids; pass item_ids so they can be mapped to rows")
        try:
            return np.fromiter((index[v] for v in values), dtype=np.int64, count=len(values))
        except KeyError as err:
            raise ValueError(f"{what}: unknown item id {err.args[0]!r}") from None
    return np.asarray(values, dtype=np.int64).reshape(-1)


class RetrievalEvaluator(BaseEvaluator):
    """Rank each user's held-out item with the user's profile embedding as the query.

    Returns ``ndcg@k``, ``recall@k`` (= hit rate), ``mrr@k`` for every k in ``config.ks`` and the full
    ``mrr``; ranks follow :mod:`bluerec.eval.metrics` (ties averaged by default; see ``EvalConfig.ties``). It is a
    sentence-transformers evaluator: ``evaluator(model)`` also accepts a SentenceTransformer (or a
    :class:`~bluerec.embed.Embedder`) when ``query_texts`` were given, so it can be passed to a
    ``SentenceTransformerTrainer``; ``item_texts`` then re-encodes the items with the same model.

    Args:
        item_embeddings: ``(n_items, dim)`` item matrix (rows = item indices).
        targets: per user, the target's item index (or item id, with ``item_ids``).
        exclude: per user, the history item indices (or ids) to exclude; None excludes nothing.
        config: the :class:`EvalConfig` (default: full ranking, ks [10, 20]).
        item_ids: item id of each row, used in the rows and to map ids given as targets/exclusions.
        user_ids: one id per user for the rows (default 0..n-1).
        item_popularity: per-item weights, required for ``negative_sampling="popularity"``.
        query_texts / item_texts: texts to encode when called with a model instead of vectors.
        encode_batch_size: batch size for that encoding.
        name: prefix for metric keys (``"{name}_ndcg@10"``), as in sentence-transformers.

    Example:
        ::

            import numpy as np
            from bluerec.eval.evaluator import EvalConfig, RetrievalEvaluator, print_summary

            rng = np.random.default_rng(0)
            items = rng.standard_normal((500, 16)).astype(np.float32)
            targets = rng.integers(0, 500, size=50)
            queries = items[targets] + 0.5 * rng.standard_normal((50, 16)).astype(np.float32)
            history = [rng.integers(0, 500, size=5) for _ in range(50)]

            evaluator = RetrievalEvaluator(items, targets, history, EvalConfig(ks=[10]))
            metrics = evaluator(queries)   # {'ndcg@10': ..., 'recall@10': ..., 'mrr@10': ..., 'mrr': ...}
            rows = evaluator.last_result.rows()  # per-user rank, ties, top-10 ids and scores
            print_summary(metrics)
    """

    def __init__(
        self,
        item_embeddings: np.ndarray,
        targets: Sequence[int] | Sequence[str] | np.ndarray,
        exclude: Sequence[Sequence[int] | Sequence[str] | np.ndarray] | None = None,
        config: EvalConfig | None = None,
        *,
        item_ids: Sequence[Any] | None = None,
        user_ids: Sequence[Any] | None = None,
        item_popularity: np.ndarray | None = None,
        query_texts: Sequence[str] | None = None,
        item_texts: Sequence[str] | None = None,
        encode_batch_size: int = 64,
        name: str = "",
    ) -> None:
        super().__init__()
        self.config = config or EvalConfig()
        self.items = np.ascontiguousarray(item_embeddings, dtype=np.float32)
        if self.items.ndim != 2:
            raise ValueError(f"item_embeddings must be (n_items, dim), got {self.items.shape}")
        n_items = self.items.shape[0]
        self.item_ids = list(item_ids) if item_ids is not None else None
        if self.item_ids is not None and len(self.item_ids) != n_items:
            raise ValueError(f"{len(self.item_ids)} item ids for {n_items} item rows")
        index = {item: i for i, item in enumerate(self.item_ids)} if self.item_ids is not None else None

        self.targets = _to_indices(targets, index, "targets")
        n = self.targets.shape[0]
        if n and (self.targets.min() < 0 or self.targets.max() >= n_items):
            raise ValueError(f"target indices must lie in [0, {n_items})")
        self.exclude = None if exclude is None else [_to_indices(h, index, "exclusions") for h in exclude]
        if self.exclude is not None and len(self.exclude) != n:
            raise ValueError(f"{len(self.exclude)} exclusion lists for {n} users")
        self.user_ids = list(user_ids) if user_ids is not None else list(range(n))
        if len(self.user_ids) != n:
            raise ValueError(f"{len(self.user_ids)} user ids for {n} targets")
        if self.config.negative_sampling == "popularity" and self.config.protocol == "sampled":
            if item_popularity is None:
                raise ValueError("negative_sampling='popularity' needs item_popularity (e.g. ItemTable.popularity)")
        self.item_popularity = None if item_popularity is None else np.asarray(item_popularity, dtype=np.float64)
        self.query_texts = list(query_texts) if query_texts is not None else None
        self.item_texts = list(item_texts) if item_texts is not None else None
        if self.query_texts is not None and len(self.query_texts) != n:
            raise ValueError(f"{len(self.query_texts)} query texts for {n} users")
        self.encode_batch_size = encode_batch_size
        self.name = name
        self.primary_metric = self.config.primary
        self.greater_is_better = True
        self._negatives: np.ndarray | None = None
        self._ann: tuple[np.ndarray, Any] | None = None  # (item matrix, its AnnRetriever)
        self.last_result: EvalResult | None = None

    # ------------------------------------------------------------------ protocol

    @property
    def negatives(self) -> np.ndarray:
        """The sampled protocol's negatives, drawn once (seeded) and reused by every call."""
        if self._negatives is None:
            cfg = self.config
            self._negatives = sample_negatives(
                self.items.shape[0],
                self.targets,
                self.exclude if cfg.exclude_history else None,
                cfg.num_negatives,
                seed=cfg.seed,
                popularity=self.item_popularity if cfg.negative_sampling == "popularity" else None,
            )
        return self._negatives

    def uses_ann(self, items: np.ndarray) -> bool:
        """True when ``items`` is searched approximately (full protocol, catalogue at the threshold or above;
        1-d matrices such as the popularity baseline's stay exact)."""
        cfg = self.config
        return (cfg.protocol == "full" and cfg.ann_threshold is not None and items.shape[0] >= cfg.ann_threshold
                and items.shape[1] > 1)

    def ann_retriever(self, items: np.ndarray) -> Any:
        """The ANN index over ``items``, built on first use and reused while the item matrix is the same."""
        if self._ann is None or self._ann[0] is not items:
            from bluerec.eval.ann import AnnRetriever

            cfg = self.config
            retriever = AnnRetriever(items, cfg.ann_index, nlist=cfg.ann_nlist, nprobe=cfg.ann_nprobe,
                                     hnsw_m=cfg.ann_hnsw_m, ef_search=cfg.ann_ef_search, seed=cfg.seed)
            logger.info("built %s over %d items in %.1fs", retriever.settings(), items.shape[0], retriever.build_s)
            self._ann = (items, retriever)
        return self._ann[1]

    def _ann_ranks(self, queries: np.ndarray, items: np.ndarray) -> tuple[RankResult, dict[str, Any]]:
        from bluerec.eval.ann import recall_at_k, sample_queries
        from bluerec.eval.retrieval import TorchRetriever, topk_ranks

        cfg = self.config
        cutoff = max(max(cfg.ks), 10)
        retriever = self.ann_retriever(items)
        exclude = self.exclude if cfg.exclude_history else None
        start = time.perf_counter()
        result, top = topk_ranks(retriever, queries, items, self.targets, exclude, k=cutoff, top_n=max(cfg.top_n, 0))
        info: dict[str, Any] = {**retriever.settings(), "rank_cutoff": cutoff, "build_s": round(retriever.build_s, 2),
                                "search_s": round(time.perf_counter() - start, 2)}
        if cfg.ann_recall_queries > 0 and len(queries):
            rows = sample_queries(len(queries), cfg.ann_recall_queries, cfg.seed)
            keep = self.targets[rows]
            sub = None if exclude is None else [np.setdiff1d(exclude[i], keep[j:j + 1]) for j, i in enumerate(rows)]
            exact = TorchRetriever(items, batch_size=cfg.batch_size).search(queries[rows], 10, sub)
            info["recall@10"] = recall_at_k(top.indices[rows, :10], exact.indices, 10)
            info["recall_queries"] = int(len(rows))
            logger.info("ANN %s: recall@10 against exact search %.4f on %d queries",
                        retriever.settings(), info["recall@10"], len(rows))
        return result, info

    def _ranks(self, queries: np.ndarray, items: np.ndarray) -> RankResult:
        cfg = self.config
        top_n = max(cfg.top_n, 0)
        if cfg.protocol == "full":
            return full_ranks(
                queries, items, self.targets, self.exclude,
                exclude_history=cfg.exclude_history, top_n=top_n, batch_size=cfg.batch_size,
            )  # fmt: skip
        return sampled_ranks(queries, items, self.targets, self.negatives, top_n=top_n, batch_size=cfg.batch_size)

    def evaluate(self, query_embeddings: np.ndarray, item_embeddings: np.ndarray | None = None) -> EvalResult:
        """Metrics and per-user results for ``(n_users, dim)`` query vectors (one row per target)."""
        items = self.items if item_embeddings is None else np.ascontiguousarray(item_embeddings, dtype=np.float32)
        queries = np.ascontiguousarray(query_embeddings, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[0] != self.targets.shape[0] or queries.shape[1] != items.shape[1]:
            raise ValueError(
                f"queries must be ({self.targets.shape[0]}, {items.shape[1]}) to match targets and items, "
                f"got {queries.shape}"
            )
        if not np.isfinite(queries).all():
            raise ValueError("query embeddings contain NaN or inf")
        zero = int((np.abs(queries).sum(axis=1) == 0).sum())
        if zero:
            # A zero query ties every item: optimistic ties rank its target first, pessimistic ones last.
            logger.warning(
                "%d of %d queries are all-zero vectors; they tie every item (tie policy: %s)",
                zero, len(queries), self.config.ties,
            )

        search: dict[str, Any] | None = None
        if self.uses_ann(items):
            result, search = self._ann_ranks(queries, items)
        else:
            result = self._ranks(queries, items)
        tied = int((result.ties > 0).sum())
        if tied:
            logger.log(
                logging.WARNING if tied > 0.01 * len(queries) else logging.INFO,
                "%d of %d targets tie with other candidates (tie policy: %s)", tied, len(queries), self.config.ties,
            )
        ids = self.item_ids
        top_ids = [
            [(ids[j] if ids is not None else int(j)) if j >= 0 else None for j in row]
            for row in result.top_indices.tolist()
        ]
        targets = [ids[t] for t in self.targets] if ids is not None else self.targets.tolist()
        ranks = tie_adjusted_ranks(result.ranks, result.ties, self.config.ties)
        metrics = summarize(ranks, self.config.ks)
        if search is not None:
            del metrics["mrr"]  # ranks beyond the cut-off are floors: the full MRR would be a bound, not a value
        return EvalResult(
            metrics=metrics,
            user_ids=self.user_ids,
            target_ids=targets,
            ranks=ranks if self.config.ties == "average" else ranks.astype(np.int64),
            ties=result.ties,
            target_scores=result.target_scores,
            n_candidates=result.n_candidates,
            top_ids=top_ids,
            top_scores=result.top_scores,
            ks=list(self.config.ks),
            search=search,
        )

    # ------------------------------------------------------------------ sentence-transformers protocol

    def _encode_with(self, model: Any) -> tuple[np.ndarray, np.ndarray | None]:
        if self.query_texts is None:
            raise ValueError("called with a model, but the evaluator was built without query_texts")
        if hasattr(model, "encode_queries"):  # bluerec Embedder: its own prompts, batch size, normalisation
            queries = model.encode_queries(self.query_texts)
            items = model.encode_documents(self.item_texts) if self.item_texts is not None else None
            return queries, items
        kwargs = {"batch_size": self.encode_batch_size, "convert_to_numpy": True, "normalize_embeddings": True}
        queries = model.encode_query(self.query_texts, **kwargs)
        items = model.encode_document(self.item_texts, **kwargs) if self.item_texts is not None else None
        return queries, items

    def __call__(  # type: ignore[override]
        self,
        model_or_queries: Any,
        output_path: str | None = None,
        epoch: int = -1,
        steps: int = -1,
    ) -> dict[str, float]:
        """Metrics for query vectors, or for a model (SentenceTransformer / Embedder) given ``query_texts``.

        The full result of the call is kept in ``self.last_result``. ``output_path`` is accepted for
        sentence-transformers compatibility; save rows explicitly with :func:`save_user_results`.
        """
        is_model = hasattr(model_or_queries, "encode_query") or hasattr(model_or_queries, "encode_queries")
        if is_model:
            queries, items = self._encode_with(model_or_queries)
        else:
            queries, items = model_or_queries, None
            if hasattr(queries, "detach"):
                queries = queries.detach().cpu().numpy()
        self.last_result = self.evaluate(queries, items)
        metrics = self.prefix_name_to_metrics(self.last_result.metrics, self.name)
        st_model = getattr(model_or_queries, "model", model_or_queries) if is_model else None
        if st_model is not None and hasattr(st_model, "model_card_data"):
            self.store_metrics_in_model_card_data(st_model, metrics, epoch, steps)
        return metrics

    def get_config_dict(self) -> dict[str, Any]:
        return self.config.model_dump()


# ---------------------------------------------------------------------------------------------- output


def save_user_results(result: EvalResult | Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Write per-user rows atomically as Parquet (``.parquet``) or JSON Lines (``.jsonl``)."""
    path = Path(path)
    rows = result.rows() if isinstance(result, EvalResult) else [dict(r) for r in result]
    if path.suffix == ".jsonl":
        write_jsonl_atomic(path, rows)
    elif path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(rows) if rows else pa.table({})
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
    else:
        raise ValueError(f"unsupported results format {path.suffix!r}; allowed: ['.parquet', '.jsonl']")
    return path


def print_summary(
    metrics: Mapping[str, float] | Mapping[str, Mapping[str, float]],
    title: str = "Retrieval metrics",
    console: Console | None = None,
) -> Table:
    """Print metrics as a rich table; pass ``{run name: metrics}`` to compare runs side by side."""
    from rich.console import Console
    from rich.table import Table

    runs: dict[str, Mapping[str, float]]
    if metrics and all(isinstance(v, Mapping) for v in metrics.values()):
        runs = {str(k): v for k, v in metrics.items()}  # type: ignore[misc]
    else:
        runs = {"value": metrics}  # type: ignore[dict-item]
    names = list(dict.fromkeys(name for run in runs.values() for name in run))
    table = Table(title=title)
    table.add_column("metric", style="bold")
    for run in runs:
        table.add_column(run, justify="right")
    for name in names:
        cells = []
        for run in runs.values():
            value = run.get(name)
            cells.append("—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}")
        table.add_row(name, *cells)
    (console or Console()).print(table)
    return table
