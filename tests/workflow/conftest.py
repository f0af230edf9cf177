"""Fixtures of the workflow tests: the tiny word dataset and tiny Qwen2 model of the GRPO tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("_train_fixtures", Path(__file__).parents[1] / "train" / "conftest.py")
_train = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_train)  # type: ignore[union-attr]


@pytest.fixture(scope="session")
def word_dataset(tmp_path_factory) -> Path:
    return _train.write_word_dataset(tmp_path_factory.mktemp("word_ds"))


@pytest.fixture(scope="session")
def qwen2_dir(tmp_path_factory) -> Path:
    return _train.save_tiny_qwen2(tmp_path_factory.mktemp("qwen2") / "model")
