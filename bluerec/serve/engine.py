"""The models behind the API: profile generation and retrieval, each as one call per batch of requests.

:class:`ServingEngine` owns a profiler back-end (any :class:`~bluerec.profiler.backends.ProfilerBackend`), the
prompt settings it was trained with, the embedder and the item index (item embeddings computed once, through the
on-disk cache of :func:`bluerec.embed.embed_items`). :meth:`ServingEngine.profile_batch` is one ``generate`` call
for many histories; :meth:`ServingEngine.retrieve_batch` is one query-encoding call and one
:meth:`ItemIndex.search` call for many profiles. The app's micro-batchers feed them.

Example::

    engine = ServingEngine.from_settings(ServeSettings(profiler="runs/blue/final", catalogue="data/beauty"))
    [profile] = engine.profile_batch([[HistoryItem("Lodge cast iron skillet", rating=5.0)]])
    [hits] = engine.retrieve_batch([Query(profile, k=10)])
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from bluerec.profiler.backends.base import GenerationConfig, ProfilerBackend
from bluerec.profiler.prompts import HistoryItem, PromptConfig, fit_prompt
from bluerec.serve.catalogue import Catalogue, load_catalogue
from bluerec.serve.settings import ServeSettings

log = logging.getLogger(__name__)


def resolve_profiler(spec: str) -> Path:
    """The local folder ``--profiler`` names: a folder (a run's ``final/`` or any ``save_pretrained`` folder) or a
    known model name (``bluerec models list``), fetched into the model cache on first use."""
    from bluerec.models.fetch import resolve_model
    from bluerec.models.registry import is_known

    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    if is_known(spec):
        return Path(resolve_model(spec))
    raise FileNotFoundError(f"profiler {spec!r}: not a local model folder (a run's final/ or a save_pretrained "
                            "folder) nor a known model name (bluerec models list)")


def load_profiler(settings: ServeSettings) -> tuple[ProfilerBackend, PromptConfig]:
    """The profiler back-end of ``settings.profiler`` and the prompt settings it was trained with."""
    from bluerec.pipeline import run_prompt_config
    from bluerec.profiler.backends.hf import HFProfiler

    assert settings.profiler is not None
    folder = resolve_profiler(settings.profiler)
    backend = HFProfiler.from_pretrained(folder, device=settings.device, dtype=settings.dtype,
                                         batch_size=settings.batching.max_batch_size)
    return backend, run_prompt_config(folder)


@dataclass(frozen=True)
class Query:
    """One retrieval job: a profile text, how many items, which to leave out, and optionally the only candidates."""

    text: str
    k: int
    exclude: tuple[int, ...] = ()
    candidates: tuple[int, ...] | None = None


@dataclass
class Hits:
    indices: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)


class ItemIndex:
    """Top-K search over the item embeddings with :mod:`bluerec.eval.retrieval` (both kinds are exact).

    Args:
        vectors: ``(n_items, dim)`` float32 item embeddings.
        kind: ``exact`` (:class:`~bluerec.eval.retrieval.TorchRetriever`) or ``faiss``
            (:class:`~bluerec.eval.retrieval.FaissRetriever`, ``IndexFlatIP``).

    Example::

        index = ItemIndex(np.eye(3, dtype=np.float32))
        [hits] = index.search(np.array([[0.1, 0.9, 0.0]], np.float32), [Query("", k=2, exclude=(1,))])
        print(hits.indices)  # [0, 2]
    """

    def __init__(self, vectors: np.ndarray, kind: Literal["exact", "faiss"] = "exact") -> None:
        from bluerec.eval.retrieval import FaissRetriever, TorchRetriever

        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.kind = kind
        self.retriever = FaissRetriever(self.vectors) if kind == "faiss" else TorchRetriever(self.vectors)

    def describe(self) -> dict[str, Any]:
        name = "faiss IndexFlatIP (exact)" if self.kind == "faiss" else "torch matmul (exact)"
        return {"type": self.kind, "description": name, "n_items": int(self.vectors.shape[0]),
                "dimension": int(self.vectors.shape[1])}

    def search(self, queries: np.ndarray, jobs: list[Query]) -> list[Hits]:
        """The top items of every job: one retriever call for all jobs over the whole catalogue, and one scoring
        of the candidate lists for the jobs restricted to candidates."""
        out = [Hits() for _ in jobs]
        full = [i for i, j in enumerate(jobs) if j.candidates is None]
        if full:
            k = min(max(jobs[i].k for i in full), self.vectors.shape[0])
            top = self.retriever.search(queries[full], k, [list(jobs[i].exclude) for i in full])
            for row, i in enumerate(full):
                keep = top.indices[row] >= 0
                out[i] = Hits(top.indices[row][keep][: jobs[i].k].tolist(),
                              top.scores[row][keep][: jobs[i].k].astype(float).tolist())
        for i, job in enumerate(jobs):
            if job.candidates is None:
                continue
            drop = set(job.exclude)
            cand = np.array([c for c in dict.fromkeys(job.candidates) if c not in drop], dtype=np.int64)
            if cand.size == 0:
                continue
            scores = self.vectors[cand] @ queries[i]
            order = np.argsort(-scores, kind="stable")[: job.k]
            out[i] = Hits(cand[order].tolist(), scores[order].astype(float).tolist())
        return out


class ServingEngine:
    """Profiles and recommendations for batches of requests (see the module docstring).

    Args:
        catalogue: the items.
        embedder: anything with ``encode_queries`` (and ``model_id``/``dimension`` for ``describe``).
        index: the :class:`ItemIndex` over the catalogue's embeddings (row ``i`` = ``catalogue.ids[i]``).
        profiler: a profiler back-end, or None to serve ready profiles only.
        prompt: the prompt settings (those the profiler was trained with).
        generation: generation settings (greedy by default).
    """

    def __init__(self, catalogue: Catalogue, embedder: Any, index: ItemIndex, profiler: ProfilerBackend | None = None,
                 prompt: PromptConfig | None = None, generation: GenerationConfig | None = None) -> None:
        if index.vectors.shape[0] != len(catalogue):
            raise ValueError(f"index has {index.vectors.shape[0]} rows for {len(catalogue)} catalogue items")
        self.catalogue = catalogue
        self.embedder = embedder
        self.index = index
        self.profiler = profiler
        self.prompt = prompt or PromptConfig()
        self.generation = generation or GenerationConfig(num_samples=1, max_new_tokens=64, do_sample=False, seed=0)

    @classmethod
    def from_settings(cls, settings: ServeSettings, say: Any = log.info) -> "ServingEngine":
        """Load the catalogue, embed it (cached), build the index and load the profiler."""
        from bluerec.embed import Embedder, embed_items

        if settings.num_threads:
            import torch

            torch.set_num_threads(settings.num_threads)
        if settings.profiler is not None:
            resolve_profiler(settings.profiler)  # a wrong name fails before minutes of loading
        catalogue = load_catalogue(settings.catalogue)
        say(f"catalogue: {len(catalogue):,} items from {catalogue.source}")
        embedder = Embedder(settings.embedder)
        vectors = embed_items(embedder, catalogue.ids, catalogue.texts, settings.embedder.cache_dir)
        index = ItemIndex(vectors, settings.index)
        say(f"index: {index.describe()['description']}, {vectors.shape[0]:,} x {vectors.shape[1]}")
        profiler, prompt = (None, None)
        if settings.profiler is not None:
            profiler, prompt = load_profiler(settings)
            say(f"profiler: {profiler.describe()}")
        generation = GenerationConfig(num_samples=1, max_new_tokens=settings.max_new_tokens, do_sample=False, seed=0,
                                      batch_size=settings.batching.max_batch_size)
        return cls(catalogue, embedder, index, profiler, prompt, generation)

    # -- batch functions (run in worker threads) ---------------------------------------------------------
    def profile_batch(self, histories: list[list[HistoryItem]]) -> list[str]:
        """One profile per history (oldest first), from ONE ``generate`` call."""
        if self.profiler is None:
            raise RuntimeError("this server has no profiler")
        count = self.profiler.count_tokens
        prompts = [fit_prompt(h, self.prompt, count).messages for h in histories]
        outs = self.profiler.generate(prompts, **self.generation.sampling_kwargs())
        return [samples[0] if samples else "" for samples in outs]

    def retrieve_batch(self, jobs: list[Query]) -> list[Hits]:
        """The top items of every job, from ONE query-encoding call and ONE index search."""
        queries = np.ascontiguousarray(self.embedder.encode_queries([j.text for j in jobs]), dtype=np.float32)
        return self.index.search(queries, jobs)

    # -- description -------------------------------------------------------------------------------------
    def profiler_info(self) -> dict[str, Any] | None:
        """The back-end's ``describe()``, with local model paths cut to the folder name (clients need not see
        the server's file system)."""
        if self.profiler is None:
            return None
        return {k: (_public_name(v) if k in ("model", "lora") else v) for k, v in self.profiler.describe().items()}

    def generation_info(self) -> dict[str, Any] | None:
        if self.profiler is None:
            return None
        from bluerec.profiler.profile import generation_settings

        info = generation_settings(self.profiler, "serve", self.prompt, self.generation)
        info.update(self.profiler_info() or {})
        return info

    def describe(self) -> dict[str, Any]:
        emb = {"model": getattr(self.embedder, "model_id", type(self.embedder).__name__)}
        try:
            emb["dimension"] = int(self.embedder.dimension)
        except Exception:  # noqa: BLE001 - a minimal embedder need not say
            emb["dimension"] = int(self.index.vectors.shape[1])
        return {
            "profiler": self.profiler_info(),
            "generation": self.generation_info(),
            "embedder": emb,
            "catalogue": {"source": self.catalogue.source, "kind": self.catalogue.kind, "n_items": len(self.catalogue)},
            "index": self.index.describe(),
        }


def _public_name(value: Any) -> Any:
    if isinstance(value, str) and ("/" in value or "\\" in value) and Path(value).exists():
        return Path(value).name
    return value
