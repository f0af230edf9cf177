"""Length / format penalty: keeps profiles in a readable size and away from repetitive or non-text output."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from bluerec.config import StrictModel
from bluerec.rewards.text import completion_texts, words


class LengthPenaltyConfig(StrictModel):
    """Configuration of :class:`LengthPenalty`.

    Parameters that control the length term:
        unit: count ``"words"`` (whitespace-separated) or ``"tokens"`` (``completion_ids`` from TRL). Default
            ``"words"``.
        min_length: shortest length without penalty. Default ``20``.
        max_length: longest length without penalty. Default ``200``.
        length_weight: penalty for a relative deviation of 1 (``(min-n)/min`` below, ``(n-max)/max`` above).
            Default ``1.0``.

    Parameters that control the garbage terms:
        ngram_size: word n-gram size for the repetition term. Default ``3``.
        repetition_weight: penalty for a fully repetitive text (scaled by the repeated n-gram fraction ``1 -
            unique/total``). Default ``1.0``.
        max_non_text_fraction: share of non-space characters that may be neither letters, digits nor common
            punctuation before the non-text term starts. Default ``0.2``.
        non_text_weight: penalty when every character is non-text (linear above the allowed fraction). Default
            ``1.0``.
        max_penalty: the total penalty is clipped to ``[-max_penalty, 0]``. Default ``2.0``.
    """

    unit: Literal["words", "tokens"] = "words"
    min_length: int = Field(20, ge=0)
    max_length: int = Field(200, ge=1)
    length_weight: float = Field(1.0, ge=0)
    ngram_size: int = Field(3, ge=1)
    repetition_weight: float = Field(1.0, ge=0)
    max_non_text_fraction: float = Field(0.2, ge=0, lt=1)
    non_text_weight: float = Field(1.0, ge=0)
    max_penalty: float = Field(2.0, gt=0)

    @model_validator(mode="after")
    def _range(self) -> LengthPenaltyConfig:
        if self.min_length > self.max_length:
            raise ValueError(f"min_length ({self.min_length}) must be <= max_length ({self.max_length})")
        return self


_PUNCT_OK = set(".,;:!?'\"()-/&%$+")


def length_deviation(n: int, min_length: int, max_length: int) -> float:
    """Relative distance of ``n`` from ``[min_length, max_length]`` (0 inside).

    Example:
    ```python
    >>> length_deviation(5, 10, 20), length_deviation(15, 10, 20), length_deviation(30, 10, 20)
    (0.5, 0.0, 0.5)
    ```
    """
    if n < min_length:
        return (min_length - n) / min_length
    if n > max_length:
        return (n - max_length) / max_length
    return 0.0


def repeated_ngram_fraction(tokens: Sequence[Any], n: int) -> float:
    """``1 - unique/total`` over the ``n``-grams of ``tokens`` (0 when there are fewer than ``n`` tokens)."""
    if len(tokens) < n:
        return 0.0
    grams = list(zip(*[tokens[i:] for i in range(n)]))
    return 1.0 - len(set(grams)) / len(grams)


def non_text_fraction(text: str) -> float:
    """Share of non-space characters that are neither letters, digits nor common punctuation (0 for empty text)."""
    chars = [ch for ch in text if not ch.isspace()]
    if not chars:
        return 0.0
    bad = sum(1 for ch in chars if not (unicodedata.category(ch)[0] in "LN" or ch in _PUNCT_OK))
    return bad / len(chars)


class LengthPenalty:
    """Non-positive length / format penalty for profiles.

    ``penalty = -min(max_penalty, length_weight * deviation + repetition_weight * repeated
    + non_text_weight * excess_non_text)``, where ``deviation`` is :func:`length_deviation`, ``repeated`` is
    :func:`repeated_ngram_fraction` over lower-cased words and ``excess_non_text`` rescales
    :func:`non_text_fraction` above ``max_non_text_fraction`` to ``[0, 1]``. An empty profile gets the full length
    penalty. Always ``<= 0`` and finite.

    Inputs: ``completions`` (str or messages); with ``unit="tokens"`` also ``completion_ids`` (TRL passes it).

    Example:
    ```python
    >>> penalty = LengthPenalty(LengthPenaltyConfig(min_length=2, max_length=4))
    >>> penalty(completions=["likes red shoes", "a", "x y z w v u t s"])
    [0.0, -0.5, -1.0]
    ```
    """

    __name__ = "length_penalty"

    def __init__(self, config: LengthPenaltyConfig | None = None) -> None:
        self.config = config or LengthPenaltyConfig()
        self.last_components: dict[str, float] = {}

    def __call__(
        self,
        completions: Sequence[Any],
        completion_ids: Sequence[Sequence[int]] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        **_: Any,
    ) -> list[float]:
        cfg = self.config
        texts = completion_texts(completions)
        if cfg.unit == "tokens":
            if completion_ids is None or len(completion_ids) != len(texts):
                raise ValueError("LengthPenalty(unit='tokens') needs completion_ids, one per completion")
            lengths = [len(ids) for ids in completion_ids]
        else:
            lengths = [len(t.split()) for t in texts]
        dev = np.array([length_deviation(n, cfg.min_length, cfg.max_length) for n in lengths])
        rep = np.array([repeated_ngram_fraction(words(t), cfg.ngram_size) for t in texts])
        allowed = cfg.max_non_text_fraction
        junk = np.array([max(0.0, non_text_fraction(t) - allowed) / (1.0 - allowed) for t in texts])
        total = cfg.length_weight * dev + cfg.repetition_weight * rep + cfg.non_text_weight * junk
        penalty = -np.minimum(total, cfg.max_penalty)
        penalty = np.where(np.isfinite(penalty), penalty, -cfg.max_penalty) + 0.0  # + 0.0 turns -0.0 into 0.0
        n = len(texts)
        self.last_components = {
            "penalty": float(penalty.mean()) if n else math.nan,
            "length": float(np.mean(lengths)) if n else math.nan,
            "out_of_range_fraction": float((dev > 0).mean()) if n else 0.0,
            "repetition": float(rep.mean()) if n else 0.0,
            "non_text": float(junk.mean()) if n else 0.0,
        }
        if log_metric is not None:
            log_metric(f"{self.__name__}/length", self.last_components["length"])
        return penalty.tolist()


def _registry_entry() -> Any:
    from bluerec.rewards.registry import RewardSpec

    return RewardSpec(name="length_penalty", config=LengthPenaltyConfig, build=lambda cfg, ctx: LengthPenalty(cfg),
                      description="non-positive length / repetition / non-text penalty")


REWARD = _registry_entry()  # registry entry (bluerec.rewards.registry)
