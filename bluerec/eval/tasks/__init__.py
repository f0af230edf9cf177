"""Evaluation tasks by name: each task is one evaluator class in the sentence-transformers shape (one call → a dict
of named metrics, with ``primary_metric`` and ``greater_is_better``), its typed config, and how it is built from a
prepared dataset's evaluated users (:class:`EvalSetup`).

``bluerec evaluate`` (:class:`~bluerec.eval.run.EvaluationRun`), the validation during GRPO training
(:class:`~bluerec.train.trainer.ValidationEvaluator`), ``bluerec qa`` (:func:`~bluerec.eval.qa.run_qa`) and the
benchmarks that compose them all build their evaluators here, so a task is defined once.

- ``full`` / ``sampled`` (:mod:`bluerec.eval.tasks.retrieval`): :class:`~bluerec.eval.evaluator.RetrievalEvaluator`
  with ``EvalConfig(protocol=full|sampled)``, called with query vectors (or a model); primary ``ndcg@10``.
- ``choice`` (:mod:`bluerec.eval.tasks.qa`): :class:`~bluerec.eval.qa.NextItemChoiceEvaluator` with
  ``ChoiceTaskConfig``, called with ``(reader, contexts)``; primary ``accuracy``.
- ``rating`` (:mod:`bluerec.eval.tasks.qa`): :class:`~bluerec.eval.qa.RatingEvaluator` with ``RatingTaskConfig``,
  called with ``(reader, contexts)``; primary ``mae`` (lower is better).

**Adding a task** is one new file and one line in :data:`TASKS`: the file defines the evaluator (a
``BaseEvaluator`` subclass), its config (a :class:`~bluerec.config.StrictModel`) and a module-level
:class:`EvalTask` whose ``build(setup, config)`` makes the evaluator for the setup's users; the line maps the
task's name to ``"module:ATTRIBUTE"`` (imported on first use, so ``import bluerec.eval`` stays cheap).

Example:
    ::

        from bluerec.data.dataset import PreparedDataset
        from bluerec.eval.tasks import EvalSetup, build_evaluator, task_names

        ds = PreparedDataset("runs/quickstart/data")
        setup = EvalSetup(ds, ds.split("test")[:100], "test", item_embeddings=item_matrix)
        full = build_evaluator("full", setup)                        # default EvalConfig(protocol="full")
        sampled = build_evaluator("sampled", setup, {"num_negatives": 49})
        metrics = full(query_vectors)        # {'ndcg@10': ..., 'recall@10': ..., ...}; full.primary_metric == 'ndcg@10'
        print(task_names())                  # ['full', 'sampled', 'choice', 'rating']
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bluerec.config import StrictModel, parse_config

if TYPE_CHECKING:
    import numpy as np
    from sentence_transformers.base.evaluation.evaluator import BaseEvaluator

    from bluerec.data.dataset import Example, PreparedDataset

# The registry: task name → "module:attribute" of its EvalTask. One line per task.
TASKS: dict[str, str] = {
    "full": "bluerec.eval.tasks.retrieval:FULL",
    "sampled": "bluerec.eval.tasks.retrieval:SAMPLED",
    "choice": "bluerec.eval.tasks.qa:CHOICE",
    "rating": "bluerec.eval.tasks.qa:RATING",
}


@dataclass
class EvalSetup:
    """What a task is built from: a prepared dataset, the evaluated examples (one per user, in order), the split
    they come from, a seed (sampled negatives, distractors), and shared resources a task may need.

    ``item_embeddings``: the ``(n_items, d)`` item matrix of the retriever (retrieval tasks only).
    """

    dataset: PreparedDataset
    examples: list[Example]
    split: str = "test"
    seed: int = 0
    item_embeddings: np.ndarray | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def user_ids(self) -> list[str]:
        return [ex.user_id for ex in self.examples]


@dataclass(frozen=True)
class EvalTask:
    """One registered evaluation task.

    Attributes:
        name: the registry name (also the key of its results, e.g. ``results[method]["full"]``).
        evaluator_class: the ``BaseEvaluator`` subclass it builds.
        config_class: its typed config.
        build: ``build(setup, config) → evaluator``.
        kind: what the evaluator is called with: ``"retrieval"`` (query vectors) or ``"qa"`` (reader, contexts).
        defaults: config values that define the task (e.g. ``{"protocol": "full"}``); a given config must agree.
        description: one line for listings.
    """

    name: str
    evaluator_class: type
    config_class: type[StrictModel]
    build: Callable[[EvalSetup, Any], BaseEvaluator]
    kind: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def config(self, value: StrictModel | Mapping[str, Any] | None = None, source: str = "") -> Any:
        """The task's typed config from ``value`` (a config object, a mapping or None), with its defaults."""
        if isinstance(value, self.config_class):
            cfg = value
        else:
            data = {**self.defaults, **dict(value or {})}
            cfg = parse_config(self.config_class, data, source or f"evaluation task {self.name!r}")
        wrong = {k: getattr(cfg, k) for k, v in self.defaults.items() if getattr(cfg, k) != v}
        if wrong:
            raise ValueError(f"evaluation task {self.name!r} needs {dict(self.defaults)}, got {wrong}")
        return cfg


def task_names(kind: str | None = None) -> list[str]:
    """The registered task names (of one ``kind`` when given), in registry order."""
    return [n for n in TASKS if kind is None or get_task(n).kind == kind]


def get_task(name: str) -> EvalTask:
    """The registered task ``name`` (its module is imported on first use)."""
    try:
        target = TASKS[name]
    except KeyError:
        raise ValueError(f"unknown evaluation task {name!r}; registered: {list(TASKS)}") from None
    module, _, attr = target.partition(":")
    task = getattr(importlib.import_module(module), attr)
    if not isinstance(task, EvalTask) or task.name != name:
        raise TypeError(f"registry entry {name!r} → {target} is not the EvalTask named {name!r}")
    return task


def build_evaluator(name: str, setup: EvalSetup, config: StrictModel | Mapping[str, Any] | None = None) -> Any:
    """Build the evaluator of task ``name`` for ``setup`` (``config``: its typed config, a mapping or None)."""
    task = get_task(name)
    return task.build(setup, task.config(config))


__all__ = ["TASKS", "EvalSetup", "EvalTask", "build_evaluator", "get_task", "task_names"]
