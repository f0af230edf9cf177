"""vLLM as a profile generator (optional: ``pip install "bluerec[vllm]"``, GPU only).

vLLM is imported lazily, when a :class:`VLLMProfiler` is built, so bluerec installs and runs without it; a missing
install is one clear error that says how to get it. Prompts are rendered by the same chat-template code as the
transformers back-end (:func:`bluerec.profiler.prompts.render_prompt`), so a profiler trained with bluerec sees the
same text under either engine.

LoRA note: vLLM serves *merged* weights here. A run's ``final/`` folder is already merged; for an adapter-only
folder, merge it first (``load_profiler`` with ``lora_path`` then ``save_pretrained``). During GRPO training with
``grpo.use_vllm`` (TRL's colocate mode), TRL merges the LoRA adapters into the vLLM weights before each generation
step and unmerges them after: generation uses the current policy, but each sync costs a full weight copy, so keep
``gradient_accumulation_steps`` × steps between syncs in mind on large models.

Example::

    from bluerec.profiler.loader import load_profiler
    from bluerec.profiler.config import ProfilerConfig

    profiler = load_profiler(ProfilerConfig(backend="vllm", model="runs/beauty/grpo/final"))
    profiler.generate([messages], num_samples=4, max_new_tokens=64, temperature=1.0)
"""

from __future__ import annotations

from typing import Any

VLLM_MISSING = ('the vllm back-end needs vLLM (CUDA only): pip install "bluerec[vllm]" (or pip install vllm); '
                "without a GPU use --backend hf")


def import_vllm() -> Any:
    """The ``vllm`` module, or an ImportError that says how to install it."""
    try:
        import vllm
    except ImportError as err:
        raise ImportError(VLLM_MISSING) from err
    return vllm


class VLLMProfiler:
    """A profiler back-end on a ``vllm.LLM`` engine (same ``generate`` contract as the transformers back-end)."""

    def __init__(self, model: str, *, dtype: str = "auto", seed: int = 0, gpu_memory_utilization: float = 0.9,
                 max_model_len: int | None = None, trust_remote_code: bool = False, **engine_kwargs: Any) -> None:
        vllm = import_vllm()
        from transformers import AutoTokenizer

        self.name = model
        self.tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
        self.llm = vllm.LLM(model=model, dtype=dtype, seed=seed, gpu_memory_utilization=gpu_memory_utilization,
                            max_model_len=max_model_len, trust_remote_code=trust_remote_code, **engine_kwargs)
        self._sampling_params = vllm.SamplingParams

    def describe(self) -> dict[str, Any]:
        return {"backend": "vllm", "model": self.name}

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(self, prompts_messages: list[list[dict]], *, num_samples: int = 1, max_new_tokens: int = 128,
                 temperature: float = 1.0, top_p: float = 1.0, do_sample: bool = True,
                 seed: int | None = 0, no_repeat_ngram_size: int | None = None,
                 repetition_penalty: float | None = None) -> list[list[str]]:
        from bluerec.profiler.prompts import render_prompt

        if no_repeat_ngram_size:  # vLLM has no n-gram ban; silently ignoring it would change the profiles
            raise ValueError("backend 'vllm' does not support no_repeat_ngram_size; use repetition_penalty "
                             "or backend 'hf'")
        if not prompts_messages:
            return []
        extra = {} if repetition_penalty is None else {"repetition_penalty": repetition_penalty}
        params = self._sampling_params(
            n=num_samples, max_tokens=max_new_tokens, temperature=temperature if do_sample else 0.0,
            top_p=top_p if do_sample else 1.0, seed=seed, **extra,
        )
        prompts = [render_prompt(m, self.tokenizer) for m in prompts_messages]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        return [[c.text.strip() for c in out.outputs] for out in outputs]
