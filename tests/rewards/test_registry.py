"""The reward registry: one entry per reward, config validation by the registry, extra reward callables."""

from __future__ import annotations

import numpy as np
import pytest

from bluerec.config import ConfigError, StrictModel, parse_config
from bluerec.rewards.registry import (
    BUILTIN,
    RewardContext,
    RewardSpec,
    get_reward,
    register_reward,
    reward_func_name,
    reward_names,
    unregister_reward,
)
from bluerec.train import BlueTrainConfig
from bluerec.train.config import RewardsConfig
from bluerec.train.trainer import build_reward_funcs, check_reward_columns, reward_dataset_options

BASE = {"dataset": "data/prepared/x", "profiler": "runs/micro/sft", "output_dir": "runs/x"}


class ShoutConfig(StrictModel):
    bonus: float = 1.0


class Shout:
    """A toy reward: ``bonus`` per exclamation mark."""

    __name__ = "shout"

    def __init__(self, config: ShoutConfig) -> None:
        self.config = config

    def __call__(self, completions, **columns):
        return [self.config.bonus * c.count("!") for c in completions]


SHOUT = RewardSpec("shout", ShoutConfig, lambda cfg, ctx: Shout(cfg), columns=("shout_column",),
                   add_columns=lambda cfg: {"shout_column": lambda row: row.example.user_id})


@pytest.fixture
def shout():
    register_reward(SHOUT)
    yield SHOUT
    unregister_reward("shout")


def test_every_builtin_resolves_in_a_fixed_order():
    assert reward_names()[: len(BUILTIN)] == list(BUILTIN)
    assert list(BUILTIN)[0] == "infonce" and list(BUILTIN)[-1] == "length_penalty"
    for name in BUILTIN:
        spec = get_reward(name)
        assert spec.name == name and issubclass(spec.config, StrictModel)
        assert isinstance(RewardsConfig().settings(name), spec.config)  # defaults for every registered reward
    assert {n for n in BUILTIN if get_reward(n).needs_reader} == {"multiple_choice", "rlpf", "rlaif"}
    with pytest.raises(ValueError, match=r"unknown reward 'bm25'; allowed values: \['infonce'"):
        get_reward("bm25")


def test_a_registered_reward_is_configured_like_a_builtin(shout):
    cfg = parse_config(BlueTrainConfig, {**BASE, "rewards": {
        "enabled": ["shout", "infonce"], "weights": {"shout": 0.5}, "shout": {"bonus": 2.0}}})
    assert cfg.reward_names() == ["infonce", "shout"]  # registry order, registered rewards last
    assert cfg.rewards.shout.bonus == 2.0 and cfg.rewards.weights.get("shout") == 0.5
    assert not cfg.needs_reader()
    opts = reward_dataset_options(cfg)
    assert set(opts["columns"]) == {"shout_column"} and opts["num_negatives"] == cfg.rewards.infonce.num_negatives
    with pytest.raises(ConfigError, match=r"rewards.shout: unknown setting 'bonsu'; allowed settings: \['bonus'\]"):
        parse_config(BlueTrainConfig, {**BASE, "rewards": {"shout": {"bonsu": 1}}})
    with pytest.raises(ValueError, match="already registered"):
        register_reward(SHOUT)
    with pytest.raises(ValueError, match="built-in"):
        unregister_reward("infonce")


def test_unknown_names_and_settings_name_the_reward_and_the_allowed_ones():
    cases = [
        ({"enabled": ["bm25"]}, r"unknown reward 'bm25' in rewards.enabled; allowed values: \[.*'rlpf'"),
        ({"bm25": {}}, r"unknown reward 'bm25' under rewards; allowed keys: \['enabled', 'weights', 'infonce'"),
        ({"weights": {"bm25": 1.0}}, r"rewards.weights has unknown reward 'bm25'"),
        ({"weights": {"rlpf": -1}}, r"rewards.weights.rlpf must be a finite number >= 0"),
        ({"langptune": {"metric": "map"}}, r"rewards.langptune: setting 'metric'"),
        ({"rlaif": {"judges": "x"}}, r"rewards.rlaif: unknown setting 'judges'; allowed settings: \["),
    ]
    for rewards, pattern in cases:
        with pytest.raises(ConfigError, match=pattern):
            parse_config(BlueTrainConfig, {**BASE, "rewards": rewards})
    with pytest.raises(ConfigError, match=r"\['rlpf'\] \(they read with the frozen reader\) but reader.model"):
        parse_config(BlueTrainConfig, {**BASE, "reader": {"model": None}, "rewards": {"enabled": ["rlpf"]}})


def test_settings_are_typed_and_assignment_is_validated():
    rc = RewardsConfig(enabled=["langptune"], langptune={"metric": "mrr"})
    assert rc.langptune.metric == "mrr" and rc.settings("langptune") is rc.langptune
    rc.langptune = {"k": 5}
    assert rc.langptune.k == 5 and rc.langptune.metric == "ndcg"
    with pytest.raises(ValueError, match="rewards.langptune"):
        rc.langptune = {"k": 0}
    with pytest.raises(ValueError, match="unknown reward"):
        rc.settings("bm25")


def _context() -> RewardContext:
    class DS:
        class items:  # noqa: N801 - a stand-in for ItemTable
            index = {"a": 0, "b": 1}
            popularity = np.ones(2)

    return RewardContext(encoder=None, item_emb=np.eye(2, dtype=np.float32), dataset=DS())


def test_build_reward_funcs_weights_every_component_and_appends_extra_callables():
    cfg = parse_config(BlueTrainConfig, {**BASE, "rewards": {
        "enabled": ["infonce", "langptune", "length_penalty"],
        "weights": {"infonce": 2.0, "length_penalty": 0.5},
        "infonce": {"weight_item_to_profile": 0.25}}})
    ctx = _context()

    def exclaim(completions, **columns):
        return [float("!" in c) for c in completions]

    funcs, weights = build_reward_funcs(cfg, encoder=_Enc(), item_emb=ctx.item_emb, dataset=ctx.dataset,
                                        extra_rewards=[exclaim], extra_weights=[3.0])
    assert [reward_func_name(f) for f in funcs] == [
        "infonce_profile_to_item", "infonce_item_to_profile", "langptune", "length_penalty", "exclaim"]
    assert weights == [2.0, 0.5, 1.0, 0.5, 3.0]
    with pytest.raises(ValueError, match="1 extra rewards but 2 extra weights"):
        build_reward_funcs(cfg, encoder=_Enc(), item_emb=ctx.item_emb, dataset=ctx.dataset,
                           extra_rewards=[exclaim], extra_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"share the log name\(s\) \['langptune'\]"):
        build_reward_funcs(cfg, encoder=_Enc(), item_emb=ctx.item_emb, dataset=ctx.dataset,
                           extra_rewards=[_named("langptune")])
    with pytest.raises(TypeError, match="no __name__"):
        import functools

        build_reward_funcs(cfg, encoder=_Enc(), item_emb=ctx.item_emb, dataset=ctx.dataset,
                           extra_rewards=[functools.partial(exclaim)])
    with pytest.raises(ValueError, match="'multiple_choice' reward needs a reader"):
        build_reward_funcs(parse_config(BlueTrainConfig, {**BASE, "rewards": {"enabled": ["multiple_choice"]}}),
                           encoder=_Enc(), item_emb=ctx.item_emb, dataset=ctx.dataset, reader=None)


def test_missing_columns_name_the_reward():
    cfg = parse_config(BlueTrainConfig, {**BASE, "rewards": {"enabled": ["rlaif"]}})
    with pytest.raises(ValueError, match=r"reward 'rlaif' needs the dataset column\(s\) \['history_text'\]"):
        check_reward_columns(cfg, ["prompt", "user_id", "target_item", "history_items"])
    check_reward_columns(cfg, ["prompt", "history_text"])
    assert set(reward_dataset_options(cfg)["columns"]) == {"history_text"}


class _Enc:
    def encode_queries(self, texts):
        return np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (len(texts), 1))


def _named(name):
    def f(completions, **columns):
        return [0.0] * len(completions)

    f.__name__ = name
    return f
