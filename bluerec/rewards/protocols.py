"""The two small back-end contracts the rewards are written against.

Rewards never import a model library themselves: they receive an object that satisfies one of these protocols, so a
new back-end (sentence-transformers, an OpenAI-compatible server, vLLM, a test fake) is one new class, not a change
to the reward code. Both protocols are ``runtime_checkable`` so constructors can fail early with a clear message.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class TextEncoder(Protocol):
    """Anything that embeds *query* texts (user profiles) into the item embedding space.

    ``encode_queries(texts)`` must return a ``float32`` array of shape ``(len(texts), d)`` whose rows are
    L2-normalised, so that a dot product with a row of the item matrix is a cosine similarity.
    :class:`bluerec.embed.embedder.Embedder` satisfies it.
    """

    def encode_queries(self, texts: list[str]) -> np.ndarray: ...


@runtime_checkable
class OptionScorer(Protocol):
    """A frozen reader that scores answer options given a context.

    ``score(contexts, options)`` gets ``n`` contexts and, for each, a list of ``C`` option strings, and returns an
    ``(n, C)`` array of log-likelihood scores (higher = more likely), typically
    ``log p(option | context)`` divided by the option's token count. See
    :class:`bluerec.rewards.multiple_choice.HFOptionScorer`.
    """

    def score(self, contexts: list[str], options: list[list[str]]) -> np.ndarray: ...
