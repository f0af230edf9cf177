"""The multiple-choice reader can be the profiler's own frozen base: with LoRA, the trained model itself with its
adapters disabled while it reads — no second model in memory, and the same scores as a separately loaded base."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bluerec.io import read_jsonl
from bluerec.profiler.backends.hf import HFProfiler
from bluerec.profiler.loader import load_profiler
from bluerec.rewards import MultipleChoiceReward, MultipleChoiceRewardConfig
from bluerec.train import train_blue
from bluerec.train.trainer import load_reader

CONTEXTS = ["the user likes red tea", "history: mug lamp shoe"]
OPTIONS = [[" tea", " hat", " pen", " sock"], [" lamp", " red", " blue", " green"]]


@pytest.fixture
def count_loads(monkeypatch):
    """Counts models built by ``from_pretrained`` (every load of bluerec goes through it)."""
    from transformers import AutoModelForCausalLM

    calls: list[str] = []
    original = AutoModelForCausalLM.from_pretrained.__func__

    def counted(cls, *args, **kwargs):
        calls.append(str(args[0]) if args else "")
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", classmethod(counted))
    return calls


def _mc_config(make_config, **extra):
    return make_config(**{"lora__enabled": True, "lora__r": 4, "lora__alpha": 8, "lora__dropout": 0.0,
                          "rewards__enabled": ["infonce", "multiple_choice"], **extra})


def test_same_as_profiler_reads_with_the_adapters_disabled(make_config, qwen2_dir, count_loads):
    config = _mc_config(make_config)
    assert config.reader.model == "same_as_profiler"  # the default
    profiler = load_profiler(config.profiler, trainable=True)
    assert len(count_loads) == 1
    model, tokenizer, base_only = load_reader(config, profiler)
    assert model is profiler.model and base_only and len(count_loads) == 1  # no second model

    # Make the adapters matter (fresh LoRA B is zero), as after some training steps.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5, generator=torch.Generator().manual_seed(0))
    mc = MultipleChoiceRewardConfig(num_choices=4)
    shared = MultipleChoiceReward.from_hf(model, tokenizer, mc, base_only=True).scorer.score(CONTEXTS, OPTIONS)
    adapted = MultipleChoiceReward.from_hf(model, tokenizer, mc).scorer.score(CONTEXTS, OPTIONS)
    base = HFProfiler.from_pretrained(qwen2_dir, dtype="float32", device="cpu")
    separate = MultipleChoiceReward.from_hf(base.model, base.tokenizer, mc).scorer.score(CONTEXTS, OPTIONS)
    np.testing.assert_allclose(shared, separate, rtol=1e-5, atol=1e-5)
    assert not np.allclose(adapted, separate, atol=1e-3)  # the adapter really was off, not absent
    with torch.no_grad():  # and it is back on afterwards
        ids = torch.tensor([[3, 4, 5]])
        assert not torch.allclose(model(ids).logits, base.model(ids).logits, atol=1e-4)


def test_without_lora_a_frozen_copy_is_loaded_once(make_config, count_loads):
    config = _mc_config(make_config, lora__enabled=False)
    profiler = load_profiler(config.profiler, trainable=True)
    model, _, base_only = load_reader(config, profiler)
    assert model is not profiler.model and not base_only and len(count_loads) == 2
    assert not any(p.requires_grad for p in model.parameters())


def test_grpo_with_the_shared_reader_loads_one_model(make_config, bow, count_loads):
    config = _mc_config(make_config, grpo__max_steps=1)
    result = train_blue(config, embedder=bow)
    assert len(count_loads) == 1
    train = [r for r in read_jsonl(result.metrics_path) if r["kind"] == "train"]
    assert "rewards/multiple_choice/mean" in train[0] and 0 <= train[0]["rewards/multiple_choice/mean"] <= 1
