"""Fakes for the serving tests (tests/serve): a spy profiler that counts generate calls, a hashing embedder that
counts encode calls, an index that counts searches, and an engine over a small item file."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bluerec.serve import ItemIndex, ServingEngine, load_catalogue


class SpyProfiler:
    """A profiler back-end whose profile is the item words of the prompt; records every generate call."""

    def __init__(self, fail: bool = False, delay: float = 0.0) -> None:
        self.calls: list[int] = []  # batch size of each call
        self.fail, self.delay = fail, delay
        self.lock = threading.Lock()

    def generate(self, prompts_messages, **kwargs) -> list[list[str]]:
        with self.lock:
            self.calls.append(len(prompts_messages))
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("secret internal detail /etc/model.bin")
        outs = []
        for messages in prompts_messages:
            lines = [ln for ln in messages[-1]["content"].splitlines() if re.match(r"^\d+\. ", ln)]
            outs.append(["likes " + " ".join(ln.split(". ", 1)[1] for ln in lines)])
        return outs

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def describe(self) -> dict[str, Any]:
        return {"backend": "spy", "model": "spy"}


class HashEmbedder:
    """Bag of hashed words, L2-normalised; counts query-encoding calls."""

    model_id = "hash@1"
    dimension = 64

    def __init__(self) -> None:
        self.query_calls: list[int] = []

    def _encode(self, texts) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), np.float32)
        for r, text in enumerate(texts):
            for w in re.findall(r"\w+", text.lower()):
                out[r, int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dimension] += 1
        out[:, -1] += 1e-3
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def encode_queries(self, texts) -> np.ndarray:
        self.query_calls.append(len(texts))
        return self._encode(list(texts))

    def encode_documents(self, texts) -> np.ndarray:
        return self._encode(list(texts))


class SpyIndex(ItemIndex):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[int] = []

    def search(self, queries, jobs):
        self.calls.append(len(jobs))
        return super().search(queries, jobs)


ITEMS = [
    ("i1", "Maybelline Matte Lipstick Red | Beauty > Makeup > Lips", "Maybelline Matte Lipstick Red"),
    ("i2", "L'Oreal Infallible Foundation Matte | Beauty > Makeup > Face", "L'Oreal Infallible Foundation"),
    ("i3", "Curly Hair Shampoo Sulfate Free | Beauty > Hair", "Curly Hair Shampoo"),
    ("i4", "Pink Glitter Nail Polish | Beauty > Nails", "Pink Glitter Nail Polish"),
    ("i5", "Maybelline Fit Me Foundation | Beauty > Makeup > Face", "Maybelline Fit Me Foundation"),
    ("i6", "Argan Oil Hair Mask | Beauty > Hair", "Argan Oil Hair Mask"),
]


def make_engine(item_file: Path, profiler: Any = "spy", index: str = "exact") -> ServingEngine:
    catalogue = load_catalogue(item_file)
    embedder = HashEmbedder()
    spy_index = SpyIndex(embedder.encode_documents(catalogue.texts), index)  # type: ignore[arg-type]
    prof = SpyProfiler() if profiler == "spy" else profiler
    return ServingEngine(catalogue, embedder, spy_index, prof)
