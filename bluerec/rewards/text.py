"""Helpers shared by all rewards: turn a TRL completion into text and recognise degenerate profiles."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

_WORD = re.compile(r"\w+", re.UNICODE)


def completion_text(completion: Any) -> str:
    """Return the text of one TRL completion.

    TRL passes a plain string for standard prompts and a list of message dicts
    (``[{"role": "assistant", "content": ...}]``) for conversational prompts. Message ``content`` may itself be a list
    of content blocks (``[{"type": "text", "text": ...}]``). The text of every assistant message is joined with
    newlines; if no message carries a role, all messages are used. ``None`` becomes ``""``.

    Example:
    ```python
    >>> completion_text("likes hiking")
    'likes hiking'
    >>> completion_text([{"role": "assistant", "content": "likes hiking"}])
    'likes hiking'
    >>> completion_text([{"role": "assistant", "content": [{"type": "text", "text": "likes hiking"}]}])
    'likes hiking'
    ```
    """
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return _content_text(completion.get("content"))
    if isinstance(completion, Sequence):
        messages = [m for m in completion if isinstance(m, Mapping)]
        assistant = [m for m in messages if m.get("role") == "assistant"]
        chosen = assistant if assistant else [m for m in messages if "role" not in m]
        return "\n".join(t for t in (_content_text(m.get("content")) for m in chosen) if t)
    raise TypeError(f"cannot read a completion of type {type(completion).__name__}: expected str or list of messages")


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, Mapping) and block.get("type", "text") == "text":
                parts.append(str(block.get("text", "")))
        return "".join(parts)
    return str(content)


def completion_texts(completions: Sequence[Any]) -> list[str]:
    """:func:`completion_text` over a batch."""
    return [completion_text(c) for c in completions]


def words(text: str) -> list[str]:
    """Lower-cased word tokens (runs of letters, digits and underscore)."""
    return _WORD.findall(text.lower())


def is_degenerate(text: str) -> bool:
    """Whether a profile carries no usable text.

    Degenerate means: empty or whitespace-only, no word characters at all (``"!!! ..."``), or a single distinct word
    repeated (``"good good good"``). A one-word profile is *not* degenerate: it is a poor but real query.

    Example:
    ```python
    >>> [is_degenerate(t) for t in ["", "  \\n", "...", "ok ok ok", "ok", "likes hiking"]]
    [True, True, True, True, False, False]
    ```
    """
    tokens = words(text)
    if not tokens:
        return True
    return len(tokens) >= 2 and len(set(tokens)) == 1
