"""BlueTrainConfig: strict validation with readable errors, and the example YAML files parse."""

from __future__ import annotations

from pathlib import Path

import pytest

from bluerec.config import ConfigError, load_config, parse_config
from bluerec.train import BlueTrainConfig
from bluerec.train.trainer import config_yaml

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "train"
BASE = {"dataset": "data/prepared/x", "profiler": "runs/micro/sft", "output_dir": "runs/x"}


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_example_configs_parse(path):
    cfg = load_config(BlueTrainConfig, path)
    assert cfg.reward_names()


def test_example_configs_exist():
    assert {p.name for p in CONFIGS.glob("*.yaml")} >= {"quickstart.yaml", "beauty.yaml"}


def test_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"grpo.batch_sise"):
        parse_config(BlueTrainConfig, {**BASE, "grpo": {"batch_sise": 8}})
    with pytest.raises(ConfigError, match=r"divisible by num_generations"):
        parse_config(BlueTrainConfig, {**BASE, "grpo": {"batch_size": 6, "num_generations": 4}})
    with pytest.raises(ConfigError, match=r"reader.model"):
        parse_config(BlueTrainConfig, {**BASE, "reader": {"model": None}, "rewards": {"enabled": ["multiple_choice"]}})
    with pytest.raises(ConfigError, match=r"allowed values.*infonce"):
        parse_config(BlueTrainConfig, {**BASE, "rewards": {"enabled": ["bm25"]}})
    with pytest.raises(ConfigError, match=r"twice"):
        parse_config(BlueTrainConfig, {**BASE, "rewards": {"enabled": ["infonce", "infonce"]}})


def test_multi_objective_aggregation_reaches_trl_and_bad_values_name_the_key():
    import torch

    from bluerec.train.trainer import grpo_args

    default = parse_config(BlueTrainConfig, BASE)
    assert grpo_args(default, torch.device("cpu"), [1.0]).multi_objective_aggregation == "sum_then_normalize"
    gdpo = parse_config(BlueTrainConfig, {**BASE, "grpo": {"multi_objective_aggregation": "normalize_then_sum"}})
    assert grpo_args(gdpo, torch.device("cpu"), [1.0]).multi_objective_aggregation == "normalize_then_sum"
    with pytest.raises(ConfigError, match=r"grpo.multi_objective_aggregation"):
        parse_config(BlueTrainConfig, {**BASE, "grpo": {"multi_objective_aggregation": "average"}})


def test_ablations_are_config_changes():
    both = parse_config(BlueTrainConfig, {**BASE, "reader": {"model": "r"},
                                          "rewards": {"enabled": ["length_penalty", "multiple_choice", "infonce"]}})
    assert both.reward_names() == ["infonce", "multiple_choice", "length_penalty"]  # fixed order
    one_dir = parse_config(BlueTrainConfig, {**BASE, "rewards": {"infonce": {"weight_item_to_profile": 0}}})
    assert one_dir.rewards.infonce.weight_item_to_profile == 0


def test_config_yaml_round_trips_and_hides_secrets():
    cfg = parse_config(BlueTrainConfig, BASE)
    again = parse_config(BlueTrainConfig, __import__("yaml").safe_load(config_yaml(cfg)))
    assert again == cfg
    from bluerec.train.trainer import _redact

    assert _redact({"a": {"api_key": "sk-1", "openai_token": "t", "max_prompt_tokens": 9, "x": 1}}) == {
        "a": {"api_key": "***", "openai_token": "***", "max_prompt_tokens": 9, "x": 1}}


def test_profiler_string_and_earlier_top_level_keys_become_one_profiler_config():
    cfg = parse_config(BlueTrainConfig, {**BASE, "device": "cpu", "dtype": "bfloat16", "lora": {"enabled": True, "r": 4}})
    p = cfg.profiler
    assert (p.model, p.device, p.dtype, p.lora.enabled, p.lora.r) == ("runs/micro/sft", "cpu", "bfloat16", True, 4)
    assert cfg.lora is p.lora
    assert parse_config(BlueTrainConfig, BASE).profiler.dtype == "float32"  # the earlier default is kept
    full = parse_config(BlueTrainConfig, {**BASE, "profiler": {
        "model": "smollm2-135m-instruct", "model_init_kwargs": {"revision": "main"}, "lora": {"enabled": True}}})
    assert full.profiler.model_init_kwargs == {"revision": "main"} and full.profiler.dtype == "auto"
    with pytest.raises(ConfigError, match=r"belong under 'profiler'"):
        parse_config(BlueTrainConfig, {**BASE, "profiler": {"model": "m"}, "device": "cpu"})
    with pytest.raises(ConfigError, match=r"use the profiler field"):
        parse_config(BlueTrainConfig, {**BASE, "profiler": {"model": "m", "model_init_kwargs": {"torch_dtype": "x"}}})
    with pytest.raises(ConfigError, match=r"unknown device"):
        parse_config(BlueTrainConfig, {**BASE, "profiler": {"model": "m", "device": "gpu"}})


def test_reader_defaults_to_the_profiler_and_takes_a_shorthand():
    cfg = parse_config(BlueTrainConfig, {**BASE, "rewards": {"enabled": ["multiple_choice"]}})
    assert cfg.reader.model == "same_as_profiler" and cfg.reader.shares_profiler
    short = parse_config(BlueTrainConfig, {**BASE, "reader": "same_as_profiler"})
    assert short.reader == cfg.reader
