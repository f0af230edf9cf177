"""Profiler back-ends behind one small protocol (:class:`~bluerec.profiler.backends.base.ProfilerBackend`).

Each back-end lives in its own module and is imported lazily, so a new one is one new file:

- :mod:`.hf` — any local or hub causal LM through ``transformers`` (Gemma3, Qwen2, Llama, the micro model);
- :mod:`.openai_compat` — any server speaking ``/v1/chat/completions`` (vLLM, llama.cpp, OpenAI);
- :mod:`.micro` — builds the offline micro profiler (tokenizer + tiny Qwen2), then served by :mod:`.hf`.
"""

from bluerec.profiler.backends.base import GenerationConfig, ProfilerBackend, generate_with

__all__ = ["GenerationConfig", "ProfilerBackend", "generate_with"]
