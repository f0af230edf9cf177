"""The choices bench/blue_beauty.py makes on its own: ablation reward sets, the validation-chosen checkpoint,
and never resuming profiles written by another model."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("blue_beauty_bench", ROOT / "bench" / "blue_beauty.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the config's annotations through sys.modules
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_ablation_reward_sets(bench):
    config = bench.BlueBeautyConfig()
    both = bench.variant_rewards(config, "both")
    assert both.enabled == ["infonce", "multiple_choice", "length_penalty"]
    emb = bench.variant_rewards(config, "embedding")
    assert emb.enabled == ["infonce", "length_penalty"] and emb.infonce.weight_item_to_profile > 0
    one_way = bench.variant_rewards(config, "embedding_one_way")
    assert one_way.enabled == ["infonce", "length_penalty"] and one_way.infonce.weight_item_to_profile == 0
    assert one_way.infonce.weight_profile_to_item == both.infonce.weight_profile_to_item
    assert bench.variant_rewards(config, "text").enabled == ["multiple_choice", "length_penalty"]
    with pytest.raises(ValueError, match="allowed"):
        bench.variant_rewards(config, "nope")
    assert config.rewards.infonce.weight_item_to_profile > 0  # the base config is not changed in place


def write_run(run: Path, curve: dict[int, float], checkpoints: list[int]) -> None:
    run.mkdir()
    rows = [{"kind": "train", "step": 1, "reward": -3.0}]
    rows += [{"kind": "eval", "step": s, "eval/ndcg@10": v} for s, v in curve.items()]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for step in checkpoints:
        (run / f"checkpoint-{step}").mkdir()
    (run / "final").mkdir()


def test_best_checkpoint_is_chosen_on_validation_after_rl(bench, tmp_path):
    run = tmp_path / "run"
    # step 0 (the warm start) is best, but every row must be "after RL"; 30 and 45 tie: the later one wins
    write_run(run, {0: 0.5, 15: 0.1, 30: 0.3, 45: 0.3}, checkpoints=[15, 30])
    curve = bench.validation_curve(run)
    assert [c["step"] for c in curve] == [0, 15, 30, 45]
    assert bench.best_checkpoint(run, curve) == (run / "final", 45)  # the last step lives in final/
    curve[-1]["ndcg@10"] = 0.2
    assert bench.best_checkpoint(run, curve) == (run / "checkpoint-30", 30)
    with pytest.raises(RuntimeError, match="no validation after a GRPO step"):
        bench.best_checkpoint(run, curve[:1])


def test_profiles_of_another_model_are_not_resumed(bench, tmp_path):
    model_a, model_b = tmp_path / "a", tmp_path / "b"
    for m in (model_a, model_b):
        m.mkdir()
        (m / "model.safetensors").write_bytes(b"weights")
    path = bench.fresh_profiles(tmp_path / "p" / "x.test.jsonl", model_a)
    path.write_text('{"user_id": "u1", "profile": "from a"}\n')
    assert bench.fresh_profiles(path, model_a).exists()  # same model: resume
    assert not bench.fresh_profiles(path, model_b).exists()  # another model: start over


def test_a_work_folder_is_reused_only_with_its_own_settings(bench, tmp_path):
    config = bench.BlueBeautyConfig()
    bench.check_work_config(tmp_path, config)
    bench.check_work_config(tmp_path, config)  # same settings: reuse
    changed = config.model_copy(update={"grpo": config.grpo.model_copy(update={"learning_rate": 1e-3})})
    with pytest.raises(SystemExit, match="changed: grpo"):
        bench.check_work_config(tmp_path, changed)


def test_a_worker_whose_bench_process_died_exits(bench):
    import multiprocessing
    import os
    import time

    ctx = multiprocessing.get_context("fork")  # the bench module is loaded by path, which spawn cannot re-import
    orphan = ctx.Process(target=bench._exit_when_orphaned, args=(-1, 0.05))  # -1: never the parent's pid
    orphan.start()
    orphan.join(timeout=10)
    assert orphan.exitcode == 1
    child = ctx.Process(target=bench._exit_when_orphaned, args=(os.getpid(), 0.05))
    child.start()
    time.sleep(0.5)
    assert child.is_alive()  # its parent lives: it keeps working
    child.terminate()
    child.join(timeout=10)
