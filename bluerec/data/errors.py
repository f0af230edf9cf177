"""Input problems: a clear error naming file, line and field, or — under ``on_error="skip"`` — a counted skip."""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

OnError = Literal["raise", "skip"]


class DataError(ValueError):
    """Bad input data. ``str(err)`` reads ``<file>:<line>: field '<field>': <problem>``."""

    def __init__(self, path: str | Path, line: int | None, field: str | None, problem: str):
        self.path = str(path)
        self.line = line
        self.field = field
        self.problem = problem
        where = self.path if line is None else f"{self.path}:{line}"
        what = f"field '{field}': " if field else ""
        super().__init__(f"{where}: {what}{problem}")


@dataclass
class SkipReport:
    """Counts of skipped records by (file, reason); stored in the prepared dataset's manifest."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: dict[tuple[str, str], str] = field(default_factory=dict)

    def add(self, err: DataError, n: int = 1) -> None:
        key = (err.path, f"{err.field or 'record'}: {err.problem}" if err.field else err.problem)
        self.counts[key] += n
        self.examples.setdefault(key, str(err))

    def skipped_in(self, path: str | Path) -> int:
        """Records of ``path`` counted so far."""
        return sum(n for (p, _), n in self.counts.items() if p == str(path))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> list[dict[str, object]]:
        return [
            {"file": path, "reason": reason, "count": n, "example": self.examples[(path, reason)]}
            for (path, reason), n in sorted(self.counts.items())
        ]

    def warn(self) -> None:
        if self.total:
            summary = "; ".join(f"{Path(p).name}: {r} x{n}" for (p, r), n in sorted(self.counts.items()))
            warnings.warn(f"skipped {self.total} bad records ({summary})", stacklevel=2)


def handle(err: DataError, on_error: OnError, report: SkipReport, n: int = 1) -> None:
    """Raise ``err`` or count it, depending on the policy."""
    if on_error == "raise":
        raise err
    report.add(err, n)
