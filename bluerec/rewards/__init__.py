"""Rewards for GRPO training of the profiler, as TRL reward functions.

Every reward is a plain callable ``reward(completions, **columns) -> list[float]`` (not an ``nn.Module``), so TRL
calls it with ``prompts``, ``completions``, ``completion_ids``, ``trainer_state``, ``log_metric`` and every dataset
column except ``prompt`` as keyword lists. Each object carries a ``__name__`` (TRL's log name) and keeps the last
batch's summary in ``last_components``.

- :class:`InfoNCEReward` — bidirectional InfoNCE of the profile embedding against the next item (+ its two
  component views ``infonce_profile_to_item`` / ``infonce_item_to_profile``).
- :class:`MultipleChoiceReward` — a frozen reader LM's probability of the true next item among ``C`` options.
- :class:`LengthPenalty` — non-positive length / repetition / non-text penalty.
"""

from bluerec.rewards.embedding import (
    InfoNCEBreakdown,
    InfoNCEComponentReward,
    InfoNCEReward,
    InfoNCERewardConfig,
    ProfileEmbeddingCache,
    hard_negative_indices,
    info_nce_log_prob,
    item_to_profile_log_probs,
    item_to_profile_mask,
    masked_log_softmax,
    profile_to_item_log_probs,
    sample_negatives,
)
from bluerec.rewards.length import LengthPenalty, LengthPenaltyConfig
from bluerec.rewards.multiple_choice import (
    HFOptionScorer,
    MultipleChoiceReward,
    MultipleChoiceRewardConfig,
    build_mc_options,
    option_probabilities,
)
from bluerec.rewards.protocols import OptionScorer, TextEncoder
from bluerec.rewards.text import completion_text, completion_texts, is_degenerate

__all__ = [
    "HFOptionScorer",
    "InfoNCEBreakdown",
    "InfoNCEComponentReward",
    "InfoNCEReward",
    "InfoNCERewardConfig",
    "LengthPenalty",
    "LengthPenaltyConfig",
    "MultipleChoiceReward",
    "MultipleChoiceRewardConfig",
    "OptionScorer",
    "ProfileEmbeddingCache",
    "TextEncoder",
    "build_mc_options",
    "completion_text",
    "completion_texts",
    "hard_negative_indices",
    "info_nce_log_prob",
    "is_degenerate",
    "item_to_profile_log_probs",
    "item_to_profile_mask",
    "masked_log_softmax",
    "option_probabilities",
    "profile_to_item_log_probs",
    "sample_negatives",
]
