"""bench/published.py: our metrics against published figures (ratio, the ±15% band), and --recompare."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from published import compare_published, recompare  # noqa: E402

PUBLISHED = {
    "sampled": {"hr@10": 0.40, "ndcg@10": 0.20, "source": "a paper", "protocol": "100 negatives", "data_note": "n"},
    "full": None,  # no citable figure: no row
}


def test_ratio_and_band_per_protocol_with_a_figure():
    out = compare_published({"sampled": {"recall@10": 0.46, "ndcg@10": 0.25}, "full": {"recall@10": 0.1,
                                                                                       "ndcg@10": 0.05}}, PUBLISHED)
    assert list(out) == ["sampled"]
    hr, ndcg = out["sampled"]["metrics"]["hr@10"], out["sampled"]["metrics"]["ndcg@10"]
    assert hr == {"ours": 0.46, "published": 0.40, "ratio": 1.15, "within_15pct": True}
    assert ndcg["ratio"] == 1.25 and not ndcg["within_15pct"]
    assert out["sampled"]["source"] == "a paper" and out["sampled"]["protocol"] == "100 negatives"


def test_a_protocol_the_run_lacks_is_left_out():
    assert compare_published({"full": {"recall@10": 0.1, "ndcg@10": 0.05}}, PUBLISHED) == {}


def test_recompare_rewrites_the_comparison_and_the_markdown(tmp_path):
    out = tmp_path / "r.json"
    out.write_text(json.dumps({"metrics": {"sampled": {"recall@10": 0.3, "ndcg@10": 0.2}}, "comparison": {}}))
    text = recompare(out, PUBLISHED,
                     lambda payload: f"ratio {payload['comparison']['sampled']['metrics']['hr@10']['ratio']}")
    assert text == "ratio 0.75" and out.with_suffix(".md").read_text() == text
    assert json.loads(out.read_text())["comparison"]["sampled"]["metrics"]["ndcg@10"]["within_15pct"]
    with pytest.raises(FileNotFoundError):
        recompare(tmp_path / "missing.json", PUBLISHED, str)
