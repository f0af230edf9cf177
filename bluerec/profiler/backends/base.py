"""The contract every profiler back-end fulfils, and the generation settings they share."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from pydantic import Field, model_validator

from bluerec.config import StrictModel


REPETITION_KEYS = ("no_repeat_ngram_size", "repetition_penalty")


class GenerationConfig(StrictModel):
    """Sampling settings for writing profiles.

    Parameters that control generation:
        num_samples: profiles per prompt (GRPO samples a group per user).
        max_new_tokens: length limit of each profile in tokens.
        temperature: sampling temperature; ignored when ``do_sample`` is false.
        top_p: nucleus-sampling mass; ignored when ``do_sample`` is false.
        do_sample: sample (true) or decode greedily (false; all samples of a prompt are then equal).
        seed: seeds the sampler, so a run can be repeated.

    Parameters that control repetition (within the profile only — copying the titles of the prompt stays free):
        no_repeat_ngram_size: no n-gram of this size occurs twice in a profile (``0`` = off). ``None`` = the
            model's default (:class:`~bluerec.models.registry.KnownModel` ``generation``; off for other models).
        repetition_penalty: logits of tokens already in the profile are divided (positive) or multiplied
            (negative) by this (``1.0`` = off). ``None`` = the model's default, as above.

    Parameters that control batching:
        batch_size: prompts per call to the back-end.
    """

    num_samples: int = Field(1, ge=1)
    max_new_tokens: int = Field(128, ge=1)
    temperature: float = Field(1.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    do_sample: bool = True
    seed: int | None = 0
    no_repeat_ngram_size: int | None = Field(None, ge=0)
    repetition_penalty: float | None = Field(None, ge=1.0)
    batch_size: int = Field(16, ge=1)

    @model_validator(mode="after")
    def _greedy_when_cold(self) -> "GenerationConfig":
        if self.temperature == 0.0 and self.do_sample:
            raise ValueError("temperature 0 means greedy decoding: set do_sample: false")
        return self

    def sampling_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :meth:`ProfilerBackend.generate` (the repetition controls only when set, so
        back-ends without them keep working)."""
        kwargs: dict[str, Any] = {
            "num_samples": self.num_samples,
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "do_sample": self.do_sample,
            "seed": self.seed,
        }
        for name in REPETITION_KEYS:
            if getattr(self, name) is not None:
                kwargs[name] = getattr(self, name)
        return kwargs

    def describe(self) -> dict[str, Any]:
        """The settings recorded in profile files (unset repetition controls left out, so files written before
        they existed still resume)."""
        out = self.model_dump(mode="json", exclude={"batch_size"})
        for name in REPETITION_KEYS:
            if out.get(name) is None:
                out.pop(name, None)
        return out


@runtime_checkable
class ProfilerBackend(Protocol):
    """Writes profiles for chat prompts.

    ``generate`` takes a batch of chats (``[{"role": "system"|"user", "content": str}, ...]``) and
    returns, for each chat, ``num_samples`` completions: only the newly generated text, stripped.
    ``count_tokens`` measures a text in the back-end's tokens (an estimate where the back-end cannot
    tokenise), used to fit prompts to their budget. ``describe`` names the back-end and model for the
    ``generation`` field of profile files (never secrets).
    """

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
    ) -> list[list[str]]: ...

    def count_tokens(self, text: str) -> int: ...

    def describe(self) -> dict[str, Any]: ...


def generate_with(
    backend: ProfilerBackend, prompts_messages: list[list[dict]], config: GenerationConfig
) -> list[list[str]]:
    """Run ``backend.generate`` over ``prompts_messages`` in chunks of ``config.batch_size`` prompts.
    Chunk ``k`` is seeded with ``seed + k`` so a run is repeatable."""
    out: list[list[str]] = []
    kwargs = config.sampling_kwargs()
    for k, start in enumerate(range(0, len(prompts_messages), config.batch_size)):
        if config.seed is not None:
            kwargs["seed"] = config.seed + k
        out.extend(backend.generate(prompts_messages[start : start + config.batch_size], **kwargs))
    return out
