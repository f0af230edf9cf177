"""``eval.select_best``: the best validation step's profiler is kept as ``best/`` beside ``final/``."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from bluerec.io import read_jsonl
from bluerec.train import train_blue
from bluerec.train.config import TrainEvalConfig
from bluerec.train.select import BestCheckpoint, read_best
from support.cli import run_cli


def _best_of(rows, key="eval/ndcg@10", from_step=1):
    evals = [r for r in rows if r["kind"] == "eval" and r["step"] >= from_step]
    top = max(r[key] for r in evals)
    return min(r["step"] for r in evals if r[key] == top), top  # ties: the earlier step


@pytest.mark.parametrize("lora", [False, True])
def test_best_checkpoint_is_the_best_validation_step(make_config, bow, lora):
    config = make_config(grpo__max_steps=3, eval__every_steps=1, eval__at_start=True, eval__select_best=True,
                         lora={"enabled": lora, "r": 4, "alpha": 8})
    result = train_blue(config, embedder=bow)
    rows = read_jsonl(result.metrics_path)
    step, value = _best_of(rows)
    assert result.best == {"step": step, "metric": "eval/ndcg@10", "value": value, "path": "best"}
    assert read_best(result.output_dir) == result.best
    best_rows = [r for r in rows if r["kind"] == "best"]
    assert best_rows and best_rows[-1]["step"] == step and best_rows[-1]["value"] == value
    assert all(r["step"] >= 1 for r in best_rows)  # the starting profiler is never chosen
    # a plain, merged model: no adapter files, loads with transformers, same tensors as final/ when step is last
    best_dir = result.best_dir
    assert (best_dir / "model.safetensors").exists() and not (best_dir / "adapter_config.json").exists()
    best_w, final_w = load_file(str(best_dir / "model.safetensors")), load_file(str(result.final_dir / "model.safetensors"))
    assert best_w.keys() == final_w.keys()
    if step == result.global_step:
        assert all(torch.equal(best_w[k], final_w[k]) for k in best_w)
    else:
        assert any(not torch.equal(best_w[k], final_w[k]) for k in best_w)
    assert not list(result.output_dir.glob(".best*"))  # nothing half-written left behind


def test_selection_keeps_the_best_and_resume_rules(tmp_path, qwen2_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(qwen2_dir)
    tok = AutoTokenizer.from_pretrained(qwen2_dir)
    keeper = BestCheckpoint(tmp_path, "eval/ndcg@10", from_step=1)
    assert keeper.consider(model, tok, 0, {"eval/ndcg@10": 0.9}) is None  # step 0 is the starting profiler
    assert keeper.consider(model, tok, 2, {"eval/ndcg@10": 0.2})["step"] == 2
    assert keeper.consider(model, tok, 4, {"eval/ndcg@10": 0.2}) is None  # a tie keeps the earlier step
    assert keeper.consider(model, tok, 6, {"eval/ndcg@10": float("nan")}) is None
    assert keeper.consider(model, tok, 8, {"eval/ndcg@10": 0.3})["step"] == 8
    assert json.loads((tmp_path / "best" / "best.json").read_text())["step"] == 8
    # resuming from step 8 or later keeps it; from an earlier checkpoint it is stale and removed
    assert BestCheckpoint(tmp_path, "eval/ndcg@10", resume_step=8).best["step"] == 8
    assert BestCheckpoint(tmp_path, "eval/ndcg@10", resume_step=6).best is None
    assert not (tmp_path / "best").exists()


def test_select_key_and_validation():
    assert TrainEvalConfig(k=5).select_key == "eval/ndcg@5"  # the evaluator's own primary metric
    assert TrainEvalConfig(select_metric="mrr").select_key == "eval/mrr"
    assert TrainEvalConfig(select_metric="recall").select_key == "eval/recall@10"  # a bare name is at k
    wide = TrainEvalConfig(select_metric="recall@20")
    assert wide.select_key == "eval/recall@20" and wide.retrieval.ks == [10, 20]
    assert wide.retrieval.primary == "recall@20" and wide.retrieval.ties == "average"
    assert TrainEvalConfig().retrieval.protocol == "full"
    with pytest.raises(ValueError, match="unknown metric"):
        TrainEvalConfig(select_metric="auc")
    with pytest.raises(ValueError, match="select_best needs validations"):
        TrainEvalConfig(select_best=True, every_steps=0, at_end=False)


def test_evaluate_takes_the_best_folder(make_config, bow, word_dataset, tmp_path):
    config = make_config(grpo__max_steps=2, eval__every_steps=1, eval__at_start=False, eval__select_best=True)
    result = train_blue(config, embedder=bow)
    proc = run_cli("evaluate", "--dataset", str(word_dataset), "--profiler", str(result.best_dir),
                   "--method", "popularity", "--protocol", "full", "--resamples", "0",
                   "--out", str(tmp_path / "ev"), "--cache-dir", str(tmp_path / "cache"), cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    profiles = read_jsonl(tmp_path / "ev" / "profiler_profiles.jsonl")
    assert len(profiles) == 12 and all("profile" in r for r in profiles)  # every test user, from best/
    assert "profiler" in (tmp_path / "ev" / "summary.json").read_text()
