"""bench/quickstart_seeds.py: the comparison of gains with the spread across seeds (pure arithmetic), and which
finished runs a rerun may reuse."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from quickstart_seeds import compare, finished, markdown, seed_row  # noqa: E402


def _summary(zero: float, warm: float, blue: float) -> dict:
    cell = {"diff": blue - zero, "lo": blue - zero - 0.01, "hi": blue - zero + 0.01}
    return {"results": {m: {"full": {"ndcg@10": v}} for m, v in
                        (("zero_shot", zero), ("warmstart", warm), ("blue", blue))},
            "intervals": {"blue": {"full": {"zero_shot": {"ndcg@10": cell}}}}, "timings_s": {"a": 60.0},
            "n_users": 120}


def test_margin_is_the_smallest_gain_over_the_spread():
    rows = {s: seed_row(_summary(0.03, w, b)) for s, (w, b) in enumerate([(0.10, 0.11), (0.12, 0.13), (0.09, 0.12)])}
    assert rows[0]["blue_vs_zero_shot"]["diff"] == pytest.approx(0.08) and rows[0]["blue_vs_warmstart"] is None
    cmp = compare(rows)
    assert cmp["spread"]["blue"] == pytest.approx(0.02) and cmp["spread"]["zero_shot"] == 0.0
    assert cmp["min_gain_over_zero_shot"] == pytest.approx(0.08)
    assert cmp["margin"] == pytest.approx(4.0)
    text = markdown({"seeds": rows, "comparison": cmp, "command": "x", "seconds": 60, "n_users": 120})
    assert "4.0×" in text and "| 2 | 0.0300 | 0.0900 | 0.1200 |" in text


def test_a_gain_inside_the_spread_has_margin_below_one():
    rows = {s: seed_row(_summary(0.03, 0.04, b)) for s, b in enumerate([0.035, 0.06])}
    assert compare(rows)["margin"] < 1


def test_a_finished_seed_is_reused_only_with_the_same_settings(tmp_path):
    import json

    from bluerec.pipeline import QuickstartConfig

    config = QuickstartConfig(seed=1)
    results = tmp_path / "results.json"
    assert finished(results, config) is None  # nothing yet
    results.write_text(json.dumps({"seed": 1, "n_users": 120}))
    assert finished(results, config) is None  # from before results recorded their config
    results.write_text(json.dumps({"seed": 1, "config": config.model_dump(mode="json")}))
    assert finished(results, config)["seed"] == 1
    assert finished(results, config.model_copy(update={"num_threads": 1})) is None  # same seed, other settings
    assert finished(results, QuickstartConfig(seed=2)) is None
