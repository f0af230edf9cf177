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


def format_validation_error(model: type[BaseModel], err: ValidationError, source: str,
                            origins: dict[str, str] | None = None) -> str:
    """The errors of ``err`` as lines; ``origins`` (dotted key → file) names the file that set each bad key when it
    is not ``source`` itself (a value inherited through ``base:``)."""
    lines = [f"invalid configuration in {source}:"]
    for item in err.errors():
        loc = tuple(item.get("loc", ()))
        key = ".".join(str(p) for p in loc) or "<root>"
        value = item.get("input")
        kind = item.get("type", "")
        where = _origin(origins, loc, source)
        if kind == "extra_forbidden":
            parent = loc[:-1]
            allowed = _allowed_values(model, parent + ("__none__",)) if parent else sorted(model.model_fields)
            lines.append(f"  - unknown key {key!r} (value {value!r}){where}; allowed keys: {allowed}")
            continue
        msg = item.get("msg", "invalid value")
        allowed = _allowed_values(model, loc)
        suffix = f"; allowed values: {allowed}" if allowed else ""
        lines.append(f"  - key {key!r}: bad value {value!r}{where}: {msg}{suffix}")
    return "\n".join(lines)


def _origin(origins: dict[str, str] | None, loc: tuple[Any, ...], source: str) -> str:
    """`` (set in <file>)`` for the longest prefix of ``loc`` that ``origins`` knows, when that file is not
    ``source``."""
    if not origins:
        return ""
    parts = [str(p) for p in loc]
    for n in range(len(parts), 0, -1):
        file = origins.get(".".join(parts[:n]))
        if file is not None:
            return "" if file == source else f" (set in {file})"
    return ""


def parse_config(model: type[T], data: dict[str, Any] | None, source: str = "<dict>",
                 origins: dict[str, str] | None = None) -> T:
    """Validate ``data`` into ``model``; raise :class:`ConfigError` with a readable message."""
    try:
        return model.model_validate(data or {})
    except ValidationError as err:
        raise ConfigError(format_validation_error(model, err, source, origins)) from None


BASE_KEY = "base"


def _read_mapping(path: Path, included_by: Path | None = None) -> dict[str, Any]:
    by = f" (the base of {included_by})" if included_by is not None else ""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}{by}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}{by}: not a YAML text file (byte {err.start} is not UTF-8)") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}{by}: is a folder, not a YAML config file") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}{by}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}{by}: top level must be a mapping, got {type(data).__name__}")
    return data


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``: mappings merge key by key, anything else (lists too) is replaced."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _mark(origins: dict[str, str], data: dict[str, Any], file: str, prefix: str = "") -> None:
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        origins[dotted] = file
        if isinstance(value, dict):
            _mark(origins, value, file, dotted + ".")


def resolve_yaml(path: str | Path, _chain: tuple[Path, ...] = ()) -> tuple[dict[str, Any], dict[str, str]]:
    """The mapping of a YAML config with its ``base:`` chain resolved, and which file set each dotted key.

    ``base: other.yaml`` (a path relative to the file that names it, or a list of them, merged in order) is loaded
    first and this file's keys are deep-merged on top, so an ablation is a few lines::

        # configs/train/beauty_smollm2_text_only.yaml
        base: beauty_smollm2.yaml
        rewards: {enabled: [multiple_choice, length_penalty]}
        output_dir: runs/beauty-smollm2/text_only
    """
    path = Path(path)
    data = _read_mapping(path, _chain[-1] if _chain else None)
    bases = data.pop(BASE_KEY, None)
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    if bases is not None:
        if isinstance(bases, str):
            bases = [bases]
        if not (isinstance(bases, list) and bases and all(isinstance(b, str) and b.strip() for b in bases)):
            raise ConfigError(f"{path}: {BASE_KEY!r} must be a file name or a list of file names, got {bases!r}")
        for name in bases:
            target = (path.parent / name).resolve()
            if target in _chain or target == path.resolve():
                cycle = " -> ".join(str(p) for p in (*_chain, path.resolve(), target))
                raise ConfigError(f"{path}: {BASE_KEY}: {name!r} includes itself ({cycle})")
            base_data, base_origins = resolve_yaml(target, (*_chain, path.resolve()))
            merged = deep_merge(merged, base_data)
            origins.update(base_origins)
    _mark(origins, data, str(path))
    return deep_merge(merged, data), origins


def load_config(model: type[T], path: str | Path, overrides: dict[str, Any] | None = None) -> T:
    """Load a YAML file into ``model``. ``base:`` names YAML files this one extends (see :func:`resolve_yaml`);
    ``overrides`` (dotted keys) are applied on top before validation. Errors name the file that set the bad key."""
    path = Path(path)
    data, origins = resolve_yaml(path)
    for dotted, value in (overrides or {}).items():
        set_dotted(data, dotted, value)
        origins[dotted] = "the command line"
    return parse_config(model, data, str(path), origins)


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            where = ".".join(parts[: i + 1])
            raise ConfigError(f"cannot set {dotted!r}: {where!r} is {node!r}, not a mapping (write {where} as a "
                              "mapping in the config, or override the whole of it)")
    node[parts[-1]] = value
