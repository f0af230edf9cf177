"""Shared-prefill generation of the GRPO completions (``grpo.shared_prefill``).

TRL's sampler repeats every prompt ``num_generations`` (G) times before generation, and transformers' ``generate``
then computes the prompt's prefill once per copy: G identical forward passes over the longest part of the sequence.
:func:`shared_prefill_generate` runs the prefill once per *distinct* prompt row, copies its KV cache to every row
that holds that prompt (``Cache.batch_select_indices``) and lets ``generate`` continue from that cache, so only the
decoding steps run G times.

It hooks ``model.generate`` (:meth:`SharedPrefill.bound_to`) rather than replacing TRL's generation: TRL still
tokenizes, pads, masks after EOS and times the phase, ``generate`` still sees every row's full ``input_ids`` (so
logits processors that read the prompt — repetition penalties, :class:`~bluerec.train.sampling.
PartitionInvariantSampler`'s per-row seeds — act exactly as without it), and the completions come back in the
order of the input rows.

The prefill covers all prompt tokens but the last; ``generate`` then feeds the last one against the cache, as it does
when a user passes ``past_key_values``. Positions follow the attention mask (``cumsum - 1``), as ``generate``
computes them for left-padded rows, so prompts of different lengths decode as they would alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch


def distinct_rows(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(first, inverse)``: the index of the first row of each distinct (ids, mask) row in order of appearance, and
    for every row the position of its distinct row in ``first``.

    Example::

    >>> ids = torch.tensor([[0, 5], [0, 5], [7, 8], [0, 5]])
    >>> first, inverse = distinct_rows(ids, torch.ones_like(ids))
    >>> first.tolist(), inverse.tolist()
    ([0, 2], [0, 0, 1, 0])
    """
    keys = [tuple(r) for r in torch.cat([input_ids, attention_mask.to(input_ids.dtype)], dim=1).tolist()]
    seen: dict[tuple[int, ...], int] = {}
    first: list[int] = []
    inverse: list[int] = []
    for i, key in enumerate(keys):
        if key not in seen:
            seen[key] = len(first)
            first.append(i)
        inverse.append(seen[key])
    device = input_ids.device
    return torch.tensor(first, device=device), torch.tensor(inverse, device=device)


def _supports_logits_to_keep(model: Any) -> bool:
    check = getattr(model, "_supports_logits_to_keep", None)
    return bool(check()) if callable(check) else False


def shared_prefill_generate(generate: Callable[..., Any], model: Any, input_ids: torch.Tensor,
                            attention_mask: torch.Tensor | None = None, **kwargs: Any) -> Any:
    """``generate(input_ids=…, attention_mask=…, **kwargs)`` with one prefill per distinct prompt row.

    ``generate`` is the model's own ``generate`` (unbound from any override) and ``model`` the module it runs. Falls
    back to a plain call when nothing is shared (all rows distinct), when a caller already passes a cache, or when a
    prompt is a single token (there is nothing to prefill before the last one).

    Example::

    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> m = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
    ...                                   num_attention_heads=2, num_key_value_heads=2)).eval()
    >>> ids = torch.tensor([[0, 3, 4], [0, 3, 4], [5, 6, 7], [5, 6, 7]])
    >>> mask = torch.tensor([[0, 1, 1], [0, 1, 1], [1, 1, 1], [1, 1, 1]])
    >>> kw = dict(max_new_tokens=3, do_sample=False, pad_token_id=0)
    >>> out = shared_prefill_generate(m.generate, m, ids, mask, **kw)
    >>> torch.equal(out, m.generate(input_ids=ids, attention_mask=mask, **kw))
    True
    """
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    if kwargs.get("past_key_values") is not None or kwargs.get("cache") is not None or input_ids.shape[1] < 2:
        return generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
    first, inverse = distinct_rows(input_ids, attention_mask)
    prefix_mask = attention_mask[first, :-1]
    if len(first) == len(input_ids) or not bool(prefix_mask.any(dim=1).all()):
        return generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
    from transformers import DynamicCache

    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    position_ids = (prefix_mask.long().cumsum(-1) - 1).masked_fill_(prefix_mask == 0, 1)
    extra = {"logits_to_keep": 1} if _supports_logits_to_keep(model) else {}
    with torch.no_grad():
        out = model(input_ids=input_ids[first, :-1], attention_mask=prefix_mask, position_ids=position_ids,
                    cache=DynamicCache(config=config), use_cache=True, **extra)
    cache = out.past_key_values if getattr(out, "past_key_values", None) is not None else out.cache
    cache.batch_select_indices(inverse)  # copies: each row gets its own K/V tensors to extend while decoding
    return generate(input_ids=input_ids, attention_mask=attention_mask, cache=cache, **kwargs)


class SharedPrefill:
    """Counts and binds shared-prefill generation onto a model's ``generate``.

    Example::

    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> m = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
    ...                                   num_attention_heads=2, num_key_value_heads=2)).eval()
    >>> shared = SharedPrefill()
    >>> with shared.bound_to(m):
    ...     _ = m.generate(input_ids=torch.tensor([[1, 2, 3]] * 4), max_new_tokens=2, do_sample=False, pad_token_id=0)
    >>> shared.prefills, shared.rows
    (1, 4)
    """

    def __init__(self) -> None:
        self.prefills = 0  # distinct prompt rows prefilled since the last bound_to()
        self.rows = 0  # rows generated since the last bound_to()

    @contextmanager
    def bound_to(self, model: Any) -> Iterator[None]:
        """Within the block, ``model.generate`` prefills each distinct prompt row once (a per-instance override,
        removed on exit; an override already in place, e.g. another wrapper's, is restored)."""
        self.prefills = self.rows = 0
        had = "generate" in model.__dict__
        previous = model.__dict__.get("generate")
        original = model.generate

        def generate(input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                     **kwargs: Any) -> Any:
            if input_ids is None or kwargs.get("inputs_embeds") is not None:
                return original(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
            self.rows += int(input_ids.shape[0])
            mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
            self.prefills += len(distinct_rows(input_ids, mask)[0])
            return shared_prefill_generate(original, model, input_ids, mask, **kwargs)

        model.generate = generate
        try:
            yield
        finally:
            if had:
                model.generate = previous
            else:
                model.__dict__.pop("generate", None)


def shared_prefill_trainer(trainer_cls: type) -> type:
    """A subclass of a TRL ``GRPOTrainer`` class (``trainer_cls``, possibly already a subclass such as
    :func:`bluerec.train.sampling.partition_invariant_trainer`'s) whose transformers generation prefills each
    distinct prompt once and shares its KV cache among the G completions."""

    class SharedPrefillGRPOTrainer(trainer_cls):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if getattr(self, "use_vllm", False) or getattr(self, "use_transformers_continuous_batching", False):
                raise ValueError("grpo.shared_prefill needs transformers generate (not vLLM or continuous batching), "
                                 "which would not use the shared cache")
            if getattr(self.args, "cache_implementation", None):
                raise ValueError(f"grpo.shared_prefill builds a DynamicCache and cannot be combined with "
                                 f"cache_implementation={self.args.cache_implementation!r}")
            self.shared_prefill = SharedPrefill()

        def _generate_single_turn(self, *args: Any, **kwargs: Any) -> Any:
            model = self.accelerator.unwrap_model(self.model_wrapped)
            with self.shared_prefill.bound_to(model):
                out = super()._generate_single_turn(*args, **kwargs)
            if self.shared_prefill.rows == 0 and self.max_completion_length > 0:
                raise RuntimeError("shared prefill was not applied: TRL generated through another model object than "
                                   "accelerator.unwrap_model(model_wrapped)")
            return out

    return SharedPrefillGRPOTrainer
