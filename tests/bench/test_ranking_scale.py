"""bench/ranking_scale.py's pieces: the seeded structured catalogue, the naive loop agreeing with full_ranks,
and a miniature end-to-end run that writes its JSON and markdown (no timing is judged here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from bluerec.eval.retrieval import full_ranks

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    from support.benches import load_bench

    return load_bench("ranking_scale")


def test_catalogue_is_seeded_and_structured(bench) -> None:
    a, ca = bench.make_catalogue(3000, 32, 30, seed=4)
    b, cb = bench.make_catalogue(3000, 32, 30, seed=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ca, cb)
    assert a.dtype == np.float32 and np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    same = np.mean([a[ca == c].mean(0) @ a[ca == c].mean(0) for c in range(5)])
    assert same > 0.2  # items of a cluster share a direction; random 32-d unit vectors would give ~1/n


def test_naive_loop_matches_full_ranks(bench) -> None:
    items, cluster = bench.make_catalogue(4000, 24, 40, seed=1)
    queries, targets, history = bench.make_users(items, cluster, 60, seed=1, max_history=20)
    assert all(t not in set(h.tolist()) for t, h in zip(targets, history))
    ranks, tops = bench.numpy_argsort(items, queries, targets, history)
    exact = full_ranks(queries, items, targets, history, top_n=10)
    np.testing.assert_array_equal(ranks, exact.ranks)
    np.testing.assert_array_equal(tops, exact.top_indices)


def test_miniature_run_writes_results(bench, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "rs.json"
    monkeypatch.setattr(sys, "argv", ["ranking_scale.py", "--items", "5000", "--users", "120", "--dim", "16",
                                      "--clusters", "50", "--numpy-users", "10", "--exact-users", "60",
                                      "--flat-users", "20", "--nprobe", "1,8", "--no-memory-probe", "--out", str(out)])
    bench.main()
    result = json.loads(out.read_text())
    methods = [r["method"] for r in result["rows"]]
    assert methods[:3] == ["numpy argsort (per user)", "torch exact (chunked)", "faiss flat (IndexFlatIP)"]
    assert {"faiss ivf nprobe=1", "faiss ivf nprobe=8"} <= set(methods)
    assert result["numpy_matches_torch_ranks"] is True
    ivf8 = next(r for r in result["rows"] if r["method"] == "faiss ivf nprobe=8")
    assert 0.0 <= ivf8["recall@10"] <= 1.0 and ivf8["users_timed"] == 120 and not ivf8["extrapolated"]
    assert "| torch exact (chunked)" in out.with_suffix(".md").read_text()
