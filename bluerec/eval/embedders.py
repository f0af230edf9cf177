"""Frozen vs fine-tuned embedder: the same methods, users and protocols scored under several embedders.

Each embedder gets one :class:`~bluerec.eval.run.EvaluationRun` of the same :class:`~bluerec.eval.run.EvaluateConfig`
(only ``embedder`` differs), so the seeded user sample and the sampled negatives are identical across embedders. The
table holds every method × embedder × protocol NDCG@10 / Recall@10, and for each non-reference embedder the paired
bootstrap 95% interval of its per-user difference to the reference embedder (the first one listed, normally the
frozen one) on the same users. Each embedder's run folder is written under ``out_dir/<embedder>/``; the table is
``out_dir/embedders.json`` and ``.md`` (atomic).

Example (``configs/compare/embedders_quickstart.yaml``)::

    >>> from bluerec.eval.embedders import EmbedderCompareConfig, compare_embedders
    >>> cfg = EmbedderCompareConfig.model_validate({
    ...     "evaluate": {"dataset": "runs/quickstart/data", "max_users": 300},
    ...     "embedders": {"frozen": {"model": "minilm"}, "finetuned": {"model": "runs/emb-template"}}})
    >>> table = compare_embedders(cfg, "runs/embedders")                                   # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from bluerec.config import StrictModel
from bluerec.embed import EmbedderConfig
from bluerec.eval.bootstrap import bootstrap_mean_intervals
from bluerec.eval.run import EvaluateConfig, EvaluationRun, interval_cell
from bluerec.io import write_json_atomic, write_text_atomic

logger = logging.getLogger(__name__)


class EmbedderCompareConfig(StrictModel):
    """``evaluate``: the evaluation shared by every embedder (its own ``embedder`` field is ignored);
    ``embedders``: ``{name: EmbedderConfig}`` in order, the first is the reference (e.g. ``frozen``);
    ``metrics``: per-user metrics compared (default NDCG@10 and Recall@10)."""

    evaluate: EvaluateConfig
    embedders: dict[str, EmbedderConfig]
    metrics: list[str] = Field(default_factory=lambda: ["ndcg@10", "recall@10"])

    @field_validator("embedders")
    @classmethod
    def _two(cls, value: dict[str, EmbedderConfig]) -> dict[str, EmbedderConfig]:
        if len(value) < 2:
            raise ValueError(f"give at least two embedders to compare (got {list(value)})")
        return value


def compare_embedders(config: EmbedderCompareConfig, out_dir: str | Path,
                      say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every embedder, write the table (JSON + markdown) and return it."""
    say = say or logger.info
    out = Path(out_dir)
    runs: dict[str, EvaluationRun] = {}
    for name, emb in config.embedders.items():
        say(f"embedder {name}: {emb.model}")
        run = EvaluationRun(config.evaluate.model_copy(update={"embedder": emb}), say=say)
        run.run_all(out / name)
        runs[name] = run
    ref_name = next(iter(runs))
    ref = runs[ref_name]
    table: dict[str, Any] = {"reference": ref_name, "embedders": {n: r.embedder.model_id for n, r in runs.items()},
                             "n_users": len(ref.examples), "dataset": str(config.evaluate.dataset),
                             "results": {}, "intervals": {}}
    keys, rows = [], []
    for name, run in runs.items():
        for method, by_p in run.results.items():
            for protocol, result in by_p.items():
                cell = table["results"].setdefault(method, {}).setdefault(protocol, {})
                cell[name] = {m: float(result.metrics[m]) for m in config.metrics}
                if name != ref_name:
                    for m in config.metrics:
                        keys.append((method, protocol, name, m))
                        rows.append(result.per_user(m) - ref.results[method][protocol].per_user(m))
    if rows:
        cfg = config.evaluate.intervals
        mean, lo, hi = bootstrap_mean_intervals(np.stack(rows), n_resamples=max(cfg.n_resamples, 1),
                                                confidence=cfg.confidence, seed=config.evaluate.seed)
        for (method, protocol, name, m), d, a, b in zip(keys, mean, lo, hi):
            table["intervals"].setdefault(method, {}).setdefault(protocol, {}).setdefault(name, {})[m] = {
                "diff": float(d), "lo": float(a), "hi": float(b)}
    write_json_atomic(out / "embedders.json", table)
    write_text_atomic(out / "embedders.md", markdown(table, config.metrics))
    return table


def markdown(table: dict[str, Any], metrics: list[str]) -> str:
    names = list(table["embedders"])
    ref = table["reference"]
    lines = [f"Embedders on {table['dataset']} ({table['n_users']:,} users; intervals: paired bootstrap 95% of "
             f"embedder − {ref} on the same users)", ""]
    head = ["method", "protocol"] + [f"{m} {n}" for m in metrics for n in names]
    head += [f"Δ{m} {n}" for m in metrics for n in names if n != ref]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, by_p in table["results"].items():
        for protocol, cells in by_p.items():
            row = [method, protocol] + [f"{cells[n][m]:.4f}" for m in metrics for n in names]
            for m in metrics:
                for n in names:
                    if n == ref:
                        continue
                    iv = table["intervals"].get(method, {}).get(protocol, {}).get(n, {}).get(m)
                    row.append(interval_cell(iv))
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
