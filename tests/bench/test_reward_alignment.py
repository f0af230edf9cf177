"""bench/reward_alignment.py: the rank metrics and the sign agreement it reports are computed right."""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ra():
    spec = importlib.util.spec_from_file_location("reward_alignment_bench", ROOT / "bench" / "reward_alignment.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_rank_metrics_take_zero_based_ranks(ra):
    m = ra.rank_metrics(np.array([0.0, 9.0, 10.0, 99.0]))  # 1st, 10th, 11th, 100th
    assert m["ndcg@10"] == pytest.approx((1.0 + 1.0 / np.log2(11.0)) / 4)
    assert m["mrr"] == pytest.approx((1 + 1 / 10 + 1 / 11 + 1 / 100) / 4)
    assert m["mean_log_rank"] == pytest.approx(np.log([1, 10, 11, 100]).mean())


def test_agreement_counts_a_reward_rise_with_a_rank_fall_as_right(ra):
    reward_delta = np.array([+1.0, +2.0, -1.0, +0.5, 3.0])
    log_rank_delta = np.array([-0.5, -1.0, +0.2, +0.3, 0.0])  # the last user's rank did not move: left out
    right, corr, moved = ra.agreement(reward_delta, log_rank_delta)
    assert moved == 4 and right == pytest.approx(3 / 4)
    assert corr == pytest.approx(np.corrcoef(reward_delta[:4], -log_rank_delta[:4])[0, 1])
    assert np.isnan(ra.agreement(np.array([1.0]), np.array([1.0]))[0])


def test_read_profiles_names_the_line_of_a_row_without_its_rank(ra, tmp_path):
    path = tmp_path / "p.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(json.dumps({"user_id": "1", "profile": "x", "target_item": "7", "rank": 3}) + "\n")
        fh.write(json.dumps({"user_id": "2", "profile": "y", "target_item": "8"}) + "\n")
    with pytest.raises(SystemExit, match=r"p\.jsonl\.gz:2: missing field\(s\) \['rank'\]"):
        ra.read_profiles(path)


def test_the_stored_validation_sets_are_the_same_users_and_targets(ra):
    stored = sorted((ROOT / "bench" / "results" / "reward_alignment").glob("*.valid300.jsonl.gz"))
    sets = [ra.read_profiles(p) for p in stored]
    assert len(sets) >= 3 and all(len(s) == 300 for s in sets)
    ref = sets[0]
    assert all({u: r["target_item"] for u, r in s.items()} == {u: r["target_item"] for u, r in ref.items()}
               for s in sets)
