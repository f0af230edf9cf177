"""Paired bootstrap confidence intervals for the difference between two methods scored on the same users.

When every method is evaluated on the same (sampled) users, the per-user difference ``a - b`` removes the
user-to-user spread that both methods share, so the paired interval is much tighter than comparing two
independent intervals. :func:`paired_bootstrap` resamples users with replacement (seeded) and returns the
mean difference with the percentile interval of the resampled mean differences.

Example:
    ::

        import numpy as np
        from bluerec.eval.bootstrap import paired_bootstrap

        rng = np.random.default_rng(0)
        base = rng.random(500)
        better = base + 0.05 + 0.01 * rng.standard_normal(500)
        ci = paired_bootstrap(better, base, seed=0)
        print(ci.format())      # +0.0493 [+0.0485, +0.0501]
        print(ci.excludes_zero)  # True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class PairedInterval:
    """Mean of ``a - b`` over users and its bootstrap percentile interval at ``confidence``."""

    diff: float
    lo: float
    hi: float
    n_users: int
    n_resamples: int
    confidence: float

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies strictly on one side of zero."""
        return self.lo > 0.0 or self.hi < 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self, digits: int = 4) -> str:
        """``+0.0123 [+0.0050, +0.0190]``."""
        return f"{self.diff:+.{digits}f} [{self.lo:+.{digits}f}, {self.hi:+.{digits}f}]"


def bootstrap_mean_intervals(
    diffs: ArrayLike,
    *,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
    max_block_bytes: int = 64 << 20,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bootstrap means of each row of ``diffs`` (``(m, n_users)`` per-user differences), all rows on the
    **same** user resamples: returns ``(mean, lo, hi)``, each of shape ``(m,)``.

    A resample is a vector of user counts (how often each user was drawn), so the resampled means of every
    row are one matrix product ``counts @ diffs.T / n``; resamples are drawn in blocks of at most
    ``max_block_bytes`` so memory stays bounded for many users.
    """
    d = np.asarray(diffs, dtype=np.float64)
    if d.ndim == 1:
        d = d[None, :]
    if d.ndim != 2 or d.shape[1] == 0:
        raise ValueError(f"diffs must be (n_comparisons, n_users) with at least one user, got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("per-user metrics contain NaN or inf")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    m, n = d.shape
    rng = np.random.default_rng(seed)
    rows = max(1, min(n_resamples, max_block_bytes // (8 * n)))
    means = np.empty((n_resamples, m), dtype=np.float64)
    for start in range(0, n_resamples, rows):
        b = min(start + rows, n_resamples) - start
        draws = rng.integers(0, n, size=(b, n))
        draws += np.arange(b, dtype=draws.dtype)[:, None] * n  # row r's draws land in bins [r*n, (r+1)*n)
        counts = np.bincount(draws.reshape(-1), minlength=b * n).reshape(b, n).astype(np.float64)
        means[start : start + b] = counts @ d.T / n
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha], axis=0)
    return d.mean(axis=1), lo, hi


def paired_bootstrap(
    a: ArrayLike,
    b: ArrayLike,
    *,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedInterval:
    """Paired bootstrap of ``mean(a - b)`` for per-user metric arrays of two methods on the same users.

    Users are resampled with replacement ``n_resamples`` times by one ``numpy`` generator seeded with
    ``seed`` (the same seed and number of users give the same resamples, so every comparison in a run sees
    identical user resamples). The interval is the ``(1-confidence)/2`` and ``(1+confidence)/2`` percentiles
    of the resampled mean differences.
    """
    x = np.asarray(a, dtype=np.float64).reshape(-1)
    y = np.asarray(b, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"paired arrays must have the same length, got {x.shape[0]} and {y.shape[0]}")
    mean, lo, hi = bootstrap_mean_intervals(x - y, n_resamples=n_resamples, confidence=confidence, seed=seed)
    return PairedInterval(float(mean[0]), float(lo[0]), float(hi[0]), int(x.shape[0]), int(n_resamples),
                          float(confidence))
