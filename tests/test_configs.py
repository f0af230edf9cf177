"""Every YAML under configs/ is a documented example: it must load into its typed config."""

from __future__ import annotations

from pathlib import Path

import pytest

from bluerec.config import ConfigError, load_config
from bluerec.data.config import PrepareConfig
from bluerec.embed.finetune import FinetuneConfig
from bluerec.eval.embedders import EmbedderCompareConfig
from bluerec.eval.transfer import TransferConfig
from bluerec.pipeline import QuickstartConfig
from bluerec.serve.settings import ServeSettings
from bluerec.train.alternate import AlternateConfig
from bluerec.train.config import BlueTrainConfig
from bluerec.workflow import WarmStartRunConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
MODELS = {"data": PrepareConfig, "train": BlueTrainConfig, "serve": ServeSettings, "warmstart": WarmStartRunConfig}
# Embedder fine-tuning, embedder comparison, cross-domain transfer, alternating phases (issue 11).
MODELS.update({"embed": FinetuneConfig, "compare": EmbedderCompareConfig, "transfer": TransferConfig,
               "alternate": AlternateConfig})


ACCELERATE = CONFIGS / "accelerate"  # accelerate's own launch configs, not bluerec's


def _paper_config() -> type:
    """bench/paper_tables.py's PaperConfig (a benchmark script's config, not part of the package)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("paper_tables_for_configs", CONFIGS.parent / "bench" / "paper_tables.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.PaperConfig


@pytest.mark.parametrize("path", sorted(p for p in CONFIGS.rglob("*.yaml") if ACCELERATE not in p.parents),
                         ids=lambda p: str(p.relative_to(CONFIGS)))
def test_config_loads(path: Path):
    model = _paper_config() if path.parent.name == "paper" else MODELS.get(path.parent.name, QuickstartConfig)
    load_config(model, path)


@pytest.mark.parametrize("path", sorted(ACCELERATE.glob("*.yaml")), ids=lambda p: p.name)
def test_accelerate_config_loads(path: Path):
    from accelerate.commands.config.config_args import load_config_from_file

    assert load_config_from_file(str(path)).num_processes >= 1


def test_quickstart_yaml_matches_the_builtin_defaults():
    assert load_config(QuickstartConfig, CONFIGS / "quickstart.yaml") == QuickstartConfig()


def test_quickstart_grpo_config_trains_what_the_quick_start_trains():
    """configs/train/quickstart.yaml reruns the quick start's GRPO: same prompt (the warm start saw it), rewards,
    profile length and group size."""
    from bluerec.train.config import BlueTrainConfig

    again, quick = load_config(BlueTrainConfig, CONFIGS / "train" / "quickstart.yaml"), QuickstartConfig()
    assert again.prompt == quick.prompt and again.rewards == quick.rewards
    assert (again.grpo.max_completion_length, again.grpo.num_generations, again.grpo.batch_size) == (
        quick.grpo.max_completion_length, quick.grpo.num_generations, quick.grpo.batch_size)
    assert again.profiler.lora == quick.profiler.lora


def test_config_error_names_key_value_and_allowed_values(tmp_path: Path):
    bad = tmp_path / "q.yaml"
    bad.write_text("warmstart:\n  target: everything\n")
    with pytest.raises(ConfigError) as err:
        load_config(QuickstartConfig, bad)
    msg = str(err.value)
    assert "warmstart.target" in msg and "everything" in msg and "next_item" in msg
