"""Partition-invariant sampling: a completion depends on its prompt, step, seed and copy index only — not on the other
rows of the batch, their padding or their order — and tokens follow the warped model distribution."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bluerec.config import ConfigError
from bluerec.train.sampling import PartitionInvariantSampler


def generate(model, tok, prompts: list[str], sampler: PartitionInvariantSampler, step: int, groups: int = 2):
    rows = [p for p in prompts for _ in range(groups)]
    tok.padding_side = "left"
    batch = tok(rows, return_tensors="pt", padding=True)
    with sampler.bound_to(model, step), torch.no_grad():
        out = model.generate(**batch, do_sample=True, max_new_tokens=6, pad_token_id=tok.pad_token_id,
                             eos_token_id=tok.eos_token_id, top_k=0)
    return [tok.decode(r[batch["input_ids"].shape[1]:], skip_special_tokens=True) for r in out]


def test_completions_do_not_depend_on_the_batch_split(qwen2_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(qwen2_dir)
    model = AutoModelForCausalLM.from_pretrained(qwen2_dir).eval()
    sampler = PartitionInvariantSampler(seed=0, num_generations=2, pad_token_id=tok.pad_token_id, temperature=1.0)
    prompts = ["red blue green tea", "mug", "lamp shoe hat sock pen"]
    torch.manual_seed(0)
    whole = generate(model, tok, prompts, sampler, step=5)
    torch.manual_seed(123)  # the global RNG plays no part
    alone = [c for p in prompts for c in generate(model, tok, [p], sampler, step=5)]  # no padding at all
    shuffled = generate(model, tok, [prompts[2], prompts[0], prompts[1]], sampler, step=5)
    assert whole == alone
    assert whole == shuffled[2:4] + shuffled[4:6] + shuffled[0:2]
    assert whole[0] != whole[1] or whole[2] != whole[3]  # copies of one prompt differ (their own generators)
    assert generate(model, tok, prompts, sampler, step=6) != whole  # a new step draws anew
    assert "generate" not in model.__dict__  # the per-instance override is removed on exit
    assert all(len(c.split()) >= 2 for c in whole), whole


def test_tokens_follow_the_warped_distribution():
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0, -30.0])
    n = 4000
    for temperature, top_k in ((1.0, 0), (0.5, 0), (1.0, 2)):
        sampler = PartitionInvariantSampler(seed=1, num_generations=n, pad_token_id=0, temperature=temperature,
                                            top_k=top_k)
        sampler.start(step=0)
        scores = sampler(torch.ones(n, 3, dtype=torch.long), logits.expand(n, -1).clone())
        assert torch.isneginf(scores).sum(dim=1).eq(4).all()
        counts = np.bincount(scores.argmax(dim=1).numpy(), minlength=5) / n
        warped = logits / temperature
        if top_k:
            warped = torch.where(warped >= warped.topk(top_k).values[-1], warped, torch.tensor(float("-inf")))
        expected = torch.softmax(warped, 0).numpy()
        assert np.abs(counts - expected).max() < 0.03, (temperature, top_k, counts, expected)
        if top_k:
            assert counts[top_k:].sum() == 0


def test_rows_must_come_in_whole_groups_and_config_checks():
    sampler = PartitionInvariantSampler(seed=0, num_generations=4, pad_token_id=0)
    sampler.start(0)
    with pytest.raises(ValueError, match="whole groups of 4"):
        sampler(torch.ones(6, 2, dtype=torch.long), torch.zeros(6, 5))

    from bluerec.config import parse_config
    from bluerec.train import GRPOSettings

    with pytest.raises(ConfigError, match="multiple of num_generations"):
        parse_config(GRPOSettings, {"partition_invariant_sampling": True, "num_generations": 4, "batch_size": 2,
                                    "gradient_accumulation_steps": 2}, "grpo")
    with pytest.raises(ConfigError, match="use_vllm"):
        parse_config(GRPOSettings, {"partition_invariant_sampling": True, "use_vllm": True}, "grpo")
    assert parse_config(GRPOSettings, {"partition_invariant_sampling": True, "num_generations": 4,
                                       "batch_size": 8}, "grpo").partition_invariant_sampling
