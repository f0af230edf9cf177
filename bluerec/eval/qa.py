"""Personalized question answering: how useful is a profile as the *only* context a reader LM gets?

Two tasks, each an evaluator in the sentence-transformers style (one call → a dict of named metrics, with a
``primary_metric``), both called as ``evaluator(reader, contexts)`` with one context text per user:

- :class:`NextItemChoiceEvaluator` — the user's next item among ``C`` options (the target and ``C-1`` seeded
  distractors outside the user's history, built by :func:`~bluerec.rewards.multiple_choice.mc_question`, as the GRPO
  dataset's). An HF
  reader scores each option's length-normalised log-likelihood after the question (the reward's
  :class:`~bluerec.rewards.multiple_choice.HFOptionScorer`; deterministic) and picks the best → ``accuracy``.
- :class:`RatingEvaluator` — the reader is asked for the star rating the user gave the target item and answers in
  free text (greedy); :func:`parse_rating` reads "4", "4/5", "Rating: 4.5", "four stars", "★★★★"…; the absolute
  error is ``mae``/``rmse``, and an unparsable or out-of-scale answer counts at the *worst* error for that target,
  ``max(|y - lo|, |hi - y|)``, as LaMP scores it; ``unparsable_rate`` reports how often that happened.

:func:`run_qa` puts it together for a prepared dataset: a seeded user sample, contexts (raw ``history``, the
``template`` profile, or any profiles JSONL such as a zero-shot or BLUE profile), paired bootstrap intervals between
contexts on the same users, and a run folder with ``summary.json``, ``summary.md`` and per-user rows.

Example::

    >>> from bluerec.eval.qa import QAConfig, run_qa
    >>> summary = run_qa(QAConfig(dataset="data/prepared/all_beauty2023", max_users=50), "runs/qa")  # doctest: +SKIP
    >>> summary["results"]["template"]["choice"]["accuracy"]                                           # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import string
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import Field, field_validator, model_validator
from sentence_transformers.base.evaluation.evaluator import BaseEvaluator

from bluerec.config import StrictModel
from bluerec.data.errors import DataError
from bluerec.io import read_jsonl, write_json_atomic, write_jsonl_atomic, write_text_atomic
from bluerec.profiler.config import ProfilerConfig
from bluerec.profiler.template import raw_history_text, template_items_for, template_profile
from bluerec.rewards.multiple_choice import DEFAULT_QUESTION_TEMPLATE

if TYPE_CHECKING:
    from bluerec.data.dataset import Example, PreparedDataset

logger = logging.getLogger(__name__)

BUILTIN_CONTEXTS = ("history", "template")
# Of the phrasings tried with SmolLM2-135M-Instruct, this one gets a number back most often (instructions such as
# "answer with one digit" make it start a numbered list instead).
DEFAULT_RATING_TEMPLATE = (
    "{profile}\n\nThe shopper above bought: {item}\nHow many stars out of {hi:g} did they give it?"
)

# --------------------------------------------------------------------------------------------------------------
# Parsing and scoring (pure functions)

_NUMBER_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                 "nine": 9, "ten": 10}
_NUM = r"(\d+(?:[.,]\d+)?|" + "|".join(_NUMBER_WORDS) + r")"
_FRACTION = re.compile(_NUM + r"\s*(?:/|out of|of)\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_HALF = re.compile(_NUM + r"\s+and\s+a\s+half", re.IGNORECASE)
_PLAIN = re.compile(r"(?<![\w.\-])" + _NUM + r"(?![\w]|[.,]\d)", re.IGNORECASE)
_STARS = re.compile(r"^[\s★☆*]*$")
_LIST_MARKER = re.compile(r"^\s*\d+[.)]\s+(?=\S)")


def _number(token: str) -> float:
    token = token.lower()
    return float(_NUMBER_WORDS[token]) if token in _NUMBER_WORDS else float(token.replace(",", "."))


def parse_rating(text: str | None, scale: tuple[float, float] = (1.0, 5.0)) -> float | None:
    """The rating in a reader's free-text answer, or ``None`` when there is none on the scale.

    Reads the first of: a fraction ("4/5", "8 out of 10" — rescaled to the scale's top when the denominator
    differs), "four and a half", a plain number or number word ("Rating: 4.5", "four stars"), or a run of star
    characters ("★★★★☆" counts the filled ones). A value outside ``scale`` is unparsable (``None``). A leading list
    marker ("1. ", "2) ") is not an answer: only the text after it is read (small models like to start a list).

    Example:
    ```python
    >>> parse_rating("Rating: 4.5"), parse_rating("4/5"), parse_rating("four stars"), parse_rating("I don't know")
    (4.5, 4.0, 4.0, None)
    ```
    """
    if not text:
        return None
    lo, hi = scale
    text = _LIST_MARKER.sub("", text, count=1)
    value: float | None = None
    if (m := _FRACTION.search(text)) is not None:
        num, den = _number(m.group(1)), float(m.group(2))
        value = num if den == hi else (num / den * hi if den > 0 else None)
    elif (m := _HALF.search(text)) is not None:
        value = _number(m.group(1)) + 0.5
    elif (m := _PLAIN.search(text)) is not None:
        value = _number(m.group(1))
    elif _STARS.match(text) and "★" in text:
        value = float(text.count("★"))
    if value is None or not math.isfinite(value) or not lo <= value <= hi:
        return None
    return value


def worst_error(target: float, scale: tuple[float, float] = (1.0, 5.0)) -> float:
    """The largest possible absolute error for ``target`` on ``scale`` (what an unparsable answer costs)."""
    lo, hi = scale
    return max(target - lo, hi - target)


def rating_errors(predictions: Sequence[float | None], targets: Sequence[float],
                  scale: tuple[float, float] = (1.0, 5.0)) -> np.ndarray:
    """Absolute error per user; a missing prediction (``None``) counts at :func:`worst_error`."""
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets")
    return np.array([worst_error(float(y), scale) if p is None else abs(float(p) - float(y))
                     for p, y in zip(predictions, targets)], dtype=np.float64)


def rating_metrics(predictions: Sequence[float | None], targets: Sequence[float],
                   scale: tuple[float, float] = (1.0, 5.0)) -> dict[str, float]:
    """``mae``, ``rmse`` (unparsable answers at the worst error), ``unparsable_rate`` and ``n``."""
    errors = rating_errors(predictions, targets, scale)
    n = len(errors)
    if n == 0:
        return {"mae": math.nan, "rmse": math.nan, "unparsable_rate": math.nan, "n": 0}
    return {"mae": float(errors.mean()), "rmse": float(np.sqrt((errors ** 2).mean())),
            "unparsable_rate": float(sum(p is None for p in predictions) / n), "n": n}


_LETTER = re.compile(r"\b([A-Z])\b")


def parse_choice(text: str | None, num_choices: int) -> int | None:
    """The option a free-text answer picks ("B", "(b)", "Answer: C", "2"), 0-based, or ``None``.

    Example:
    ```python
    >>> parse_choice("Answer: (C) the red lipstick", 4), parse_choice("2", 4), parse_choice("none", 4)
    (2, 1, None)
    ```
    """
    if not text:
        return None
    letters = string.ascii_uppercase[:num_choices]
    for m in _LETTER.finditer(text.upper()):
        if m.group(1) in letters and (m.group(1) != "A" or re.search(r"(?<![\w'])A(?![\w'])", text)):
            return letters.index(m.group(1))
    m = re.search(r"(?<![\d.])(\d+)(?![\d.])", text)
    if m and 1 <= int(m.group(1)) <= num_choices:
        return int(m.group(1)) - 1
    return None


def choice_accuracy(chosen: Sequence[int | None] | np.ndarray, answers: Sequence[int] | np.ndarray) -> np.ndarray:
    """Per-user correctness (1.0/0.0); a missing choice is wrong."""
    return np.array([float(c is not None and c >= 0 and int(c) == int(a)) for c, a in zip(chosen, answers)])


# --------------------------------------------------------------------------------------------------------------
# Readers


@runtime_checkable
class Reader(Protocol):
    """What the evaluators need from a reader LM."""

    name: str

    def choose(self, contexts: list[str], options: list[list[str]]) -> list[int | None]:
        """The picked option index per context (``None`` = no usable answer)."""
        ...

    def answer(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        """A greedy free-text answer to each prompt (a user turn)."""
        ...


def _lettered(context: str, options: Sequence[str]) -> str:
    listed = "\n".join(f"{string.ascii_uppercase[i]}. {o}" for i, o in enumerate(options))
    return f"{context}\n\nOptions:\n{listed}\nAnswer with the letter of one option."


class HFReader:
    """A Hugging Face causal LM as reader: options by log-likelihood, answers by greedy generation.

    Built around a loaded :class:`~bluerec.profiler.backends.hf.HFProfiler` (``load_profiler``), so the reader takes
    the same names, paths and settings as a profiler. Option ``j`` after ``context`` scores its mean token
    log-probability (:class:`~bluerec.rewards.multiple_choice.HFOptionScorer`), prefixed by ``option_prefix``.

    Example::

        >>> from bluerec.profiler.loader import load_profiler
        >>> reader = HFReader(load_profiler("smollm2-135m-instruct"))        # doctest: +SKIP
        >>> reader.choose(["Question: a fruit?\\nAnswer:"], [["banana", "brick"]])  # doctest: +SKIP
        [0]
    """

    def __init__(self, profiler: Any, *, batch_size: int = 8, max_length: int = 1024, option_prefix: str = " ") -> None:
        from bluerec.rewards.multiple_choice import HFOptionScorer

        self.profiler = profiler
        self.name = str(getattr(profiler, "name", None) or "hf")
        self.scorer = HFOptionScorer(profiler.model, profiler.tokenizer, batch_size=batch_size, max_length=max_length,
                                     length_normalise=True)
        self.option_prefix = option_prefix

    def choose(self, contexts: list[str], options: list[list[str]]) -> list[int | None]:
        if not contexts:
            return []
        scores = self.scorer.score(contexts, [[self.option_prefix + o for o in row] for row in options])
        return [int(np.argmax(row)) if np.isfinite(row).any() else None for row in scores]

    def answer(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        chats = [[{"role": "user", "content": p}] for p in prompts]
        out = self.profiler.generate(chats, num_samples=1, max_new_tokens=max_new_tokens, do_sample=False, seed=0)
        return [o[0] for o in out]


class ChatReader:
    """A reader that can only generate (an OpenAI-compatible endpoint): the options are listed with letters and
    the letter of the answer is parsed (:func:`parse_choice`); an answer without one is wrong."""

    def __init__(self, profiler: Any, *, max_new_tokens: int = 8) -> None:
        self.profiler = profiler
        self.name = str(getattr(profiler, "model", None) or getattr(profiler, "name", None) or "chat")
        self.max_new_tokens = max_new_tokens
        self.last_raw: list[str] = []

    def choose(self, contexts: list[str], options: list[list[str]]) -> list[int | None]:
        raw = self.answer([_lettered(c, o) for c, o in zip(contexts, options)], self.max_new_tokens)
        self.last_raw = raw
        return [parse_choice(r, len(o)) for r, o in zip(raw, options)]

    def answer(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        chats = [[{"role": "user", "content": p}] for p in prompts]
        out = self.profiler.generate(chats, num_samples=1, max_new_tokens=max_new_tokens, do_sample=False, seed=0)
        return [o[0] for o in out]


def load_reader(config: ProfilerConfig, *, batch_size: int = 8, max_length: int = 1024) -> Reader:
    """The reader of ``config``: ``hf``/``micro`` → :class:`HFReader`, ``openai`` → :class:`ChatReader`."""
    from bluerec.profiler.loader import load_profiler

    profiler = load_profiler(config)
    if config.backend == "openai":
        return ChatReader(profiler)
    if config.backend == "vllm":
        raise ValueError("the QA reader scores options with log-likelihoods: use backend 'hf' (or 'openai')")
    return HFReader(profiler, batch_size=batch_size, max_length=max_length)


# --------------------------------------------------------------------------------------------------------------
# Evaluators


def _progress_chunks(n: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(s + size, n)) for s in range(0, n, size)]


class NextItemChoiceEvaluator(BaseEvaluator):
    """Next-item multiple choice: ``evaluator(reader, contexts)`` → ``{"accuracy", "n"}``.

    Args:
        options: per user, ``C`` option texts (the target among them).
        answers: per user, the target's index in its options.
        question_template: the reader's context, with ``{profile}`` (default: the multiple-choice reward's question).
        name: metric-name prefix, as in sentence-transformers.
        chunk_size / progress: users per reader call, and a callback ``progress(done, total)``.

    ``last_correct`` keeps the per-user correctness of the last call (for paired intervals).

    Example::

        >>> ev = NextItemChoiceEvaluator([["red lipstick", "garden hose"]], [0])
        >>> ev(reader, ["Loves bold lip colours."])                   # doctest: +SKIP
        {'accuracy': 1.0, 'n': 1}
    """

    def __init__(self, options: Sequence[Sequence[str]], answers: Sequence[int], *,
                 question_template: str = DEFAULT_QUESTION_TEMPLATE, name: str = "", chunk_size: int = 32,
                 progress: Callable[[int, int], None] | None = None) -> None:
        super().__init__()
        if len(options) != len(answers):
            raise ValueError(f"{len(options)} option lists for {len(answers)} answers")
        for i, (opts, a) in enumerate(zip(options, answers)):
            if not 0 <= int(a) < len(opts):
                raise ValueError(f"row {i}: answer {a} outside its {len(opts)} options")
        if "{profile}" not in question_template:
            raise ValueError("question_template must contain {profile}")
        self.options = [list(o) for o in options]
        self.answers = np.asarray(answers, dtype=np.int64)
        self.question_template = question_template
        self.name = name
        self.chunk_size = chunk_size
        self.progress = progress
        self.primary_metric = "accuracy"
        self.greater_is_better = True
        self.last_correct = np.zeros(0)
        self.last_chosen: list[int | None] = []
        self.users: list[int] | None = None  # which of the setup's users it asks about (None: all, in order)

    def per_user(self) -> np.ndarray:
        """The last call's per-user score (1.0 correct / 0.0 wrong), for paired intervals."""
        return self.last_correct.copy()

    def user_rows(self) -> list[dict[str, Any]]:
        """The last call's per-user fields for the run's rows."""
        return [{"options": o, "answer": int(a), "chosen": c}
                for o, a, c in zip(self.options, self.answers, self.last_chosen)]

    def contexts_for(self, profiles: Sequence[str]) -> list[str]:
        return [self.question_template.replace("{profile}", (p or "").strip()) for p in profiles]

    def __call__(self, model: Reader, contexts: Sequence[str] | None = None, output_path: str | None = None,  # type: ignore[override]
                 epoch: int = -1, steps: int = -1) -> dict[str, float]:
        if contexts is None or len(contexts) != len(self.options):
            raise ValueError(f"need one context per user ({len(self.options)}), got "
                             f"{None if contexts is None else len(contexts)}")
        prompts = self.contexts_for(contexts)
        chosen: list[int | None] = []
        for start, stop in _progress_chunks(len(prompts), self.chunk_size):
            chosen.extend(model.choose(prompts[start:stop], self.options[start:stop]))
            if self.progress is not None:
                self.progress(stop, len(prompts))
        self.last_chosen = chosen
        self.last_correct = choice_accuracy(chosen, self.answers)
        metrics = {"accuracy": float(self.last_correct.mean()) if len(chosen) else math.nan, "n": len(chosen)}
        return self.prefix_name_to_metrics(metrics, self.name)


class RatingEvaluator(BaseEvaluator):
    """Rating prediction of the target item: ``evaluator(reader, contexts)`` → ``{"mae", "rmse",
    "unparsable_rate", "n"}`` (primary ``mae``, lower is better).

    Args:
        items: per user, the target item's text shown to the reader.
        ratings: per user, the rating the user gave it.
        scale: ``(lo, hi)`` of the rating scale (default 1–5 stars).
        prompt_template: with ``{profile}`` and ``{item}``, optionally ``{lo}`` and ``{hi}``.
        max_new_tokens: length of the reader's answer.

    ``last_answers`` / ``last_predictions`` / ``last_errors`` keep the last call's per-user values.

    Example::

        >>> ev = RatingEvaluator(["Matte lipstick, red"], [4.0])
        >>> ev(reader, ["Loves bold lip colours."])                   # doctest: +SKIP
        {'mae': 1.0, 'rmse': 1.0, 'unparsable_rate': 0.0, 'n': 1}
    """

    def __init__(self, items: Sequence[str], ratings: Sequence[float], *, scale: tuple[float, float] = (1.0, 5.0),
                 prompt_template: str = DEFAULT_RATING_TEMPLATE, max_new_tokens: int = 12, name: str = "",
                 chunk_size: int = 32, progress: Callable[[int, int], None] | None = None) -> None:
        super().__init__()
        if len(items) != len(ratings):
            raise ValueError(f"{len(items)} items for {len(ratings)} ratings")
        lo, hi = scale
        if not lo < hi:
            raise ValueError(f"scale must be (lo, hi) with lo < hi, got {scale}")
        bad = [i for i, r in enumerate(ratings) if r is None or not lo <= float(r) <= hi]
        if bad:
            raise ValueError(f"{len(bad)} ratings outside the scale {scale} (first: row {bad[0]}, {ratings[bad[0]]!r})")
        self.items = list(items)
        self.ratings = np.asarray(ratings, dtype=np.float64)
        self.scale = (float(lo), float(hi))
        self.prompt_template = prompt_template
        self.max_new_tokens = max_new_tokens
        self.name = name
        self.chunk_size = chunk_size
        self.progress = progress
        self.primary_metric = "mae"
        self.greater_is_better = False
        self.last_answers: list[str] = []
        self.last_predictions: list[float | None] = []
        self.last_errors = np.zeros(0)
        self.users: list[int] | None = None  # which of the setup's users it asks about (None: all, in order)

    def per_user(self) -> np.ndarray:
        """The last call's per-user absolute error (unparsable answers at the worst), for paired intervals."""
        return self.last_errors.copy()

    def user_rows(self) -> list[dict[str, Any]]:
        """The last call's per-user fields for the run's rows."""
        return [{"rating": float(y), "rating_answer": a, "rating_parsed": p, "rating_error": float(e)}
                for y, a, p, e in zip(self.ratings, self.last_answers, self.last_predictions, self.last_errors)]

    def prompts_for(self, profiles: Sequence[str]) -> list[str]:
        lo, hi = self.scale
        return [self.prompt_template.format(profile=(p or "").strip(), item=item, lo=lo, hi=hi)
                for p, item in zip(profiles, self.items)]

    def __call__(self, model: Reader, contexts: Sequence[str] | None = None, output_path: str | None = None,  # type: ignore[override]
                 epoch: int = -1, steps: int = -1) -> dict[str, float]:
        if contexts is None or len(contexts) != len(self.items):
            raise ValueError(f"need one context per user ({len(self.items)}), got "
                             f"{None if contexts is None else len(contexts)}")
        prompts = self.prompts_for(contexts)
        answers: list[str] = []
        for start, stop in _progress_chunks(len(prompts), self.chunk_size):
            answers.extend(model.answer(prompts[start:stop], self.max_new_tokens))
            if self.progress is not None:
                self.progress(stop, len(prompts))
        self.last_answers = answers
        self.last_predictions = [parse_rating(a, self.scale) for a in answers]
        self.last_errors = rating_errors(self.last_predictions, self.ratings, self.scale)
        return self.prefix_name_to_metrics(rating_metrics(self.last_predictions, self.ratings, self.scale), self.name)


# --------------------------------------------------------------------------------------------------------------
# Questions and contexts from a prepared dataset


def select_users(examples: list[Example], max_users: int | None, seed: int) -> list[Example]:
    """All examples, or a seeded sample of ``max_users`` (in file order) — the same draw as ``bluerec evaluate``."""
    if max_users is not None and max_users < len(examples):
        pick = np.sort(np.random.default_rng(seed).choice(len(examples), size=max_users, replace=False))
        examples = [examples[i] for i in pick]
    return examples


def builtin_contexts(kind: str, dataset: PreparedDataset, examples: Sequence[Example],
                     history_items: int = 20) -> list[str]:
    """``"history"``: the last ``history_items`` titles joined by `` | ``; ``"template"``: the template profile."""
    items = dataset.items
    index = items.index
    if kind == "history":
        out = []
        for ex in examples:
            ids = dataset.full_history(ex)[-history_items:]
            out.append(raw_history_text([items.titles[index[i]] or items.texts[index[i]] for i in ids if i in index],
                                        n=history_items))
        return out
    if kind == "template":
        return [template_profile(template_items_for(dataset, ex)[-history_items:]) for ex in examples]
    raise ValueError(f"unknown context {kind!r}; built in: {list(BUILTIN_CONTEXTS)} (or a profiles JSONL)")


def profile_contexts(path: str | Path, examples: Sequence[Example]) -> list[str]:
    """Profiles JSONL (rows with ``user_id`` and ``profile``) in the order of ``examples``; all users required."""
    by_user: dict[str, str] = {}
    for line, row in enumerate(read_jsonl(path), start=1):
        if "user_id" not in row:
            raise DataError(path, line, "user_id", "missing")
        by_user[str(row["user_id"])] = str(row.get("profile") or "")
    missing = [ex.user_id for ex in examples if ex.user_id not in by_user]
    if missing:
        raise DataError(path, None, "user_id", f"{len(missing)} evaluated users have no profile (e.g. {missing[0]!r})")
    return [by_user[ex.user_id] for ex in examples]


# --------------------------------------------------------------------------------------------------------------
# The run


class QAConfig(StrictModel):
    """A personalized-QA run.

    Data: dataset (prepared folder), split (``test`` default, or ``valid``), max_users (seeded sample; None = all),
    seed (user sample, distractors, bootstrap).
    Contexts: contexts (built-in: ``history``, ``template``), profiles (``{name: profiles.jsonl}``, e.g. a zero-shot
    or BLUE profile file), history_items (N newest items for the built-in contexts, default 20).
    Reader: reader (a :class:`ProfilerConfig` or a model name/path; default ``smollm2-135m-instruct``), batch_size
    (option pairs per forward pass), max_length (tokens).
    Tasks: tasks (registered QA tasks of :mod:`bluerec.eval.tasks`: ``choice`` and/or ``rating``), num_choices
    (C = 4), option_chars (option text length), rating_scale ((1, 5)), max_new_tokens (answer length, 12);
    task_settings (``{task: {key: value}}``) sets any other key of a task's config, or configures a newly
    registered task.
    Intervals: resamples (paired bootstrap resamples, 10,000; 0 = none), confidence (0.95).
    """

    dataset: Path
    split: Literal["valid", "test"] = "test"
    max_users: int | None = Field(None, ge=1)
    seed: int = 0
    contexts: list[str] = Field(default_factory=lambda: list(BUILTIN_CONTEXTS))
    profiles: dict[str, Path] = Field(default_factory=dict)
    history_items: int = Field(20, ge=1)
    reader: ProfilerConfig = Field(default_factory=lambda: ProfilerConfig(model="smollm2-135m-instruct"))
    batch_size: int = Field(8, ge=1)
    max_length: int = Field(1024, ge=16)
    tasks: list[str] = Field(default_factory=lambda: ["choice", "rating"])
    task_settings: dict[str, dict[str, Any]] = Field(default_factory=dict)
    num_choices: int = Field(4, ge=2, le=26)
    option_chars: int = Field(100, ge=10)
    rating_scale: tuple[float, float] = (1.0, 5.0)
    max_new_tokens: int = Field(12, ge=1)
    resamples: int = Field(10_000, ge=0)
    confidence: float = Field(0.95, gt=0, lt=1)

    @field_validator("reader", mode="before")
    @classmethod
    def _reader(cls, value: Any) -> Any:
        return ProfilerConfig.coerce(value)

    @field_validator("contexts")
    @classmethod
    def _contexts(cls, value: list[str]) -> list[str]:
        unknown = [c for c in value if c not in BUILTIN_CONTEXTS]
        if unknown:
            raise ValueError(f"unknown contexts {unknown}; built in: {list(BUILTIN_CONTEXTS)} "
                             "(give profile files as profiles: {name: path})")
        return list(dict.fromkeys(value))

    @field_validator("tasks")
    @classmethod
    def _tasks(cls, value: list[str]) -> list[str]:
        from bluerec.eval.tasks import task_names

        known = task_names("qa")
        unknown = [t for t in value if t not in known]
        if unknown:
            raise ValueError(f"unknown QA tasks {unknown}; registered: {known}")
        return list(dict.fromkeys(value))

    def task_config(self, task: str) -> dict[str, Any]:
        """The settings of ``task``'s config (:mod:`bluerec.eval.tasks.qa`): this config's flat keys, then
        ``task_settings[task]``."""
        flat: dict[str, Any] = {}
        if task == "choice":
            flat = {"num_choices": self.num_choices, "option_chars": self.option_chars,
                    "chunk_size": 4 * self.batch_size}
        elif task == "rating":
            flat = {"scale": self.rating_scale, "max_new_tokens": self.max_new_tokens,
                    "option_chars": self.option_chars, "chunk_size": 4 * self.batch_size}
        return {**flat, **self.task_settings.get(task, {})}

    @model_validator(mode="after")
    def _check(self) -> QAConfig:
        clash = sorted(set(self.contexts) & set(self.profiles))
        if clash:
            raise ValueError(f"profile names {clash} clash with built-in contexts")
        if not self.contexts and not self.profiles:
            raise ValueError("no context to evaluate: give contexts and/or profiles")
        if not self.tasks:
            raise ValueError("tasks must name at least one registered QA task (choice, rating)")
        stray = sorted(set(self.task_settings) - set(self.tasks))
        if stray:
            raise ValueError(f"task_settings for {stray}, which are not in tasks {self.tasks}")
        lo, hi = self.rating_scale
        if not lo < hi:
            raise ValueError(f"rating_scale must be (lo, hi) with lo < hi, got {self.rating_scale}")
        return self

    @property
    def context_names(self) -> list[str]:
        return [*self.contexts, *self.profiles]


def pairwise_intervals(per_user: dict[str, np.ndarray], *, resamples: int, seed: int,
                       confidence: float = 0.95) -> list[dict[str, Any]]:
    """Paired bootstrap interval of ``b - a`` for every pair of contexts (in the given order), on the same users."""
    from bluerec.eval.bootstrap import paired_bootstrap

    out = []
    for a, b in itertools.combinations(per_user, 2):
        ci = paired_bootstrap(per_user[b], per_user[a], n_resamples=resamples, confidence=confidence, seed=seed)
        out.append({"a": a, "b": b, **ci.to_dict(), "text": ci.format()})
    return out


def run_qa(config: QAConfig, out_dir: str | Path, *, reader: Reader | None = None,
           say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Evaluate every context on both tasks and write ``summary.json``, ``summary.md`` and ``rows/<context>.jsonl``
    to ``out_dir``; returns the summary. ``reader`` overrides ``config.reader`` (e.g. one already loaded)."""
    from bluerec.data.dataset import PreparedDataset

    say = say or logger.info
    start = time.perf_counter()
    out_dir = Path(out_dir)
    dataset = PreparedDataset(config.dataset).check()
    examples = select_users(dataset.split(config.split), config.max_users, config.seed)
    if not examples:
        raise DataError(config.dataset, None, config.split, "no examples in this split")
    contexts: dict[str, list[str]] = {}
    for name in config.contexts:
        contexts[name] = builtin_contexts(name, dataset, examples, config.history_items)
    for name, path in config.profiles.items():
        contexts[name] = profile_contexts(path, examples)

    # Every task is a registered evaluator (bluerec.eval.tasks), built once for these users.
    from bluerec.eval.tasks import EvalSetup, build_evaluator

    setup = EvalSetup(dataset, examples, config.split, seed=config.seed)
    evaluators: dict[str, Any] = {}
    for task in config.tasks:
        evaluators[task] = build_evaluator(task, setup, config.task_config(task))
        evaluators[task].progress = _progress(say, task)
    asked = {task: ev.users if ev.users is not None else list(range(len(examples))) for task, ev in evaluators.items()}
    rated = [i for i, ex in enumerate(examples) if ex.rating is not None]
    skipped = {task: len(examples) - len(users) for task, users in asked.items() if len(users) < len(examples)}
    for task, n in skipped.items():
        say(f"{task} task: {n} of {len(examples)} users lack what it asks about (e.g. a rating for their target) "
            "and are left out of it")

    if reader is None:
        say(f"loading reader {config.reader.model} ({config.reader.backend})")
        reader = load_reader(config.reader, batch_size=config.batch_size, max_length=config.max_length)
    results: dict[str, dict[str, Any]] = {}
    per_user: dict[str, dict[str, np.ndarray]] = {task: {} for task in evaluators}
    timings: dict[str, float] = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, texts in contexts.items():
        t0 = time.perf_counter()
        results[name] = {}
        rows: list[dict[str, Any]] = [{"user_id": ex.user_id, "target": ex.item_id, "context": t}
                                      for ex, t in zip(examples, texts)]
        for task, ev in evaluators.items():
            results[name][task] = ev(reader, [texts[i] for i in asked[task]])
            per_user[task][name] = ev.per_user()
            for i, fields in zip(asked[task], ev.user_rows()):
                rows[i].update(fields)
        timings[name] = round(time.perf_counter() - t0, 1)
        write_jsonl_atomic(out_dir / "rows" / f"{name}.jsonl", rows)
        say(f"{name}: " + ", ".join(f"{task} {_brief(m)}" for task, m in results[name].items()) + f" ({timings[name]}s)")

    intervals = {}
    if config.resamples and len(contexts) > 1:
        for task, values in per_user.items():
            intervals[task] = pairwise_intervals(values, resamples=config.resamples, seed=config.seed,
                                                 confidence=config.confidence)
    summary = {
        "task": "personalized_qa",
        "dataset": str(config.dataset), "split": config.split, "n_users": len(examples),
        "n_rated": len(rated), "reader": getattr(reader, "name", config.reader.model),
        "config": config.model_dump(mode="json"),
        "results": results, "intervals": intervals, "seconds": timings,
        "primary_metrics": {task: {"metric": ev.primary_metric, "greater_is_better": ev.greater_is_better}
                            for task, ev in evaluators.items()},
        "wall_s": round(time.perf_counter() - start, 1),
    }
    write_json_atomic(out_dir / "summary.json", summary)
    write_text_atomic(out_dir / "summary.md", summary_markdown(summary))
    return summary


def _progress(say: Callable[[str], None], task: str) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        say(f"  {task}: {done}/{total} users")
    return report


def _brief(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())


def summary_markdown(summary: dict[str, Any]) -> str:
    """The results table (one row per context) and the paired intervals, as markdown."""
    res = summary["results"]
    # other registered tasks: one column with their primary metric
    primary = summary.get("primary_metrics") or {}
    extra = [t for t in dict.fromkeys(t for by in res.values() for t in by) if t not in ("choice", "rating")]
    header = ["context", "MC accuracy", "rating MAE", "rating RMSE", "unparsable",
              *(f"{t} {(primary.get(t) or {}).get('metric', '')}".strip() for t in extra)]
    lines = [f"Personalized QA on {summary['dataset']} ({summary['split']}, {summary['n_users']} users, "
             f"{summary['n_rated']} rated; reader {summary['reader']})", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, by_task in res.items():
        ch, ra = by_task.get("choice", {}), by_task.get("rating", {})
        cells = [f"{ch['accuracy']:.3f}" if ch else "—", f"{ra['mae']:.3f}" if ra else "—",
                 f"{ra['rmse']:.3f}" if ra else "—", f"{ra['unparsable_rate']:.1%}" if ra else "—"]
        for t in extra:
            value = (by_task.get(t) or {}).get((primary.get(t) or {}).get("metric", ""))
            cells.append(f"{value:.3f}" if isinstance(value, (int, float)) else "—")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    conf = summary["config"].get("confidence", 0.95)
    for task, rows in summary.get("intervals", {}).items():
        better = (primary.get(task) or {}).get("greater_is_better", task == "choice")
        what = "accuracy" if task == "choice" else ("higher = better" if better else "negative = better")
        what = "absolute error (negative = better)" if task == "rating" else what
        lines += ["", f"Paired {conf:.0%} bootstrap intervals, {task} ({what}), b − a:", ""]
        lines += [f"- {r['b']} − {r['a']}: {r['text']}" for r in rows]
    return "\n".join(lines) + "\n"
