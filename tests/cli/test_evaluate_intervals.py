"""``bluerec evaluate --max-users N``: a seeded sample, the intervals table, YAML values kept unless overridden."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bluerec.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli_iv")
    res = runner.invoke(app, ["data", "synth", "--out", str(root / "raw"), "--users", "200", "--items", "150",
                              "--interests", "8", "--seed", "3"])
    assert res.exit_code == 0, res.output
    cfg = root / "prepare.yaml"
    cfg.write_text(yaml.safe_dump({"source": {"format": "amazon2023",
                                              "reviews": [str(root / "raw" / "amazon" / "All_Beauty.jsonl.gz")],
                                              "meta": [str(root / "raw" / "amazon" / "meta_All_Beauty.jsonl.gz")]},
                                   "k_core": 3}))
    res = runner.invoke(app, ["data", "prepare", "--config", str(cfg), "--out", str(root / "data")])
    assert res.exit_code == 0, res.output
    return root / "data"


def test_max_users_and_intervals(prepared: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    res = runner.invoke(app, ["evaluate", "--dataset", str(prepared), "--out", str(out), "--max-users", "60",
                              "-m", "popularity", "-m", "last_item", "-m", "template", "--protocol", "full",
                              "--reference", "popularity", "--resamples", "500", "--seed", "2",
                              "--cache-dir", str(tmp_path / "cache")], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "paired bootstrap 95% interval" in res.output and "− popularity" in res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_users"] == 60 and summary["sample"]["seed"] == 2
    assert summary["references"] == ["popularity"]
    assert set(summary["intervals"]) == {"last_item", "template"}
    assert summary["interval_settings"]["n_resamples"] == 500
    assert "− popularity" in (out / "summary.md").read_text()


def test_yaml_sample_is_kept_unless_overridden(prepared: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "eval.yaml"
    cfg.write_text(yaml.safe_dump({"dataset": str(prepared), "methods": ["last_item", "template"], "max_users": 30,
                                   "seed": 5, "intervals": {"n_resamples": 300, "metrics": ["ndcg@10"]}}))
    res = runner.invoke(app, ["evaluate", "-c", str(cfg), "--out", str(tmp_path / "a"), "--protocol", "full",
                              "--cache-dir", str(tmp_path / "cache")])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["n_users"] == 30 and summary["sample"]["seed"] == 5
    assert summary["references"] == ["last_item", "template"]
    assert summary["intervals"]["template"]["full"]["last_item"].keys() == {"ndcg@10"}
    res = runner.invoke(app, ["evaluate", "-c", str(cfg), "--out", str(tmp_path / "b"), "--protocol", "full",
                              "--max-users", "20", "--reference", "nope", "--cache-dir", str(tmp_path / "cache")])
    assert res.exit_code != 0
    assert "nope" in res.output and "not methods of this run" in res.output
