"""The optional vLLM back-end: imported lazily, a clear error without it, and GRPO's use_vllm switch."""

from __future__ import annotations

import importlib.util

import pytest

from bluerec.config import ConfigError, parse_config
from bluerec.profiler.config import ProfilerConfig
from bluerec.profiler.loader import load_profiler

HAS_VLLM = importlib.util.find_spec("vllm") is not None


@pytest.mark.skipif(HAS_VLLM, reason="checks the message shown when vLLM is missing")
def test_missing_vllm_is_one_clear_error(tmp_path):
    with pytest.raises(ImportError, match=r'pip install "bluerec\[vllm\]"'):
        load_profiler(ProfilerConfig(backend="vllm", model=str(tmp_path)))


@pytest.mark.skipif(HAS_VLLM, reason="checks the message shown when vLLM is missing")
def test_grpo_use_vllm_fails_before_any_work_without_it():
    import torch

    from bluerec.train.config import BlueTrainConfig
    from bluerec.train.trainer import grpo_args

    cfg = BlueTrainConfig.model_validate({"dataset": "d", "profiler": "p", "output_dir": "o",
                                          "grpo": {"use_vllm": True}})
    with pytest.raises(ImportError, match="vllm"):
        grpo_args(cfg, torch.device("cpu"), [1.0])


def test_grpo_args_pass_vllm_settings_only_when_asked():
    import torch

    from bluerec.train.config import BlueTrainConfig
    from bluerec.train.trainer import grpo_args

    cfg = BlueTrainConfig.model_validate({"dataset": "d", "profiler": "p", "output_dir": "o"})
    assert grpo_args(cfg, torch.device("cpu"), [1.0]).use_vllm is False


def test_vllm_backend_is_inference_only():
    with pytest.raises(ConfigError, match="merged weights"):
        parse_config(ProfilerConfig, {"backend": "vllm", "model": "m", "lora": {"enabled": True}}, "test")
    with pytest.raises(ValueError, match="inference only"):
        load_profiler(ProfilerConfig(backend="vllm", model="m"), trainable=True)


@pytest.mark.skipif(not HAS_VLLM, reason="vLLM is not installed (optional extra bluerec[vllm], GPU only)")
def test_vllm_generates(micro_dir):  # pragma: no cover - needs a GPU machine with vLLM
    profiler = load_profiler(ProfilerConfig(backend="vllm", model=str(micro_dir)))
    out = profiler.generate([[{"role": "user", "content": "hello"}]], num_samples=2, max_new_tokens=4)
    assert len(out) == 1 and len(out[0]) == 2


@pytest.mark.skipif(HAS_VLLM, reason="checks the message shown when vLLM is missing")
def test_cli_backend_vllm_without_vllm_says_how_to_install(micro_dir, tiny_dataset, tmp_path):
    from typer.testing import CliRunner

    from bluerec.cli.main import app

    res = CliRunner().invoke(app, ["profile", "--profiler", str(micro_dir), "-d", str(tiny_dataset.root),
                                   "--out", str(tmp_path / "p.jsonl"), "--backend", "vllm"])
    assert res.exit_code != 0
    assert "bluerec[vllm]" in (res.output + str(res.exception))


def test_vllm_refuses_an_ngram_ban_it_cannot_apply():
    from bluerec.profiler.backends.vllm import VLLMProfiler

    profiler = object.__new__(VLLMProfiler)  # no engine needed: the check comes first
    with pytest.raises(ValueError, match="no_repeat_ngram_size"):
        profiler.generate([[{"role": "user", "content": "x"}]], no_repeat_ngram_size=3)
