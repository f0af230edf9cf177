"""Retrieval tasks ``full`` and ``sampled``: rank each user's held-out item with the profile embedding as the query.

Both build a :class:`~bluerec.eval.evaluator.RetrievalEvaluator` over the setup's item matrix, with each user's
target and full history (excluded from the candidates; never the target), item ids, user ids and item popularity
(popularity-weighted negatives). ``full`` ranks the whole catalogue; ``sampled`` the target among seeded negatives,
drawn once per evaluator so every method and checkpoint it scores meets the same candidates.
"""

from __future__ import annotations

import numpy as np

from bluerec.eval.evaluator import EvalConfig, RetrievalEvaluator
from bluerec.eval.tasks import EvalSetup, EvalTask


def target_rows(setup: EvalSetup) -> np.ndarray:
    """Item row of each example's target (every target must be in the catalogue)."""
    index = setup.dataset.items.index
    return np.asarray([index[ex.item_id] for ex in setup.examples], dtype=np.int64)


def history_rows(setup: EvalSetup) -> list[np.ndarray]:
    """Item rows of each example's full history (items missing from the catalogue are left out)."""
    ds = setup.dataset
    index = ds.items.index
    return [np.asarray([index[i] for i in ds.full_history(ex) if i in index], dtype=np.int64) for ex in setup.examples]


def build_retrieval(setup: EvalSetup, config: EvalConfig) -> RetrievalEvaluator:
    if setup.item_embeddings is None:
        raise ValueError(f"the {config.protocol} retrieval task needs EvalSetup.item_embeddings (the item matrix)")
    items = setup.dataset.items
    return RetrievalEvaluator(setup.item_embeddings, target_rows(setup), history_rows(setup), config,
                              item_ids=items.ids, user_ids=setup.user_ids, item_popularity=items.popularity)


FULL = EvalTask("full", RetrievalEvaluator, EvalConfig, build_retrieval, kind="retrieval",
                defaults={"protocol": "full"}, description="rank the target against the whole catalogue")
SAMPLED = EvalTask("sampled", RetrievalEvaluator, EvalConfig, build_retrieval, kind="retrieval",
                   defaults={"protocol": "sampled"}, description="rank the target among seeded sampled negatives")
