"""Dense embeddings for profiles (queries) and items (documents), with an on-disk item cache."""

from bluerec.embed.cache import CacheNamespace, ItemEmbeddingCache, embed_cached, embed_items
from bluerec.embed.embedder import DEFAULT_MODEL, Embedder, EmbedderConfig, resolve_device

__all__ = [
    "DEFAULT_MODEL",
    "CacheNamespace",
    "Embedder",
    "EmbedderConfig",
    "ItemEmbeddingCache",
    "embed_cached",
    "embed_items",
    "resolve_device",
]
