"""The paper's profile-optimisation baselines train through the same GRPO machinery as BLUE: RLPF-, LangPTune- and
RLAIF-style rewards (each one registry entry) for two GRPO steps on the synthetic task, plus an extra reward
callable handed to ``train_blue`` as TRL takes it."""

from __future__ import annotations

import math

import pytest
from safetensors.torch import load_file

from bluerec.io import read_jsonl
from bluerec.train import train_blue

LORA = {"lora__enabled": True, "lora__r": 4, "lora__alpha": 8, "lora__dropout": 0.0}
# reward name -> (its logged extra metric, the range of its values)
BASELINES = {
    "rlpf": ("rlpf/mean_log_likelihood", (0.0, 1.0)),
    "langptune": ("langptune/mean_rank", (0.0, 1.0)),
    "rlaif": ("rlaif/expected_rating", (0.0, 1.0)),
}


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_two_grpo_steps_with_each_baseline_reward(make_config, bow, name):
    extra_key, (low, high) = BASELINES[name]
    config = make_config(**LORA, rewards__enabled=[name, "length_penalty"], rewards__weights={"length_penalty": 0.1},
                         rewards__length_penalty={"min_length": 1, "max_length": 8}, grpo__max_steps=2,
                         grpo__temperature=1.5)
    rows: list[dict] = []
    result = train_blue(config, embedder=bow, progress=rows.append)
    assert result.global_step == 2
    train = [r for r in read_jsonl(result.metrics_path) if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2]
    for r in train:
        mean = r[f"rewards/{name}/mean"]
        assert low <= mean <= high, (name, mean)
        assert r["reward"] == pytest.approx(mean + 0.1 * r["rewards/length_penalty/mean"], abs=1e-5)
        assert math.isfinite(r["grad_norm"])
    assert any(extra_key in r for r in train), sorted(train[0])  # the reward's own extras reach metrics.jsonl
    # something was learned: the adapters moved (a fresh LoRA B is zero, so the merged weights equal the base)
    base = load_file(str(config.profiler.model) + "/model.safetensors")
    final = load_file(str(result.final_dir / "model.safetensors"))
    assert any(not (base[k] == final[k]).all() for k in base), f"{name}: no parameter changed"


def test_train_blue_takes_extra_reward_callables_with_weights(make_config, bow):
    def mentions_tea(completions, **columns):
        assert "target_item" in columns and "history_items" in columns  # every dataset column, as TRL passes them
        return [float("tea" in str(c)) for c in completions]

    config = make_config(rewards__enabled=["langptune"], grpo__max_steps=1)
    result = train_blue(config, embedder=bow, extra_rewards=[mentions_tea], extra_reward_weights=[2.0])
    row = next(r for r in read_jsonl(result.metrics_path) if r["kind"] == "train")
    assert "rewards/mentions_tea/mean" in row
    assert row["reward"] == pytest.approx(row["rewards/langptune/mean"] + 2.0 * row["rewards/mentions_tea/mean"],
                                          abs=1e-5)


def test_rlaif_with_a_judge_of_its_own_loads_it_instead_of_the_reader(make_config, bow, qwen2_dir, monkeypatch):
    from transformers import AutoModelForCausalLM

    loads: list[str] = []
    original = AutoModelForCausalLM.from_pretrained.__func__

    def counted(cls, *args, **kwargs):
        loads.append(str(args[0]) if args else "")
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", classmethod(counted))
    config = make_config(rewards__enabled=["rlaif"], rewards__rlaif={"judge": str(qwen2_dir)}, reader__model=None,
                         grpo__max_steps=1)
    assert not config.needs_reader()  # no reader: the judge is a model of its own
    result = train_blue(config, embedder=bow)
    assert len(loads) == 2  # the profiler and the judge, nothing else
    row = next(r for r in read_jsonl(result.metrics_path) if r["kind"] == "train")
    assert 0.0 <= row["rewards/rlaif/mean"] <= 1.0
