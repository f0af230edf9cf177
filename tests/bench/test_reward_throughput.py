"""bench/reward_throughput.py in miniature on the synthetic data: both sides compute the same profile->item
reward on the same negatives, and the JSON and markdown are written (no timing is judged here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    from support.benches import load_bench

    return load_bench("reward_throughput")


def test_completions_are_grouped_per_user(bench) -> None:
    titles = {str(i): f"item {i}" for i in range(10)}
    rows = bench.completions_for([("u1", ["1", "2", "3", "4"], "5"), ("u2", ["6"], "7")], titles, g=4)
    assert len(rows) == 8 and [r["user_id"] for r in rows] == ["u1"] * 4 + ["u2"] * 4
    assert len({r["completion"] for r in rows[:4]}) == 4  # G different profiles of one user
    assert "item 4" in rows[0]["completion"] and "item 1" not in rows[0]["completion"]  # the 3 newest titles


def test_miniature_run(bench, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "rt.json"
    monkeypatch.setattr(sys, "argv", ["reward_throughput.py", "--completions", "24", "--batch", "8", "--naive", "3",
                                      "--catalogue", "120", "--synthetic", "--out", str(out)])
    bench.main()
    result = json.loads(out.read_text())
    assert result["completions"] == 24 and result["naive"]["completions_timed"] == 3
    assert result["data"].startswith("synthetic")
    assert result["same_negatives_max_abs_diff"] < 1e-3  # the naive side computes the same reward
    assert result["speedup"] > 0 and "× naive" in out.with_suffix(".md").read_text()
