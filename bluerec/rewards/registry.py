"""The reward registry: one entry per reward, so a new reward is one file plus one line here.

An entry (:class:`RewardSpec`) says everything the trainer and the config need to know about a reward:

- ``config``: its typed settings (a :class:`~bluerec.config.StrictModel`), read from ``rewards.<name>`` in YAML;
- ``build(config, context)``: the TRL reward function(s) it contributes, from a :class:`RewardContext` (the frozen
  retriever, the item embeddings, the prepared dataset, the frozen reader);
- ``columns``: the GRPO dataset columns it reads (checked before training, with an error naming the reward);
- ``add_columns(config)``: columns it writes itself, one value per dataset row (:class:`RowInfo` → value);
- ``dataset_options(config)``: keyword arguments for :func:`bluerec.train.dataset.build_rl_dataset` (the built-in
  ``negatives`` / ``mc_options`` column families);
- ``needs_reader``: whether the frozen reader LM is loaded for it (a bool, or a function of its config).

Built-in rewards are listed in :data:`BUILTIN` as ``name -> "module:ENTRY"`` and imported only when first asked for;
code outside the package calls :func:`register_reward`. The order of the registry is the fixed order in which the
enabled rewards are handed to GRPO.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError

from bluerec.config import StrictModel

if TYPE_CHECKING:
    from bluerec.data.dataset import Example, PreparedDataset

RewardFunc = Callable[..., list[float]]  # TRL's reward function: f(completions, **columns) -> list[float]

# name -> "module:attribute" of its RewardSpec. One line per built-in reward.
BUILTIN: dict[str, str] = {
    "infonce": "bluerec.rewards.embedding:REWARD",
    "multiple_choice": "bluerec.rewards.multiple_choice:REWARD",
    "rlpf": "bluerec.rewards.rlpf:REWARD",
    "langptune": "bluerec.rewards.langptune:REWARD",
    "rlaif": "bluerec.rewards.rlaif:REWARD",
    "length_penalty": "bluerec.rewards.length:REWARD",
}


@dataclass(frozen=True)
class RowInfo:
    """What a column builder sees for one GRPO dataset row.

    Attributes:
        dataset: the prepared dataset.
        example: the train row (user, target, history).
        target_row: the target's row in ``dataset.items``.
        history: the user's full history before the target (item ids, oldest first).
        seed: ``data.seed`` of the run (for seeded columns).
    """

    dataset: PreparedDataset
    example: Example
    target_row: int
    history: list[str]
    seed: int = 0


RowColumn = Callable[[RowInfo], Any]


@dataclass
class RewardContext:
    """Everything a reward may be built from during a training run.

    Attributes:
        encoder: the frozen retriever (``encode_queries``), see :class:`~bluerec.rewards.protocols.TextEncoder`.
        item_emb: ``(n_items, d)`` L2-normalised item embeddings, rows in ``dataset.items`` order.
        dataset: the prepared dataset.
        reader: the frozen reader LM as ``(model, tokenizer, base_only)`` (``None`` unless an enabled reward has
            ``needs_reader``); ``base_only``: a PEFT model read with its adapters disabled.
        reader_batch_size, reader_max_length: the reader's batch size and input limit (``reader`` settings).
        load_model: loads another frozen causal LM by name (a known model, hub id or folder) as ``(model,
            tokenizer)`` on the training device, e.g. a judge of its own; ``None`` where nothing can be loaded.
    """

    encoder: Any
    item_emb: np.ndarray
    dataset: PreparedDataset
    reader: tuple[Any, ...] | None = None
    reader_batch_size: int = 16
    reader_max_length: int = 1024
    load_model: Callable[[str], tuple[Any, Any]] | None = None
    _models: dict[str, tuple[Any, Any]] = field(default_factory=dict, repr=False)

    def option_scorer(self, name: str, length_normalise: bool = True, model: str | None = None) -> Any:
        """An :class:`~bluerec.rewards.multiple_choice.HFOptionScorer` for reward ``name`` over the frozen reader, or
        over ``model`` (loaded once per run through ``load_model``) when given."""
        from bluerec.rewards.multiple_choice import HFOptionScorer

        kwargs = {"batch_size": self.reader_batch_size, "max_length": self.reader_max_length,
                  "length_normalise": length_normalise}
        if model is not None:
            if self.load_model is None:
                raise ValueError(f"the {name!r} reward asks for model {model!r} but this context cannot load models")
            if model not in self._models:
                self._models[model] = self.load_model(model)
            lm, tokenizer = self._models[model]
            return HFOptionScorer(lm, tokenizer, **kwargs)
        if self.reader is None:
            raise ValueError(f"the {name!r} reward needs a reader model (set reader.model)")
        lm, tokenizer, *rest = self.reader
        return HFOptionScorer(lm, tokenizer, base_only=bool(rest and rest[0]), **kwargs)


@dataclass(frozen=True)
class RewardSpec:
    """One registry entry; see the module docstring.

    ``build`` returns one reward function, or a list of ``(function, relative_weight)`` pairs for a reward logged as
    several components (InfoNCE's two directions); each is weighted ``rewards.weights.<name> × relative_weight``.

    Example:
    ```python
    >>> from bluerec.rewards.length import LengthPenalty, LengthPenaltyConfig
    >>> spec = RewardSpec("length_penalty", LengthPenaltyConfig, lambda cfg, ctx: LengthPenalty(cfg))
    >>> spec.config_from({"min_length": 2}).min_length
    2
    ```
    """

    name: str
    config: type[StrictModel]
    build: Callable[[Any, RewardContext], RewardFunc | Sequence[tuple[RewardFunc, float]]]
    columns: tuple[str, ...] = ()
    add_columns: Callable[[Any], Mapping[str, RowColumn]] | None = None
    dataset_options: Callable[[Any], Mapping[str, Any]] | None = None
    needs_reader: bool | Callable[[Any], bool] = False
    description: str = ""
    default_weight: float = 1.0

    def config_from(self, value: Any) -> StrictModel:
        """``rewards.<name>`` settings → the typed config; errors name the reward and its allowed settings."""
        if isinstance(value, self.config):
            return value
        if value is None:
            value = {}
        if isinstance(value, StrictModel):
            value = value.model_dump()
        try:
            return self.config.model_validate(value)
        except ValidationError as err:
            raise ValueError(f"rewards.{self.name}: {_short_errors(err, self.config)}") from None

    def reads_with_reader(self, config: Any) -> bool:
        """Whether the run's frozen reader must be loaded for this reward with these settings."""
        return bool(self.needs_reader(config) if callable(self.needs_reader) else self.needs_reader)

    def functions(self, config: Any, context: RewardContext, weight: float) -> list[tuple[RewardFunc, float]]:
        """The built reward functions with their final GRPO weights."""
        built = self.build(config, context)
        pairs = [(built, 1.0)] if callable(built) else list(built)
        return [(func, weight * float(w)) for func, w in pairs]


def _short_errors(err: ValidationError, model: type[StrictModel]) -> str:
    parts = []
    for item in err.errors():
        key = ".".join(str(p) for p in item.get("loc", ())) or "<root>"
        if item.get("type") == "extra_forbidden":
            parts.append(f"unknown setting {key!r}; allowed settings: {sorted(model.model_fields)}")
        else:
            parts.append(f"setting {key!r}: {item.get('msg', 'invalid value')} (got {item.get('input')!r})")
    return "; ".join(parts)


_REGISTRY: dict[str, RewardSpec | str] = dict(BUILTIN)


def register_reward(spec: RewardSpec, *, replace: bool = False) -> RewardSpec:
    """Add a reward to the registry (at the end of the order). ``replace`` allows overriding an existing name."""
    if not spec.name.isidentifier():
        raise ValueError(f"reward name {spec.name!r} must be a Python identifier (it is a YAML key and a log name)")
    if spec.name in {"enabled", "weights"}:
        raise ValueError(f"reward name {spec.name!r} is reserved by the rewards config")
    if spec.name in _REGISTRY and not replace:
        raise ValueError(f"a reward named {spec.name!r} is already registered (pass replace=True to override)")
    _REGISTRY[spec.name] = spec
    return spec


def unregister_reward(name: str) -> None:
    """Remove a reward added by :func:`register_reward` (built-ins cannot be removed)."""
    if name in BUILTIN:
        raise ValueError(f"{name!r} is a built-in reward")
    _REGISTRY.pop(name, None)


def reward_names() -> list[str]:
    """Every registered reward, in registry order."""
    return list(_REGISTRY)


def get_reward(name: str) -> RewardSpec:
    """The entry of ``name``; an unknown name is an error that lists the allowed ones."""
    entry = _REGISTRY.get(name)
    if entry is None:
        raise ValueError(f"unknown reward {name!r}; allowed values: {reward_names()}")
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        spec = getattr(importlib.import_module(module), attr)
        if not isinstance(spec, RewardSpec) or spec.name != name:
            raise TypeError(f"{entry} must be the RewardSpec of {name!r}")
        _REGISTRY[name] = entry = spec
    return entry


def reward_func_name(func: Any) -> str:
    """TRL's log name of a reward function (its ``__name__``); a clear error when it has none."""
    name = getattr(func, "__name__", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"reward function {func!r} has no __name__ (TRL logs rewards by it); wrap it in a def or "
                        "set func.__name__")
    return name
