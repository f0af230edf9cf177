"""The alternating loop: two tiny (GRPO, embedder) phases with the micro profiler, then a resumed rerun."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bluerec.config import parse_config
from bluerec.train.alternate import STATE_FILE, AlternateConfig, run_alternating
from support.micro_profiler import PROMPT, tiny_embedder, warm_micro_profiler
from support.synth_prepared import synth_prepared


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("alt")
    data = synth_prepared(root, n_users=40, n_items=40)
    warm_micro_profiler(data, root, root / "warm")  # greedy profiles that are not empty
    tiny = tiny_embedder(root / "emb")
    return data, root / "warm", tiny


def make_config(data: Path, micro: Path, tiny: Path, out: Path, phases: int = 2) -> AlternateConfig:
    return parse_config(AlternateConfig, {
        "output_dir": str(out), "phases": phases, "grpo_steps_per_phase": 1, "profile_users": 12,
        "max_new_tokens": 8, "batch_size": 8,
        "finetune": {"epochs": 1, "batch_size": 4, "learning_rate": 1e-3, "num_hard_negatives": 1,
                     "hard_negative_ranks": [0, 5], "show_progress": False},
        "train": {
            "dataset": str(data), "profiler": {"backend": "micro", "model": str(micro), "dtype": "float32", "device": "cpu"},
            "embedder": {"model": str(tiny)}, "output_dir": str(out / "unused"),
            "item_cache_dir": None, "show_progress": False, "prompt": PROMPT, "max_train_examples": 8,
            "num_threads": 1,
            "rewards": {"enabled": ["infonce"], "infonce": {"num_negatives": 4, "floor": "chance"}},
            "grpo": {"num_generations": 4, "batch_size": 8, "max_completion_length": 8, "learning_rate": 1e-3,
                     "max_steps": 1, "save_steps": 0, "logging_steps": 1, "seed": 0},
            "eval": {"every_steps": 0, "at_start": False, "at_end": False, "num_users": 4, "batch_size": 4}},
    }, "test")


def test_two_phases_alternate_and_resume(setup, tmp_path):
    data, micro, tiny = setup
    out = tmp_path / "alt"
    state = run_alternating(make_config(data, micro, tiny, out))
    assert state["done"] == ["1:grpo", "1:embedder", "2:grpo", "2:embedder"]
    assert state["phases"]["1"]["grpo"]["global_step"] == 1 and state["phases"]["2"]["grpo"]["global_step"] == 2
    # Phase 2's GRPO read phase 1's embedder; the final embedder is phase 2's, fine-tuned from phase 1's.
    cfg2 = (out / "grpo" / "train_config.yaml").read_text()
    assert str(out / "phase-1" / "embedder") in cfg2
    assert state["embedder"] == str(out / "phase-2" / "embedder")
    rec2 = json.loads((out / "phase-2" / "embedder" / "finetune.json").read_text())
    assert rec2["base_model"].startswith("embedder@")  # the phase-1 folder, not the starting model
    assert len((out / "phase-1" / "profiles.train.jsonl").read_text().splitlines()) == 12
    assert (out / "grpo" / "final").is_dir() and (out / "grpo" / "checkpoint-2").is_dir()
    # A rerun finds everything done; one more phase continues the same GRPO run from step 2.
    again = run_alternating(make_config(data, micro, tiny, out))
    assert again["done"] == state["done"]
    more = run_alternating(make_config(data, micro, tiny, out, phases=3))
    assert more["phases"]["3"]["grpo"]["global_step"] == 3 and json.loads((out / STATE_FILE).read_text())["done"][-1] == "3:embedder"
