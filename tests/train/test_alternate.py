"""The alternating loop: two tiny (GRPO, embedder) phases with the micro profiler, then a resumed rerun."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from bluerec.config import parse_config
from bluerec.data.dataset import PreparedDataset
from bluerec.profiler.backends.micro import MicroModelConfig, build_micro_profiler, corpus_for
from bluerec.profiler.prompts import PromptConfig
from bluerec.train.alternate import STATE_FILE, AlternateConfig, run_alternating
from support.synth_prepared import synth_prepared

_spec = importlib.util.spec_from_file_location("_embed_fixtures", Path(__file__).parents[1] / "embed" / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)  # type: ignore[union-attr]

PROMPT = {"max_history_items": 4, "max_prompt_tokens": 192, "max_item_chars": 40, "review_snippet_chars": 0,
          "include_ratings": False, "item_field": "title"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("alt")
    data = synth_prepared(root, n_users=40, n_items=40)
    micro = build_micro_profiler(corpus_for(PreparedDataset(data)), root / "micro", vocab_size=2048,
                                 model_config=MicroModelConfig(hidden_size=32, num_hidden_layers=1,
                                                               num_attention_heads=2, num_key_value_heads=1,
                                                               intermediate_size=64),
                                 prompt_config=PromptConfig(**PROMPT))
    # A short supervised warm start on template profiles, so that greedy profiles are not empty.
    from bluerec.pipeline import warm_start_profiler
    from bluerec.profiler.config import ProfilerConfig
    from bluerec.profiler.loader import load_profiler
    from bluerec.profiler.warmstart import WarmStartConfig

    prof = load_profiler(ProfilerConfig(backend="micro", model=str(micro), device="cpu"))
    warm = WarmStartConfig(target="template", max_examples=64, max_steps=30, batch_size=8, learning_rate=5e-3,
                           max_prompt_tokens=256, max_target_tokens=16)
    warm_start_profiler(prof, PreparedDataset(data), PromptConfig(**PROMPT), warm, root / "warm", seed=0)
    tiny = _fixtures.build_tiny_model(root / "emb", hidden=32)
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
