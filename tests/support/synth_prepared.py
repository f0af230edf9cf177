"""A small synthetic prepared dataset (Amazon-2023 schema → ``prepare_dataset``), for tests that need real item
texts: embedder fine-tuning, transfer evaluation."""

from __future__ import annotations

from pathlib import Path


def synth_prepared(root: Path, n_users: int = 80, n_items: int = 60, seed: int = 0, category: str = "All_Beauty") -> Path:
    from bluerec.data.config import PrepareConfig
    from bluerec.data.prepare import prepare_dataset
    from bluerec.data.synth import SynthConfig, write_synth

    synth = write_synth(SynthConfig(n_users=n_users, n_items=n_items, n_interests=6, mean_interactions=8,
                                    max_interactions=14, seed=seed, category=category), root / "raw")
    prepare_dataset(PrepareConfig(source=synth.source("amazon"), k_core=2, max_history=20), root / "data",
                    progress=lambda m: None)
    return root / "data"
