"""Cross-domain transfer: a micro profiler trained elsewhere, evaluated on two synthetic datasets, resumable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bluerec.config import parse_config
from bluerec.eval.transfer import TransferConfig, run_transfer
from support.micro_profiler import PROMPT, tiny_embedder, warm_micro_profiler
from support.synth_prepared import synth_prepared


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Two datasets (different seeds and categories) and a micro profiler trained on the first, saved as a run would
    save it (``final/`` beside ``train_config.yaml`` with the prompt), in another folder."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("transfer")
    a = synth_prepared(root / "a", n_users=40, n_items=40, seed=1)
    b = synth_prepared(root / "b", n_users=50, n_items=45, seed=2, category="Video_Games")
    elsewhere = root / "elsewhere" / "run"
    warm_micro_profiler(a, root, elsewhere / "final", hidden_size=64, intermediate_size=128, max_steps=60,
                        learning_rate=1e-2)
    import yaml

    (elsewhere / "train_config.yaml").write_text(yaml.safe_dump({"prompt": PROMPT}))
    tiny = tiny_embedder(root / "emb")
    return a, b, elsewhere / "final", tiny


def config(a: Path, b: Path, final: Path, tiny: Path, out: Path) -> TransferConfig:
    return parse_config(TransferConfig, {
        "profilers": [{"name": "micro_a", "source": "a",
                       "profiler": {"backend": "micro", "model": str(final), "device": "cpu"}}],
        "targets": [{"name": "a", "dataset": str(a)}, {"name": "b", "dataset": str(b)}],
        "output_dir": str(out), "max_users": 15, "seed": 0, "embedder": {"model": str(tiny)}, "cache_dir": None,
        "max_new_tokens": 8, "batch_size": 8, "intervals": {"n_resamples": 200},
    }, "test")


def test_transfer_matrix_reads_a_profiler_trained_elsewhere(world, tmp_path, monkeypatch):
    a, b, final, tiny = world
    out = tmp_path / "tr"
    said: list[str] = []
    matrix = run_transfer(config(a, b, final, tiny, out), say=said.append)
    assert set(matrix["cells"]["micro_a"]) == {"a", "b"}
    assert any("micro_a → b: 15/15 users" in m for m in said)  # generation shows progress
    assert matrix["cells"]["micro_a"]["a"]["in_domain"] and not matrix["cells"]["micro_a"]["b"]["in_domain"]
    for target in ("a", "b"):
        cell = matrix["cells"]["micro_a"][target]
        assert {"full", "sampled"} <= set(cell)
        assert 0.0 <= cell["full"]["ndcg@10"] <= 1.0
        iv = cell["intervals"]["full"]["last_item"]["ndcg@10"]
        assert iv["lo"] <= iv["diff"] <= iv["hi"]
        assert set(matrix["reference_results"][target]) == {"last_item", "history_text"}
        rows = [json.loads(x) for x in (out / "profiles" / f"micro_a__{target}.test.jsonl").read_text().splitlines()]
        assert len(rows) == matrix["n_users"][target] == 15
        assert rows[0]["generation"]["model"] == str(final)  # the profiler trained elsewhere, no further training
        assert any(r["profile"].strip() for r in rows)
    md = (out / "transfer.md").read_text()
    assert "micro_a" in md and "*" in md
    # Resumable per cell: a rerun generates nothing and loads nothing.
    import bluerec.eval.transfer as transfer

    monkeypatch.setattr(transfer, "write_user_profiles", lambda *a, **k: pytest.fail("regenerated a done cell"))
    monkeypatch.setattr(transfer, "EvaluationRun", lambda *a, **k: pytest.fail("re-evaluated a done target"))
    again = run_transfer(config(a, b, final, tiny, out))
    assert again["cells"] == matrix["cells"]
    # A removed cell is recomputed alone, on the same seeded users.
    (out / "cells" / "micro_a__b.json").unlink()
    monkeypatch.undo()
    third = run_transfer(config(a, b, final, tiny, out))
    assert third["cells"]["micro_a"]["b"]["full"] == matrix["cells"]["micro_a"]["b"]["full"]


def test_config_refuses_bad_targets(tmp_path):
    with pytest.raises(Exception, match="exactly one"):
        parse_config(TransferConfig, {"profilers": [{"name": "p", "profiler": "x"}], "targets": [{"name": "t"}],
                                      "output_dir": str(tmp_path)}, "test")


def test_progress_every_says_each_tenth_and_the_end():
    from bluerec.eval.transfer import progress_every

    said: list[str] = []
    report = progress_every(said.append, "p → t")
    for done in range(8, 101, 8):  # batches of 8 users out of 100
        report(done, 100)
    report(100, 100)
    assert [m.split(":")[1].split()[0] for m in said] == ["8/100", "24/100", "40/100", "56/100", "72/100", "88/100",
                                                           "100/100"]
