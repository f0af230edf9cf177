"""One real GRPO step with the rewards as reward_funcs: TRL passes our columns and logs each view under its name."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch


class HashEncoder:
    def encode_queries(self, texts: list[str]) -> np.ndarray:
        seeds = [int.from_bytes(hashlib.blake2b(t.encode(), digest_size=4).digest(), "little") for t in texts]
        a = np.stack([np.random.default_rng(s).normal(size=4) for s in seeds]).astype(np.float32)
        return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_grpo_step_with_infonce_components_and_length_penalty(tmp_path):
    from datasets import Dataset
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    from bluerec.rewards import InfoNCEReward, InfoNCERewardConfig, LengthPenalty

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(["the user likes red shoes blue hats tea mug lamp"],
                            trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]", "[EOS]"]))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model = Qwen2ForCausalLM(Qwen2Config(
            vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
            num_attention_heads=2, num_key_value_heads=1, pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        ))
        items = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
        items /= np.linalg.norm(items, axis=1, keepdims=True)
        reward = InfoNCEReward(HashEncoder(), items, {f"i{k}": k for k in range(6)},
                               InfoNCERewardConfig(num_negatives=2, weight_item_to_profile=0.5))
        dataset = Dataset.from_dict({
            "prompt": ["the user likes red shoes", "the user likes tea mug"],
            "user_id": ["u1", "u2"],
            "target_item": ["i1", "i2"],
            "history_items": [["i3"], ["i4"]],
        })
        args = GRPOConfig(
            output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2, max_completion_length=6,
            max_steps=1, logging_steps=1, report_to=[], use_cpu=True, save_strategy="no",
            reward_weights=[*reward.component_weights(), 1.0],
        )
        trainer = GRPOTrainer(model=model, reward_funcs=[*reward.components(), LengthPenalty()], args=args,
                              train_dataset=dataset, processing_class=tokenizer)
        trainer.train()
    finally:
        torch.set_num_threads(threads)
    logs = trainer.state.log_history[0]
    for name in ("infonce_profile_to_item", "infonce_item_to_profile", "length_penalty"):
        assert np.isfinite(logs[f"rewards/{name}/mean"])
    assert "infonce/degenerate_fraction" in logs
    assert trainer.reward_weights.tolist() == pytest.approx([1.0, 0.5, 1.0])
