"""Typed request and response bodies of the HTTP API (they make the served OpenAPI schema).

Unknown fields are rejected (a typo such as ``"kk": 5`` must not silently fall back to a default). Limits that
depend on the server's settings (history length, text length, ``k`` range, candidate count) are checked by the
app and reported in the same error format, naming the field.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _not_blank(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("must not be blank")
    return value


def _id_to_str(value: Any) -> Any:
    # JSON catalogues often use integer ids; the catalogue keys every id as a string.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


class HistoryEntry(_Body):
    """One interaction, oldest first in a history: a catalogue item (``item_id``) or a free item text (``text``)."""

    item_id: str | None = Field(None, min_length=1, description="An id of the server's catalogue.")
    text: str | None = Field(None, min_length=1, description="A free item text (for items not in the catalogue).")
    rating: float | None = Field(None, ge=0, le=5, allow_inf_nan=False, description="The user's rating, 0-5.")
    review: str | None = Field(None, description="The user's review; the prompt may quote a snippet.")

    _ids = field_validator("item_id", mode="before")(_id_to_str)
    _texts = field_validator("item_id", "text")(_not_blank)

    @model_validator(mode="after")
    def _one_of(self) -> "HistoryEntry":
        if (self.item_id is None) == (self.text is None):
            raise ValueError("give exactly one of item_id or text")
        return self


class ProfileRequest(_Body):
    """A user's history (oldest first, newest last) to turn into a profile."""

    history: list[HistoryEntry] = Field(..., min_length=1)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"history": [{"item_id": "B0001", "rating": 5}, {"text": "Lodge cast iron skillet, 12 inch", "rating": 4}]}
    ]})


class RecommendRequest(_Body):
    """Top-K items for a history (profiled first) or a ready profile.

    With ``profile`` the profile is the query and ``history``, if given, only says which items to exclude.
    """

    history: list[HistoryEntry] | None = Field(None, min_length=1)
    profile: str | None = Field(None, min_length=1, description="A ready profile text; skips generation.")
    # strict: `true` or `2.5` is a client bug, not k = 1 or 2
    k: int | None = Field(None, strict=True, description="How many items (1..max_k of the server; default: its default_k).")
    exclude_history: bool = Field(True, strict=True,
                                  description="Leave the history's catalogue items out of the results.")
    candidates: list[str] | None = Field(None, min_length=1, description="Rank only these catalogue items.")

    _profile = field_validator("profile")(_not_blank)
    _cands = field_validator("candidates", mode="before")(
        lambda v: [_id_to_str(x) for x in v] if isinstance(v, list) else v)

    @model_validator(mode="after")
    def _query(self) -> "RecommendRequest":
        if self.history is None and self.profile is None:
            raise ValueError("give a history or a profile")
        return self

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"history": [{"item_id": "B0001"}, {"item_id": "B0002", "rating": 4}], "k": 10},
        {"profile": "Loves cast-iron cookware and slow-cooked stews.", "k": 5},
    ]})


class ProfileResponse(BaseModel):
    profile: str
    model: dict[str, Any] = Field(description="The profiler back-end and model.")
    generation: dict[str, Any] = Field(description="Generation settings and a hash of the prompt settings.")
    n_history_used: int = Field(description="History entries given to the prompt (known items and free texts).")
    unknown_item_ids: list[str] = Field(description="History item ids not in the catalogue (left out of the prompt).")
    n_unknown: int
    request_id: str


class RecommendedItem(BaseModel):
    item_id: str
    score: float = Field(description="Inner product of profile and item embeddings (cosine when normalised).")
    title: str
    text: str


class RecommendResponse(BaseModel):
    items: list[RecommendedItem]
    k: int
    profile: str
    profile_generated: bool
    n_excluded: int = Field(description="Catalogue items left out because they are in the history.")
    unknown_item_ids: list[str]
    n_unknown: int
    unknown_candidate_ids: list[str]
    n_unknown_candidates: int
    request_id: str


class HealthResponse(BaseModel):
    status: str


class InfoResponse(BaseModel):
    profiler: dict[str, Any] | None
    generation: dict[str, Any] | None
    embedder: dict[str, Any]
    catalogue: dict[str, Any]
    index: dict[str, Any]
    batching: dict[str, Any]
    limits: dict[str, Any]


class ErrorItem(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. history[3].text.")
    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    detail: str
    errors: list[ErrorItem] = Field(default_factory=list)
    request_id: str
