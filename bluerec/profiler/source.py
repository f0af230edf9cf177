"""Where a model comes from, checked before any work: a local folder that holds loadable weights, or a
Hugging Face hub id that can be fetched (or is cached, in offline mode).

Each failure is a :class:`~bluerec.errors.UserError` naming the path or id and what to do — instead of a
traceback from deep inside ``transformers`` after the data was loaded, or "couldn't connect to
huggingface.co" for a folder that does not exist.

Example:
    ::

        from bluerec.profiler.source import check_model_source

        check_model_source("runs/quickstart/train/final")  # raises UserError naming the problem
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from bluerec.errors import UserError

# ``name`` or ``owner/name``: what the hub accepts. A path with more parts, a leading ./ or /, or ~ is a path.
_HUB_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}$")
_SAFE_WEIGHTS = ("*.safetensors", "*.gguf")
_PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")


def hub_offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def looks_like_hub_id(spec: str) -> bool:
    return bool(_HUB_ID.match(spec)) and not spec.startswith((".", "~")) and ".." not in spec


def check_model_folder(path: Path, *, option: str = "--profiler", trust_remote_code: bool = False) -> None:
    """A local model folder: a ``config.json`` (or a LoRA ``adapter_config.json``) and safetensors weights;
    pickle-only weights and ``auto_map`` remote code (unless allowed) are refused with the reason."""
    if not path.is_dir():
        raise UserError(f"{option} {path}: is a file, not a model folder; give the folder (e.g. a run's final/)")
    config = path / "config.json"
    if not config.is_file() and next(path.glob("*.gguf"), None) is not None:
        return  # a GGUF file (model_init_kwargs.gguf_file): converted on load, its tensors are not pickles
    if not config.is_file() and not (path / "adapter_config.json").is_file():
        if (path / "final" / "config.json").is_file():
            raise UserError(f"{option} {path}: not a model folder; did you mean {path / 'final'}?")
        raise UserError(f"{option} {path}: not a model folder (no config.json); give a save_pretrained folder "
                        "such as a run's final/")
    if config.is_file():
        try:
            cfg = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise UserError(f"{option} {config}: not readable JSON ({err}); re-save the model") from None
        if isinstance(cfg, dict) and cfg.get("auto_map") and not trust_remote_code:
            raise UserError(f"{option} {path}: config.json asks to run the model's own code (auto_map), which "
                            "bluerec does not do by default; use a model that transformers supports natively")
    safe = any(next(path.glob(p), None) is not None for p in _SAFE_WEIGHTS)
    pickled = [p.name for pattern in _PICKLE_WEIGHTS for p in path.glob(pattern)]
    if not safe and pickled:
        raise UserError(f"{option} {path}: weights are only in pickle files ({', '.join(sorted(pickled)[:3])}), "
                        "which can run code when loaded and are refused; convert them to safetensors")
    if not safe:
        raise UserError(f"{option} {path}: no model weights (*.safetensors) in the folder")


def check_model_source(spec: str, *, option: str = "--profiler", trust_remote_code: bool = False) -> None:
    """Raise :class:`UserError` unless ``spec`` is a usable local model folder or a hub id that can be
    loaded (in offline mode: one already in the local Hugging Face cache)."""
    path = Path(spec).expanduser()
    if path.exists():
        check_model_folder(path, option=option, trust_remote_code=trust_remote_code)
        return
    from bluerec.models.registry import is_known

    if is_known(spec):  # a known model name: fetched into the model cache on first use (bluerec models list)
        return
    if not looks_like_hub_id(spec):
        raise UserError(f"{option} {spec}: no such model folder; give an existing folder (e.g. a run's final/), "
                        "a known model name (bluerec models list) or a Hugging Face model id such as owner/name")
    if hub_offline() and not _in_hub_cache(spec):
        raise UserError(f"{option} {spec}: no such local folder, and as a Hugging Face model id it is not in the "
                        "local cache while offline mode is on (HF_HUB_OFFLINE=1); download it once online "
                        f"(`hf download {spec}`) or give a local model folder")


def _in_hub_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - installed with transformers
        return False
    found = try_to_load_from_cache(repo_id, "config.json")
    return isinstance(found, str)
