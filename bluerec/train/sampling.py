"""Partition-invariant sampling of the GRPO completions (``grpo.partition_invariant_sampling``).

transformers samples every token of a batch from one process-wide RNG stream, and TRL seeds that stream per device.
A completion therefore depends on which rank generated it, on its row position and on the other rows of the batch,
so a 2-process run cannot reproduce a 1-process run of the same global batch. :class:`PartitionInvariantSampler`
draws each row's tokens from a generator of its own, seeded by ``(seed, global step, the row's prompt tokens without
padding, copy index within its GRPO group)``: the same distribution (temperature, top-k, top-p and min-p are applied
first, exactly as transformers does), but a completion is now a function of its prompt and step only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from transformers import LogitsProcessor, LogitsProcessorList
from transformers.generation.logits_process import (
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)


def row_seed(seed: int, step: int, prompt_ids: list[int], copy: int) -> int:
    """A stable 63-bit seed for one completion (not salted per process, unlike ``hash``)."""
    text = f"{int(seed)}|{int(step)}|{copy}|" + ",".join(map(str, prompt_ids))
    return int.from_bytes(hashlib.blake2b(text.encode("ascii"), digest_size=8).digest(), "little") >> 1


class PartitionInvariantSampler(LogitsProcessor):
    """A ``LogitsProcessor`` that samples each row with its own generator and returns one-hot scores.

    Each row's generator is seeded by :func:`row_seed` from ``(seed, step, the row's non-pad prompt tokens,
    row index mod num_generations)`` at the first token. A token is drawn by inverting the float64 CDF of the warped
    distribution with one uniform from the row's generator (drawn on the CPU, so it does not depend on the device).
    The returned scores are ``0`` at the drawn token and ``-inf`` elsewhere, so transformers' own sampling step, and
    any warper it applies afterwards, keeps that token.

    Rows must arrive as TRL lays them out: whole groups of ``num_generations`` consecutive copies of one prompt,
    the batch starting at a group boundary (``batch_size`` a multiple of ``num_generations``); prompts left-padded
    with ``pad_token_id``. Call :meth:`start` before each ``generate`` call.

    Example:
    ```python
    >>> import torch
    >>> sampler = PartitionInvariantSampler(seed=0, num_generations=2, pad_token_id=0, temperature=0.7)
    >>> sampler.start(step=3)
    >>> ids = torch.tensor([[0, 5, 6], [0, 5, 6]])
    >>> scores = sampler(ids, torch.randn(2, 10))
    >>> bool(((scores == 0).sum(dim=1) == 1).all())
    True
    ```
    """

    def __init__(
        self,
        *,
        seed: int,
        num_generations: int,
        pad_token_id: int | None,
        temperature: float = 1.0,
        top_k: int | None = 0,
        top_p: float | None = 1.0,
        min_p: float | None = None,
    ) -> None:
        self.seed = int(seed)
        self.num_generations = int(num_generations)
        self.pad_token_id = pad_token_id
        warpers: list[LogitsProcessor] = []
        if temperature is not None and temperature != 1.0:
            warpers.append(TemperatureLogitsWarper(temperature))
        if top_k:
            warpers.append(TopKLogitsWarper(top_k=int(top_k)))
        if top_p is not None and top_p < 1.0:
            warpers.append(TopPLogitsWarper(top_p=float(top_p)))
        if min_p is not None:
            warpers.append(MinPLogitsWarper(min_p=float(min_p)))
        self.warpers = LogitsProcessorList(warpers)
        self.step = 0
        self.calls = 0  # tokens drawn since start(); lets callers check that generate really used the sampler
        self._generators: list[torch.Generator] | None = None

    def start(self, step: int) -> None:
        """Begin a new ``generate`` call at optimizer step ``step`` (row generators are re-seeded at its first token)."""
        self.step = int(step)
        self.calls = 0
        self._generators = None

    def _seed_rows(self, input_ids: torch.Tensor) -> list[torch.Generator]:
        rows = input_ids.detach().cpu().tolist()
        if len(rows) % self.num_generations:
            raise ValueError(
                f"partition-invariant sampling got {len(rows)} rows, not whole groups of {self.num_generations}"
            )
        generators = []
        for i, row in enumerate(rows):
            start = 0
            while start < len(row) and row[start] == self.pad_token_id:  # left padding
                start += 1
            generators.append(torch.Generator().manual_seed(row_seed(self.seed, self.step, row[start:],
                                                                     i % self.num_generations)))
        return generators

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._generators is None:
            self._generators = self._seed_rows(input_ids)
        if len(self._generators) != scores.shape[0]:
            raise RuntimeError(f"batch changed from {len(self._generators)} to {scores.shape[0]} rows inside one "
                               "generate call; call start() before each call")
        self.calls += 1
        warped = self.warpers(input_ids, scores.float()) if len(self.warpers) else scores.float()
        probs = torch.softmax(warped.double(), dim=-1)
        cdf = probs.cumsum(dim=-1)
        u = torch.stack([torch.rand((), dtype=torch.float64, generator=g) for g in self._generators])
        u = (u.to(cdf.device) * cdf[:, -1]).unsqueeze(1)  # scale by the total so rounding never runs off the end
        token = torch.searchsorted(cdf, u, right=True).clamp(max=cdf.shape[1] - 1)
        # never pick a zero-probability token (possible only at the clamp); fall back to the last one with mass
        last = (probs > 0).to(torch.int64).cumsum(dim=-1).argmax(dim=-1, keepdim=True)
        token = torch.where(probs.gather(1, token) > 0, token, last)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(1, token, 0.0)

    @contextmanager
    def bound_to(self, model: Any, step: int) -> Iterator[None]:
        """Within the block, ``model.generate`` samples through this processor (a per-instance override, removed on
        exit, so other ``generate`` calls — e.g. greedy validation — are untouched)."""
        self.start(step)
        original = model.generate

        def generate(*args: Any, **kwargs: Any) -> Any:
            extra = LogitsProcessorList(kwargs.pop("logits_processor", None) or [])
            return original(*args, logits_processor=LogitsProcessorList([*extra, self]), **kwargs)

        model.generate = generate
        try:
            yield
        finally:
            del model.generate


def partition_invariant_trainer(trainer_cls: type) -> type:
    """A subclass of TRL's ``GRPOTrainer`` (``trainer_cls``) whose transformers generation samples through a
    :class:`PartitionInvariantSampler` built from the trainer's own generation settings."""

    class PartitionInvariantGRPOTrainer(trainer_cls):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if getattr(self, "use_vllm", False):
                raise ValueError("partition-invariant sampling needs transformers generation, not vLLM")
            self.partition_sampler = PartitionInvariantSampler(
                seed=self.args.seed, num_generations=self.num_generations,
                pad_token_id=self.processing_class.pad_token_id if hasattr(self.processing_class, "pad_token_id")
                else self.processing_class.tokenizer.pad_token_id,
                temperature=self.temperature, top_k=self.top_k, top_p=self.top_p, min_p=self.min_p,
            )

        def _generate_single_turn(self, *args: Any, **kwargs: Any) -> Any:
            model = self.accelerator.unwrap_model(self.model_wrapped)
            with self.partition_sampler.bound_to(model, self.state.global_step):
                out = super()._generate_single_turn(*args, **kwargs)
            if self.partition_sampler.calls == 0 and self.max_completion_length > 0:
                raise RuntimeError("partition-invariant sampling was not applied: TRL generated through another "
                                   "model object than accelerator.unwrap_model(model_wrapped)")
            return out

    return PartitionInvariantGRPOTrainer
