"""Frozen vs fine-tuned table: the same users and negatives under each embedder, paired intervals vs the first."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

from bluerec.config import parse_config
from bluerec.eval.embedders import EmbedderCompareConfig, compare_embedders
from support.synth_prepared import synth_prepared

_spec = importlib.util.spec_from_file_location("_embed_fixtures", Path(__file__).parents[1] / "embed" / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)  # type: ignore[union-attr]


def test_compare_embedders_same_users_and_intervals(tmp_path):
    data = synth_prepared(tmp_path / "d", n_users=50, n_items=45)
    one = _fixtures.build_tiny_model(tmp_path / "e1", seed=0)
    two = _fixtures.build_tiny_model(tmp_path / "e2", seed=1)
    cfg = parse_config(EmbedderCompareConfig, {
        "evaluate": {"dataset": str(data), "methods": ["last_item", "history_text"], "max_users": 20, "seed": 3,
                     "cache_dir": None, "intervals": {"n_resamples": 200}},
        "embedders": {"frozen": {"model": str(one)}, "finetuned": {"model": str(two)}}}, "test")
    table = compare_embedders(cfg, tmp_path / "out")
    assert table["reference"] == "frozen" and table["n_users"] == 20
    for method in ("last_item", "history_text"):
        cells = table["results"][method]["full"]
        assert set(cells) == {"frozen", "finetuned"}
        iv = table["intervals"][method]["full"]["finetuned"]["ndcg@10"]
        assert iv["lo"] <= iv["diff"] <= iv["hi"]
        assert np.isclose(iv["diff"], cells["finetuned"]["ndcg@10"] - cells["frozen"]["ndcg@10"])
    users = [json.loads((tmp_path / "out" / n / "summary.json").read_text())["sample"] for n in ("frozen", "finetuned")]
    assert users[0] == users[1]
    assert "Δndcg@10 finetuned" in (tmp_path / "out" / "embedders.md").read_text()


def test_compare_needs_two_embedders(tmp_path):
    import pytest

    with pytest.raises(Exception, match="at least two"):
        parse_config(EmbedderCompareConfig, {"evaluate": {"dataset": str(tmp_path)},
                                             "embedders": {"frozen": {"model": "minilm"}}}, "test")
