"""On-disk cache of item embeddings, so a catalogue is encoded once per model and prompt.

Layout (one folder per *namespace* = model id + document prompt + max_seq_length + normalisation)::

    <cache_dir>/<namespace key>/index.json            what the namespace is, and which files are current
    <cache_dir>/<namespace key>/vectors-<gen>.npy     float32 (n, dim)
    <cache_dir>/<namespace key>/hashes-<gen>.npy      uint8 (n, 32): sha256 of each row's item text

Rows are keyed by the sha256 of the item text, so an edited text is re-encoded and two items with
the same text share a row. Arrays are plain ``.npy`` read with ``allow_pickle=False`` (no code runs on
load). An update writes a new generation of both arrays, then swaps ``index.json`` atomically, so a
crash leaves either the old or the new cache, never a mix.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from bluerec.io import atomic_path, write_json_atomic

if TYPE_CHECKING:
    from bluerec.embed.embedder import Embedder

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1


def text_sha256(texts: Sequence[str]) -> np.ndarray:
    """sha256 digests of ``texts`` as a ``(len(texts), 32)`` uint8 array."""
    out = np.empty((len(texts), 32), dtype=np.uint8)
    for i, text in enumerate(texts):
        out[i] = np.frombuffer(hashlib.sha256(text.encode("utf-8")).digest(), dtype=np.uint8)
    return out


def _as_keys(hashes: np.ndarray) -> list[bytes]:
    return [row.tobytes() for row in hashes]


@dataclass(frozen=True)
class CacheNamespace:
    """Everything besides the text that changes an item's embedding."""

    model_id: str
    prompt: str
    max_seq_length: int | None
    normalize: bool

    @property
    def key(self) -> str:
        payload = json.dumps(
            [CACHE_FORMAT, self.model_id, self.prompt, self.max_seq_length, self.normalize], ensure_ascii=False
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:24]

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "prompt": self.prompt,
            "max_seq_length": self.max_seq_length,
            "normalize": self.normalize,
        }


class ItemEmbeddingCache:
    """Item embeddings on disk, keyed by namespace and sha256 of the item text.

    Args:
        cache_dir: root folder; created on first write.

    Example:
        ::

            import numpy as np
            from bluerec.embed import ItemEmbeddingCache
            from bluerec.embed.cache import CacheNamespace

            cache = ItemEmbeddingCache("/tmp/item-cache")
            ns = CacheNamespace(model_id="toy@1", prompt="", max_seq_length=None, normalize=True)
            cache.add(ns, ["red shoe", "blue hat"], np.eye(2, 4, dtype=np.float32))
            vectors, found = cache.lookup(ns, ["blue hat", "green scarf"])
            print(found)  # [ True False]
    """

    def __init__(self, cache_dir: str | Path) -> None:
        self.cache_dir = Path(cache_dir)

    def _folder(self, ns: CacheNamespace) -> Path:
        return self.cache_dir / ns.key

    def load(self, ns: CacheNamespace) -> tuple[np.ndarray, np.ndarray] | None:
        """All cached ``(vectors, hashes)`` of a namespace, or None if there is no (readable) cache."""
        folder = self._folder(ns)
        index_path = folder / "index.json"
        if not index_path.exists():
            return None
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
            if index.get("format") != CACHE_FORMAT or index.get("namespace") != ns.as_dict():
                raise ValueError(f"index describes another namespace or format: {index.get('namespace')}")
            vectors = np.load(folder / index["vectors"], allow_pickle=False)
            hashes = np.load(folder / index["hashes"], allow_pickle=False)
            if (
                vectors.dtype != np.float32
                or vectors.ndim != 2
                or hashes.dtype != np.uint8
                or hashes.shape != (vectors.shape[0], 32)
                or vectors.shape[0] != index.get("count")
            ):
                raise ValueError(f"arrays do not match the index: {vectors.shape}, {hashes.shape}")
        except (OSError, ValueError, KeyError) as err:
            # A damaged cache only costs re-encoding; it must never stop a run or return wrong rows.
            logger.warning("ignoring unreadable item-embedding cache %s: %s", folder, err)
            return None
        return vectors, hashes

    def lookup(self, ns: CacheNamespace, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Cached vectors for ``texts``: ``(vectors, found)``; rows where ``found`` is False are zero."""
        stored = self.load(ns)
        if stored is None:
            return np.zeros((len(texts), 0), dtype=np.float32), np.zeros(len(texts), dtype=bool)
        vectors, hashes = stored
        row_of = {key: i for i, key in enumerate(_as_keys(hashes))}
        rows = np.array([row_of.get(key, -1) for key in _as_keys(text_sha256(texts))], dtype=np.int64)
        found = rows >= 0
        out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        out[found] = vectors[rows[found]]
        return out, found

    def add(self, ns: CacheNamespace, texts: Sequence[str], vectors: np.ndarray) -> int:
        """Merge ``vectors`` (one row per text) into the namespace; returns the new row count."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise ValueError(f"need one vector per text, got {vectors.shape} for {len(texts)} texts")
        new_hashes = text_sha256(texts)
        stored = self.load(ns)
        if stored is not None:
            old_vectors, old_hashes = stored
            if old_vectors.shape[1] != vectors.shape[1]:
                raise ValueError(f"dimension {vectors.shape[1]} differs from cached {old_vectors.shape[1]}")
            known = set(_as_keys(old_hashes))
            keep = np.array([key not in known for key in _as_keys(new_hashes)], dtype=bool)
            vectors = np.concatenate([old_vectors, vectors[keep]])
            new_hashes = np.concatenate([old_hashes, new_hashes[keep]])
        # Drop duplicate texts inside this batch too (first occurrence wins).
        _, first = np.unique(new_hashes, axis=0, return_index=True)
        first.sort()
        vectors, new_hashes = vectors[first], new_hashes[first]
        self._write(ns, vectors, new_hashes)
        return int(vectors.shape[0])

    def _write(self, ns: CacheNamespace, vectors: np.ndarray, hashes: np.ndarray) -> None:
        folder = self._folder(ns)
        folder.mkdir(parents=True, exist_ok=True)
        index_path = folder / "index.json"
        previous: dict[str, Any] = {}
        if index_path.exists():
            try:
                previous = json.loads(index_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                previous = {}
        gen = uuid.uuid4().hex[:12]
        names = {"vectors": f"vectors-{gen}.npy", "hashes": f"hashes-{gen}.npy"}
        for key, array in (("vectors", vectors), ("hashes", hashes)):
            with atomic_path(folder / names[key]) as tmp, open(tmp, "wb") as fh:
                np.save(fh, array, allow_pickle=False)
        write_json_atomic(
            index_path,
            {
                "format": CACHE_FORMAT,
                "namespace": ns.as_dict(),
                "dimension": int(vectors.shape[1]),
                "count": int(vectors.shape[0]),
                **names,
            },
        )
        # The new index is in place; the previous generation is now unreferenced.
        for key in ("vectors", "hashes"):
            old = previous.get(key)
            if isinstance(old, str) and old != names[key] and "/" not in old:
                (folder / old).unlink(missing_ok=True)


def embed_items(
    embedder: Embedder,
    item_ids: Sequence[str],
    texts: Sequence[str],
    cache_dir: str | Path | None = None,
) -> np.ndarray:
    """Document embeddings for a catalogue, reusing every row already in the on-disk cache.

    Only texts missing from the cache are encoded (each distinct text once); the cache is then updated.

    Args:
        embedder: the :class:`~bluerec.embed.Embedder` whose ``encode_documents`` is used.
        item_ids: one id per text (checked for length and uniqueness; the cache itself keys on text).
        texts: item texts, in the order of the returned rows.
        cache_dir: cache folder; None falls back to ``embedder.config.cache_dir``; if both are None
            nothing is cached.

    Returns:
        float32 array of shape ``(len(texts), embedder.dimension)``, row ``i`` for ``item_ids[i]``.

    Example:
        ::

            from bluerec.data.dataset import PreparedDataset
            from bluerec.embed import Embedder, embed_items

            items = PreparedDataset("data/prepared/beauty").items
            matrix = embed_items(Embedder(), items.ids, items.texts, cache_dir="cache/items")
    """
    if len(item_ids) != len(texts):
        raise ValueError(f"{len(item_ids)} item ids but {len(texts)} texts")
    if len(set(item_ids)) != len(item_ids):
        raise ValueError("item ids must be unique")
    return embed_cached(embedder, texts, "document", cache_dir)


def embed_cached(
    embedder: Embedder,
    texts: Sequence[str],
    kind: Literal["query", "document"] = "query",
    cache_dir: str | Path | None = None,
    chunk_size: int = 8192,
) -> np.ndarray:
    """Embeddings of ``texts`` as queries or documents, reusing rows already in the on-disk cache.

    Queries and documents live in separate cache folders whenever their prompts differ, so a model with
    query/document prompts (e.g. Qwen3-Embedding) never mixes them. Only missing texts are encoded, each
    distinct text once; re-evaluating the same profiles or baselines costs nothing.
    """
    cache_dir = cache_dir if cache_dir is not None else embedder.config.cache_dir
    encode = embedder.encode_queries if kind == "query" else embedder.encode_documents
    if cache_dir is None:
        return encode(texts)

    cache = ItemEmbeddingCache(cache_dir)
    ns = CacheNamespace(
        model_id=embedder.model_id,
        prompt=embedder.query_prompt_text if kind == "query" else embedder.document_prompt_text,
        max_seq_length=embedder.max_seq_length,
        normalize=embedder.config.normalize,
    )
    vectors, found = cache.lookup(ns, texts)
    missing = np.flatnonzero(~found).tolist()
    logger.info("%s embeddings: %d cached, %d to encode (%s)", kind, int(found.sum()), len(missing), ns.model_id)
    if not missing:
        return vectors
    # Encode each distinct missing text once, in chunks that are cached as they finish, so an interrupted
    # run over a large catalogue or user set resumes where it stopped.
    unique_texts = list(dict.fromkeys(texts[i] for i in missing))
    parts = []
    for start in range(0, len(unique_texts), chunk_size):
        chunk = unique_texts[start : start + chunk_size]
        parts.append(encode(chunk))
        cache.add(ns, chunk, parts[-1])
    encoded = np.concatenate(parts)
    if vectors.shape[1] == 0:
        vectors = np.zeros((len(texts), encoded.shape[1]), dtype=np.float32)
    row_of = {text: j for j, text in enumerate(unique_texts)}
    vectors[missing] = encoded[[row_of[texts[i]] for i in missing]]
    return vectors
