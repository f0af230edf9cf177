"""GRPO training of the BLUE profiler: one config (:class:`BlueTrainConfig`), the RL dataset builder
(:func:`build_rl_dataset`) and the trainer (:func:`train_blue`)."""

from bluerec.train.config import (
    BlueTrainConfig,
    GRPOSettings,
    LoraSettings,
    ReaderConfig,
    RewardsConfig,
    RewardWeights,
    RLDataConfig,
    TrainEvalConfig,
)
from bluerec.train.dataset import build_rl_dataset, select_train_rows
from bluerec.train.trainer import TrainResult, ValidationEvaluator, latest_checkpoint, train_blue

__all__ = [
    "BlueTrainConfig",
    "GRPOSettings",
    "LoraSettings",
    "RLDataConfig",
    "ReaderConfig",
    "RewardWeights",
    "RewardsConfig",
    "TrainEvalConfig",
    "TrainResult",
    "ValidationEvaluator",
    "build_rl_dataset",
    "latest_checkpoint",
    "select_train_rows",
    "train_blue",
]
