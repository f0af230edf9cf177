"""Typed configuration: every stage has one pydantic model, loaded from YAML and validated strictly.

Unknown keys are errors (a typo must never be silently ignored), and every error names the key,
the bad value and — where the field is a choice — the allowed values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

T = TypeVar("T", bound="StrictModel")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or invalid. The message names key, value and allowed values."""


class StrictModel(BaseModel):
    """Base for all config objects: unknown keys are rejected, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def _allowed_values(model: type[BaseModel], loc: tuple[Any, ...]) -> list[Any] | None:
    """Walk ``loc`` through nested models and return the Literal choices of the final field, if any."""
    current: Any = model
    annotation: Any = None
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return sorted(current.model_fields) if part == loc[-1] else None
        annotation = field.annotation
        current = annotation
        for arg in get_args(annotation) or ():
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                current = arg
    return _literal_choices(annotation)


def _literal_choices(annotation: Any) -> list[Any] | None:
    if get_origin(annotation) is Literal:
        return list(get_args(annotation))
    for arg in get_args(annotation) or ():
        choices = _literal_choices(arg)
        if choices:
            return choices
    return None


def format_validation_error(model: type[BaseModel], err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for item in err.errors():
        loc = tuple(item.get("loc", ()))
        key = ".".join(str(p) for p in loc) or "<root>"
        value = item.get("input")
        kind = item.get("type", "")
        if kind == "extra_forbidden":
            parent = loc[:-1]
            allowed = _allowed_values(model, parent + ("__none__",)) if parent else sorted(model.model_fields)
            lines.append(f"  - unknown key {key!r} (value {value!r}); allowed keys: {allowed}")
            continue
        msg = item.get("msg", "invalid value")
        allowed = _allowed_values(model, loc)
        suffix = f"; allowed values: {allowed}" if allowed else ""
        lines.append(f"  - key {key!r}: bad value {value!r}: {msg}{suffix}")
    return "\n".join(lines)


def parse_config(model: type[T], data: dict[str, Any] | None, source: str = "<dict>") -> T:
    """Validate ``data`` into ``model``; raise :class:`ConfigError` with a readable message."""
    try:
        return model.model_validate(data or {})
    except ValidationError as err:
        raise ConfigError(format_validation_error(model, err, source)) from None


def load_config(model: type[T], path: str | Path, overrides: dict[str, Any] | None = None) -> T:
    """Load a YAML file into ``model``. ``overrides`` (dotted keys) are applied on top before validation."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a YAML text file (byte {err.start} is not UTF-8)") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a YAML config file") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    for dotted, value in (overrides or {}).items():
        set_dotted(data, dotted, value)
    return parse_config(model, data, str(path))


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
