"""``base:`` in a YAML config: deep-merged inheritance resolved relative to the file, errors naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bluerec.config import ConfigError, deep_merge, load_config, resolve_yaml
from bluerec.train.config import BlueTrainConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_deep_merge_merges_mappings_and_replaces_lists():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    out = deep_merge(base, {"a": {"c": [3]}, "e": 2})
    assert out == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}  # not changed in place


def test_base_is_resolved_relative_to_the_file_and_chains(tmp_path):
    write(tmp_path / "root.yaml", "dataset: data/x\nprofiler: m\noutput_dir: runs/a\ngrpo: {max_steps: 7, seed: 3}\n")
    write(tmp_path / "sub" / "mid.yaml", "base: ../root.yaml\ngrpo: {max_steps: 9}\n")
    leaf = write(tmp_path / "sub" / "leaf.yaml", "base: mid.yaml\noutput_dir: runs/b\n")
    cfg = load_config(BlueTrainConfig, leaf)
    assert (cfg.grpo.max_steps, cfg.grpo.seed, str(cfg.output_dir), cfg.profiler.model) == (9, 3, "runs/b", "m")
    data, origins = resolve_yaml(leaf)
    assert "base" not in data and origins["grpo.seed"] == str((tmp_path / "root.yaml").resolve())
    assert origins["output_dir"] == str(leaf)
    # overrides still win over the whole chain; one into a shorthand value is a clear error
    assert load_config(BlueTrainConfig, leaf, {"grpo.max_steps": 2}).grpo.max_steps == 2
    with pytest.raises(ConfigError, match="'profiler' is 'm', not a mapping"):
        load_config(BlueTrainConfig, leaf, {"profiler.dtype": "float32"})


def test_errors_name_the_file(tmp_path):
    write(tmp_path / "root.yaml", "dataset: d\nprofiler: m\noutput_dir: o\ngrpo: {max_stepz: 7}\n")
    leaf = write(tmp_path / "leaf.yaml", "base: root.yaml\n")
    with pytest.raises(ConfigError) as err:
        load_config(BlueTrainConfig, leaf)
    msg = str(err.value)
    assert "grpo.max_stepz" in msg and f"set in {(tmp_path / 'root.yaml').resolve()}" in msg and str(leaf) in msg

    missing = write(tmp_path / "missing.yaml", "base: nowhere.yaml\n")
    with pytest.raises(ConfigError, match=r"nowhere\.yaml \(the base of .*missing\.yaml\)"):
        load_config(BlueTrainConfig, missing)
    loop_a = write(tmp_path / "a.yaml", "base: b.yaml\n")
    write(tmp_path / "b.yaml", "base: a.yaml\n")
    with pytest.raises(ConfigError, match="includes itself"):
        load_config(BlueTrainConfig, loop_a)
    bad = write(tmp_path / "bad.yaml", "base: {x: 1}\n")
    with pytest.raises(ConfigError, match="must be a file name"):
        load_config(BlueTrainConfig, bad)


def test_ablation_files_differ_from_the_base_only_where_they_say():
    both = load_config(BlueTrainConfig, CONFIGS / "train" / "beauty_smollm2.yaml")
    emb = load_config(BlueTrainConfig, CONFIGS / "train" / "beauty_smollm2_embedding.yaml")
    text = load_config(BlueTrainConfig, CONFIGS / "train" / "beauty_smollm2_text.yaml")
    one_way = load_config(BlueTrainConfig, CONFIGS / "train" / "beauty_smollm2_one_way.yaml")
    assert both.rewards.enabled == ["infonce", "multiple_choice", "length_penalty"]
    assert emb.rewards.enabled == ["infonce", "length_penalty"] and emb.rewards.infonce.weight_item_to_profile > 0
    assert text.rewards.enabled == ["multiple_choice", "length_penalty"]
    assert one_way.rewards.enabled == ["infonce", "length_penalty"]
    assert one_way.rewards.infonce.weight_item_to_profile == 0
    assert one_way.rewards.infonce.weight_profile_to_item == both.rewards.infonce.weight_profile_to_item
    runs = {str(c.output_dir) for c in (both, emb, text, one_way)}
    assert len(runs) == 4  # every ablation writes its own run folder
    for cfg in (emb, text, one_way):  # everything else is inherited
        assert cfg.grpo == both.grpo and cfg.prompt == both.prompt and cfg.profiler == both.profiler
        assert cfg.eval == both.eval and cfg.eval.select_best


def test_baseline_files_change_only_the_rewards_and_the_run_folder():
    both = load_config(BlueTrainConfig, CONFIGS / "train" / "beauty_smollm2.yaml")
    expected = {"rlpf": ["rlpf", "length_penalty"], "langptune": ["langptune", "length_penalty"],
                "rlaif": ["rlaif", "length_penalty"]}
    for name, enabled in expected.items():
        cfg = load_config(BlueTrainConfig, CONFIGS / "train" / f"beauty_smollm2_{name}.yaml")
        assert cfg.rewards.enabled == enabled and cfg.reward_names() == enabled
        assert str(cfg.output_dir) == f"runs/beauty-smollm2/{name}"
        assert cfg.rewards.weights.get("length_penalty") == both.rewards.weights.get("length_penalty")
        assert cfg.rewards.length_penalty == both.rewards.length_penalty
        assert cfg.grpo == both.grpo and cfg.prompt == both.prompt and cfg.profiler == both.profiler
        assert cfg.eval == both.eval and cfg.reader == both.reader and cfg.embedder == both.embedder
    lang = load_config(BlueTrainConfig, CONFIGS / "train" / "beauty_smollm2_langptune.yaml")
    assert (lang.rewards.langptune.metric, lang.rewards.langptune.ties) == ("mrr", "average")
    assert not lang.needs_reader()
    rlaif = load_config(BlueTrainConfig, CONFIGS / "train" / "beauty_smollm2_rlaif.yaml")
    assert rlaif.needs_reader() and rlaif.rewards.rlaif.max_history_items == both.prompt.max_history_items
