"""A micro profiler warm-started on template profiles of a prepared dataset, and the tiny embedder of
``tests/embed/conftest.py``: for tests that need a profiler trained elsewhere (transfer, alternating phases)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

# A short prompt: four titles of at most 40 characters, so a few-million-parameter model learns it in seconds.
PROMPT = {"max_history_items": 4, "max_prompt_tokens": 192, "max_item_chars": 40, "review_snippet_chars": 0,
          "include_ratings": False, "item_field": "title"}


def warm_micro_profiler(data: Path, root: Path, out: Path, *, hidden_size: int = 32, intermediate_size: int = 64,
                        max_steps: int = 30, learning_rate: float = 5e-3) -> Path:
    """Build a one-layer micro profiler on ``data``'s titles (under ``root``) and warm-start it on template profiles
    into ``out`` (a plain model folder), so that its greedy profiles are not empty. Returns ``out``."""
    from bluerec.data.dataset import PreparedDataset
    from bluerec.pipeline import warm_start_profiler
    from bluerec.profiler.backends.micro import MicroModelConfig, build_micro_profiler, corpus_for
    from bluerec.profiler.config import ProfilerConfig
    from bluerec.profiler.loader import load_profiler
    from bluerec.profiler.prompts import PromptConfig
    from bluerec.profiler.warmstart import WarmStartConfig

    dataset = PreparedDataset(data)
    micro = build_micro_profiler(corpus_for(dataset), root / "micro", vocab_size=2048,
                                 model_config=MicroModelConfig(hidden_size=hidden_size, num_hidden_layers=1,
                                                               num_attention_heads=2, num_key_value_heads=1,
                                                               intermediate_size=intermediate_size),
                                 prompt_config=PromptConfig(**PROMPT))
    profiler = load_profiler(ProfilerConfig(backend="micro", model=str(micro), device="cpu"))
    warm = WarmStartConfig(target="template", max_examples=64, max_steps=max_steps, batch_size=8,
                           learning_rate=learning_rate, max_prompt_tokens=256, max_target_tokens=16)
    warm_start_profiler(profiler, dataset, PromptConfig(**PROMPT), warm, out, seed=0)
    return out


def tiny_embedder(folder: Path, hidden: int = 32) -> Path:
    """The randomly initialised 2-layer BERT sentence-transformer of ``tests/embed/conftest.py``."""
    conftest = Path(__file__).parents[1] / "embed" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_embed_fixtures", conftest)
    fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixtures)  # type: ignore[union-attr]
    return fixtures.build_tiny_model(folder, hidden=hidden)
