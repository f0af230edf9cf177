from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bluerec.embed import Embedder, EmbedderConfig, ItemEmbeddingCache, embed_items
from bluerec.embed.cache import CacheNamespace

TEXTS = ["red shoe", "blue hat", "green scarf", "phone charger cable", "cast iron skillet"]
IDS = [f"i{i}" for i in range(len(TEXTS))]


class Counting:
    """Record every batch that reaches ``encode_documents``."""

    def __init__(self, embedder: Embedder) -> None:
        self.calls: list[list[str]] = []
        original = embedder.encode_documents

        def wrapped(texts):  # type: ignore[no-untyped-def]
            self.calls.append(list(texts))
            return original(texts)

        embedder.encode_documents = wrapped  # type: ignore[method-assign]

    @property
    def encoded(self) -> list[str]:
        return [t for batch in self.calls for t in batch]


def test_second_call_encodes_nothing(tiny: Embedder, tmp_path: Path) -> None:
    counter = Counting(tiny)
    first = embed_items(tiny, IDS, TEXTS, tmp_path)
    assert counter.encoded == TEXTS
    second = embed_items(tiny, IDS, TEXTS, tmp_path)
    assert counter.encoded == TEXTS  # nothing new
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, tiny.model.encode(TEXTS, normalize_embeddings=True), atol=1e-6)
    # Reordered / subset requests are served from the cache as well.
    sub = embed_items(tiny, ["x", "y"], [TEXTS[3], TEXTS[0]], tmp_path)
    np.testing.assert_array_equal(sub, first[[3, 0]])
    assert len(counter.calls) == 1


def test_changed_text_is_reencoded(tiny: Embedder, tmp_path: Path) -> None:
    counter = Counting(tiny)
    first = embed_items(tiny, IDS, TEXTS, tmp_path)
    changed = list(TEXTS)
    changed[2] = "green wool scarf"
    again = embed_items(tiny, IDS, changed, tmp_path)
    assert counter.calls[-1] == ["green wool scarf"]
    np.testing.assert_array_equal(again[[0, 1, 3, 4]], first[[0, 1, 3, 4]])
    assert not np.allclose(again[2], first[2])
    # Only the current generation of arrays stays on disk.
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert sorted(p.name.split("-")[0] for p in folder.iterdir()) == ["hashes", "index.json", "vectors"]
    index = json.loads((folder / "index.json").read_text())
    assert index["count"] == 6 and index["namespace"]["model_id"] == tiny.model_id


def test_duplicate_texts_are_encoded_once(tiny: Embedder, tmp_path: Path) -> None:
    counter = Counting(tiny)
    out = embed_items(tiny, ["a", "b", "c"], ["red shoe", "blue hat", "red shoe"], tmp_path)
    assert counter.encoded == ["red shoe", "blue hat"]
    np.testing.assert_array_equal(out[0], out[2])


def test_prompt_and_length_are_part_of_the_key(tiny_model_path: Path, tmp_path: Path) -> None:
    plain = Embedder(EmbedderConfig(model=str(tiny_model_path)))
    prompted = Embedder(EmbedderConfig(model=str(tiny_model_path), document_prompt="item: "))
    short = Embedder(EmbedderConfig(model=str(tiny_model_path), max_seq_length=3))
    embed_items(plain, IDS, TEXTS, tmp_path)
    for other in (prompted, short):
        counter = Counting(other)
        embed_items(other, IDS, TEXTS, tmp_path)
        assert counter.encoded == TEXTS
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 3


def test_damaged_cache_is_ignored_not_trusted(tiny: Embedder, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = embed_items(tiny, IDS, TEXTS, tmp_path)
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    (folder / "index.json").write_text("{not json")
    counter = Counting(tiny)
    again = embed_items(tiny, IDS, TEXTS, tmp_path)
    assert counter.encoded == TEXTS
    np.testing.assert_allclose(again, first, atol=1e-6)
    assert "ignoring unreadable item-embedding cache" in caplog.text


def test_cache_api_and_no_pickle(tmp_path: Path) -> None:
    cache = ItemEmbeddingCache(tmp_path)
    ns = CacheNamespace(model_id="toy@1", prompt="", max_seq_length=None, normalize=True)
    assert cache.add(ns, ["red shoe", "blue hat"], np.eye(2, 4, dtype=np.float32)) == 2
    vectors, found = cache.lookup(ns, ["blue hat", "green scarf"])
    assert found.tolist() == [True, False]
    np.testing.assert_array_equal(vectors[0], [0, 1, 0, 0])
    for npy in (tmp_path / ns.key).glob("*.npy"):
        assert np.load(npy, allow_pickle=False).dtype != object
    with pytest.raises(ValueError, match="dimension"):
        cache.add(ns, ["x"], np.ones((1, 3), dtype=np.float32))


def test_no_cache_dir_means_no_cache(tiny: Embedder) -> None:
    counter = Counting(tiny)
    embed_items(tiny, IDS, TEXTS)
    embed_items(tiny, IDS, TEXTS)
    assert len(counter.calls) == 2
    with pytest.raises(ValueError, match="unique"):
        embed_items(tiny, ["a", "a"], ["x", "y"])


def test_query_embeddings_are_cached_apart_from_documents(tiny_model_path: Path, tmp_path: Path) -> None:
    from bluerec.embed import embed_cached

    emb = Embedder(EmbedderConfig(model=str(tiny_model_path), query_prompt="query: "))
    calls: list[list[str]] = []
    original = emb.encode_queries
    emb.encode_queries = lambda texts: calls.append(list(texts)) or original(texts)  # type: ignore[method-assign]
    q1 = embed_cached(emb, TEXTS, "query", tmp_path)
    q2 = embed_cached(emb, TEXTS, "query", tmp_path)
    assert calls == [TEXTS]  # the second call is served from the cache
    np.testing.assert_array_equal(q1, q2)
    docs = embed_cached(emb, TEXTS, "document", tmp_path)
    assert not np.allclose(docs, q1)  # the query prompt changes the vectors; never mixed up in the cache


def test_large_requests_are_cached_chunk_by_chunk(tiny: Embedder, tmp_path: Path) -> None:
    """An interrupted encode keeps the chunks it finished: the rerun encodes only what is left."""
    from bluerec.embed import embed_cached

    counter = Counting(tiny)
    original = tiny.encode_documents
    done: list[int] = []

    def fail_on_third(texts):  # type: ignore[no-untyped-def]
        if len(done) == 2:
            raise KeyboardInterrupt
        done.append(len(texts))
        return original(texts)

    tiny.encode_documents = fail_on_third  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        embed_cached(tiny, TEXTS, "document", tmp_path, chunk_size=2)
    tiny.encode_documents = original  # type: ignore[method-assign]
    counter.calls.clear()
    counter = Counting(tiny)
    full = embed_cached(tiny, TEXTS, "document", tmp_path, chunk_size=2)
    assert counter.encoded == TEXTS[4:]  # the first two chunks (4 texts) came from the cache
    np.testing.assert_allclose(full, tiny.model.encode(TEXTS, normalize_embeddings=True), atol=1e-6)
