"""LangPTune-style reward: the ranking quality of the profile as a query over the whole catalogue.

LangPTune (Gao et al. 2024, "End-to-end Training for Recommendation with Language-based User Profiles",
arXiv 2410.18870) optimises the profile with the recommender's ranking metric as the reward. Here the recommender is
the frozen retriever: the profile is embedded, every item of the catalogue is scored by cosine similarity, the user's
history is excluded (never the target), and the reward is NDCG@k, MRR or full-list DCG of the true next item — the
same ranking (:func:`bluerec.eval.retrieval.full_ranks`) and metrics (:mod:`bluerec.eval.metrics`) as evaluation,
with exact ties counted at their average rank.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field

from bluerec.config import StrictModel
from bluerec.rewards.protocols import TextEncoder
from bluerec.rewards.registry import RewardSpec
from bluerec.rewards.text import completion_texts, is_degenerate


class LangPTuneRewardConfig(StrictModel):
    """Configuration of :class:`LangPTuneReward`.

    Parameters:
        metric: ``"ndcg"`` (NDCG@k: ``1/log2(rank+2)`` inside the top k, else 0), ``"mrr"`` (``1/(rank+1)`` over
            the full list, so it never vanishes) or ``"dcg"`` (``1/log2(rank+2)`` over the full list: NDCG's gain
            without its cut-off — the head counts most, as in NDCG@10, but a move from rank 500 to 100 still pays,
            where MRR and NDCG@k are ~0 for most users and give GRPO's groups nothing to compare). Default
            ``"ndcg"``.
        k: the NDCG cut-off. Default ``10``.
        exclude_history: rank without the user's history items (the evaluation protocol). Default ``True``.
        ties: how an exact score tie with the target counts: ``"average"`` (the expected rank under random
            tie-breaking), ``"pessimistic"`` or ``"optimistic"``. Default ``"average"``.
        floor: reward of an empty or degenerate profile. Default ``0.0``.
    """

    metric: Literal["ndcg", "mrr", "dcg"] = "ndcg"
    k: int = Field(10, ge=1)
    exclude_history: bool = True
    ties: Literal["average", "pessimistic", "optimistic"] = "average"
    floor: float = 0.0


def rank_rewards(ranks: np.ndarray, metric: Literal["ndcg", "mrr", "dcg"], k: int) -> np.ndarray:
    """Target ranks (0 = first, fractional under average ties) → NDCG@k, MRR or full-list DCG (``k`` unused).

    Example:
    ```python
    >>> rank_rewards(np.array([0.0, 1.0, 12.0]), "ndcg", 10).round(3).tolist()
    [1.0, 0.631, 0.0]
    >>> rank_rewards(np.array([0.0, 1.0, 12.0]), "mrr", 10).round(3).tolist()
    [1.0, 0.5, 0.077]
    >>> rank_rewards(np.array([0.0, 1.0, 12.0]), "dcg", 10).round(3).tolist()
    [1.0, 0.631, 0.263]
    ```
    """
    from bluerec.eval.metrics import dcg, mrr, ndcg_at_k

    if metric == "dcg":
        return dcg(ranks)
    return ndcg_at_k(ranks, k) if metric == "ndcg" else mrr(ranks)


class LangPTuneReward:
    """NDCG@k or MRR of the true next item when the profile embedding ranks the whole catalogue.

    Args:
        encoder: a :class:`~bluerec.rewards.protocols.TextEncoder` (the frozen retriever).
        item_emb: ``(n_items, d)`` L2-normalised item embeddings.
        item_index: item id → row of ``item_emb``.
        config: a :class:`LangPTuneRewardConfig`.

    Inputs (keyword columns, one per completion): ``completions``, ``target_item`` (item id) and ``history_items``
    (item ids excluded from the ranking when ``exclude_history``).

    Example:
    ```python
    >>> class OneHot:  # profiles and items share a one-hot space
    ...     def encode_queries(self, texts):
    ...         return np.array([[1.0, 0.0] if "tea" in t else [0.0, 1.0] for t in texts], dtype=np.float32)
    >>> items = np.eye(2, dtype=np.float32)
    >>> reward = LangPTuneReward(OneHot(), items, {"tea": 0, "mug": 1})
    >>> reward(completions=["tea lover", "mug lover"], target_item=["tea", "tea"], history_items=[[], []])
    [1.0, 0.6309297535714575]
    ```
    """

    __name__ = "langptune"

    def __init__(self, encoder: TextEncoder, item_emb: np.ndarray, item_index: Mapping[str, int],
                 config: LangPTuneRewardConfig | None = None) -> None:
        if not isinstance(encoder, TextEncoder):
            raise TypeError(f"encoder must have encode_queries(texts), got {type(encoder).__name__}")
        item_emb = np.ascontiguousarray(np.asarray(item_emb, dtype=np.float32))
        if item_emb.ndim != 2 or item_emb.shape[0] == 0:
            raise ValueError(f"item_emb must be a non-empty (n_items, d) matrix, got shape {item_emb.shape}")
        self.encoder = encoder
        self.item_emb = item_emb
        self.item_index = dict(item_index)
        self.config = config or LangPTuneRewardConfig()
        self.last_components: dict[str, float] = {}

    def ranks(self, texts: Sequence[str], targets: np.ndarray, exclude: list[np.ndarray] | None) -> np.ndarray:
        """Tie-adjusted 0-based ranks of ``targets`` for the profiles ``texts``."""
        from bluerec.eval.metrics import tie_adjusted_ranks
        from bluerec.eval.retrieval import full_ranks

        queries = np.asarray(self.encoder.encode_queries(list(texts)), dtype=np.float32)
        if queries.shape != (len(texts), self.item_emb.shape[1]):
            raise ValueError(f"encoder returned shape {queries.shape}; expected ({len(texts)}, {self.item_emb.shape[1]})")
        result = full_ranks(queries, self.item_emb, targets, exclude, exclude_history=exclude is not None, top_n=0)
        return tie_adjusted_ranks(result.ranks, result.ties, self.config.ties)

    def __call__(
        self,
        completions: Sequence[Any],
        target_item: Sequence[str] | None = None,
        history_items: Sequence[Sequence[str] | None] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        **columns: Any,
    ) -> list[float]:
        n = len(completions)
        cfg = self.config
        if target_item is None or len(target_item) != n:
            raise ValueError(f"{self.__name__} needs the 'target_item' column, one id per completion; "
                             f"got columns {sorted(columns)}")
        missing = [t for t in target_item if t not in self.item_index]
        if missing:
            raise KeyError(f"{self.__name__}: target items not in the catalogue, e.g. {missing[:3]}")
        texts = completion_texts(completions)
        valid = np.array([not is_degenerate(t) for t in texts], dtype=bool)
        rewards = np.full(n, cfg.floor, dtype=np.float64)
        ranks = np.full(n, np.nan)
        rows = np.flatnonzero(valid)
        if rows.size:
            targets = np.array([self.item_index[target_item[i]] for i in rows], dtype=np.int64)
            exclude = None
            if cfg.exclude_history:
                hist = history_items if history_items is not None else [None] * n
                exclude = [np.array([self.item_index[h] for h in (hist[i] or ()) if h in self.item_index],
                                    dtype=np.int64) for i in rows]
            ranks[rows] = self.ranks([texts[i] for i in rows], targets, exclude)
            rewards[rows] = rank_rewards(ranks[rows], cfg.metric, cfg.k)
        self.last_components = {
            "reward": float(rewards.mean()) if n else math.nan,
            "mean_rank": float(np.nanmean(ranks)) if rows.size else math.nan,
            f"hit@{cfg.k}": float((ranks[rows] < cfg.k).mean()) if rows.size else 0.0,
            "degenerate_fraction": float((~valid).mean()) if n else 0.0,
        }
        if log_metric is not None:
            for name in ("mean_rank", f"hit@{cfg.k}", "degenerate_fraction"):
                log_metric(f"{self.__name__}/{name}", self.last_components[name])
        return rewards.tolist()


REWARD = RewardSpec(
    name="langptune",
    config=LangPTuneRewardConfig,
    build=lambda cfg, ctx: LangPTuneReward(ctx.encoder, ctx.item_emb, ctx.dataset.items.index, cfg),
    columns=("target_item", "history_items"),
    description="LangPTune-style: NDCG@k or MRR of the next item when the profile ranks the whole catalogue",
)
