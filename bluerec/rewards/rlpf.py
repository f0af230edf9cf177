"""RLPF-style reward: how well does a frozen reader predict the user's next item from the profile alone?

RLPF (Wu et al. 2024, "RLPF: Reinforcement Learning from Prediction Feedback for User Summarization with LLMs",
arXiv 2409.04421) trains a summariser with the downstream prediction of a *frozen* LLM that sees only the summary as
the reward. Here the prediction is the user's next item: the reward is the reader's likelihood of the true next
item's title as a continuation of ``profile + question`` — no options, no embedding space. It is the graded form of
"did the reader predict the next item": a binary hit would need generation and string matching per completion,
the likelihood costs one forward pass and separates profiles that are all wrong by how close they come.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from bluerec.config import StrictModel
from bluerec.rewards.protocols import OptionScorer
from bluerec.rewards.registry import RewardSpec, RowInfo
from bluerec.rewards.text import completion_texts, is_degenerate

DEFAULT_TEMPLATE = (
    "Here is a description of a shopper:\n{profile}\n\n"
    "Question: Which product will this shopper buy next?\nAnswer:"
)


class RLPFRewardConfig(StrictModel):
    """Configuration of :class:`RLPFReward`.

    Parameters:
        question_template: the reader's context; must contain ``{profile}``. Plain text. Default: the shopper
            question of the multiple-choice reward.
        answer_prefix: put before the title when it is scored (a space after ``"Answer:"``). Default ``" "``.
        score: ``"probability"``: ``exp`` of the mean per-token log-likelihood of the title (the geometric-mean
            token probability, in ``[0, 1]``); ``"log_likelihood"``: the mean per-token log-likelihood itself
            (``<= 0``). Default ``"probability"``.
        item_field: the item text that is predicted: ``"title"`` (falls back to the item text when empty) or
            ``"text"``. Default ``"title"``.
        max_item_chars: the predicted text is cut to this many characters. Default ``80``.
        floor: reward of an empty or degenerate profile; ``None`` = ``0.0`` for ``probability`` and ``log(1e-6)``
            for ``log_likelihood`` (below what any real profile scores in practice). Default ``None``.
    """

    question_template: str = DEFAULT_TEMPLATE
    answer_prefix: str = " "
    score: Literal["probability", "log_likelihood"] = "probability"
    item_field: Literal["title", "text"] = "title"
    max_item_chars: int = Field(80, ge=8)
    floor: float | None = None

    @field_validator("question_template")
    @classmethod
    def _template_fields(cls, value: str) -> str:
        names = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
        if names != {"profile"}:
            raise ValueError(f"question_template must contain {{profile}} and no other field, got {sorted(names)}")
        return value

    @property
    def floor_value(self) -> float:
        if self.floor is not None:
            return float(self.floor)
        return 0.0 if self.score == "probability" else math.log(1e-6)


def next_item_rewards(mean_log_likelihood: np.ndarray, score: Literal["probability", "log_likelihood"]) -> np.ndarray:
    """Per-token mean log-likelihoods of the true title → rewards (non-finite values become ``nan``).

    Example:
    ```python
    >>> next_item_rewards(np.log([0.5, 0.25]), "probability").round(3).tolist()
    [0.5, 0.25]
    ```
    """
    ll = np.asarray(mean_log_likelihood, dtype=np.float64)
    ll = np.where(np.isfinite(ll), ll, np.nan)
    return np.exp(ll) if score == "probability" else ll


class RLPFReward:
    """The frozen reader's (per-token) likelihood of the true next item's title given the profile.

    Args:
        scorer: an :class:`~bluerec.rewards.protocols.OptionScorer` that returns per-token mean log-likelihoods
            (an :class:`~bluerec.rewards.multiple_choice.HFOptionScorer` with ``length_normalise=True``).
        config: an :class:`RLPFRewardConfig`.

    Inputs (keyword columns, one per completion): ``completions`` and ``target_text`` (the true next item's text,
    written by this reward's registry entry).

    Example:
    ```python
    >>> class Fake:  # log p = -1 per token for "tea", -3 otherwise
    ...     def score(self, contexts, options):
    ...         return np.array([[-1.0 if "tea" in c else -3.0] for c in contexts])
    >>> RLPFReward(Fake())(completions=["likes tea", "likes hats"], target_text=["tea", "tea"])
    [0.36787944117144233, 0.049787068367863944]
    ```
    """

    __name__ = "rlpf"

    def __init__(self, scorer: OptionScorer, config: RLPFRewardConfig | None = None) -> None:
        if not isinstance(scorer, OptionScorer):
            raise TypeError(f"scorer must have score(contexts, options) -> np.ndarray, got {type(scorer).__name__}")
        if getattr(scorer, "length_normalise", True) is False:
            raise ValueError("RLPFReward needs a length-normalised scorer (per-token mean log-likelihoods)")
        self.scorer = scorer
        self.config = config or RLPFRewardConfig()
        self.last_components: dict[str, float] = {}

    def context(self, profile: str) -> str:
        return self.config.question_template.format(profile=profile.strip())

    def __call__(
        self,
        completions: Sequence[Any],
        target_text: Sequence[str] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        **columns: Any,
    ) -> list[float]:
        n = len(completions)
        if target_text is None:
            raise ValueError(f"{self.__name__} needs the 'target_text' column; got {sorted(columns)}")
        if len(target_text) != n:
            raise ValueError(f"target_text has {len(target_text)} entries for {n} completions")
        cfg = self.config
        texts = completion_texts(completions)
        valid = np.array([not is_degenerate(t) for t in texts], dtype=bool)
        rewards = np.full(n, cfg.floor_value, dtype=np.float64)
        ll = np.full(n, np.nan)
        rows = np.flatnonzero(valid)
        if rows.size:
            scores = np.asarray(self.scorer.score([self.context(texts[i]) for i in rows],
                                                  [[cfg.answer_prefix + str(target_text[i])] for i in rows]),
                                dtype=np.float64)
            if scores.shape != (rows.size, 1):
                raise ValueError(f"scorer returned shape {scores.shape}; expected ({rows.size}, 1)")
            ll[rows] = np.where(np.isfinite(scores[:, 0]), scores[:, 0], np.nan)  # logged over finite ones
            got = next_item_rewards(scores[:, 0], cfg.score)
            rewards[rows] = np.where(np.isnan(got), cfg.floor_value, got)
        self.last_components = {
            "reward": float(rewards.mean()) if n else math.nan,
            "mean_log_likelihood": float(np.nanmean(ll)) if np.isfinite(ll).any() else math.nan,
            "degenerate_fraction": float((~valid).mean()) if n else 0.0,
        }
        if log_metric is not None:
            for name in ("mean_log_likelihood", "degenerate_fraction"):
                log_metric(f"{self.__name__}/{name}", self.last_components[name])
        return rewards.tolist()


def target_text_column(config: RLPFRewardConfig) -> Callable[[RowInfo], str]:
    """The ``target_text`` column: the row's next item as text (title, falling back to the item text, cut)."""

    def column(row: RowInfo) -> str:
        items = row.dataset.items
        text = items.titles[row.target_row] if config.item_field == "title" else items.texts[row.target_row]
        text = (text or items.texts[row.target_row] or items.ids[row.target_row]).strip()
        return text[: config.max_item_chars]

    return column


REWARD = RewardSpec(
    name="rlpf",
    config=RLPFRewardConfig,
    build=lambda cfg, ctx: RLPFReward(ctx.option_scorer("rlpf", length_normalise=True), cfg),
    columns=("target_text",),
    add_columns=lambda cfg: {"target_text": target_text_column(cfg)},
    needs_reader=True,
    description="RLPF-style: the frozen reader's likelihood of the true next item's title given the profile",
)
