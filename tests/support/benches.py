"""Import a script of ``bench/`` as a module, for the tests of its pieces."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_bench(script: str) -> ModuleType:
    """``bench/<script>.py`` as the module ``<script>_bench`` (registered in ``sys.modules``, which pydantic needs
    to resolve a bench config's annotations)."""
    spec = importlib.util.spec_from_file_location(f"{script}_bench", ROOT / "bench" / f"{script}.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module
