"""bench/profile_cut.py: a profile cut to its first k titles, newest first."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def bench():
    from support.benches import load_bench

    return load_bench("profile_cut")


def test_first_titles_keeps_the_head_and_the_first_k_titles(bench):
    profile = "Recently: Rose Mask; Clay Mask, 2 lbs; ; Brush Set…"
    assert bench.first_titles(profile, 1) == "Recently: Rose Mask"
    assert bench.first_titles(profile, 2) == "Recently: Rose Mask; Clay Mask, 2 lbs"  # the empty title is dropped
    assert bench.first_titles(profile, 9) == "Recently: Rose Mask; Clay Mask, 2 lbs; Brush Set…"
    assert bench.first_titles("A skincare lover.", 1) == "A skincare lover."  # not a title list: kept whole
    assert bench.first_titles("Recently:", 1) == "Recently:"  # nothing to cut
    with pytest.raises(ValueError, match="k must be >= 1"):
        bench.first_titles(profile, 0)


def test_stored_validation_profiles_are_the_warm_starts_300_users(bench):
    from bluerec.io import read_jsonl

    rows = read_jsonl(bench.PROFILES / "warmstart.valid300.jsonl.gz")
    assert len(rows) == 300 and len({r["user_id"] for r in rows}) == 300
    assert all(r["profile"].startswith("Recently: ") for r in rows[:20])
