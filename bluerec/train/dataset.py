"""The GRPO dataset: one row per (user, train target), built from a prepared dataset's **train** split.

Columns (TRL passes every column but ``prompt`` to the reward functions as keyword lists):

| column          | type                  | when                         | meaning                                             |
|-----------------|-----------------------|------------------------------|-----------------------------------------------------|
| `prompt`        | list of messages      | always                       | system + user chat from the profiler prompt builder |
| `user_id`       | str                   | always                       | groups the G completions of a user                  |
| `target_item`   | str                   | always                       | id of the row's next item (the positive)            |
| `history_items` | list[str]             | always                       | the user's full history before the target           |
| `negatives`     | list[str]             | ``negatives="fixed"``        | K seeded negatives outside history and target       |
| `mc_options`    | list[str] (C)         | ``mc_choices`` given         | target text + C-1 seeded distractors, shuffled      |
| `mc_answer`     | int                   | ``mc_choices`` given         | index of the target in `mc_options`                 |
| (a reward's)    | any                   | ``columns`` given            | e.g. `target_text` (rlpf), `history_text` (rlaif)   |

Everything is a pure function of the dataset, the configs and the seed: every row draws from its own generator,
seeded by ``(seed, user, target, purpose)``, so a row's negatives and options do not depend on which other rows
were selected or in which order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bluerec.profiler.prompts import (
    PromptConfig,
    build_messages,
    context_for,
    fit_to_budget,
    history_items_for,
)
from bluerec.rewards.embedding import hash_key, sample_negatives
from bluerec.rewards.multiple_choice import mc_question
from bluerec.rewards.registry import RowInfo
from bluerec.train.config import RLDataConfig

if TYPE_CHECKING:
    from datasets import Dataset

    from bluerec.data.dataset import Example, PreparedDataset

_NEGATIVES_SALT = 1
_OPTIONS_SALT = 2
_SAMPLE_SALT = 3


def row_generator(seed: int, user_id: str, target: str, salt: int) -> np.random.Generator:
    """The generator of one row and one purpose (negatives, options): independent of every other row."""
    return np.random.default_rng([seed, salt, hash_key(user_id), hash_key(target)])


def select_train_rows(
    examples: Sequence[Example], config: RLDataConfig, max_examples: int | None = None
) -> list[Example]:
    """The train rows that become prompts, in dataset order.

    ``rows="latest"`` keeps each user's ``rows_per_user`` rows with the highest ``seq``; ``"all"`` keeps every row.
    Rows with fewer than ``min_history`` history items are dropped; ``max_examples`` then keeps a seeded sample.
    """
    rows = [ex for ex in examples if len(ex.history) >= config.min_history]
    if config.rows == "latest":
        by_user: dict[str, list[int]] = {}
        for i, ex in enumerate(rows):
            by_user.setdefault(ex.user_id, []).append(i)
        keep: set[int] = set()
        for idx in by_user.values():
            idx.sort(key=lambda i: rows[i].seq)
            keep.update(idx[-config.rows_per_user :])
        rows = [ex for i, ex in enumerate(rows) if i in keep]
    if max_examples is not None and len(rows) > max_examples:
        rng = np.random.default_rng([config.seed, _SAMPLE_SALT])
        pick = np.sort(rng.choice(len(rows), size=max_examples, replace=False))
        rows = [rows[i] for i in pick]
    return rows


def build_rl_dataset(
    dataset: PreparedDataset,
    config: RLDataConfig | None = None,
    prompt_config: PromptConfig | None = None,
    *,
    max_examples: int | None = None,
    count_tokens: Callable[[str], int] | None = None,
    num_negatives: int | None = None,
    mc_choices: int | None = None,
    render: Callable[[list[dict]], list[dict] | str] | None = None,
    columns: Mapping[str, Callable[[RowInfo], Any]] | None = None,
) -> Dataset:
    """The GRPO training dataset of a prepared dataset's train split (see the module docstring for the columns).

    Args:
        dataset: the prepared dataset.
        config: :class:`~bluerec.train.config.RLDataConfig` (row selection, negatives, options, seed).
        prompt_config: how a history becomes a prompt.
        max_examples: keep a seeded sample of at most this many rows.
        count_tokens: the profiler's token counter; prompts are then fit to ``prompt_config.max_prompt_tokens``
            (without it only the item and character limits apply).
        num_negatives: K; with ``config.negatives == "fixed"`` a ``negatives`` column of K items is written.
        mc_choices: C; when given, ``mc_options``/``mc_answer`` columns with C options are written.
        render: turns each chat into what the trainer's tokenizer accepts (e.g. the system message merged into the
            user turn, or a plain string for a tokenizer without a chat template); default: the chat as is.
        columns: extra columns, ``name -> f(RowInfo) -> value`` (the ``add_columns`` of the enabled rewards'
            registry entries, :mod:`bluerec.rewards.registry`); a name that clashes with a built-in column is an
            error.

    Example:
    ```python
    >>> ds = build_rl_dataset(PreparedDataset("data/prepared/beauty2014"), RLDataConfig(seed=0),
    ...                       max_examples=2000, mc_choices=4)
    >>> ds.column_names
    ['prompt', 'user_id', 'target_item', 'history_items', 'mc_options', 'mc_answer']
    ```
    """
    from datasets import Dataset

    config = config or RLDataConfig()
    prompt_config = prompt_config or PromptConfig()
    items = dataset.items
    index = items.index
    rows = select_train_rows(dataset.split("train"), config, max_examples)
    if not rows:
        raise ValueError(f"{dataset.root}: no train rows left (min_history={config.min_history})")
    fixed_negatives = config.negatives == "fixed" and num_negatives is not None and num_negatives > 0
    if mc_choices is not None and mc_choices < 2:
        raise ValueError(f"mc_choices must be >= 2, got {mc_choices}")
    pop_weights = None
    if config.mc_distractors == "popularity":
        pop_weights = np.asarray(items.popularity, dtype=np.float64)

    cols: dict[str, list[Any]] = {"prompt": [], "user_id": [], "target_item": [], "history_items": []}
    if fixed_negatives:
        cols["negatives"] = []
    if mc_choices is not None:
        cols["mc_options"] = []
        cols["mc_answer"] = []
    extra = dict(columns or {})
    clash = sorted(set(extra) & (set(cols) | {"negatives", "mc_options", "mc_answer"}))
    if clash:
        raise ValueError(f"extra dataset columns {clash} clash with built-in columns")
    for name in extra:
        cols[name] = []
    for ex in rows:
        if ex.item_id not in index:
            raise KeyError(f"{dataset.root}: train target {ex.item_id!r} of user {ex.user_id!r} is not in items")
        history = history_items_for(dataset, ex, field=prompt_config.item_field)
        context = context_for(dataset, ex, prompt_config, "train")  # never counts the train targets it serves
        if count_tokens is not None:
            messages = fit_to_budget(history, prompt_config, count_tokens, context)
        else:
            messages = build_messages(history, prompt_config, context)
        full_history = [str(i) for i in dataset.full_history(ex)]
        target_row = index[ex.item_id]
        exclude = {index[i] for i in full_history if i in index} | {target_row}
        chat = [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]
        cols["prompt"].append(render(chat) if render is not None else chat)
        cols["user_id"].append(str(ex.user_id))
        cols["target_item"].append(str(ex.item_id))
        cols["history_items"].append(full_history)
        if fixed_negatives:
            rng = row_generator(config.seed, ex.user_id, ex.item_id, _NEGATIVES_SALT)
            neg = sample_negatives(rng, len(items), int(num_negatives), exclude)
            cols["negatives"].append([items.ids[i] for i in neg.tolist()])
        if mc_choices is not None:
            rng = row_generator(config.seed, ex.user_id, ex.item_id, _OPTIONS_SALT)
            try:
                options, answer = mc_question(rng, items, target_row, exclude, mc_choices, config.mc_item_field,
                                              config.mc_option_chars, pop_weights)
            except ValueError as err:
                raise ValueError(f"user {ex.user_id!r}: {err} (multiple_choice.num_choices)") from None
            cols["mc_options"].append(options)
            cols["mc_answer"].append(answer)
        if extra:
            info = RowInfo(dataset, ex, target_row, full_history, config.seed)
            for name, make in extra.items():
                cols[name].append(make(info))
    return Dataset.from_dict(cols)
