"""Profiles from any causal LM that ``transformers`` loads: Gemma3, Qwen2, Llama, or the micro model.

The chat template is used when the tokenizer has one (else a plain ``System/User/Profile`` prompt),
prompts are left-padded and generated in one batch with ``num_return_sequences`` samples each, the
sampler is seeded without disturbing the global RNG, and only the new text is returned, stripped.
``top_k`` is disabled and the model's own ``generation_config`` sampling defaults are ignored, so
``temperature``/``top_p`` mean exactly what they say for every model.

Example::

    profiler = HFProfiler.from_pretrained("runs/micro/profiler", dtype="float32", device="cpu")
    outs = profiler.generate([messages], num_samples=4, max_new_tokens=64, seed=0)
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import torch

from bluerec.profiler.prompts import render_prompt, token_counter

log = logging.getLogger(__name__)

STOP_TOKENS = ("<end_of_turn>", "<|im_end|>", "<|eot_id|>", "<|end|>", "<|endoftext|>", "<eos>")
# ``from_pretrained`` keyword arguments that the tokenizer needs too (same repository, same version).
_TOKENIZER_KWARGS = ("revision", "subfolder", "cache_dir", "token", "local_files_only")
_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
           "float16": torch.float16, "fp16": torch.float16}


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None or dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    try:
        return _DTYPES[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; allowed: {['auto', *_DTYPES]}") from None


class CompletionRepetitionControl:
    """A ``transformers`` logits processor against loops, acting on the *completion* only: the prompt's tokens are
    neither penalised nor banned, so a profile may copy the titles it is shown, but may not say the same thing
    twice. ``transformers``' own ``no_repeat_ngram_size`` / ``repetition_penalty`` count the prompt too (a
    decoder-only model's ``input_ids`` start with it), which would forbid exactly that copying.

    Args:
        prompt_length: columns of ``input_ids`` that are prompt (left-padded batch: the same for every row).
        no_repeat_ngram_size: an n-gram of the completion never occurs twice (``0`` = off).
        repetition_penalty: tokens already in the completion have positive logits divided and negative ones
            multiplied by this (``1.0`` = off).

    Example::

        >>> import torch
        >>> proc = CompletionRepetitionControl(prompt_length=1, no_repeat_ngram_size=2)
        >>> scores = proc(torch.tensor([[9, 4, 5, 4]]), torch.zeros(1, 10))
        >>> bool(torch.isinf(scores[0, 5]))  # "4 5" occurred, so 5 may not follow the last 4 again
        True
    """

    def __init__(self, prompt_length: int, no_repeat_ngram_size: int = 0, repetition_penalty: float = 1.0) -> None:
        self.prompt_length = prompt_length
        self.n = no_repeat_ngram_size
        self.penalty = repetition_penalty

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        gen = input_ids[:, self.prompt_length :]
        if gen.shape[1] == 0:
            return scores
        if self.penalty != 1.0:
            picked = scores.gather(1, gen)
            scores = scores.scatter(1, gen, torch.where(picked > 0, picked / self.penalty, picked * self.penalty))
        n = self.n
        if n > 0 and gen.shape[1] >= n:
            rows = gen.tolist()
            for r, toks in enumerate(rows):
                prefix = tuple(toks[len(toks) - n + 1 :]) if n > 1 else ()
                banned = {toks[i + n - 1] for i in range(len(toks) - n + 1) if tuple(toks[i : i + n - 1]) == prefix}
                if banned:
                    scores[r, list(banned)] = -float("inf")
        return scores


class HFProfiler:
    """A :class:`~bluerec.profiler.backends.base.ProfilerBackend` over a ``transformers`` model.

    Args:
        model: a causal LM (``AutoModelForCausalLM``), possibly a PEFT model.
        tokenizer: its tokenizer; a missing pad token falls back to the EOS token.
        name: what :meth:`describe` reports as the model.
        batch_size: prompts per ``model.generate`` call (each with ``num_samples`` sequences).

    ``.model`` and ``.tokenizer`` are public: the GRPO trainer trains the same objects.
    """

    def __init__(self, model: Any, tokenizer: Any, *, name: str | None = None, batch_size: int = 32,
                 lora_path: str | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name or str(getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__)
        self.batch_size = batch_size
        self.lora_path = lora_path
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        vocab = tokenizer.get_vocab()
        stops: list[int] = []
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        for tid in ([gen_eos] if isinstance(gen_eos, int) else list(gen_eos or [])) + [tokenizer.eos_token_id]:
            if tid is not None and tid not in stops:
                stops.append(int(tid))
        for tok in STOP_TOKENS:
            tid = vocab.get(tok)
            if tid is not None and tid not in stops:
                stops.append(int(tid))
        self.stop_token_ids = stops
        # Repetition-control defaults of this model (a known model's registry entry; see load_profiler).
        self.generation_defaults: dict[str, Any] = {}
        self._count = token_counter(tokenizer)
        self._check_vocab()

    # -- loading ---------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        model_id_or_path: str | Path,
        *,
        dtype: str | torch.dtype | None = "auto",
        device: str | torch.device | None = "auto",
        trust_remote_code: bool = False,
        lora_path: str | Path | None = None,
        merge_lora: bool = True,
        attn_implementation: str | None = None,
        batch_size: int = 32,
        model_init_kwargs: dict[str, Any] | None = None,
    ) -> "HFProfiler":
        """Load a model and its tokenizer from a hub id or a ``save_pretrained`` folder.

        ``dtype="auto"`` is bfloat16 on a GPU that supports it and float32 otherwise; ``device="auto"``
        is CUDA when available. ``lora_path`` applies a PEFT adapter (merged into the weights unless
        ``merge_lora=False``, which keeps a trainable ``PeftModel``). A known model name (``bluerec models list``)
        resolves to its cached folder, fetched on first use. ``model_init_kwargs`` go to ``from_pretrained``
        (the tokenizer gets the ones that concern it); with ``gguf_file`` the dequantised model is made a plain
        one (:func:`bluerec.models.fetch.plain_model`), the same path ``bluerec models fetch`` converts with.
        Prefer :func:`bluerec.profiler.loader.load_profiler`, which takes a ``ProfilerConfig``.
        """
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from bluerec.models.fetch import load_gguf, resolve_model
        from bluerec.profiler.source import check_model_source

        # A missing folder, pickle-only weights, remote code or an uncached id offline: one clear error first.
        check_model_source(str(model_id_or_path), option="model", trust_remote_code=trust_remote_code)
        dev = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, dev)
        src = resolve_model(str(model_id_or_path))
        init = dict(model_init_kwargs or {})
        kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        gguf_file = init.pop("gguf_file", None)
        if gguf_file:
            model, tokenizer = load_gguf(src, gguf_file, dtype=torch_dtype, **kwargs, **init)
        else:
            tok_kwargs = {k: v for k, v in init.items() if k in _TOKENIZER_KWARGS}
            tokenizer = AutoTokenizer.from_pretrained(src, trust_remote_code=trust_remote_code, **tok_kwargs)
            model = AutoModelForCausalLM.from_pretrained(src, dtype=torch_dtype, **kwargs, **init)
        # A model placed by a device_map or quantised on load stays where from_pretrained put it.
        if getattr(model, "hf_device_map", None) is None and not getattr(model, "is_quantized", False):
            model = model.to(dev)
        if lora_path is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(lora_path), is_trainable=not merge_lora)
            if merge_lora:
                model = model.merge_and_unload()
        model.eval()
        return cls(model, tokenizer, name=src, batch_size=batch_size,
                   lora_path=None if lora_path is None else str(lora_path))

    def _check_vocab(self) -> None:
        emb = self.model.get_input_embeddings()
        if emb is not None and len(self.tokenizer) > emb.num_embeddings:
            raise ValueError(
                f"tokenizer has {len(self.tokenizer)} tokens but the model's embedding has {emb.num_embeddings}: "
                "the tokenizer does not belong to this model (or needs model.resize_token_embeddings)"
            )

    # -- protocol --------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def max_input_tokens(self, max_new_tokens: int) -> int | None:
        cfg = self.model.config
        cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
        limit = getattr(cfg, "max_position_embeddings", None)
        return None if limit is None else max(1, int(limit) - max_new_tokens)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` plus the chat markup a prompt adds."""
        return self._count(text)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"backend": "hf", "model": self.name, "lora": self.lora_path}
        if self.generation_defaults:  # the model's repetition defaults that applied where a config left them unset
            out["generation_defaults"] = dict(self.generation_defaults)
        return out

    def render(self, messages: list[dict]) -> str:
        return render_prompt(messages, self.tokenizer)

    def generate(
        self,
        prompts_messages: list[list[dict]],
        *,
        num_samples: int = 1,
        max_new_tokens: int = 128,
        temperature: float = 1.0,
        top_p: float = 1.0,
        do_sample: bool = True,
        seed: int | None = 0,
        no_repeat_ngram_size: int | None = None,
        repetition_penalty: float | None = None,
    ) -> list[list[str]]:
        """``num_samples`` profiles for each chat in ``prompts_messages`` (greedy decoding repeats its one
        answer ``num_samples`` times). The repetition controls act within each completion only
        (:class:`CompletionRepetitionControl`); ``None`` takes :attr:`generation_defaults`."""
        if not prompts_messages:
            return []
        ngram = self.generation_defaults.get("no_repeat_ngram_size", 0) if no_repeat_ngram_size is None \
            else no_repeat_ngram_size
        penalty = self.generation_defaults.get("repetition_penalty", 1.0) if repetition_penalty is None \
            else repetition_penalty
        control = (int(ngram), float(penalty))
        if do_sample and temperature <= 0:
            raise ValueError("temperature must be > 0 when do_sample is true (use do_sample=False for greedy)")
        out: list[list[str]] = []
        was_training = self.model.training
        self.model.eval()
        dev = self.device
        fork_devices = [dev.index or 0] if dev.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=fork_devices), torch.inference_mode():
                if seed is not None:
                    torch.manual_seed(seed)
                for start in range(0, len(prompts_messages), self.batch_size):
                    chunk = prompts_messages[start : start + self.batch_size]
                    out.extend(self._generate_chunk(chunk, num_samples, max_new_tokens, temperature, top_p, do_sample,
                                                    control))
        finally:
            if was_training:
                self.model.train()
        return out

    def _generate_chunk(self, chunk, num_samples, max_new_tokens, temperature, top_p, do_sample,
                        control=(0, 1.0)) -> list[list[str]]:
        from transformers import GenerationConfig as HFGenerationConfig
        from transformers import LogitsProcessorList

        tok = self.tokenizer
        texts = [render_prompt(m, tok) for m in chunk]
        enc = tok(texts, return_tensors="pt", padding=True, padding_side="left",
                  add_special_tokens=not bool(getattr(tok, "chat_template", None)))
        input_ids, attention_mask = enc["input_ids"], enc["attention_mask"]
        limit = self.max_input_tokens(max_new_tokens)
        if limit is not None and input_ids.shape[1] > limit:
            warnings.warn(
                f"prompt of {input_ids.shape[1]} tokens exceeds the model's {limit} input tokens "
                f"(max_position_embeddings - max_new_tokens); keeping the last {limit}. Lower max_prompt_tokens.",
                stacklevel=3,
            )
            input_ids, attention_mask = input_ids[:, -limit:], attention_mask[:, -limit:]
        n_seq = num_samples if do_sample else 1
        gen_cfg = HFGenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            num_return_sequences=n_seq,
            pad_token_id=tok.pad_token_id,
            eos_token_id=self.stop_token_ids,
            bos_token_id=tok.bos_token_id,
            use_cache=True,
            **({"temperature": temperature, "top_p": top_p, "top_k": 0} if do_sample else {}),
        )
        processors = LogitsProcessorList()
        if control[0] > 0 or control[1] != 1.0:
            processors.append(CompletionRepetitionControl(input_ids.shape[1], *control))
        generated = self.model.generate(
            input_ids=input_ids.to(self.device),
            attention_mask=attention_mask.to(self.device),
            generation_config=gen_cfg,
            logits_processor=processors,
        )
        new_tokens = generated[:, input_ids.shape[1] :]
        decoded = [t.strip() for t in tok.batch_decode(new_tokens, skip_special_tokens=True)]
        groups = [decoded[i * n_seq : (i + 1) * n_seq] for i in range(len(chunk))]
        if not do_sample and num_samples > 1:
            groups = [g * num_samples for g in groups]
        return groups
