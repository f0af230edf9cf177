"""Choosing the best checkpoint of a GRPO run on validation users (``eval.select_best``).

The trainer's validation (:class:`~bluerec.train.trainer.ValidationEvaluator`) scores a fixed seeded sample of
**validation** users every ``eval.every_steps``; :class:`BestCheckpoint` keeps the profiler of the best-scoring step
as ``<output_dir>/best/`` — a plain ``save_pretrained`` folder (LoRA merged) beside ``final/``, written atomically,
with ``best.json`` recording the step, the metric and its value. The metric is whatever key it is given: the trainer
passes ``eval.select_key``, the validation evaluator's primary metric (``eval.select_metric`` when set).

Example::

    >>> key = TrainEvalConfig(select_metric="recall@10").select_key     # 'eval/recall@10'
    >>> best = BestCheckpoint(Path("runs/x"), key, from_step=1)
    >>> best.consider(model, tokenizer, step=10, row={key: 0.031})   # saves runs/x/best
    {'step': 10, 'metric': 'eval/recall@10', 'value': 0.031, 'path': 'best'}
    >>> best.consider(model, tokenizer, step=20, row={key: 0.029})   # worse: nothing saved
"""

from __future__ import annotations

import copy
import json
import logging
import math
import shutil
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

BEST_DIR = "best"
RECORD = "best.json"


def read_best(output_dir: str | Path) -> dict[str, Any] | None:
    """``best.json`` of a run's ``best/`` folder (``None`` when there is none or it is unreadable)."""
    path = Path(output_dir) / BEST_DIR / RECORD
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "step" in record and "value" in record else None


class BestCheckpoint:
    """Keeps ``<output_dir>/best/`` = the profiler of the step with the highest ``metric`` (steps >= ``from_step``).

    ``resume_step``: the step a resumed run restarts from. A ``best/`` saved at or before it stays the one to
    beat; one saved after it belongs to the interrupted part of the run, whose validation rows were dropped from
    ``metrics.jsonl``, so it is removed and the best is chosen again as those steps are retrained. Without
    resuming (``None``) any old ``best/`` is removed.
    """

    def __init__(self, output_dir: Path, metric: str, from_step: int = 1, resume_step: int | None = None) -> None:
        self.dir = Path(output_dir) / BEST_DIR
        self.metric = metric
        self.from_step = from_step
        self.best: dict[str, Any] | None = None
        record = read_best(output_dir) if resume_step is not None else None
        if record is not None and record.get("metric") == metric and int(record["step"]) <= resume_step:
            self.best = record
        elif self.dir.exists():
            shutil.rmtree(self.dir)

    def consider(self, model: Any, tokenizer: Any, step: int, row: dict[str, Any]) -> dict[str, Any] | None:
        """Save ``model`` as ``best/`` when ``row[metric]`` beats the best so far; return the new record, else
        ``None``. The training model is never changed (a LoRA model is merged in a copy)."""
        value = row.get(self.metric)
        if step < self.from_step or value is None or not math.isfinite(float(value)):
            return None
        if self.best is not None and float(value) <= float(self.best["value"]):
            return None
        from bluerec.profiler.checkpoint import save_pretrained_atomic

        record = {"step": int(step), "metric": self.metric, "value": float(value), "path": BEST_DIR}
        snapshot = copy.deepcopy(model)
        if hasattr(snapshot, "merge_and_unload"):
            snapshot = snapshot.merge_and_unload()
        snapshot.eval()
        if getattr(snapshot.config, "use_cache", None) is False:
            snapshot.config.use_cache = True
        save_pretrained_atomic(snapshot, tokenizer, self.dir, extra_files={RECORD: json.dumps(record, indent=2)})
        del snapshot
        self.best = record
        log.info("step %d: new best %s = %.4f → %s", step, self.metric, float(value), self.dir)
        return record
