"""``load_profiler``: the one way every stage loads its profiler from a :class:`~bluerec.profiler.config.ProfilerConfig`.

GRPO training, warm start, ``bluerec profile``, evaluation profile files and the quick start all come through here,
so a known model name, ``model_init_kwargs``, dtype, device and LoRA mean the same thing everywhere.

Example::

    >>> from bluerec.profiler.config import ProfilerConfig
    >>> from bluerec.profiler.loader import load_profiler
    >>> profiler = load_profiler(ProfilerConfig(model="smollm2-135m-instruct"))      # doctest: +SKIP
    >>> profiler.generate([[{"role": "user", "content": "Hi"}]], max_new_tokens=8)   # doctest: +SKIP
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bluerec.profiler.config import ProfilerConfig

log = logging.getLogger(__name__)


def load_profiler(config: ProfilerConfig | str | Path, *, trainable: bool = False, device: str | None = None) -> Any:
    """The profiler back-end of ``config`` (a string is ``ProfilerConfig(model=...)``).

    ``hf`` and ``micro`` give an :class:`~bluerec.profiler.backends.hf.HFProfiler` in eval mode; with
    ``trainable=True`` and ``config.lora.enabled`` its ``.model`` is a ``peft.PeftModel`` with fresh adapters (the
    base weights frozen), ready for a trainer. ``openai`` gives an
    :class:`~bluerec.profiler.backends.openai_compat.OpenAICompatProfiler` (never trainable). ``device`` overrides
    ``config.device``.
    """
    if not isinstance(config, ProfilerConfig):
        config = ProfilerConfig(model=str(config))
    if config.backend == "openai":
        if trainable:
            raise ValueError("backend 'openai' serves a remote model: it cannot be trained")
        from bluerec.profiler.backends.openai_compat import OpenAICompatProfiler

        return OpenAICompatProfiler(str(config.base_url), model=config.model, api_key_env=config.api_key_env)

    if config.backend == "vllm":
        if trainable:
            raise ValueError("backend 'vllm' is inference only: train with backend 'hf' (grpo.use_vllm generates "
                             "the GRPO completions with vLLM)")
        from bluerec.models.fetch import resolve_model
        from bluerec.profiler.backends.vllm import VLLMProfiler

        return VLLMProfiler(resolve_model(config.model), dtype=config.dtype, trust_remote_code=config.trust_remote_code,
                            **config.model_init_kwargs)

    from bluerec.profiler.backends.hf import HFProfiler

    if config.backend == "micro" and not Path(config.model).is_dir():
        raise FileNotFoundError(f"micro profiler folder {config.model} does not exist: build it first "
                                "(bluerec.profiler.backends.micro.build_micro_profiler)")
    profiler = HFProfiler.from_pretrained(
        config.model, dtype=config.dtype, device=device or config.device, trust_remote_code=config.trust_remote_code,
        lora_path=config.lora_path, attn_implementation=config.attn_implementation, batch_size=config.batch_size,
        model_init_kwargs=config.model_init_kwargs)
    profiler.name = config.model
    profiler.generation_defaults = registry_generation_defaults(config)
    if trainable and config.lora.enabled:
        from peft import get_peft_model

        model = get_peft_model(profiler.model, config.lora.peft_config())
        profiler = HFProfiler(model, profiler.tokenizer, name=config.model, batch_size=config.batch_size,
                              lora_path=config.lora_path)
    return profiler


def registry_generation_defaults(config: ProfilerConfig) -> dict[str, Any]:
    """The repetition controls a known model applies where a generation config leaves them unset (``{}`` for
    models outside the registry)."""
    from bluerec.models.registry import REGISTRY

    return dict(REGISTRY[config.model].generation) if config.model in REGISTRY else {}


def describe_profiler(config: ProfilerConfig) -> dict[str, Any]:
    """What ``load_profiler(config).describe()`` returns, without loading the model: the ``generation`` field of
    profile files, for a driver that holds no model (the Ray engine). Tested equal to the loaded back-ends."""
    if config.backend == "openai":
        return {"backend": "openai_compat", "model": config.model, "base_url": str(config.base_url).rstrip("/")}
    if config.backend == "vllm":
        return {"backend": "vllm", "model": config.model}
    out: dict[str, Any] = {"backend": "hf", "model": config.model, "lora": config.lora_path}
    defaults = registry_generation_defaults(config)
    if defaults:
        out["generation_defaults"] = defaults
    return out
