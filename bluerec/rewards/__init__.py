"""Rewards for GRPO training of the profiler, as TRL reward functions.

Every reward is a plain callable ``reward(completions, **columns) -> list[float]`` (not an ``nn.Module``), so TRL
calls it with ``prompts``, ``completions``, ``completion_ids``, ``trainer_state``, ``log_metric`` and every dataset
column except ``prompt`` as keyword lists. Each object carries a ``__name__`` (TRL's log name) and keeps the last
batch's summary in ``last_components``.

- :class:`InfoNCEReward` — bidirectional InfoNCE of the profile embedding against the next item (+ its two
  component views ``infonce_profile_to_item`` / ``infonce_item_to_profile``).
- :class:`MultipleChoiceReward` — a frozen reader LM's probability of the true next item among ``C`` options.
- :class:`LengthPenalty` — non-positive length / repetition / non-text penalty.
- The paper's profile-optimisation baselines: :class:`RLPFReward` (the reader's likelihood of the true next item's
  title), :class:`LangPTuneReward` (NDCG@k / MRR of the next item over the catalogue), :class:`RLAIFReward` (a judge
  LM's expected rubric score of the profile against the history).

Each reward is one entry of :mod:`bluerec.rewards.registry` (:class:`RewardSpec`: typed config, how it is built from
the training context, the dataset columns it needs), which is all ``bluerec train`` and its config know of it.
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
from bluerec.rewards.langptune import LangPTuneReward, LangPTuneRewardConfig
from bluerec.rewards.protocols import OptionScorer, TextEncoder
from bluerec.rewards.registry import RewardContext, RewardSpec, RowInfo, get_reward, register_reward, reward_names
from bluerec.rewards.rlaif import RLAIFReward, RLAIFRewardConfig, SingleTokenOptionScorer
from bluerec.rewards.rlpf import RLPFReward, RLPFRewardConfig
from bluerec.rewards.text import completion_text, completion_texts, is_degenerate

__all__ = [
    "HFOptionScorer",
    "InfoNCEBreakdown",
    "InfoNCEComponentReward",
    "InfoNCEReward",
    "InfoNCERewardConfig",
    "LangPTuneReward",
    "LangPTuneRewardConfig",
    "LengthPenalty",
    "LengthPenaltyConfig",
    "MultipleChoiceReward",
    "MultipleChoiceRewardConfig",
    "OptionScorer",
    "ProfileEmbeddingCache",
    "RLAIFReward",
    "RLAIFRewardConfig",
    "RLPFReward",
    "RLPFRewardConfig",
    "RewardContext",
    "RewardSpec",
    "RowInfo",
    "SingleTokenOptionScorer",
    "TextEncoder",
    "build_mc_options",
    "completion_text",
    "completion_texts",
    "get_reward",
    "hard_negative_indices",
    "info_nce_log_prob",
    "is_degenerate",
    "item_to_profile_log_probs",
    "item_to_profile_mask",
    "masked_log_softmax",
    "option_probabilities",
    "profile_to_item_log_probs",
    "register_reward",
    "reward_names",
    "sample_negatives",
]
