"""``bluerec warmstart``: the tiny config warm-starts each candidate target, chooses on validation users, resumes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bluerec.config import ConfigError, load_config
from bluerec.workflow import WarmStartRunConfig, run_warmstart
from support.cli import assert_one_line_error, run_cli

TINY = Path(__file__).resolve().parents[2] / "configs" / "warmstart" / "tiny.yaml"


def tiny_yaml(tmp_path: Path, word_dataset: Path, qwen2_dir: Path, **extra: str) -> Path:
    lines = [f"base: {TINY}", f"dataset: {word_dataset}", f"profiler: {{model: {qwen2_dir}, device: cpu}}",
             f"output_dir: {tmp_path / 'ws'}", *(f"{k}: {v}" for k, v in extra.items())]
    path = tmp_path / "ws.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_choose_target_on_validation_users_and_resume(tmp_path, word_dataset, qwen2_dir):
    cfg = load_config(WarmStartRunConfig, tiny_yaml(tmp_path, word_dataset, qwen2_dir))
    assert cfg.targets == ["template", "recent_items"] and cfg.warmstart.max_steps == 3
    summary = run_warmstart(cfg)
    out = cfg.output_dir
    assert set(summary["validation"]) == {"template", "recent_items"}
    scores = {t: s["ndcg@10"] for t, s in summary["validation"].items()}
    best = max(scores.values())
    assert summary["chosen"] == next(t for t in cfg.targets if scores[t] == best)  # ties: the earlier one
    assert all(s["n_users"] == 6 for s in summary["validation"].values())
    for target in cfg.targets:
        assert (out / "candidates" / target / "model" / "config.json").exists()
        rows = [json.loads(x) for x in (out / "selection" / f"{target}.valid.jsonl").read_text().splitlines()]
        assert len(rows) == 6
        assert summary["results"][target]["steps"] == 3
    chosen = (out / "candidates" / summary["chosen"] / "model" / "model.safetensors").read_bytes()
    assert (out / "model" / "model.safetensors").read_bytes() == chosen
    assert (out / "train_config.yaml").exists()  # evaluate/GRPO read the prompt from here

    # A rerun reuses every finished candidate: no training, the same choice and model.
    mtime = os.stat(out / "candidates" / "template" / "model" / "model.safetensors").st_mtime_ns
    again = run_warmstart(cfg)
    assert again["chosen"] == summary["chosen"] and again["validation"] == summary["validation"]
    # Its cost still counts the candidates' training done by the first run, not only the rerun's own seconds.
    trained = sum(r["seconds"] for r in summary["results"].values())
    assert trained > 0 and again["seconds"] == pytest.approx(trained + again["selection_seconds"], abs=0.11)
    assert os.stat(out / "candidates" / "template" / "model" / "model.safetensors").st_mtime_ns == mtime

    # Other settings in the same folder: refused unless overwrite.
    changed = cfg.model_copy(update={"warmstart": cfg.warmstart.model_copy(update={"learning_rate": 0.5})})
    with pytest.raises(FileExistsError, match="changed: warmstart"):
        run_warmstart(changed)


def test_cli_single_target_with_lora(tmp_path, word_dataset, qwen2_dir):
    path = tiny_yaml(tmp_path, word_dataset, qwen2_dir)
    text = path.read_text().replace(f"profiler: {{model: {qwen2_dir}, device: cpu}}",
                                    f"profiler: {{model: {qwen2_dir}, device: cpu, lora: {{enabled: true, r: 4}}}}")
    # profiles of 2 new tokens cannot hold the copied titles: the run says so
    path.write_text(text + "choose_target: []\nwarmstart: {target: recent_items}\nselection: {max_new_tokens: 2}\n")
    proc = run_cli("warmstart", "-c", str(path), "--max-steps", "2", cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "ws"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["chosen"] == "recent_items" and summary["validation"] == {}
    result = summary["results"]["recent_items"]
    assert result["steps"] == 2 and result["n_truncated"] == 0
    assert 2 < result["target_tokens"]["p50"] <= result["target_tokens"]["p90"] <= result["target_tokens"]["max"]
    assert "more than 10% of the targets are longer than selection.max_new_tokens=2" in " ".join((proc.stdout + proc.stderr).split())
    model = out / "model"
    assert (model / "model.safetensors").exists() and not (model / "adapter_config.json").exists()  # merged


def test_bad_config_is_one_line_naming_the_file(tmp_path, word_dataset, qwen2_dir):
    path = tiny_yaml(tmp_path, word_dataset, qwen2_dir, choose_target="[template, everything]")
    with pytest.raises(ConfigError, match="choose_target"):
        load_config(WarmStartRunConfig, path)
    proc = run_cli("warmstart", "-c", str(path), cwd=tmp_path)
    assert_one_line_error(proc, str(path), "choose_target")


def test_lora_warm_start_does_not_depend_on_earlier_random_draws(tmp_path, word_dataset, qwen2_dir):
    """LoRA adapters start from the global RNG: the run seeds it, so what ran before in the process does not matter."""
    import torch

    weights = []
    for i in range(2):
        (tmp_path / str(i)).mkdir()
        cfg = load_config(WarmStartRunConfig, tiny_yaml(tmp_path / str(i), word_dataset, qwen2_dir))
        cfg = cfg.model_copy(update={
            "choose_target": [], "profiler": cfg.profiler.model_copy(update={
                "lora": cfg.profiler.lora.model_copy(update={"enabled": True, "r": 4})}),
            "warmstart": cfg.warmstart.model_copy(update={"target": "recent_items", "max_steps": 2})})
        torch.manual_seed(1234 + i)
        torch.rand(1000 * (i + 1))  # a different RNG state before each run
        run_warmstart(cfg)
        weights.append((cfg.output_dir / "model" / "model.safetensors").read_bytes())
    assert weights[0] == weights[1]
