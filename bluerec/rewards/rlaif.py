"""RLAIF-style reward: a judge LM grades the profile against the user's history with a short rubric.

RLAIF (Lee et al. 2023, "RLAIF vs. RLHF: Scaling Reinforcement Learning from Human Feedback with AI Feedback",
arXiv 2309.00267) replaces human preference labels with an LLM's judgement; the RLPF paper uses it as a baseline for
user summaries. Here the judge (the frozen reader by default) reads the history and the profile and answers a
1-5 rubric question; the reward is the *expected* score under the judge's probabilities of the next token being
``1``..``5`` (a soft score, as in "direct RLAIF", instead of one sampled digit), rescaled to ``[0, 1]``.
"""

from __future__ import annotations

import contextlib
import math
import string
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from pydantic import Field, field_validator

from bluerec.config import StrictModel
from bluerec.rewards.multiple_choice import option_probabilities
from bluerec.rewards.protocols import OptionScorer
from bluerec.rewards.registry import RewardSpec, RowInfo
from bluerec.rewards.text import completion_texts, is_degenerate

DEFAULT_RUBRIC = (
    "A shopper bought these products, oldest first:\n{history}\n\n"
    "Someone wrote this profile of the shopper:\n{profile}\n\n"
    "Rate the profile from 1 to 5. 5: accurate, specific, and it would help recommend the next product. "
    "3: partly accurate or vague. 1: wrong or unrelated to the products.\n"
    "Rating (1-5):"
)
DIGITS = ("1", "2", "3", "4", "5")


class RLAIFRewardConfig(StrictModel):
    """Configuration of :class:`RLAIFReward`.

    Parameters:
        rubric_template: the judge's prompt; must contain ``{history}`` and ``{profile}``. Plain text, scored as a
            continuation by the judge (no chat template). Default: a 1-5 rubric on accuracy, specificity and use
            for recommendation.
        digit_prefix: put before each digit when it is scored (a space after ``"Rating (1-5):"``). Default ``" "``.
        max_history_items: the newest items of the history shown to the judge. Default ``20``.
        max_item_chars: every history item's title is cut to this many characters. Default ``60``.
        floor: reward of an empty or degenerate profile. Default ``0.0`` (the score of a certain "1").
        judge: the judge model: ``None`` = the run's frozen reader (``reader.model``; with ``same_as_profiler`` and
            LoRA the profiler's own frozen base, no second model); else a known model name, hub id or folder,
            loaded frozen once for the run. Default ``None``.
    """

    rubric_template: str = DEFAULT_RUBRIC
    digit_prefix: str = " "
    max_history_items: int = Field(20, ge=1)
    max_item_chars: int = Field(60, ge=8)
    floor: float = 0.0
    judge: str | None = None

    @field_validator("rubric_template")
    @classmethod
    def _template_fields(cls, value: str) -> str:
        names = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
        if names != {"history", "profile"}:
            raise ValueError(f"rubric_template must contain {{history}} and {{profile}} and no other field, "
                             f"got {sorted(names)}")
        return value


def expected_rubric_score(digit_scores: np.ndarray) -> np.ndarray:
    """``(n, 5)`` judge scores (log-probabilities) of the digits 1..5 → the expected rating rescaled to ``[0, 1]``
    (``(E[rating] - 1) / 4``), with the probabilities renormalised over the five digits.

    Example:
    ```python
    >>> expected_rubric_score(np.log([[1e-9, 1e-9, 1e-9, 1e-9, 1.0], [0.2, 0.2, 0.2, 0.2, 0.2]])).round(3).tolist()
    [1.0, 0.5]
    ```
    """
    scores = np.asarray(digit_scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] != len(DIGITS):
        raise ValueError(f"digit_scores must be (n, {len(DIGITS)}), got {scores.shape}")
    probs = option_probabilities(scores)
    return (probs @ np.arange(1.0, len(DIGITS) + 1.0) - 1.0) / (len(DIGITS) - 1.0)


class RLAIFReward:
    """A judge LM's expected 1-5 rubric score of the profile against the history, in ``[0, 1]``.

    Args:
        judge: an :class:`~bluerec.rewards.protocols.OptionScorer` that scores the five digits as continuations of
            the rubric prompt (an :class:`~bluerec.rewards.multiple_choice.HFOptionScorer` over the frozen reader).
        config: an :class:`RLAIFRewardConfig`.

    Inputs (keyword columns, one per completion): ``completions`` and ``history_text`` (the history as the judge
    reads it, written by this reward's registry entry).

    Example:
    ```python
    >>> class Judge:  # rates a profile 5 when it names a bought product, else 1
    ...     def score(self, contexts, options):
    ...         good = ["tea" in c.split("profile of the shopper:")[1] for c in contexts]
    ...         return np.log([[1e-9] * 4 + [1.0] if g else [1.0] + [1e-9] * 4 for g in good])
    >>> reward = RLAIFReward(Judge())
    >>> [round(r, 3) for r in reward(completions=["likes tea", "likes hats"], history_text=["1. tea", "1. tea"])]
    [1.0, 0.0]
    ```
    """

    __name__ = "rlaif"

    def __init__(self, judge: OptionScorer, config: RLAIFRewardConfig | None = None) -> None:
        if not isinstance(judge, OptionScorer):
            raise TypeError(f"judge must have score(contexts, options) -> np.ndarray, got {type(judge).__name__}")
        self.judge = judge
        self.config = config or RLAIFRewardConfig()
        self.last_components: dict[str, float] = {}

    def prompt(self, profile: str, history: str) -> str:
        """The judge's prompt for one profile."""
        return self.config.rubric_template.format(history=history.strip(), profile=profile.strip())

    def __call__(
        self,
        completions: Sequence[Any],
        history_text: Sequence[str] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        **columns: Any,
    ) -> list[float]:
        n = len(completions)
        if history_text is None:
            raise ValueError(f"{self.__name__} needs the 'history_text' column; got {sorted(columns)}")
        if len(history_text) != n:
            raise ValueError(f"history_text has {len(history_text)} entries for {n} completions")
        cfg = self.config
        texts = completion_texts(completions)
        valid = np.array([not is_degenerate(t) for t in texts], dtype=bool)
        rewards = np.full(n, cfg.floor, dtype=np.float64)
        rows = np.flatnonzero(valid)
        if rows.size:
            options = [[cfg.digit_prefix + d for d in DIGITS]] * rows.size
            scores = np.asarray(self.judge.score([self.prompt(texts[i], str(history_text[i])) for i in rows],
                                                 options), dtype=np.float64)
            if scores.shape != (rows.size, len(DIGITS)):
                raise ValueError(f"judge returned shape {scores.shape}; expected ({rows.size}, {len(DIGITS)})")
            finite = np.isfinite(scores).any(axis=1)
            got = np.full(rows.size, cfg.floor)
            if finite.any():
                got[finite] = expected_rubric_score(scores[finite])
            rewards[rows] = got
        self.last_components = {
            "reward": float(rewards.mean()) if n else math.nan,
            "expected_rating": float(1.0 + 4.0 * rewards[valid].mean()) if valid.any() else math.nan,
            "degenerate_fraction": float((~valid).mean()) if n else 0.0,
        }
        if log_metric is not None:
            for name in ("expected_rating", "degenerate_fraction"):
                log_metric(f"{self.__name__}/{name}", self.last_components[name])
        return rewards.tolist()


class SingleTokenOptionScorer:
    """An :class:`~bluerec.rewards.protocols.OptionScorer` for options that differ in their last token only (the
    rubric digits, e.g. ``" 1"`` … ``" 5"``, which many tokenizers split into a shared space token and the digit):
    one forward pass per context instead of one per (context, option), the same numbers as the wrapped scorer.

    With options ``prefix + t_c`` (a shared token prefix, one distinct last token each), ``log p(option | context)
    = log p(prefix | context) + log p(t_c | context + prefix)``: each context is scored once with the prefix appended
    (left-padded batches, position ids from the attention mask, only the last positions' logits kept). Other options
    (several distinct tokens, or different options per context) go to the wrapped
    :class:`~bluerec.rewards.multiple_choice.HFOptionScorer` unchanged.

    Example:
    ```python
    >>> judge = SingleTokenOptionScorer(HFOptionScorer(model, tokenizer, length_normalise=False))
    >>> judge.score(["Rating (1-5):"], [[" 1", " 2", " 3", " 4", " 5"]]).shape
    (1, 5)
    ```
    """

    def __init__(self, scorer: Any) -> None:
        self.inner = scorer
        self.length_normalise = scorer.length_normalise

    def split_options(self, options: list[list[str]]) -> tuple[list[int], list[int]] | None:
        """``(shared prefix ids, last token id per option)``, or ``None`` when the fast path does not apply."""
        if self.length_normalise or not options or any(list(o) != list(options[0]) for o in options):
            return None
        ids = [list(self.inner.tokenizer(o, add_special_tokens=False)["input_ids"]) for o in options[0]]
        if not ids or not ids[0] or any(len(i) != len(ids[0]) for i in ids):
            return None
        prefix = ids[0][:-1]
        last = [i[-1] for i in ids]
        if any(i[:-1] != prefix for i in ids) or len(set(last)) != len(last):
            return None
        return prefix, last

    def score(self, contexts: list[str], options: list[list[str]]) -> np.ndarray:
        if len(contexts) != len(options):
            raise ValueError(f"{len(contexts)} contexts but {len(options)} option lists")
        split = self.split_options(options)
        if split is None:
            return self.inner.score(contexts, options)
        prefix, last = split
        inner = self.inner
        keep = len(prefix) + 1  # positions whose logits predict the prefix tokens and the last token
        seqs = []
        for ids in inner.tokenizer(list(contexts), add_special_tokens=False)["input_ids"]:
            ctx = list(ids) or [inner.start_id]
            seqs.append(ctx[-(inner.max_length - keep):] + prefix)  # cut from the left, as HFOptionScorer
        out = np.zeros((len(contexts), len(last)), dtype=np.float64)
        model = inner.model
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        base = model.disable_adapter() if inner.base_only else contextlib.nullcontext()
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]), reverse=True)
        last_t = torch.tensor(last, device=device)
        prefix_t = torch.tensor(prefix, dtype=torch.long, device=device)
        try:
            with torch.no_grad(), base:
                for start in range(0, len(order), inner.batch_size):
                    idx = order[start: start + inner.batch_size]
                    width = max(len(seqs[i]) for i in idx)
                    input_ids = torch.full((len(idx), width), inner.pad_id, dtype=torch.long)
                    attention = torch.zeros((len(idx), width), dtype=torch.long)
                    for r, i in enumerate(idx):  # left padding: every sequence ends at the last position
                        input_ids[r, width - len(seqs[i]):] = torch.tensor(seqs[i], dtype=torch.long)
                        attention[r, width - len(seqs[i]):] = 1
                    positions = (attention.cumsum(-1) - 1).clamp(min=0)
                    inputs = {"input_ids": input_ids.to(device), "attention_mask": attention.to(device),
                              "position_ids": positions.to(device)}
                    try:
                        logits = model(**inputs, logits_to_keep=keep).logits
                    except TypeError:  # a model without logits_to_keep
                        logits = model(**inputs).logits
                    logp = torch.log_softmax(logits[:, -keep:].float(), dim=-1)  # (b, keep, vocab)
                    score = logp[:, -1, last_t].double()
                    if prefix:
                        score = score + logp[:, :-1].gather(2, prefix_t.expand(len(idx), -1)[..., None])[..., 0] \
                            .double().sum(1, keepdim=True)
                    out[idx] = score.cpu().numpy()
        finally:
            model.train(was_training)
        return out


def history_text_column(config: RLAIFRewardConfig) -> Callable[[RowInfo], str]:
    """The ``history_text`` column: the newest ``max_history_items`` history titles as a numbered list."""

    def column(row: RowInfo) -> str:
        items = row.dataset.items
        index = items.index
        lines = []
        for item_id in row.history[-config.max_history_items:]:
            r = index.get(item_id)
            text = (items.titles[r] or items.texts[r]) if r is not None else item_id
            lines.append(" ".join(str(text).split())[: config.max_item_chars])
        return "\n".join(f"{i + 1}. {t}" for i, t in enumerate(lines))

    return column


REWARD = RewardSpec(
    name="rlaif",
    config=RLAIFRewardConfig,
    build=lambda cfg, ctx: RLAIFReward(
        SingleTokenOptionScorer(ctx.option_scorer("rlaif", length_normalise=False, model=cfg.judge)), cfg),
    columns=("history_text",),
    add_columns=lambda cfg: {"history_text": history_text_column(cfg)},
    needs_reader=lambda cfg: cfg.judge is None,
    description="RLAIF-style: a judge LM's expected 1-5 rubric score of the profile against the history",
)
