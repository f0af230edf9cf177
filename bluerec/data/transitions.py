"""Item-to-item transition statistics: which items most often follow an item in other users' sequences.

This is the collaborative knowledge a profiler cannot have from one user's history alone. It is built with
DuckDB from a prepared dataset's ``interactions.parquet`` and **never counts a target of the split it serves**:

=================  ==========================================================================================
split served       interactions counted (per user, ``n`` = the user's sequence length)
=================  ==========================================================================================
``test``/``valid`` positions ``seq < n - 2``: the train split only; no validation or test target is counted
``train``          positions ``seq < n - 3``: also leaves out each user's newest train target, the row that
                   GRPO trains on by default (``RLDataConfig.rows = "latest"``)
=================  ==========================================================================================

A pair ``(a, b)`` counts when ``b`` comes 1..``window`` positions after ``a`` in the same user's sequence
(``a != b``); a pair ``gap`` positions apart weighs ``decay ** (gap - 1)``. ``score`` is the weight of
``a → b`` divided by the weight of everything that follows ``a``: the chance that ``b`` is next, given ``a``.
Each item keeps its ``top_n`` successors, ordered by score, then count, then item id (stable).

Tables are cached as Parquet under ``<cache_dir>/transitions/``, keyed by the dataset's manifest, the split
and the config, and written atomically, so they are built once.

Example:
    >>> from bluerec.data.transitions import TransitionConfig, load_transitions  # doctest: +SKIP
    >>> table = load_transitions(PreparedDataset("data/prepared/beauty2014"), "test", TransitionConfig())
    >>> table.top_successors(["B00123"], m=3, exclude={"B00123"})
    [('B00456', 0.21), ('B00789', 0.08), ('B00999', 0.05)]
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from bluerec.config import StrictModel
from bluerec.io import atomic_path

if TYPE_CHECKING:
    from bluerec.data.dataset import PreparedDataset

logger = logging.getLogger(__name__)

TRANSITIONS_FORMAT = 1

# How many trailing positions of every user's sequence a split's statistics leave out (see the module table).
TRAILING_EXCLUDED = {"test": 2, "valid": 2, "train": 3}


class TransitionConfig(StrictModel):
    """How transition statistics are counted."""

    window: int = Field(3, ge=1, le=50, description="count b after a when b is 1..window positions later")
    decay: float = Field(0.5, gt=0.0, le=1.0, description="a pair gap positions apart weighs decay**(gap-1)")
    top_n: int = Field(20, ge=1, le=1000, description="successors kept per item")
    min_count: int = Field(1, ge=1, description="drop pairs seen fewer times than this")


@dataclass(frozen=True)
class Successor:
    item_id: str
    count: int
    score: float


@dataclass
class TransitionTable:
    """Top successors per item, as built by :func:`build_transitions`."""

    successors: dict[str, list[Successor]] = field(default_factory=dict)

    def of(self, item_id: str) -> list[Successor]:
        return self.successors.get(item_id, [])

    def top_successors(
        self, recent_items: Sequence[str], m: int, exclude: Iterable[str] = ()
    ) -> list[tuple[str, float]]:
        """The ``m`` best successors of ``recent_items`` (newest first), deduplicated, ``exclude`` removed.

        Items are pooled over the recent items: a successor's score is the largest it has after any of them,
        and ties keep the order of the newest item's list first (deterministic).
        """
        banned = set(exclude)
        best: dict[str, float] = {}
        order: dict[str, int] = {}
        for source in recent_items:
            for succ in self.of(source):
                if succ.item_id in banned:
                    continue
                if succ.item_id not in order:
                    order[succ.item_id] = len(order)
                best[succ.item_id] = max(best.get(succ.item_id, 0.0), succ.score)
        ranked = sorted(best, key=lambda item: (-best[item], order[item]))
        return [(item, best[item]) for item in ranked[:m]]


def _sql_str(value: str | Path) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def build_transitions(interactions_path: str | Path, split: str, config: TransitionConfig) -> pa.Table:
    """Count successors in ``interactions.parquet`` for serving ``split``; returns an Arrow table
    ``(src, rank, dst, count, weight, score)`` sorted by ``src, rank``."""
    if split not in TRAILING_EXCLUDED:
        raise ValueError(f"unknown split {split!r}; allowed: {sorted(TRAILING_EXCLUDED)}")
    excluded = TRAILING_EXCLUDED[split]
    con = duckdb.connect()
    try:
        return con.sql(
            f"""
            WITH seqs AS (
                SELECT user_id, item_id, seq, count(*) OVER (PARTITION BY user_id) AS n
                FROM read_parquet({_sql_str(interactions_path)})
            ),
            counted AS (SELECT user_id, item_id, seq FROM seqs WHERE seq < n - {excluded}),
            pairs AS (
                SELECT a.item_id AS src, b.item_id AS dst, b.seq - a.seq AS gap
                FROM counted a JOIN counted b
                  ON a.user_id = b.user_id AND b.seq > a.seq AND b.seq - a.seq <= {int(config.window)}
                WHERE a.item_id <> b.item_id
            ),
            agg AS (
                SELECT src, dst, count(*) AS count, sum(pow({float(config.decay)}, gap - 1)) AS weight
                FROM pairs GROUP BY src, dst
            ),
            scored AS (
                SELECT src, dst, count, weight, weight / sum(weight) OVER (PARTITION BY src) AS score
                FROM agg
            ),
            ranked AS (
                SELECT src, dst, count, weight, score,
                       row_number() OVER (PARTITION BY src ORDER BY score DESC, count DESC, dst) AS rank
                FROM scored WHERE count >= {int(config.min_count)}
            )
            SELECT src, rank, dst, count, weight, score FROM ranked WHERE rank <= {int(config.top_n)}
            ORDER BY src, rank
            """
        ).to_arrow_table()
    finally:
        con.close()


def _cache_key(dataset: PreparedDataset, split: str, config: TransitionConfig) -> str:
    manifest = (dataset.root / "manifest.json").read_bytes()
    interactions = dataset.root / "interactions.parquet"
    stat = interactions.stat()
    payload = json.dumps(
        [TRANSITIONS_FORMAT, hashlib.sha256(manifest).hexdigest(), stat.st_size, stat.st_mtime_ns, split,
         config.model_dump()],
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:24]


def load_transitions(
    dataset: PreparedDataset, split: str, config: TransitionConfig | None = None, cache_dir: str | Path | None = ".cache"
) -> TransitionTable:
    """The transition table serving ``split``, built once and cached (``cache_dir=None`` disables the cache)."""
    config = config or TransitionConfig()
    table = None
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / "transitions" / f"{_cache_key(dataset, split, config)}.parquet"
        if path.exists():
            table = pq.read_table(path)
    if table is None:
        table = build_transitions(dataset.root / "interactions.parquet", split, config)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                pq.write_table(table, tmp)
            logger.info("transition statistics for %s (%s): %d pairs → %s", dataset.root, split, table.num_rows, path)
    cols = table.to_pydict()
    successors: dict[str, list[Successor]] = {}
    for src, dst, count, score in zip(cols["src"], cols["dst"], cols["count"], cols["score"]):
        successors.setdefault(src, []).append(Successor(dst, int(count), float(score)))
    return TransitionTable(successors)
