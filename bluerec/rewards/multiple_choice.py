"""Text-space reward: can a frozen reader LM pick the user's next item from the profile alone?

The dataset builder precomputes, per example, ``C`` candidate item texts (the true next item and ``C-1`` seeded
distractors, shuffled: :func:`build_mc_options`). The reward is the reader's probability of the true item, where each
option is scored by its (length-normalised) log-likelihood as a continuation of ``profile + question`` and the scores
are soft-maxed over the options.
"""

from __future__ import annotations

import contextlib
import math
import string
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, field_validator

from bluerec.config import StrictModel
from bluerec.rewards.embedding import masked_log_softmax
from bluerec.rewards.protocols import OptionScorer
from bluerec.rewards.text import completion_texts, is_degenerate

DEFAULT_QUESTION_TEMPLATE = (
    "Here is a description of a shopper:\n{profile}\n\n"
    "Question: Which product will this shopper buy next?\nAnswer:"
)


class MultipleChoiceRewardConfig(StrictModel):
    """Configuration of :class:`MultipleChoiceReward`.

    Parameters that control the question:
        num_choices: C, the number of options per example (true item + C-1 distractors). Default ``4``.
        question_template: the reader's context; must contain ``{profile}`` and may contain ``{options}`` (the options
            as a numbered list). Plain text, no chat template. Default: a shopper question ending in ``"Answer:"``.
        option_prefix: put before every option text when it is scored as a continuation (a space after
            ``"Answer:"``). Default ``" "``.

    Parameters that control the score:
        length_normalise: divide an option's log-likelihood by its token count, so long item titles are not
            penalised. Must agree with the scorer's own setting. Default ``True``.
        floor: reward for empty/degenerate profiles: ``"chance"`` (``1/C``) or a float. Default ``"chance"``.
    """

    num_choices: int = Field(4, ge=2)
    question_template: str = DEFAULT_QUESTION_TEMPLATE
    option_prefix: str = " "
    length_normalise: bool = True
    floor: float | Literal["chance"] = "chance"

    @field_validator("question_template")
    @classmethod
    def _template_fields(cls, value: str) -> str:
        names = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
        if "profile" not in names:
            raise ValueError("question_template must contain {profile}")
        unknown = names - {"profile", "options"}
        if unknown:
            raise ValueError(f"question_template has unknown fields {sorted(unknown)}; allowed: profile, options")
        return value


def build_mc_options(
    target_text: str, distractor_texts: Sequence[str], rng: np.random.Generator
) -> tuple[list[str], int]:
    """Shuffle the true item among distractors; return ``(options, answer_index)``.

    Pure: the order depends only on ``rng``. Distractors must differ from the target text (two identical options
    would make the question ambiguous), so a :class:`ValueError` is raised otherwise.

    Example:
    ```python
    >>> import numpy as np
    >>> options, answer = build_mc_options("red shoes", ["blue hat", "green scarf"], np.random.default_rng(0))
    >>> options[answer]
    'red shoes'
    ```
    """
    distractors = list(distractor_texts)
    if not distractors:
        raise ValueError("build_mc_options needs at least one distractor")
    if any(d == target_text for d in distractors):
        raise ValueError(f"a distractor has the same text as the target {target_text!r}")
    options = [target_text, *distractors]
    order = rng.permutation(len(options))
    shuffled = [options[i] for i in order]
    return shuffled, int(np.flatnonzero(order == 0)[0])


def option_probabilities(scores: np.ndarray) -> np.ndarray:
    """Softmax of ``(n, C)`` option scores over the options (finite rows required; ``-inf`` entries allowed)."""
    scores = np.asarray(scores, dtype=np.float64)
    return np.exp(masked_log_softmax(np.where(np.isnan(scores), -np.inf, scores), np.isfinite(scores)))


class MultipleChoiceReward:
    r"""Reader-LM next-item multiple-choice reward (BLUE's text-space reward).

    For completion ``j`` with options ``o_1..o_C`` and answer ``a``:
    ``reward_j = softmax_c(score(context_j, o_c))[a]`` where ``context_j`` is ``question_template`` filled with the
    profile and ``score`` is the scorer's (length-normalised) log-likelihood. Degenerate profiles get the floor.

    Args:
        scorer: an :class:`~bluerec.rewards.protocols.OptionScorer`, e.g. :class:`HFOptionScorer`.
        config: a :class:`MultipleChoiceRewardConfig` (defaults if ``None``).

    Inputs (keyword columns, one entry per completion):

    | column        | type             | meaning                                             |
    |---------------|------------------|-----------------------------------------------------|
    | `completions` | str or messages  | the profiles                                        |
    | `mc_options`  | list[str] (C)    | candidate item texts, shuffled                      |
    | `mc_answer`   | int              | index of the true next item in `mc_options`          |

    Example:
    ```python
    >>> reward = MultipleChoiceReward.from_hf(reader_model, reader_tokenizer, batch_size=16)
    >>> reward(completions=["loves trail running"], mc_options=[["trail shoes", "teapot", "lamp", "mug"]],
    ...        mc_answer=[0])
    [0.61]
    ```
    """

    __name__ = "multiple_choice"

    def __init__(self, scorer: OptionScorer, config: MultipleChoiceRewardConfig | None = None) -> None:
        if not isinstance(scorer, OptionScorer):
            raise TypeError(f"scorer must have score(contexts, options) -> np.ndarray, got {type(scorer).__name__}")
        self.config = config or MultipleChoiceRewardConfig()
        own = getattr(scorer, "length_normalise", None)
        if own is not None and bool(own) != self.config.length_normalise:
            raise ValueError(
                f"scorer.length_normalise={own} but config.length_normalise={self.config.length_normalise}; "
                "build the scorer with the config's value (or use MultipleChoiceReward.from_hf)"
            )
        self.scorer = scorer
        self.last_components: dict[str, float] = {}

    @classmethod
    def from_hf(
        cls,
        model: Any,
        tokenizer: Any,
        config: MultipleChoiceRewardConfig | None = None,
        batch_size: int = 16,
        max_length: int = 1024,
        base_only: bool = False,
    ) -> MultipleChoiceReward:
        """Build the reward around an :class:`HFOptionScorer` that uses the config's ``length_normalise``
        (``base_only``: read with a PEFT model's adapters disabled, see :class:`HFOptionScorer`)."""
        config = config or MultipleChoiceRewardConfig()
        scorer = HFOptionScorer(model, tokenizer, batch_size=batch_size, max_length=max_length,
                                length_normalise=config.length_normalise, base_only=base_only)
        return cls(scorer, config)

    def context(self, profile: str, options: Sequence[str]) -> str:
        """The reader's context for one profile (``question_template`` filled in)."""
        listed = "\n".join(f"{i + 1}. {o}" for i, o in enumerate(options))
        return self.config.question_template.format(profile=profile.strip(), options=listed)

    def __call__(
        self,
        completions: Sequence[Any],
        mc_options: Sequence[Sequence[str]] | None = None,
        mc_answer: Sequence[int] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        **columns: Any,
    ) -> list[float]:
        n = len(completions)
        if mc_options is None or mc_answer is None:
            raise ValueError(
                f"{self.__name__} needs the 'mc_options' and 'mc_answer' columns; got {sorted(columns)}"
            )
        if len(mc_options) != n or len(mc_answer) != n:
            raise ValueError(f"mc_options/mc_answer have {len(mc_options)}/{len(mc_answer)} entries for {n} completions")
        c = self.config.num_choices
        answers = np.array([int(a) for a in mc_answer], dtype=np.int64)
        for i, (opts, a) in enumerate(zip(mc_options, answers)):
            if len(opts) != c:
                raise ValueError(f"row {i}: {len(opts)} options, config.num_choices={c}")
            if not 0 <= a < c:
                raise ValueError(f"row {i}: mc_answer={a} outside [0, {c})")

        texts = completion_texts(completions)
        valid = np.array([not is_degenerate(t) for t in texts], dtype=bool)
        floor = 1.0 / c if self.config.floor == "chance" else float(self.config.floor)
        rewards = np.full(n, floor, dtype=np.float64)
        correct = np.zeros(n, dtype=bool)
        rows = np.flatnonzero(valid)
        if rows.size:
            contexts = [self.context(texts[i], mc_options[i]) for i in rows]
            options = [[self.config.option_prefix + o for o in mc_options[i]] for i in rows]
            scores = np.asarray(self.scorer.score(contexts, options), dtype=np.float64)
            if scores.shape != (rows.size, c):
                raise ValueError(f"scorer returned shape {scores.shape}; expected ({rows.size}, {c})")
            finite = np.isfinite(scores).any(axis=1)
            probs = np.zeros_like(scores)
            if finite.any():
                probs[finite] = option_probabilities(scores[finite])
            picked = probs[np.arange(rows.size), answers[rows]]
            rewards[rows] = np.where(finite, picked, floor)
            correct[rows] = finite & (np.argmax(np.where(np.isfinite(scores), scores, -np.inf), axis=1) == answers[rows])
        self.last_components = {
            "reward": float(rewards.mean()) if n else math.nan,
            "accuracy": float(correct[valid].mean()) if valid.any() else 0.0,
            "degenerate_fraction": float((~valid).mean()) if n else 0.0,
        }
        if log_metric is not None:
            for name in ("accuracy", "degenerate_fraction"):
                log_metric(f"{self.__name__}/{name}", self.last_components[name])
        return rewards.tolist()


def _build_multiple_choice(config: MultipleChoiceRewardConfig, ctx: Any) -> MultipleChoiceReward:
    return MultipleChoiceReward(ctx.option_scorer("multiple_choice", config.length_normalise), config)


def _registry_entry() -> Any:
    from bluerec.rewards.registry import RewardSpec

    return RewardSpec(
        name="multiple_choice", config=MultipleChoiceRewardConfig, build=_build_multiple_choice,
        columns=("mc_options", "mc_answer"), dataset_options=lambda cfg: {"mc_choices": cfg.num_choices},
        needs_reader=True,
        description="the frozen reader's probability of the true next item among C options",
    )


REWARD = _registry_entry()  # registry entry (bluerec.rewards.registry); built lazily, HFOptionScorer is below


class HFOptionScorer:
    """:class:`~bluerec.rewards.protocols.OptionScorer` for any Hugging Face causal LM.

    Every (context, option) pair is tokenised separately (no special tokens, no chat template) and concatenated:
    ``context_ids + option_ids``. Pairs are sorted by length and packed into right-padded batches of ``batch_size``;
    one forward pass per batch (``torch.no_grad``, model in eval mode, restored afterwards) gives the log-probability
    of each option token; the score is their sum, divided by the option's token count when ``length_normalise``.
    Logits are only materialised from the first option position of the batch onward (``logits_to_keep``), which keeps
    memory low with large vocabularies.

    If the context is empty, the BOS (else EOS) token is used as context. Sequences longer than ``max_length`` lose
    context tokens from the left; the option is kept whole (cut on the right only if it alone exceeds the limit).

    Args:
        model: a ``transformers`` causal LM (``model(input_ids, attention_mask).logits``).
        tokenizer: its tokenizer (a ``PreTrainedTokenizerBase``).
        batch_size: (context, option) pairs per forward pass.
        max_length: longest sequence fed to the model.
        length_normalise: divide by the option token count.
        base_only: ``model`` is a PEFT model being trained; score with its adapters disabled (``disable_adapter()``),
            i.e. with the frozen pretrained weights it shares, so the reader costs no second copy in memory.

    Example:
    ```python
    >>> scorer = HFOptionScorer(model, tokenizer, batch_size=8, max_length=512)
    >>> scorer.score(["The sky is"], [[" blue", " a banana"]]).shape
    (1, 2)
    ```
    """

    def __init__(
        self, model: Any, tokenizer: Any, batch_size: int = 16, max_length: int = 1024, length_normalise: bool = True,
        base_only: bool = False,
    ) -> None:
        if base_only and not hasattr(model, "disable_adapter"):
            raise ValueError("base_only needs a PEFT model (one with disable_adapter())")
        self.base_only = base_only
        if batch_size < 1 or max_length < 2:
            raise ValueError(f"batch_size must be >= 1 and max_length >= 2, got {batch_size}, {max_length}")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length
        self.length_normalise = length_normalise
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if pad is None:
            raise ValueError("the tokenizer needs a pad or eos token")
        self.pad_id = int(pad)
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        self.start_id = int(start) if start is not None else self.pad_id

    def encode_pair(self, context: str, option: str) -> tuple[list[int], int]:
        """Token ids of ``context + option`` and the number of option tokens (at the end)."""
        ctx = list(self.tokenizer(context, add_special_tokens=False)["input_ids"])
        opt = list(self.tokenizer(option, add_special_tokens=False)["input_ids"])
        return self._join(ctx, opt, option)

    def _join(self, ctx: list[int], opt: list[int], option: str) -> tuple[list[int], int]:
        if not opt:
            raise ValueError(f"option {option!r} has no tokens")
        if not ctx:
            ctx = [self.start_id]
        opt = opt[: self.max_length - 1]
        ctx = ctx[-(self.max_length - len(opt)) :]
        return ctx + opt, len(opt)

    def log_likelihoods(self, contexts: list[str], options: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        """``(sum_logprob, n_option_tokens)``, both ``(n, C)``: the raw material of :meth:`score`."""
        if len(contexts) != len(options):
            raise ValueError(f"{len(contexts)} contexts but {len(options)} option lists")
        n = len(contexts)
        c = len(options[0]) if n else 0
        if any(len(o) != c for o in options):
            raise ValueError("every context needs the same number of options")
        if n == 0:
            return np.zeros((0, 0)), np.zeros((0, 0), dtype=np.int64)
        flat_options = [o for row in options for o in row]
        ctx_ids = self.tokenizer(list(contexts), add_special_tokens=False)["input_ids"]
        opt_ids = self.tokenizer(flat_options, add_special_tokens=False)["input_ids"]
        pairs = [
            self._join(list(ctx_ids[i]), list(opt_ids[i * c + j]), flat_options[i * c + j])
            for i in range(n)
            for j in range(c)
        ]
        sums = np.zeros(n * c, dtype=np.float64)
        counts = np.array([k for _, k in pairs], dtype=np.int64)
        order = sorted(range(len(pairs)), key=lambda p: len(pairs[p][0]), reverse=True)
        device = next(self.model.parameters()).device
        was_training = self.model.training
        self.model.eval()
        base = self.model.disable_adapter() if self.base_only else contextlib.nullcontext()
        try:
            with torch.no_grad(), base:
                for start in range(0, len(order), self.batch_size):
                    idx = order[start : start + self.batch_size]
                    sums[idx] = self._batch([pairs[p] for p in idx], device)
        finally:
            self.model.train(was_training)
        return sums.reshape(n, c), counts.reshape(n, c)

    def _batch(self, pairs: list[tuple[list[int], int]], device: torch.device) -> np.ndarray:
        lengths = [len(ids) for ids, _ in pairs]
        width = max(lengths)
        input_ids = torch.full((len(pairs), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(pairs), width), dtype=torch.long)
        for r, (ids, _) in enumerate(pairs):
            input_ids[r, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            attention[r, : len(ids)] = 1
        # Option token t at position p is predicted by the logits at p-1; keep logits from the earliest such position.
        first = min(length - k - 1 for length, (_, k) in zip(lengths, pairs))
        keep = width - first
        inputs = {"input_ids": input_ids.to(device), "attention_mask": attention.to(device)}
        try:
            logits = self.model(**inputs, logits_to_keep=keep).logits
        except TypeError:  # a model without logits_to_keep: full logits
            logits = self.model(**inputs).logits
        offset = width - logits.shape[1]  # 0 if the model ignored logits_to_keep
        rows, pos, tgt = [], [], []
        for r, (ids, k) in enumerate(pairs):
            for p in range(len(ids) - k, len(ids)):
                rows.append(r)
                pos.append(p - 1 - offset)
                tgt.append(ids[p])
        rows_t = torch.tensor(rows, device=logits.device)
        selected = logits[rows_t, torch.tensor(pos, device=logits.device)].float()
        token_lp = torch.log_softmax(selected, dim=-1).gather(1, torch.tensor(tgt, device=logits.device)[:, None])[:, 0]
        sums = torch.zeros(len(pairs), dtype=torch.float64, device=logits.device)
        sums.index_add_(0, rows_t, token_lp.double())
        return sums.cpu().numpy()

    def score(self, contexts: list[str], options: list[list[str]]) -> np.ndarray:
        """``(n, C)`` option scores: summed option-token log-probabilities, per token if ``length_normalise``."""
        sums, counts = self.log_likelihoods(contexts, options)
        return sums / counts if self.length_normalise else sums


# ---------------------------------------------------------------------------------------------------------------------
# Questions from a catalogue: shared by the GRPO dataset (bluerec.train.dataset) and the QA evaluator (bluerec.eval.qa)
# so that both ask the same kind of question. Pure functions of an item table (``ids``, ``titles``, ``texts``).


def option_text(items: Any, row: int, field: str = "title", max_chars: int = 160) -> str:
    """The text an item shows as a multiple-choice option: its ``field`` (``"title"`` or ``"text"``), falling back to
    the full text and then the id, with whitespace collapsed and cut to ``max_chars`` at a word boundary."""
    from bluerec.profiler.prompts import clip  # lazy: keeps the rewards importable without the profiler's deps

    text = items.titles[row] if field == "title" else items.texts[row]
    if not text:
        text = items.texts[row] or items.ids[row]
    return clip(text, max_chars)


def mc_distractors(
    rng: np.random.Generator,
    items: Any,
    target_row: int,
    exclude: set[int],
    n: int,
    field: str = "title",
    max_chars: int = 160,
    weights: np.ndarray | None = None,
) -> list[str]:
    """``n`` distractor texts: items outside ``exclude`` (drawn uniformly, or ∝ ``weights``) whose option text differs
    from the target's and from each other. Fewer only when the catalogue has no more distinct texts."""
    from bluerec.rewards.embedding import sample_negatives

    target_text = option_text(items, target_row, field, max_chars)
    seen = {target_text}
    out: list[str] = []
    budget = n
    tried: set[int] = set(exclude) | {target_row}
    while len(out) < n:
        cand = sample_negatives(rng, len(items), max(2 * budget, 4), tried, weights)
        if cand.size == 0:
            break
        for row in cand.tolist():
            tried.add(row)
            text = option_text(items, row, field, max_chars)
            if text not in seen:
                seen.add(text)
                out.append(text)
                if len(out) == n:
                    break
        budget = n - len(out)
    return out


def mc_question(
    rng: np.random.Generator,
    items: Any,
    target_row: int,
    exclude: set[int],
    num_choices: int,
    field: str = "title",
    max_chars: int = 160,
    weights: np.ndarray | None = None,
) -> tuple[list[str], int]:
    """``(options, answer)``: the target's option text and ``num_choices - 1`` :func:`mc_distractors`, shuffled by
    :func:`build_mc_options`. Raises ``ValueError`` when the catalogue has too few distinct texts.

    Example:
    ```python
    >>> import numpy as np
    >>> from bluerec.data.dataset import ItemTable
    >>> items = ItemTable(ids=["a", "b", "c", "d"], texts=["A", "B", "C", "D"], titles=["A", "B", "C", "D"],
    ...                   popularity=np.ones(4, dtype=np.int64))
    >>> options, answer = mc_question(np.random.default_rng(0), items, 0, {1}, 3)
    >>> options[answer], sorted(options)
    ('A', ['A', 'C', 'D'])
    ```
    """
    distractors = mc_distractors(rng, items, target_row, exclude, num_choices - 1, field, max_chars, weights)
    if len(distractors) < num_choices - 1:
        raise ValueError(f"only {len(distractors)} distinct distractor texts for item {items.ids[target_row]!r} "
                         f"(need {num_choices - 1}); lower the number of choices")
    return build_mc_options(option_text(items, target_row, field, max_chars), distractors, rng)
