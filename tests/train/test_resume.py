"""Checkpoints and resume: a resumed run continues at the saved step with the saved optimizer state."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from bluerec.io import read_jsonl
from bluerec.train import latest_checkpoint, train_blue


class OptimizerSnapshot(TrainerCallback):
    """Copies the optimizer state when training begins (after a checkpoint's optimizer.pt was loaded)."""

    def __init__(self) -> None:
        self.state: dict | None = None
        self.first_step: int | None = None

    def on_train_begin(self, args, state, control, optimizer=None, **kwargs):
        self.first_step = state.global_step
        self.state = {k: {n: (v.clone() if torch.is_tensor(v) else v) for n, v in s.items()}
                      for k, s in optimizer.state_dict()["state"].items()}


def test_resume_continues_from_the_saved_step(make_config, bow):
    config = make_config(grpo__max_steps=4, grpo__save_steps=2, grpo__save_total_limit=None,
                         eval__every_steps=2, eval__at_start=False)
    full = train_blue(config, embedder=bow)
    out = full.output_dir
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json", "model.safetensors"):
        assert (out / "checkpoint-2" / name).exists()
    rows_full = read_jsonl(full.metrics_path)
    final_full = load_file(str(full.final_dir / "model.safetensors"))

    # a crash after step 2: the newer checkpoint and the final model never got written
    shutil.rmtree(out / "checkpoint-4")
    shutil.rmtree(out / "final")
    assert latest_checkpoint(out) == out / "checkpoint-2"
    with pytest.raises(FileExistsError, match="resume"):
        train_blue(config, embedder=bow)  # a fresh start would clobber the run

    snap = OptimizerSnapshot()
    resumed = train_blue(config, embedder=bow, resume=True, callbacks=[snap])
    assert resumed.resumed_from == out / "checkpoint-2" and resumed.start_step == 2 and resumed.global_step == 4
    assert snap.first_step == 2

    saved = torch.load(out / "checkpoint-2" / "optimizer.pt", map_location="cpu", weights_only=True)["state"]
    assert snap.state is not None and saved.keys() == snap.state.keys() and len(saved) > 0
    for key, tensors in saved.items():
        assert tensors["step"].item() == 2
        for name in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(tensors[name], snap.state[key][name])

    rows = read_jsonl(resumed.metrics_path)
    train_steps = [r["step"] for r in rows if r["kind"] == "train"]
    assert train_steps == [1, 2, 3, 4]  # rows after the checkpoint were dropped before being logged again
    assert [r["step"] for r in rows if r["kind"] == "eval"] == [2, 4]
    # same data position, RNG and optimizer: steps 3-4 repeat the uninterrupted run
    by_step = {r["step"]: r for r in rows_full if r["kind"] == "train"}
    for r in rows:
        if r["kind"] == "train" and r["step"] > 2:
            assert r["reward"] == pytest.approx(by_step[r["step"]]["reward"], abs=1e-5)
    final = load_file(str(resumed.final_dir / "model.safetensors"))
    assert all(torch.allclose(final[k], final_full[k], atol=1e-6) for k in final)


def test_overwrite_starts_over(make_config, bow):
    config = make_config(grpo__max_steps=1, grpo__save_steps=1)
    train_blue(config, embedder=bow)
    again = train_blue(config.model_copy(update={"overwrite": True}), embedder=bow)
    assert again.start_step == 0 and again.global_step == 1
    assert [r["step"] for r in read_jsonl(again.metrics_path) if r["kind"] == "train"] == [1]
