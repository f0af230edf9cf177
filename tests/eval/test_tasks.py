"""The evaluation-task registry: the retrieval and QA evaluators are its entries, built from one EvalSetup, and a new
task is one module-level EvalTask plus one registry line (shown here with a task defined in this file)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers.base.evaluation.evaluator import BaseEvaluator

from bluerec.config import StrictModel
from bluerec.eval import tasks
from bluerec.eval.evaluator import EvalConfig, RetrievalEvaluator
from bluerec.eval.qa import NextItemChoiceEvaluator, QAConfig, RatingEvaluator, run_qa
from bluerec.eval.tasks import TASKS, EvalSetup, EvalTask, build_evaluator, get_task, task_names


def _setup(path: Path, n: int = 25) -> EvalSetup:
    from bluerec.data.dataset import PreparedDataset

    ds = PreparedDataset(path)
    items = np.random.default_rng(0).standard_normal((len(ds.items), 8)).astype(np.float32)
    return EvalSetup(ds, ds.split("test")[:n], "test", seed=0, item_embeddings=items)


def test_registry_lists_the_retrieval_and_qa_tasks():
    assert task_names() == ["full", "sampled", "choice", "rating"]
    assert task_names("retrieval") == ["full", "sampled"] and task_names("qa") == ["choice", "rating"]
    assert get_task("full").evaluator_class is RetrievalEvaluator and get_task("full").config_class is EvalConfig
    assert get_task("choice").evaluator_class is NextItemChoiceEvaluator
    assert get_task("rating").evaluator_class is RatingEvaluator
    with pytest.raises(ValueError, match="registered"):
        get_task("auc")


def test_retrieval_tasks_build_the_evaluator_of_the_setup(synth_prepared: Path):
    setup = _setup(synth_prepared)
    full = build_evaluator("full", setup)
    assert isinstance(full, RetrievalEvaluator) and full.config.protocol == "full" and full.config.ties == "average"
    assert full.primary_metric == "ndcg@10" and full.greater_is_better
    index = setup.dataset.items.index
    direct = RetrievalEvaluator(setup.item_embeddings, [index[ex.item_id] for ex in setup.examples],
                                [[index[i] for i in setup.dataset.full_history(ex)] for ex in setup.examples])
    queries = setup.item_embeddings[[index[ex.history[-1]] for ex in setup.examples]]
    assert full(queries) == direct(queries)
    sampled = build_evaluator("sampled", setup, {"num_negatives": 20, "primary_metric": "recall@10"})
    assert sampled.config.protocol == "sampled" and sampled.primary_metric == "recall@10"
    assert (sampled(queries) and (sampled.last_result.n_candidates == 21).all())
    with pytest.raises(ValueError, match="needs"):
        build_evaluator("sampled", setup, EvalConfig(protocol="full"))
    with pytest.raises(ValueError, match="item_embeddings"):
        build_evaluator("full", EvalSetup(setup.dataset, setup.examples))


def test_qa_tasks_build_from_the_setup(synth_prepared: Path):
    setup = _setup(synth_prepared)
    choice = build_evaluator("choice", setup, {"num_choices": 3})
    assert len(choice.options) == len(setup.examples) and all(len(o) == 3 for o in choice.options)
    assert choice.primary_metric == "accuracy" and choice.greater_is_better
    rating = build_evaluator("rating", setup)
    assert rating.primary_metric == "mae" and not rating.greater_is_better
    assert rating.users == [i for i, ex in enumerate(setup.examples) if ex.rating is not None]


# ------------------------------------------------------------------------------------------ a task added by a test
# What a new task's file holds: an evaluator, its config and an EvalTask; the registry gets one line (monkeypatched).


class WordsConfig(StrictModel):
    cap: int = 50


class ContextWordsEvaluator(BaseEvaluator):
    """Mean words per context (capped): a made-up QA-kind task that needs no reader."""

    def __init__(self, n_users: int, cap: int) -> None:
        super().__init__()
        self.n_users, self.cap = n_users, cap
        self.primary_metric = "words"
        self.greater_is_better = False
        self.users = None
        self.last = np.zeros(0)

    def __call__(self, model, contexts=None, output_path=None, epoch=-1, steps=-1):
        self.last = np.array([min(len(c.split()), self.cap) for c in contexts], dtype=np.float64)
        return {"words": float(self.last.mean()) if len(self.last) else math.nan}

    def per_user(self) -> np.ndarray:
        return self.last.copy()

    def user_rows(self) -> list[dict]:
        return [{"words": float(w)} for w in self.last]


WORDS = EvalTask("words", ContextWordsEvaluator, WordsConfig,
                 lambda setup, cfg: ContextWordsEvaluator(len(setup.examples), cfg.cap), kind="qa")


class NoReader:
    name = "none"

    def choose(self, contexts, options):
        return [0 for _ in contexts]

    def answer(self, prompts, max_new_tokens):
        return ["3" for _ in prompts]


def test_a_new_task_is_one_registry_line(synth_prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(TASKS, "words", f"{__name__}:WORDS")
    assert "words" in task_names("qa")
    config = QAConfig(dataset=synth_prepared, max_users=10, tasks=["choice", "words"],
                      task_settings={"words": {"cap": 3}}, resamples=50)
    summary = run_qa(config, tmp_path / "run", reader=NoReader())
    for by_task in summary["results"].values():
        assert set(by_task) == {"choice", "words"} and 0 < by_task["words"]["words"] <= 3
    assert summary["primary_metrics"]["words"] == {"metric": "words", "greater_is_better": False}
    assert {r["a"] for r in summary["intervals"]["words"]} == {"history"}
    assert "| words words |" in (tmp_path / "run" / "summary.md").read_text()  # its primary metric as a column
    with pytest.raises(ValueError, match="unknown QA tasks"):
        QAConfig(dataset=synth_prepared, tasks=["full"])  # a retrieval task is not a QA task
    monkeypatch.delitem(TASKS, "words")
    with pytest.raises(ValueError, match="unknown QA tasks"):
        QAConfig(dataset=synth_prepared, tasks=["words"])
    assert tasks.get_task("choice").name == "choice"
