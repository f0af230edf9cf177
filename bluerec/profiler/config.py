"""The one typed configuration of a profiler model: which back-end, which model, how it is loaded and adapted.

Every stage that takes a profiler (GRPO training, warm start, ``bluerec profile``, evaluation, the quick start)
takes a :class:`ProfilerConfig` and loads it with :func:`bluerec.profiler.loader.load_profiler`.

``model`` is a known model name (``bluerec models list``; fetched into the user cache on first use), a
Hugging Face hub id or a local ``save_pretrained`` folder. Anything ``from_pretrained`` takes beyond that goes in
``model_init_kwargs`` (``revision``, ``gguf_file``, ``quantization_config``, ``subfolder``, ...).

Example::

    >>> from bluerec.profiler.config import ProfilerConfig
    >>> cfg = ProfilerConfig(model="smollm2-135m-instruct", lora={"enabled": True, "r": 8})
    >>> cfg.backend, cfg.device, cfg.lora.r
    ('hf', 'auto', 8)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from bluerec.config import StrictModel

# Keys of ``model_init_kwargs`` that have their own field (one place to set each thing).
_OWN_FIELDS = {"dtype": "dtype", "torch_dtype": "dtype", "trust_remote_code": "trust_remote_code",
               "attn_implementation": "attn_implementation", "device_map": "device"}


class LoraSettings(StrictModel):
    """LoRA adapters instead of full fine-tuning.

    Parameters:
        enabled: train LoRA adapters only (the saved ``final/`` model has them merged). Default ``False``.
        r, alpha, dropout: the adapter rank, scaling and dropout. Defaults ``16``, ``32``, ``0.05``.
        target_modules: module names to adapt, or ``"all-linear"`` (every linear layer but the output head).
            Default ``"all-linear"``.
    """

    enabled: bool = False
    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"

    def peft_config(self) -> Any:
        """``peft.LoraConfig`` of these settings (``None`` when LoRA is off)."""
        if not self.enabled:
            return None
        from peft import LoraConfig

        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=self.target_modules, bias="none", task_type="CAUSAL_LM")


class ProfilerConfig(StrictModel):
    """Which profiler model and how it is loaded.

    Parameters that choose the model:
        backend: ``"hf"`` (any causal LM ``transformers`` loads), ``"micro"`` (a micro-profiler folder built by
            :func:`bluerec.profiler.backends.micro.build_micro_profiler`, loaded like ``hf``) or ``"openai"`` (a
            server speaking ``/v1/chat/completions``; inference only) or ``"vllm"`` (a vLLM engine on a GPU, for
            fast profile generation; optional extra ``bluerec[vllm]``, imported only when used; inference only).
            Default ``"hf"``.
        model: a known model name (``bluerec models list``), a hub id or a local folder; for ``openai`` the model
            name the server serves.
        model_init_kwargs: passed to ``from_pretrained`` as they are (``revision``, ``gguf_file`` — a GGUF is
            dequantised and turned into a plain model that trains and saves —, ``quantization_config``,
            ``subfolder``...). Keys with their own field here (``dtype``, ``trust_remote_code``,
            ``attn_implementation``, ``device_map``) are refused. Default ``{}``.
        trust_remote_code: allow model repositories to run their own code. Default ``False``.

    Parameters that place the model:
        dtype: ``"auto"`` (bfloat16 on a GPU that supports it, else float32), ``"float32"``, ``"bfloat16"`` or
            ``"float16"``. Default ``"auto"``.
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``... Default
            ``"auto"``.
        attn_implementation: ``transformers`` attention kernel (``None`` = its default).

    Parameters that adapt the model:
        lora: :class:`LoraSettings` — with ``enabled``, training wraps the model in fresh LoRA adapters.
        lora_path: a saved PEFT adapter applied (and merged) at load time. Default ``None``.

    Parameters of the ``openai`` back-end:
        base_url: server root or API root. api_key_env: variable holding the key (never the key itself).

    Parameters that control batching:
        batch_size: prompts per ``generate`` call. Default ``32``.
    """

    backend: Literal["hf", "micro", "openai", "vllm"] = "hf"
    model: str = Field(min_length=1)
    model_init_kwargs: dict[str, Any] = Field(default_factory=dict)
    trust_remote_code: bool = False
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    attn_implementation: str | None = None
    lora: LoraSettings = Field(default_factory=LoraSettings)
    lora_path: str | None = None
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    batch_size: int = Field(32, ge=1)

    @field_validator("model_init_kwargs")
    @classmethod
    def _no_duplicates(cls, value: dict[str, Any]) -> dict[str, Any]:
        clash = sorted(k for k in value if k in _OWN_FIELDS)
        if clash:
            raise ValueError(f"model_init_kwargs sets {clash}: use the profiler field(s) "
                             f"{sorted({_OWN_FIELDS[k] for k in clash})} instead")
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value != "auto" and value.split(":")[0] not in ("cpu", "cuda", "mps", "xpu"):
            raise ValueError(f"unknown device {value!r}; allowed: auto, cpu, cuda, cuda:<n>, mps, xpu")
        return value

    @model_validator(mode="after")
    def _backend_fields(self) -> "ProfilerConfig":
        if self.backend == "openai":
            if not self.base_url:
                raise ValueError("backend 'openai' needs base_url")
            if self.lora.enabled or self.lora_path:
                raise ValueError("backend 'openai' serves a remote model: it cannot be trained or adapted here")
        elif self.base_url:
            raise ValueError(f"base_url is only for backend 'openai' (backend is {self.backend!r})")
        if self.backend == "vllm" and (self.lora.enabled or self.lora_path):
            raise ValueError("backend 'vllm' generates with merged weights: merge the adapter first (a run's final/ "
                             "is merged), and train with backend 'hf' and grpo.use_vllm")
        return self

    @classmethod
    def coerce(cls, value: Any) -> Any:
        """A bare string is shorthand for ``{"model": value}`` (used by configs that take a profiler)."""
        return {"model": value} if isinstance(value, str) else value
