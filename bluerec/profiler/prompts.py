"""Prompts that ask a profiler LLM to describe a user from their interaction history.

The prompt is a chat: a system message and one user message holding the history as a numbered list
(oldest first, **newest last**), each line an item text with the user's rating ``(rated 4/5)`` and a
short snippet of their review when present, followed by the instruction.

A prompt must fit a token budget. :func:`fit_to_budget` first trims item texts and review snippets
(down to ``min_item_chars``, snippets to nothing) and, when that is not enough, drops the **oldest**
items, so the most recent interests are the last to go. It never fails: an empty history renders as
``(no history)``.
"""

from __future__ import annotations

import dataclasses
import math
import re
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from bluerec.config import StrictModel
from bluerec.data.transitions import TransitionConfig, TransitionTable, load_transitions

if TYPE_CHECKING:  # imports only point downwards: profiler -> data
    from bluerec.data.dataset import Example, PreparedDataset

DEFAULT_SYSTEM_PROMPT = (
    "You are a recommendation assistant. You read a shopper's interaction history and write a short, "
    "readable profile of what they like."
)
DEFAULT_INSTRUCTION = (
    "Write a concise profile of this user's current interests and preferences (product types, brands, "
    "styles, what they rate highly or poorly) and what they are likely to want next. "
    "Answer in a few plain sentences."
)
HISTORY_HEADER = "Interaction history (oldest first, newest last):"
CONTEXT_HEADER = "Often bought next by other shoppers after this user's latest items:"
NO_HISTORY = "(no history)"


class CollaborativeContext(StrictModel):
    """An optional prompt section with what *other* users bought next: the top successors of the user's newest
    items in the training sequences (:mod:`bluerec.data.transitions`; never a target of the split served), as
    readable item texts after the history. The profiler decides what of it to keep; BLUE's rewards teach it.

    Parameters:
        enabled: add the section. Default ``False`` (prompts are exactly those without it).
        header: the line that introduces the section.
        max_items: at most this many successor items (M), deduplicated, history items removed. Default ``5``.
        from_recent: successors of the user's N newest items, pooled (best score first). Default ``3``.
        max_item_chars: each item text is clipped to this many characters. Default ``80``.
        transitions: how the statistics are counted (window, decay, top-N per item).
    """

    enabled: bool = False
    header: str = CONTEXT_HEADER
    max_items: int = Field(5, ge=1, le=50)
    from_recent: int = Field(3, ge=1, le=50)
    max_item_chars: int = Field(80, ge=8)
    transitions: TransitionConfig = Field(default_factory=TransitionConfig)


class PromptConfig(StrictModel):
    """How a user's history is turned into a profiler prompt.

    Parameters that control the text:
        system_prompt: the system message.
        instruction: what the model is asked to write; placed after the history.
        include_ratings: append ``(rated 4/5)`` to items the user rated.
        review_snippet_chars: keep at most this many characters of the user's review (0 = no reviews).
        max_item_chars: trim each item text to this many characters (at a word boundary).

    Parameters that control the length:
        max_history_items: keep at most the N most recent items.
        max_prompt_tokens: token budget of the rendered prompt (system + user message + chat markup).
        min_item_chars: when over budget, item texts are trimmed down to this length before items are dropped.

    Parameters that add context:
        collaborative: :class:`CollaborativeContext` — other users' next items as a prompt section (off by default).
    """

    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    instruction: str = DEFAULT_INSTRUCTION
    include_ratings: bool = True
    review_snippet_chars: int = Field(120, ge=0)
    max_item_chars: int = Field(200, ge=8)
    max_history_items: int = Field(20, ge=1)
    max_prompt_tokens: int = Field(768, ge=32)
    min_item_chars: int = Field(60, ge=8)
    item_field: Literal["text", "title"] = "text"  # which item column history_items_for uses
    collaborative: CollaborativeContext = Field(default_factory=CollaborativeContext)

    def fingerprint(self) -> dict[str, Any]:
        """The settings that change a prompt, for hashing; a disabled section is left out, so prompts configured
        before it existed keep their hash."""
        return self.model_dump(mode="json", exclude=None if self.collaborative.enabled else {"collaborative"})


@dataclass(frozen=True)
class HistoryItem:
    """One interacted item as the prompt shows it."""

    text: str
    rating: float | None = None
    review: str | None = None


_WS = re.compile(r"\s+")


def clip(text: str, max_chars: int) -> str:
    """Collapse whitespace and cut to ``max_chars`` at a word boundary, marking the cut with an ellipsis."""
    text = _WS.sub(" ", text or "").strip()
    if len(text) <= max_chars:
        return text
    if max_chars <= 1:
        return ""
    cut = text[: max_chars - 1]
    space = cut.rfind(" ")
    if space >= max_chars // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:|-") + "…"


def format_rating(rating: float) -> str:
    value = f"{rating:.1f}".rstrip("0").rstrip(".")
    return f"(rated {value}/5)"


def _history_line(i: int, item: HistoryItem, config: PromptConfig, item_chars: int, snippet_chars: int) -> str:
    line = f"{i}. {clip(item.text, item_chars) or '(untitled item)'}"
    if config.include_ratings and item.rating is not None and math.isfinite(item.rating):  # NaN: no rating
        line += f" {format_rating(item.rating)}"
    if item.review and snippet_chars > 0:
        snippet = clip(item.review, snippet_chars)
        if snippet:
            line += f' — review: "{snippet}"'
    return line


def _render(history: Sequence[HistoryItem], config: PromptConfig, item_chars: int, snippet_chars: int,
            context: Sequence[str] = ()) -> list[dict]:
    if history:
        lines = [_history_line(i, it, config, item_chars, snippet_chars) for i, it in enumerate(history, 1)]
        body = "\n".join(lines)
    else:
        body = NO_HISTORY
    section = ""
    if context:
        section = config.collaborative.header + "\n" + "\n".join(f"- {text}" for text in context) + "\n\n"
    user = f"{HISTORY_HEADER}\n{body}\n\n{section}{config.instruction}"
    return [{"role": "system", "content": config.system_prompt}, {"role": "user", "content": user}]


@dataclass(frozen=True)
class FittedPrompt:
    """A prompt's messages and the item texts exactly as it shows them (oldest first)."""

    messages: list[dict]
    item_texts: list[str]
    context_texts: list[str] = dataclasses.field(default_factory=list)  # the collaborative section as shown


def _shown(history: Sequence[HistoryItem], config: PromptConfig, item_chars: int, snippet_chars: int,
           context: Sequence[str] = ()) -> FittedPrompt:
    return FittedPrompt(_render(history, config, item_chars, snippet_chars, context),
                        [clip(it.text, item_chars) for it in history], list(context))


def _clip_context(context: Sequence[str], config: PromptConfig) -> list[str]:
    texts = (clip(text, config.collaborative.max_item_chars) for text in context)
    return [text for text in dict.fromkeys(texts) if text][: config.collaborative.max_items]


def build_prompt(history: Sequence[HistoryItem], config: PromptConfig | None = None,
                 context: Sequence[str] = ()) -> FittedPrompt:
    """:func:`build_messages` with the item texts it shows."""
    config = config or PromptConfig()
    return _shown(list(history)[-config.max_history_items :], config, config.max_item_chars,
                  config.review_snippet_chars, _clip_context(context, config))


def build_messages(history: Sequence[HistoryItem], config: PromptConfig | None = None,
                   context: Sequence[str] = ()) -> list[dict]:
    """System + user messages for ``history`` (oldest first). Keeps the ``max_history_items`` newest items
    and applies the per-item character limits; no token budget (see :func:`fit_to_budget`). ``context``: the
    collaborative section's item texts (:func:`context_texts`; empty = no section)."""
    return build_prompt(history, config, context).messages


def messages_text(messages: Sequence[dict]) -> str:
    """The text a budget is measured on: the message contents joined by blank lines."""
    return "\n\n".join(str(m.get("content", "")) for m in messages)


def fit_to_budget(
    history: Sequence[HistoryItem],
    config: PromptConfig | None,
    count_tokens: Callable[[str], int],
    context: Sequence[str] = (),
) -> list[dict]:
    """Messages for ``history`` whose :func:`messages_text` is at most ``config.max_prompt_tokens`` tokens
    (see :func:`fit_prompt`)."""
    return fit_prompt(history, config, count_tokens, context).messages


def fit_prompt(
    history: Sequence[HistoryItem],
    config: PromptConfig | None,
    count_tokens: Callable[[str], int],
    context: Sequence[str] = (),
) -> FittedPrompt:
    """The prompt for ``history`` whose :func:`messages_text` is at most ``config.max_prompt_tokens`` tokens.

    Steps, each tried only when the previous one is over budget: full items; item texts halved and
    review snippets halved; item texts at ``min_item_chars`` without reviews; then the oldest items are
    dropped (binary search for the most newest items that fit); finally the newest item's text is cut.
    Never raises: if even ``(no history)`` is over budget, that prompt is returned.

    ``context`` (the collaborative section, already short: ``max_items`` texts of ``max_item_chars``) is shown in
    every step; only when not even one history item fits beside it is it dropped, the history coming first.
    """
    config = config or PromptConfig()
    context = _clip_context(context, config)
    if context:
        with_context = _fit(history, config, count_tokens, context)
        if with_context.item_texts or not history:
            return with_context
    return _fit(history, config, count_tokens, [])


def _fit(history: Sequence[HistoryItem], config: PromptConfig, count_tokens: Callable[[str], int],
         context: list[str]) -> FittedPrompt:
    budget = config.max_prompt_tokens
    items = list(history)[-config.max_history_items :]

    def fits(msgs: list[dict]) -> bool:
        return count_tokens(messages_text(msgs)) <= budget

    full_chars, full_snip = config.max_item_chars, config.review_snippet_chars
    min_chars = min(config.min_item_chars, full_chars)
    ladder = [(full_chars, full_snip)]
    mid = ((full_chars + min_chars) // 2, full_snip // 2)
    if mid != ladder[-1]:
        ladder.append(mid)
    if (min_chars, 0) != ladder[-1]:
        ladder.append((min_chars, 0))
    for chars, snip in ladder:
        prompt = _shown(items, config, chars, snip, context)
        if fits(prompt.messages) or not items:
            return prompt

    # Drop the oldest items: largest k such that the k newest items fit at the most compact level.
    chars, snip = ladder[-1]
    lo, hi = 0, len(items) - 1  # all items are known not to fit
    while lo < hi:
        k = (lo + hi + 1) // 2
        if fits(_render(items[-k:], config, chars, snip, context)):
            lo = k
        else:
            hi = k - 1
    if lo > 0:
        return _shown(items[-lo:], config, chars, snip, context)

    # Not even one compact item fits: cut the newest item's text as far as needed (or give up on it).
    newest = items[-1]
    lo_c, hi_c = 0, chars
    while lo_c < hi_c:
        c = (lo_c + hi_c + 1) // 2
        if fits(_render([newest], config, c, 0, context)):
            lo_c = c
        else:
            hi_c = c - 1
    if lo_c >= 8:
        return _shown([newest], config, lo_c, 0, context)
    return _shown([], config, chars, 0, context)


def token_counter(tokenizer: Any) -> Callable[[str], int]:
    """``count_tokens`` for :func:`fit_to_budget`: tokens of the text plus the chat markup around it."""
    overhead = 0
    if getattr(tokenizer, "chat_template", None):
        empty = [{"role": "system", "content": ""}, {"role": "user", "content": ""}]
        try:
            overhead = len(tokenizer(render_prompt(empty, tokenizer), add_special_tokens=False)["input_ids"])
        except Exception:  # templates that reject a system role are handled by render_prompt; be safe
            overhead = 16
    else:
        overhead = len(tokenizer("System: \nUser: \nProfile:")["input_ids"])

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]) + overhead

    return count


def merge_system(messages: Sequence[dict]) -> list[dict]:
    """The chat with a leading system message merged into the first user turn (for templates without a system
    role)."""
    messages = [dict(m) for m in messages]
    if messages and messages[0].get("role") == "system" and len(messages) > 1:
        merged = dict(messages[1])
        merged["content"] = f"{messages[0]['content']}\n\n{messages[1]['content']}"
        return [merged, *messages[2:]]
    return messages


_SYSTEM_OK: dict[tuple[int, str], bool] = {}  # (tokenizer class, chat template) -> accepts a system message


def _accepts_system(tokenizer: Any) -> bool:
    template = tokenizer.chat_template
    key = (id(type(tokenizer)), template if isinstance(template, str) else repr(template))
    if key not in _SYSTEM_OK:
        probe = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
        try:
            tokenizer.apply_chat_template(probe, tokenize=False, add_generation_prompt=True)
            _SYSTEM_OK[key] = True
        except Exception:  # noqa: BLE001 - any template error on the system role means "merge it"
            _SYSTEM_OK[key] = False
    return _SYSTEM_OK[key]


def plain_prompt(messages: Sequence[dict]) -> str:
    """``System: ...\nUser: ...\nProfile:`` — the prompt for tokenizers without a chat template."""
    parts = []
    for m in messages:
        role = str(m.get("role", "user"))
        label = {"system": "System", "user": "User", "assistant": "Profile"}.get(role, role.capitalize())
        parts.append(f"{label}: {m.get('content', '')}")
    return "\n".join(parts) + "\nProfile:"


def prompt_renderer(tokenizer: Any | None) -> Callable[[Sequence[dict]], list[dict] | str]:
    """How a chat reaches a model — the single chat-template fallback that training (TRL's prompts, the warm
    start's examples) and inference (:func:`render_prompt`) share: the chat itself; the chat with the system
    message merged into the user turn (templates that reject a system role); or the plain
    ``System/User/Profile`` text (:func:`plain_prompt`) for tokenizers without a chat template."""
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        return plain_prompt
    if _accepts_system(tokenizer):
        return lambda messages: [dict(m) for m in messages]
    return merge_system


def render_prompt(messages: Sequence[dict], tokenizer: Any | None) -> str:
    """The prompt string a model sees: :func:`prompt_renderer`'s chat through the tokenizer's chat template with
    the generation prompt, or the plain text."""
    chat = prompt_renderer(tokenizer)(messages)
    if isinstance(chat, str):
        return chat
    return tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)


# --- history from a prepared dataset ------------------------------------------------------------------

_FEEDBACK_CACHE: "weakref.WeakKeyDictionary[Any, dict[tuple[str, str], tuple[float | None, str | None]]]" = (
    weakref.WeakKeyDictionary()
)


def _join_review(title: str | None, text: str | None) -> str | None:
    title = (title or "").strip()
    text = (text or "").strip()
    if title and text:
        sep = " " if title[-1] in ".!?" else ". "
        return f"{title}{sep}{text}"
    return title or text or None


def user_feedback(dataset: "PreparedDataset") -> dict[tuple[str, str], tuple[float | None, str | None]]:
    """(user_id, item_id) -> (rating, review) from interactions.parquet, read once per dataset object.
    Pairs with neither a rating nor a review are not stored."""
    cached = _FEEDBACK_CACHE.get(dataset)
    if cached is not None:
        return cached
    cols = dataset.read_columns("interactions", ("user_id", "item_id", "rating", "review_title", "review_text"))
    ratings, titles, texts = cols["rating"], cols["review_title"], cols["review_text"]
    feedback: dict[tuple[str, str], tuple[float | None, str | None]] = {}
    for u, i, r, t, x in zip(cols["user_id"], cols["item_id"], ratings, titles, texts):
        review = _join_review(t, x)
        if r is not None or review:
            feedback[(u, i)] = (None if r is None else float(r), review)
    _FEEDBACK_CACHE[dataset] = feedback
    return feedback


def history_items_for(
    dataset: "PreparedDataset", example: "Example", field: Literal["text", "title"] = "text"
) -> list[HistoryItem]:
    """The example's history (oldest first) as :class:`HistoryItem` s with the user's own rating and
    review of each item."""
    items = dataset.items
    index = items.index
    source = items.texts if field == "text" else items.titles
    feedback = user_feedback(dataset)
    out: list[HistoryItem] = []
    for item_id in example.history:
        i = index.get(item_id)
        text = source[i] if i is not None else item_id
        if field == "title" and i is not None and not text:
            text = items.texts[i]
        rating, review = feedback.get((example.user_id, item_id), (None, None))
        out.append(HistoryItem(text=text or "", rating=rating, review=review))
    return out


# --- collaborative context from a prepared dataset -------------------------------------------------------

_TRANSITIONS_CACHE: "weakref.WeakKeyDictionary[Any, dict[tuple[str, str], TransitionTable]]" = weakref.WeakKeyDictionary()


def transitions_for(dataset: "PreparedDataset", split: str, config: TransitionConfig) -> TransitionTable:
    """The transition table serving ``split``, built once per dataset object and config (in memory)."""
    tables = _TRANSITIONS_CACHE.setdefault(dataset, {})
    key = (split, config.model_dump_json())
    if key not in tables:
        tables[key] = load_transitions(dataset, split, config, cache_dir=None)
    return tables[key]


def context_texts(dataset: "PreparedDataset", history_ids: Sequence[str], config: PromptConfig,
                  split: str = "test") -> list[str]:
    """The collaborative section's item texts for a history (item ids, oldest first): the top successors of the
    ``from_recent`` newest items, history items removed; ``[]`` when the section is off. ``split`` names the split
    whose targets the statistics must not count (``train`` for training prompts, ``valid``/``test`` to evaluate;
    ``test`` for live requests: every known sequence but the held-out targets)."""
    cc = config.collaborative
    if not cc.enabled or not history_ids:
        return []
    table = transitions_for(dataset, split, cc.transitions)
    recent = list(reversed(history_ids))[: cc.from_recent]
    items = dataset.items
    source = items.texts if config.item_field == "text" else items.titles
    out = []
    for item_id, _ in table.top_successors(recent, cc.max_items, exclude=set(history_ids)):
        i = items.index[item_id]
        out.append(source[i] or items.texts[i])
    return out


def context_for(dataset: "PreparedDataset", example: "Example", config: PromptConfig, split: str) -> list[str]:
    """:func:`context_texts` for a dataset example (its full, untruncated history)."""
    if not config.collaborative.enabled:
        return []
    return context_texts(dataset, dataset.full_history(example), config, split)
