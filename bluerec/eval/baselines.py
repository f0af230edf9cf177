"""Baseline user representations, all through one path: *profile text or vector → embed → retrieve*.

Every method turns a list of leave-last-out examples into :class:`Queries`: one query vector per
example, scored against an item matrix by the same retrieval code. Text methods also keep the text
they embedded, so per-user results show exactly what was used.

=================  =====================================================================
method             query
=================  =====================================================================
popularity         a constant 1-d query against log(1 + train/valid interaction count)
history_text       the last N item texts joined with `` | ``, embedded as a query
mean_embedding     mean of the last N history item embeddings
last_item          the embedding of the most recent history item
template           a hand-crafted template profile (keywords, brands, categories, recent items)
successor_text     the last item's text and its top successor's text (other users' sequences,
                   :mod:`bluerec.data.transitions`), joined with `` | ``, embedded as a query
successor_mean     mean embedding of the last item and its top ``successors`` successors
=================  =====================================================================

The two successor methods use no LLM: they tell whether a profiler adds anything to the transition
statistics a prompt can show it. Successors never include history items, and the statistics never count
a target of the evaluated split.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from bluerec.data.dataset import Example, PreparedDataset
from bluerec.data.transitions import TransitionConfig, TransitionTable, load_transitions
from bluerec.embed import Embedder, embed_cached
from bluerec.profiler.template import raw_history_text, template_items_for, template_profile

BaselineName = Literal["popularity", "history_text", "mean_embedding", "last_item", "template", "successor_text",
                       "successor_mean"]
BASELINES: tuple[str, ...] = get_args(BaselineName)


@dataclass
class Queries:
    """Query vectors for a list of examples and the item matrix they are scored against."""

    vectors: np.ndarray  # (n_examples, d)
    items: np.ndarray  # (n_items, d)
    texts: list[str] | None = None  # the profile text of each example, for text methods


def _history_rows(dataset: PreparedDataset, examples: Sequence[Example], n: int) -> list[np.ndarray]:
    index = dataset.items.index
    return [np.asarray([index[i] for i in ex.history[-n:]], dtype=np.int64) for ex in examples]


def _pool(item_emb: np.ndarray, rows: list[np.ndarray], reduce: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    out = np.zeros((len(rows), item_emb.shape[1]), dtype=np.float32)
    for j, r in enumerate(rows):
        if len(r):  # an empty history leaves a zero query: it ties every item (see EvalConfig.ties)
            out[j] = reduce(item_emb[r])
    return out


def text_queries(texts: list[str], embedder: Embedder, item_emb: np.ndarray, cache_dir: Path | None = None) -> Queries:
    """Embed profile texts as queries (cached on disk by text hash when ``cache_dir`` is set)."""
    return Queries(vectors=embed_cached(embedder, texts, "query", cache_dir), items=item_emb, texts=texts)


def history_texts(dataset: PreparedDataset, examples: Sequence[Example], n: int) -> list[str]:
    texts = dataset.items.texts
    index = dataset.items.index
    return [raw_history_text([texts[index[i]] for i in ex.history], n=n) for ex in examples]


def template_texts(dataset: PreparedDataset, examples: Sequence[Example], n: int) -> list[str]:
    return [template_profile(template_items_for(dataset, ex)[-n:]) for ex in examples]


def successor_items(
    dataset: PreparedDataset, examples: Sequence[Example], table: TransitionTable, m: int
) -> list[list[str]]:
    """Each example's last history item followed by its top ``m`` successors (history items excluded)."""
    out = []
    for ex in examples:
        if not ex.history:
            out.append([])
            continue
        last = ex.history[-1]
        succ = table.top_successors([last], m, exclude=dataset.full_history(ex))
        out.append([last, *(item for item, _ in succ)])
    return out


def successor_texts(dataset: PreparedDataset, examples: Sequence[Example], table: TransitionTable) -> list[str]:
    texts, index = dataset.items.texts, dataset.items.index
    return [" | ".join(texts[index[i]] for i in items) for items in successor_items(dataset, examples, table, 1)]


def baseline_queries(
    method: BaselineName,
    dataset: PreparedDataset,
    examples: Sequence[Example],
    embedder: Embedder,
    item_emb: np.ndarray,
    history_items: int = 20,
    cache_dir: Path | None = None,
    *,
    split: str = "test",
    transitions: TransitionConfig | None = None,
    successors: int = 3,
    transitions_cache_dir: Path | None = Path(".cache"),
) -> Queries:
    """Build the queries of one baseline for ``examples`` of ``split`` (see the module table)."""
    if method in ("successor_text", "successor_mean"):
        table = load_transitions(dataset, split, transitions, cache_dir=transitions_cache_dir)
        if method == "successor_text":
            return text_queries(successor_texts(dataset, examples, table), embedder, item_emb, cache_dir)
        index = dataset.items.index
        rows = [np.asarray([index[i] for i in items], dtype=np.int64)
                for items in successor_items(dataset, examples, table, successors)]
        return Queries(vectors=_pool(item_emb, rows, lambda m: m.mean(axis=0)), items=item_emb)
    if method == "popularity":
        pop = np.log1p(dataset.items.popularity.astype(np.float32))[:, None]
        return Queries(vectors=np.ones((len(examples), 1), dtype=np.float32), items=pop)
    if method == "history_text":
        return text_queries(history_texts(dataset, examples, history_items), embedder, item_emb, cache_dir)
    if method == "template":
        return text_queries(template_texts(dataset, examples, history_items), embedder, item_emb, cache_dir)
    if method == "mean_embedding":
        rows = _history_rows(dataset, examples, history_items)
        return Queries(vectors=_pool(item_emb, rows, lambda m: m.mean(axis=0)), items=item_emb)
    if method == "last_item":
        rows = _history_rows(dataset, examples, 1)
        return Queries(vectors=_pool(item_emb, rows, lambda m: m[-1]), items=item_emb)
    raise ValueError(f"unknown baseline {method!r}; allowed: {list(BASELINES)}")
