"""Paired bootstrap: hand-computed intervals, determinism, agreement with scipy, shared resamples."""

from __future__ import annotations

import numpy as np
import pytest

from bluerec.eval.bootstrap import bootstrap_mean_intervals, paired_bootstrap


def test_hand_computed_interval() -> None:
    # d = a - b = [0, 0, 0, 4]: a resample's mean is the number k ~ Binomial(4, 1/4) of draws of the 4th user.
    # P(k=0) = 0.316 > 2.5%, so lo = 0; P(k >= 3) = 0.051 > 2.5% > P(k = 4) = 0.004, so hi = 3.
    ci = paired_bootstrap([1, 2, 3, 9], [1, 2, 3, 5], seed=0)
    assert ci.diff == pytest.approx(1.0)
    assert (ci.lo, ci.hi) == (0.0, 3.0)
    assert ci.n_users == 4 and ci.n_resamples == 10_000 and ci.confidence == 0.95
    assert not ci.excludes_zero
    # d = [0, 1]: resampled means 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4 -> the interval is [0, 1].
    two = paired_bootstrap([0.5, 1.0], [0.5, 0.0], seed=3)
    assert (two.diff, two.lo, two.hi) == (0.5, 0.0, 1.0)
    # a constant difference has a zero-width interval at that value
    const = paired_bootstrap(np.arange(50) + 0.25, np.arange(50), seed=1)
    assert const.diff == pytest.approx(0.25) and const.lo == pytest.approx(0.25) and const.hi == pytest.approx(0.25)
    assert const.excludes_zero and const.format() == "+0.2500 [+0.2500, +0.2500]"


def test_seeded_and_deterministic() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random(300), rng.random(300)
    first, again = paired_bootstrap(a, b, seed=7), paired_bootstrap(a, b, seed=7)
    assert first == again
    other = paired_bootstrap(a, b, seed=8)
    assert (other.lo, other.hi) != (first.lo, first.hi) and other.diff == first.diff
    # blocks of resamples do not change the draws' outcome
    m1 = bootstrap_mean_intervals(a - b, seed=7, max_block_bytes=8 * 300 * 3)
    assert (m1[1][0], m1[2][0]) == pytest.approx((first.lo, first.hi), abs=1e-12)


def test_agrees_with_scipy_percentile_bootstrap() -> None:
    from scipy.stats import bootstrap

    rng = np.random.default_rng(1)
    a = rng.random(400)
    b = 0.9 * a + 0.1 * rng.random(400)
    ours = paired_bootstrap(a, b, n_resamples=20_000, seed=0)
    ref = bootstrap((a, b), lambda x, y, axis: (x - y).mean(axis=axis), paired=True, method="percentile",
                    n_resamples=20_000, random_state=0).confidence_interval
    assert ours.lo == pytest.approx(ref.low, abs=5e-4) and ours.hi == pytest.approx(ref.high, abs=5e-4)
    # and the paired interval is much tighter than the spread of either method alone
    assert ours.hi - ours.lo < 0.25 * 3.92 * a.std() / np.sqrt(400)


def test_many_comparisons_share_resamples() -> None:
    rng = np.random.default_rng(2)
    d = rng.standard_normal((3, 120))
    mean, lo, hi = bootstrap_mean_intervals(d, n_resamples=2000, seed=5)
    for i in range(3):
        one = paired_bootstrap(d[i], np.zeros(120), n_resamples=2000, seed=5)
        assert (mean[i], lo[i], hi[i]) == pytest.approx((one.diff, one.lo, one.hi), abs=1e-12)
    assert np.all(lo <= mean) and np.all(mean <= hi)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="same length"):
        paired_bootstrap([1, 2], [1])
    with pytest.raises(ValueError, match="at least one user"):
        paired_bootstrap([], [])
    with pytest.raises(ValueError, match="NaN"):
        paired_bootstrap([1.0, np.nan], [0.0, 0.0])
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap([1.0], [0.0], confidence=1.0)
