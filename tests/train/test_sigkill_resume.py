"""SIGKILL in the middle of training, then ``train_blue(config, resume=True)``: nothing is lost or duplicated.

A subprocess trains the tiny Qwen2 profiler with ``save_steps=1``. A callback in the subprocess announces (by a
marker file) that step 3 has begun — so checkpoint-2 and the step-2 metrics row are on disk — and then keeps the
step busy; the parent SIGKILLs it there, mid-step, without any chance to clean up. Then:

- ``metrics.jsonl`` parses line by line and every checkpoint that exists loads (weights, optimizer, trainer state);
- the resumed run starts from the newest complete checkpoint (step >= 2), reaches ``max_steps``, writes ``final/``;
- ``metrics.jsonl`` ends with exactly one train row per step 1..max_steps, no duplicates after the resume point,
  and the resumed steps reproduce an uninterrupted run's rewards.

A kill *while a checkpoint is being written* leaves a ``checkpoint-<n>`` folder without its trainer state; the last
test builds that state by hand (deterministically) and checks that resume skips it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from bluerec.io import read_jsonl
from bluerec.train import latest_checkpoint, train_blue

MAX_STEPS = 5
HOLD_AT = 2  # the subprocess is killed during step HOLD_AT + 1

SCRIPT = textwrap.dedent("""
    import json, sys, time
    import torch
    torch.set_num_threads(1)
    sys.path[:0] = [{tests_dir!r}, {support_root!r}]  # train conftest, and the shared tests/support helpers
    from conftest import BagOfWordsEmbedder
    from transformers import TrainerCallback
    from bluerec.config import parse_config
    from bluerec.train import BlueTrainConfig, train_blue

    class Hold(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == {hold_at}:
                open({marker!r}, "w").close()
                time.sleep(300)  # a long step: the parent kills us here

    config = parse_config(BlueTrainConfig, json.load(open({config_path!r})), "subprocess")
    train_blue(config, embedder=BagOfWordsEmbedder(), callbacks=[Hold()])
""")


def kill_mid_training(config, tmp_path: Path, timeout: float = 180.0) -> int:
    """Run ``config`` in a subprocess and SIGKILL it during step HOLD_AT + 1; return the subprocess' exit code."""
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config.model_dump(mode="json")))
    marker = tmp_path / "holding"
    script = SCRIPT.format(tests_dir=str(Path(__file__).parent), support_root=str(Path(__file__).parents[1]), hold_at=HOLD_AT, marker=str(marker),
                           config_path=str(config_path))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    log = tmp_path / "subprocess.log"  # a file, not a pipe: a chatty child must never block on a full pipe
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=fh, stderr=subprocess.STDOUT)
    out = Path(config.output_dir)
    try:
        deadline = time.monotonic() + timeout
        while not (marker.exists() and (out / f"checkpoint-{HOLD_AT}").is_dir()):
            if proc.poll() is not None:
                raise AssertionError(f"training subprocess exited early ({proc.returncode}): "
                                     f"{log.read_text(errors='replace')[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError("training subprocess did not reach the kill point in time")
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def check_leftovers(out: Path) -> list[dict]:
    """What a kill left must be readable: metrics line by line, every checkpoint loads."""
    rows = []
    for n, line in enumerate((out / "metrics.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        assert line.strip(), f"blank line {n} in metrics.jsonl"
        rows.append(json.loads(line))  # a half-written line would fail here
    checkpoints = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert checkpoints, "no checkpoint survived"
    for ckpt in checkpoints:
        state = json.loads((ckpt / "trainer_state.json").read_text())
        assert state["global_step"] == int(ckpt.name.split("-")[1])
        weights = load_file(str(ckpt / "model.safetensors"))
        assert weights and all(torch.isfinite(t).all() for t in weights.values())
        optim = torch.load(ckpt / "optimizer.pt", map_location="cpu", weights_only=True)
        assert optim["state"]
    return rows


@pytest.fixture
def run_config(make_config):
    return make_config(grpo__max_steps=MAX_STEPS, grpo__save_steps=1, grpo__save_total_limit=None,
                       eval__every_steps=0, eval__at_end=False)


def test_sigkill_mid_step_then_resume_loses_nothing(run_config, bow, tmp_path):
    out = Path(run_config.output_dir)
    rc = kill_mid_training(run_config, tmp_path)
    assert rc == -signal.SIGKILL
    assert not (out / "final").exists()
    rows = check_leftovers(out)
    train_steps = [r["step"] for r in rows if r["kind"] == "train"]
    assert train_steps == list(range(1, HOLD_AT + 1))  # step 3 was never logged
    newest = latest_checkpoint(out)
    assert newest is not None and newest.name == f"checkpoint-{HOLD_AT}"

    resumed = train_blue(run_config, embedder=bow, resume=True)
    assert resumed.resumed_from == newest and resumed.start_step >= HOLD_AT
    assert resumed.global_step == MAX_STEPS
    assert (resumed.final_dir / "model.safetensors").exists() and (resumed.final_dir / "config.json").exists()
    rows = check_leftovers(out)
    train_steps = [r["step"] for r in rows if r["kind"] == "train"]
    assert train_steps == list(range(1, MAX_STEPS + 1))  # one row per step, none lost, none duplicated
    assert [r["kind"] for r in rows].count("summary") == 1 and rows[-1]["kind"] == "summary"
    assert sorted(p.name for p in out.glob("checkpoint-*")) == [f"checkpoint-{k}" for k in range(1, MAX_STEPS + 1)]

    # the resumed steps are those of an uninterrupted run (same data position, RNG and optimizer state)
    clean = train_blue(run_config.model_copy(update={"output_dir": tmp_path / "clean"}), embedder=bow)
    by_step = {r["step"]: r for r in read_jsonl(clean.metrics_path) if r["kind"] == "train"}
    for r in rows:
        if r["kind"] == "train":
            assert r["reward"] == pytest.approx(by_step[r["step"]]["reward"], abs=1e-5), r["step"]
    final, final_clean = load_file(str(resumed.final_dir / "model.safetensors")), load_file(
        str(clean.final_dir / "model.safetensors"))
    assert all(torch.allclose(final[k], final_clean[k], atol=1e-6) for k in final)


def _half_written_checkpoint(out: Path, step: int, source: Path) -> Path:
    """What a SIGKILL during ``Trainer._save_checkpoint`` leaves: the folder with the weights (cut short) but
    without optimizer, scheduler, RNG state and trainer_state.json (written last)."""
    ckpt = out / f"checkpoint-{step}"
    ckpt.mkdir()
    shutil.copy(source / "config.json", ckpt / "config.json")
    data = (source / "model.safetensors").read_bytes()
    (ckpt / "model.safetensors").write_bytes(data[: len(data) // 2])
    return ckpt


def test_resume_skips_a_half_written_checkpoint(run_config, bow, tmp_path):
    out = Path(run_config.output_dir)
    kill_mid_training(run_config, tmp_path)
    _half_written_checkpoint(out, HOLD_AT + 1, out / f"checkpoint-{HOLD_AT}")
    resumed = train_blue(run_config, embedder=bow, resume=True)
    assert resumed.resumed_from == out / f"checkpoint-{HOLD_AT}" and resumed.start_step == HOLD_AT
    assert resumed.global_step == MAX_STEPS and resumed.final_dir.exists()
    train_steps = [r["step"] for r in read_jsonl(resumed.metrics_path) if r["kind"] == "train"]
    assert train_steps == list(range(1, MAX_STEPS + 1))
