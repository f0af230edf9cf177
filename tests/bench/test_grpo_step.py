"""bench/grpo_step.py's bookkeeping: the phase timer wraps and restores the trainer's methods, and the summary's
shares, ratios and MFU follow from the measured seconds."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def bench():
    from support.benches import load_bench

    return load_bench("grpo_step")


def test_phase_timer_wraps_and_restores(bench):
    from accelerate import Accelerator
    from trl import GRPOTrainer

    originals = (GRPOTrainer._generate, GRPOTrainer._calculate_rewards,
                 GRPOTrainer._get_per_token_logps_and_entropies, Accelerator.backward)
    timer = bench.PhaseTimer()
    with timer.installed():
        assert GRPOTrainer._generate is not originals[0] and Accelerator.backward is not originals[3]
    assert (GRPOTrainer._generate, GRPOTrainer._calculate_rewards, GRPOTrainer._get_per_token_logps_and_entropies,
            Accelerator.backward) == originals


def _steps(scale: float) -> list[dict]:
    row = {"generation": 10.0, "rewards": 5.0, "logps": 2.0, "backward": 3.0, "other": 0.0, "logps_tokens": 1000}
    return [{**{k: v * scale if k != "logps_tokens" else v for k, v in row.items()}, "step": 20.0 * scale}]


def test_summary_shares_ratios_and_mfu(bench):
    result = {
        "matmul_flops": 1e11,
        "lora": {"steps": _steps(3.0) + _steps(1.0)},  # the first (warm-up) step is left out
        "full": {"steps": _steps(2.0)},
        "generation": {"runs": {"batched": [{"seconds": 2.0, "tokens": 100, "ms_per_token": 20.0}],
                                "one_prompt_at_a_time": [{"seconds": 6.0, "tokens": 100, "ms_per_token": 60.0}],
                                "repetition_control": [{"seconds": 2.2, "tokens": 100, "ms_per_token": 22.0}]}},
    }
    s = bench.summarise(result, n_params=1e8)
    assert s["lora"]["seconds"]["step"] == 20.0 and s["lora"]["share"]["generation"] == 0.5
    assert s["ratios"]["full_over_lora"]["step"] == 2.0
    assert s["lora"]["mfu"]["logps"] == pytest.approx(2 * 1e8 * 1000 / 2.0 / 1e11, rel=1e-3)
    assert s["full"]["mfu"]["backward"] == pytest.approx(4 * 1e8 * 1000 / 6.0 / 1e11, rel=1e-3)  # weights' gradients too
    assert s["ratios"]["one_prompt_at_a_time_over_batched"] == 3.0
    assert s["ratios"]["repetition_control_over_off_per_token"] == 1.1


def test_shared_prefill_ratios(bench):
    result = {
        "lora": {"steps": _steps(3.0) + _steps(1.0)},  # shared prefill; warm-up step left out
        "lora_per_completion_prefill": {"steps": _steps(1.5)},
        "shared_prefill_generation": {"runs": {"per_completion_prefill": [3.0, 5.0], "shared_prefill": [2.0, 2.0]},
                                      "same_tokens": True, "rows": 16, "new_tokens": 40,
                                      "prompt_tokens": [100, 90, 80, 70], "padded_prompt_tokens": 100},
    }
    s = bench.shared_prefill_summary(result)
    assert s["step"]["generation"] == {"shared_s": 10.0, "per_completion_s": 15.0, "per_completion_over_shared": 1.5}
    assert s["step"]["step"]["per_completion_over_shared"] == 1.5
    assert s["generation_alone"]["per_completion_over_shared"] == 2.0 and s["generation_alone"]["same_tokens"]
    assert s["generation_alone"]["best_per_completion_over_best_shared"] == 1.5
    assert s["generation_alone"]["paired"] == [1.5, 2.5]
    md = "\n".join(bench.shared_prefill_markdown(result, s))
    assert "**1.5×**" in md and "**2.0×**" in md
    assert bench.shared_prefill_summary({}) == {}  # older results without the comparison still summarise
