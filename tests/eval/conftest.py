"""Fixtures for the evaluation tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from bluerec.embed import Embedder


@pytest.fixture(scope="session")
def minilm() -> Embedder:
    return Embedder()


@pytest.fixture(scope="session")
def synth_prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bluerec.config import parse_config
    from bluerec.data.config import PrepareConfig
    from bluerec.data.prepare import prepare_dataset
    from bluerec.data.synth import SynthConfig, write_synth

    root = tmp_path_factory.mktemp("qa")
    synth = write_synth(parse_config(SynthConfig, {"domain": "amazon", "n_users": 120, "n_items": 150,
                                                   "n_interests": 8, "seed": 3}), root / "raw")
    prepare_dataset(PrepareConfig(source=synth.source("amazon")), root / "data")
    return root / "data"
