"""Atomic ``save_pretrained``: a model folder is written beside its target and renamed into place, so
a crash never leaves a half-written checkpoint where a later stage would load it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from bluerec.io import make_temp_dir


def save_pretrained_atomic(
    model: Any, tokenizer: Any | None, out_dir: str | Path, state_dict: dict[str, Any] | None = None,
    extra_files: dict[str, str] | None = None,
) -> Path:
    """``model.save_pretrained`` + ``tokenizer.save_pretrained`` (+ ``extra_files``: name → text, e.g. a record
    of which step this is) into a temporary sibling folder, then swap it onto ``out_dir`` (a previous folder there
    is replaced). Returns ``out_dir``. ``state_dict`` replaces the model's own tensors (e.g. the full weights
    gathered from FSDP shards)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(f".{out_dir.name}.tmp-", out_dir.parent)  # mode per umask, not mkdtemp's 0700
    old: Path | None = None
    try:
        if state_dict is None:
            model.save_pretrained(tmp)
        else:
            model.save_pretrained(tmp, state_dict=state_dict)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old.{os.getpid()}")
            if old.exists():
                shutil.rmtree(old)
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists():
            shutil.rmtree(old, ignore_errors=True)
    return out_dir
