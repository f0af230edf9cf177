"""Personalized-QA tasks ``choice`` and ``rating``: a reader LM with only a context (a profile) per user.

``choice`` asks for the next item among ``num_choices`` options (the target and seeded distractors outside the
user's history: :func:`~bluerec.rewards.multiple_choice.mc_question`, the GRPO dataset's question) →
:class:`~bluerec.eval.qa.NextItemChoiceEvaluator` (primary ``accuracy``). ``rating`` asks for the star rating the user
gave the target → :class:`~bluerec.eval.qa.RatingEvaluator` (primary ``mae``, lower is better); users without a
rating are left out of it (``evaluator.users`` lists the ones asked).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from bluerec.config import StrictModel
from bluerec.data.errors import DataError
from bluerec.eval.qa import DEFAULT_RATING_TEMPLATE, NextItemChoiceEvaluator, RatingEvaluator
from bluerec.eval.tasks import EvalSetup, EvalTask
from bluerec.rewards.embedding import hash_key
from bluerec.rewards.multiple_choice import DEFAULT_QUESTION_TEMPLATE, mc_question, option_text

_OPTIONS_SALT = 2  # the GRPO dataset's salt, so a user's question does not depend on the task that asks it


class ChoiceTaskConfig(StrictModel):
    """Next-item multiple choice: num_choices (C, default 4), option_field (``title`` falls back to the text),
    option_chars (option length, 100), question_template (with ``{profile}``), chunk_size (users per reader call)."""

    num_choices: int = Field(4, ge=2, le=26)
    option_field: Literal["title", "text"] = "title"
    option_chars: int = Field(100, ge=10)
    question_template: str = DEFAULT_QUESTION_TEMPLATE
    chunk_size: int = Field(32, ge=1)

    @field_validator("question_template")
    @classmethod
    def _profile(cls, value: str) -> str:
        if "{profile}" not in value:
            raise ValueError("question_template must contain {profile}")
        return value


class RatingTaskConfig(StrictModel):
    """Rating prediction: scale ((1, 5)), max_new_tokens (answer length, 12), option_chars (item text length, 100),
    prompt_template (with ``{profile}`` and ``{item}``), chunk_size (users per reader call)."""

    scale: tuple[float, float] = (1.0, 5.0)
    max_new_tokens: int = Field(12, ge=1)
    option_chars: int = Field(100, ge=10)
    prompt_template: str = DEFAULT_RATING_TEMPLATE
    chunk_size: int = Field(32, ge=1)

    @field_validator("scale")
    @classmethod
    def _scale(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not value[0] < value[1]:
            raise ValueError(f"scale must be (lo, hi) with lo < hi, got {value}")
        return value


def build_choice(setup: EvalSetup, config: ChoiceTaskConfig) -> NextItemChoiceEvaluator:
    ds = setup.dataset
    items, index = ds.items, ds.items.index
    options, answers = [], []
    for ex in setup.examples:
        rng = np.random.default_rng([setup.seed, _OPTIONS_SALT, hash_key(ex.user_id), hash_key(ex.item_id)])
        exclude = {index[i] for i in ds.full_history(ex) if i in index}
        opts, ans = mc_question(rng, items, index[ex.item_id], exclude, config.num_choices, config.option_field,
                                config.option_chars)
        options.append(opts)
        answers.append(ans)
    return NextItemChoiceEvaluator(options, answers, question_template=config.question_template,
                                   chunk_size=config.chunk_size)


def build_rating(setup: EvalSetup, config: RatingTaskConfig) -> RatingEvaluator:
    ds = setup.dataset
    items, index = ds.items, ds.items.index
    rated = [i for i, ex in enumerate(setup.examples) if ex.rating is not None]
    if not rated:
        raise DataError(ds.root, None, "rating", "no evaluated user has a rating for the rating task")
    ev = RatingEvaluator([option_text(items, index[setup.examples[i].item_id], "title", config.option_chars)
                          for i in rated],
                         [float(setup.examples[i].rating) for i in rated],  # type: ignore[arg-type]
                         scale=config.scale, prompt_template=config.prompt_template,
                         max_new_tokens=config.max_new_tokens, chunk_size=config.chunk_size)
    ev.users = rated
    return ev


CHOICE = EvalTask("choice", NextItemChoiceEvaluator, ChoiceTaskConfig, build_choice, kind="qa",
                  description="next item among C options → accuracy")
RATING = EvalTask("rating", RatingEvaluator, RatingTaskConfig, build_rating, kind="qa",
                  description="the target's rating as free text → MAE (unparsable at the worst error)")
