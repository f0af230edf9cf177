"""Typed configuration for reading sources and preparing a dataset (``configs/data/*.yaml``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import re

from pydantic import Field, field_validator, model_validator

from bluerec.config import StrictModel
from bluerec.data.errors import OnError

SourceFormat = Literal["amazon2023", "amazon2023_benchmark", "google_local", "seqrec"]


class SourceConfig(StrictModel):
    """Where the raw data is and in which format.

    - ``amazon2023``: ``reviews`` = review JSONL(.gz) files, ``meta`` = item meta JSONL(.gz) files.
    - ``amazon2023_benchmark``: ``splits`` = the official ``last_out_w_his`` CSVs (train/valid/test),
      ``meta`` = meta JSONL(.gz) or the shared ``filterd_meta_items.csv``; ``reviews`` optional (adds review text).
    - ``google_local``: ``reviews`` = ``review-*.json(.gz)``, ``meta`` = ``meta-*.json(.gz)``.
    - ``seqrec``: ``sequences`` = ``user2item.jsonl.gz``, ``titles`` = ``item2title.jsonl.gz``.
    """

    format: SourceFormat
    reviews: list[Path] = Field(default_factory=list)
    meta: list[Path] = Field(default_factory=list)
    splits: list[Path] = Field(default_factory=list)
    sequences: list[Path] = Field(default_factory=list)
    titles: list[Path] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_files(self) -> "SourceConfig":
        need = {
            "amazon2023": ("reviews", "meta"),
            "amazon2023_benchmark": ("splits", "meta"),
            "google_local": ("reviews", "meta"),
            "seqrec": ("sequences", "titles"),
        }[self.format]
        for key in need:
            if not getattr(self, key):
                raise ValueError(f"source format {self.format!r} needs at least one file in '{key}'")
        return self


class ItemTextConfig(StrictModel):
    """How an item's text is rendered. ``template`` uses ``{title}``, ``{category}`` (categories, or
    main_category, or store), ``{store}``, ``{features}``, ``{description}``; empty parts and their
    separators are dropped. Each part is trimmed to ``max_part_chars``; HTML entities are unescaped and
    tags stripped."""

    template: str = "{title} | {category} | {features} | {description}"
    max_part_chars: int = Field(200, ge=16)
    max_chars: int = Field(512, ge=16)

    @field_validator("template")
    @classmethod
    def _check_template(cls, value: str) -> str:
        from bluerec.data.itemtext import parse_template  # imported here: itemtext imports this module

        try:
            parse_template(value)
        except ValueError as err:  # a bad placeholder is found when the config loads, not mid-prepare
            raise ValueError(str(err).removeprefix("item_text.template: ")) from None
        return value


class PrepareConfig(StrictModel):
    """Everything ``bluerec data prepare`` does, in order: read → dedupe → k-core → order → split → render."""

    source: SourceConfig
    dedupe: bool = True  # keep the earliest interaction of each (user, item) pair
    k_core: int = Field(5, ge=0)  # iterative: every user and item keeps >= k interactions; 0/1 disables
    min_user_interactions: int = Field(3, ge=3)  # leave-last-out needs train + valid + test
    max_history: int = Field(50, ge=1)  # history truncated to the last N items in the split files
    drop_items_without_text: bool = True
    item_text: ItemTextConfig = Field(default_factory=ItemTextConfig)
    on_error: OnError = "raise"
    memory_limit: str = "1GB"  # DuckDB memory limit; larger inputs spill to disk
    temp_directory: Path | None = None  # where DuckDB spills (default: a scratch folder beside the output)
    threads: int = Field(2, ge=1)

    @field_validator("memory_limit")
    @classmethod
    def _check_memory_limit(cls, value: str) -> str:
        if not _MEMORY.match(value):
            raise ValueError("expected an amount of memory such as '1GB', '512MB' or '2GiB'")
        return value.strip()


_MEMORY = re.compile(r"^\s*\d+(\.\d+)?\s*(B|[KMGT]i?B)\s*$", re.IGNORECASE)
