"""Typed settings of ``bluerec serve`` (YAML under ``configs/serve/`` or CLI options)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from bluerec.config import StrictModel
from bluerec.embed import EmbedderConfig

API_KEY_ENV = "BLUEREC_API_KEY"
API_KEY_HEADER = "X-API-Key"


class LimitSettings(StrictModel):
    """Input limits; a request over any of them gets a 4xx naming the field (413 for the body size).

    Parameters:
        max_history: most history entries per request.
        max_text_chars: longest free item text, review or ready profile (characters).
        max_k: largest ``k`` (``k`` must lie in ``[1, max_k]``).
        default_k: ``k`` when the request does not give one.
        max_candidates: longest candidate list.
        max_body_bytes: largest request body (bytes).
    """

    max_history: int = Field(50, ge=1)
    max_text_chars: int = Field(2000, ge=1)
    max_k: int = Field(100, ge=1)
    default_k: int = Field(10, ge=1)
    max_candidates: int = Field(1000, ge=1)
    max_body_bytes: int = Field(262_144, ge=256)

    @model_validator(mode="after")
    def _default_in_range(self) -> "LimitSettings":
        if self.default_k > self.max_k:
            raise ValueError(f"default_k ({self.default_k}) must not exceed max_k ({self.max_k})")
        return self


class BatchingSettings(StrictModel):
    """Micro-batching: requests that arrive together share one generate call and one retrieval call.

    Parameters:
        enabled: off runs every request on its own (one call each; for comparison in the load test).
        max_batch_size: most requests in one call.
        max_wait_ms: how long the first request of a batch waits for company before the call starts.
        max_queue: requests waiting for a call beyond this get 503 (back-pressure instead of unbounded latency).
    """

    enabled: bool = True
    max_batch_size: int = Field(16, ge=1)
    max_wait_ms: float = Field(10.0, ge=0.0)
    max_queue: int = Field(1024, ge=1)


class ServeSettings(StrictModel):
    """Everything ``bluerec serve`` needs.

    Parameters that choose the models and data:
        profiler: a local profiler folder (a run's ``final/`` or any Hugging Face ``save_pretrained`` folder) or
            a model name (see :func:`bluerec.serve.engine.resolve_profiler`). None serves ready profiles only.
        catalogue: a prepared-dataset folder, or an item file (``.jsonl`` / ``.parquet`` with ``item_id`` and
            ``text``, optionally ``title``; see :mod:`bluerec.serve.catalogue`).
        embedder: the retriever's embedding model (MiniLM by default) and its item-embedding cache.
        index: ``exact`` (torch matmul) or ``faiss`` (``IndexFlatIP``, also exact).

    Parameters that control generation:
        max_new_tokens: longest profile in tokens (greedy decoding, so a history always gets the same profile).
        device, dtype: where and how the profiler runs (``auto``: CUDA with bfloat16 when available).
        num_threads: torch threads (None keeps torch's default).

    Parameters that control the HTTP side:
        host, port: where uvicorn listens (loopback by default).
        api_key: required in the ``X-API-Key`` header when set (also read from ``$BLUEREC_API_KEY``).
        limits, batching: see :class:`LimitSettings` and :class:`BatchingSettings`.

    Example::

        from bluerec.serve import ServeSettings, ServingEngine, create_app
        settings = ServeSettings(profiler="runs/blue/final", catalogue="data/prepared/beauty2014",
                                 limits={"max_k": 50}, batching={"max_wait_ms": 5})
        app = create_app(ServingEngine.from_settings(settings), settings)  # uvicorn.run(app, port=8000)
    """

    profiler: str | None = None
    catalogue: Path
    embedder: EmbedderConfig = Field(default_factory=lambda: EmbedderConfig(cache_dir=Path(".cache/embeddings")))
    index: Literal["exact", "faiss"] = "exact"
    max_new_tokens: int = Field(64, ge=1, le=4096)
    device: str = "cpu"
    dtype: str = "auto"
    num_threads: int | None = Field(None, ge=1)
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    api_key: SecretStr | None = None
    limits: LimitSettings = Field(default_factory=LimitSettings)
    batching: BatchingSettings = Field(default_factory=BatchingSettings)

    def effective_api_key(self) -> str | None:
        """The configured key, else ``$BLUEREC_API_KEY``, else None (no key required). Empty means none."""
        if self.api_key is not None and self.api_key.get_secret_value():
            return self.api_key.get_secret_value()
        return os.environ.get(API_KEY_ENV) or None
