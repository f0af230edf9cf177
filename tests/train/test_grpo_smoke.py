"""GRPO end to end through ``train_blue`` on the synthetic task with a known answer (write "tea")."""

from __future__ import annotations

import numpy as np
import torch
import yaml
from safetensors.torch import load_file

from bluerec.io import read_jsonl
from bluerec.train import train_blue


def test_reward_rises_and_parameters_change(make_config, qwen2_dir, bow, target_word):
    config = make_config(grpo__max_steps=30, grpo__logging_steps=1,
                         eval__every_steps=15, eval__at_start=True, eval__at_end=True)
    rows: list[dict] = []
    result = train_blue(config, embedder=bow, progress=rows.append)

    metrics = read_jsonl(result.metrics_path)
    assert metrics == rows  # progress sees exactly what is written
    train = [r for r in metrics if r["kind"] == "train"]
    assert [r["step"] for r in train] == list(range(1, 31))
    rewards = np.array([r["reward"] for r in train])
    p2i = np.array([r["rewards/infonce_profile_to_item/mean"] for r in train])
    assert np.allclose(rewards, p2i + np.array([r["rewards/infonce_item_to_profile/mean"] for r in train]))
    first, last = rewards[:6].mean(), rewards[-6:].mean()
    print(f"reward first-6 {first:.3f} last-6 {last:.3f}")
    assert last > first + 0.5, (first, last)

    evals = [r for r in metrics if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [0, 15, 30]
    for r in evals:
        assert 0.0 <= r["eval/ndcg@10"] <= 1.0 and r["eval/n_users"] == 4
        assert r["primary_metric"] == config.eval.select_key == "eval/ndcg@10"  # the evaluator's primary metric
    assert (result.output_dir / "eval" / "profiles-step000030.jsonl").exists()
    assert [r["kind"] for r in metrics].count("summary") == 1

    # parameters changed, and the final model is a plain save_pretrained folder that writes the target word
    before, after = load_file(str(qwen2_dir / "model.safetensors")), load_file(str(result.final_dir / "model.safetensors"))
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    from bluerec.profiler.backends.hf import HFProfiler

    profiler = HFProfiler.from_pretrained(result.final_dir, dtype="float32", device="cpu")
    prompt = [{"role": "system", "content": "write the user profile"}, {"role": "user", "content": "1. red\n2. mug"}]
    samples = profiler.generate([prompt], num_samples=8, max_new_tokens=8, seed=1)[0]
    assert sum(target_word in s.split() for s in samples) >= 4, samples

    saved = yaml.safe_load((result.output_dir / "train_config.yaml").read_text())
    assert saved["grpo"]["max_steps"] == 30 and saved["profiler"]["model"] == str(qwen2_dir)
    assert result.global_step == 30 and result.start_step == 0 and result.resumed_from is None
