"""Real architectures loaded from disk by path (Gemma3), and LoRA training with all three rewards."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from bluerec.io import read_jsonl
from bluerec.profiler.backends.hf import HFProfiler
from bluerec.train import train_blue

CHAT = [{"role": "system", "content": "write the user profile"}, {"role": "user", "content": "1. red\n2. mug"}]


def test_gemma3_from_path_trains_and_generates(make_config, gemma3_dir, bow):
    config = make_config(profiler=str(gemma3_dir), grpo__max_steps=2, eval__at_end=True)
    result = train_blue(config, embedder=bow)
    assert result.global_step == 2
    assert json.loads((result.final_dir / "config.json").read_text())["model_type"] == "gemma3_text"
    before = load_file(str(gemma3_dir / "model.safetensors"))
    after = load_file(str(result.final_dir / "model.safetensors"))
    assert any(not torch.equal(before[k], after[k]) for k in before)

    profiler = HFProfiler.from_pretrained(result.final_dir, dtype="float32", device="cpu")
    assert type(profiler.model).__name__ == "Gemma3ForCausalLM"
    out = profiler.generate([CHAT], num_samples=2, max_new_tokens=6, seed=0)
    assert len(out) == 1 and len(out[0]) == 2 and all(isinstance(s, str) for s in out[0])
    assert [r["kind"] for r in read_jsonl(result.metrics_path)].count("eval") == 1


class TrainableNames(TrainerCallback):
    def __init__(self) -> None:
        self.names: list[str] = []
        self.frozen_before: dict[str, torch.Tensor] = {}
        self.frozen_after: dict[str, torch.Tensor] = {}

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.names = [n for n, p in model.named_parameters() if p.requires_grad]
        self.frozen_before = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.frozen_after = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}


def test_lora_trains_only_adapters_and_saves_a_merged_model(make_config, qwen2_dir, bow):
    config = make_config(**{
        "lora__enabled": True, "lora__r": 4, "lora__alpha": 8, "lora__dropout": 0.0,
        "grpo__max_steps": 2, "grpo__learning_rate": 5e-2, "grpo__save_steps": 2,
        "rewards__enabled": ["infonce", "multiple_choice", "length_penalty"],
        "rewards__weights__multiple_choice": 2.0, "rewards__length_penalty__min_length": 2,
        "rewards__infonce__weight_item_to_profile": 0.0,
        "reader__model": "profiler", "reader__dtype": "float32", "eval__at_end": True,
    })
    names = TrainableNames()
    result = train_blue(config, embedder=bow, callbacks=[names])

    assert names.names and all("lora_" in n for n in names.names)
    assert names.frozen_before.keys() == names.frozen_after.keys()
    assert all(torch.equal(names.frozen_before[n], names.frozen_after[n]) for n in names.frozen_before)

    train = [r for r in read_jsonl(result.metrics_path) if r["kind"] == "train"]
    for key in ("rewards/infonce_profile_to_item/mean", "rewards/infonce_item_to_profile/mean",
                "rewards/multiple_choice/mean", "rewards/length_penalty/mean", "multiple_choice/accuracy"):
        assert key in train[0], key
    r = train[0]
    expected = (r["rewards/infonce_profile_to_item/mean"] + 2.0 * r["rewards/multiple_choice/mean"]
                + r["rewards/length_penalty/mean"])  # item→profile logged with weight 0
    assert r["reward"] == pytest.approx(expected, abs=1e-4)

    # final/ is a plain merged model: same tensors as the base, the adapted linear layers changed
    final = result.final_dir
    assert not (final / "adapter_config.json").exists()
    before = load_file(str(qwen2_dir / "model.safetensors"))
    after = load_file(str(final / "model.safetensors"))
    assert before.keys() == after.keys()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.endswith("proj.weight") for k in changed)
    assert torch.equal(before["model.embed_tokens.weight"], after["model.embed_tokens.weight"])
    assert HFProfiler.from_pretrained(final, dtype="float32", device="cpu").generate([CHAT], max_new_tokens=4)
    assert [r["step"] for r in read_jsonl(result.metrics_path) if r["kind"] == "eval"] == [2]  # eval of the PeftModel
    # checkpoints of a LoRA run hold the adapter (and the optimizer state of the adapter only)
    checkpoint = result.output_dir / "checkpoint-2"
    assert (checkpoint / "adapter_model.safetensors").exists() and not (checkpoint / "model.safetensors").exists()
    assert (checkpoint / "optimizer.pt").exists()
