"""bench/copy_fidelity.py: the copy statistics of a profile against the target it was taught."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def bench():
    from support.benches import load_bench

    return load_bench("copy_fidelity")


def test_fidelity_counts_each_kind_of_copy(bench):
    target = "Recently: Rose Mask; Clay Mask. Often bought next: Sheet Mask Set."
    history = ["Brush", "Clay Mask", "Rose Mask"]
    profiles = [
        target,                                                       # exact
        "Recently: Rose Mask; Clay Mask. Often bought ne",            # cut by the budget
        "Recently: Clay Mask; Rose Mask. Often bought next: Sheet Mask Set.",  # order swapped
        "Recently: Rose Mask; Clay Mask. Often bought next: Brush.",  # a history title as the successor
        "A skincare lover.",                                          # no section at all
    ]
    r = bench.fidelity(profiles, [target] * 5, [history] * 5, [14, 16, 14, 15, 5], budget=16)
    assert r["n"] == 5 and r["exact"] == 1 and r["cut_prefix_of_target"] == 1 and r["at_budget"] == 1
    assert r["newest_title_first"] == 3  # exact, cut and the history-successor one start with the newest title
    assert r["older_title_first"] == 1  # the swapped one starts with an older history title
    assert r["successor_right"] == 2 and r["successor_is_history_title"] == 1
    assert r["no_successor_section"] == 2  # the cut one lost its section too
    assert r["shares"]["exact"] == 0.2 and 0 < r["mean_similarity"] < 1
    assert r["token_lengths"] == {"p50": 14, "p90": 16, "max": 16}
    with pytest.raises(ValueError, match="2 profiles for 1 targets"):
        bench.fidelity(profiles[:2], [target], [history], [1, 1], budget=None)


def test_right_form_takes_the_newest_title_and_the_targets_successor(bench):
    target = "Recently: Rose Mask. Often bought next: Sheet Mask Set."
    assert bench.right_form("Recently: Rose Mask.  Often bought next: Sheet Mask Set.", target)  # spacing aside
    assert not bench.right_form("Recently: Clay Mask. Often bought next: Sheet Mask Set.", target)  # older title
    assert not bench.right_form("Recently: Rose Mask. Often bought next: Rose Mask Duo.", target)  # other successor
    assert not bench.right_form("Recently: Rose Mask.", target)  # no section


def test_group_contrast_counts_the_groups_that_can_teach_the_greedy_profile(bench):
    g = bench.group_contrast([True, False, False, True], [[True, True], [False, True], [False, False], [True, False]])
    assert g == {"users": 4, "greedy_right": 2, "all_right": 1, "all_wrong": 1, "mixed": 2,
                 "greedy_wrong_sample_right": 1}
    with pytest.raises(ValueError, match="1 greedy profiles for 2 groups"):
        bench.group_contrast([True], [[True], [False]])
