"""bench/successor_stats.py: the copyable forms it scores are the warm start's own target pieces."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def bench():
    from support.benches import load_bench

    return load_bench("successor_stats")


def test_forms_add_successors_to_the_taught_target(bench):
    from bluerec.profiler.warmstart import make_target

    shown, context = ["Soap", "Gel  Pen"], ["Toner", "Mask", "Brush", "Comb"]
    f = bench.forms(shown, context)
    assert f["newest+s1"] == make_target("newest_item+successor", [], None, history_texts=shown, context_texts=context)
    assert f["newest+s1s2s3"] == "Recently: Gel Pen. Often bought next: Toner; Mask; Brush."
    assert f["s1s2s3"] == "Often bought next: Toner; Mask; Brush."
    assert bench.forms(shown, [])["s1s2s3"] == "Recently: Gel Pen."  # no successors: the newest title alone
