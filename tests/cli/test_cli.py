"""End-to-end CLI: synth → prepare → evaluate on a small synthetic dataset, help texts, clean errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bluerec.cli.main import app


@pytest.fixture(autouse=True)
def _toy_timestamps(monkeypatch):
    """These fixtures use toy timestamps (1, 2, 1000 ms); the sane-window check has its own tests
    (tests/data/test_value_ranges.py), so it is turned off here."""
    monkeypatch.setattr("bluerec.data.readers._engine.timestamp_checks", lambda unit="ms": ())

runner = CliRunner()


def _invoke(*args: str):
    result = runner.invoke(app, list(args))
    return result


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    raw = root / "raw"
    res = _invoke("data", "synth", "--out", str(raw), "--users", "300", "--items", "200", "--interests", "12", "--seed", "3")
    assert res.exit_code == 0, res.output
    cfg = root / "prepare.yaml"
    cfg.write_text(yaml.safe_dump({
        "source": {"format": "amazon2023",
                   "reviews": [str(raw / "amazon" / "All_Beauty.jsonl.gz")],
                   "meta": [str(raw / "amazon" / "meta_All_Beauty.jsonl.gz")]},
        "k_core": 3,
    }))
    res = _invoke("data", "prepare", "--config", str(cfg), "--out", str(root / "data"))
    assert res.exit_code == 0, res.output
    return root / "data"


@pytest.mark.parametrize("command", [[], ["data"], ["data", "synth"], ["data", "prepare"], ["evaluate"]])
def test_every_command_has_help(command):
    res = _invoke(*command, "--help")
    assert res.exit_code == 0
    assert "Usage" in res.output


def test_prepare_writes_manifest(prepared: Path):
    manifest = json.loads((prepared / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["users"] > 100 and counts["test"] == counts["users"] == counts["valid"]


def test_evaluate_baselines_both_protocols(prepared: Path, tmp_path: Path):
    out = tmp_path / "eval"
    res = _invoke("evaluate", "--dataset", str(prepared), "--out", str(out), "--max-users", "80",
                  "-m", "popularity", "-m", "last_item", "-m", "history_text", "--cache-dir", str(tmp_path / "cache"))
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_users"] == 80
    assert set(summary["results"]) == {"popularity", "last_item", "history_text"}
    for by_protocol in summary["results"].values():
        assert set(by_protocol) == {"full", "sampled"}
        for metrics in by_protocol.values():
            assert 0.0 <= metrics["ndcg@10"] <= 1.0
    # Sampled candidates (100) are easier than the full catalogue.
    assert summary["results"]["last_item"]["sampled"]["ndcg@10"] >= summary["results"]["last_item"]["full"]["ndcg@10"]
    assert (out / "users" / "last_item.full.parquet").exists()
    assert (out / "profiles" / "history_text.jsonl").exists()
    assert "| last_item |" in (out / "summary.md").read_text()


def test_bad_config_key_is_a_clean_error(tmp_path: Path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump({"source": {"format": "amazon2023", "reviews": ["x"], "meta": ["y"]}, "kcore": 5}))
    res = _invoke("data", "prepare", "--config", str(cfg), "--out", str(tmp_path / "out"))
    assert res.exit_code == 2
    assert "kcore" in res.output and "k_core" in res.output


def test_bad_format_names_allowed_values(tmp_path: Path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump({"source": {"format": "amazon2099", "reviews": ["x"]}}))
    res = _invoke("data", "prepare", "--config", str(cfg), "--out", str(tmp_path / "out"))
    assert res.exit_code == 2
    assert "amazon2099" in res.output and "google_local" in res.output


def test_bad_input_file_names_file_line_and_field(tmp_path: Path):
    reviews = tmp_path / "r.jsonl"
    reviews.write_text('{"user_id": "U1", "parent_asin": "B1", "timestamp": 1, "rating": 5}\n{"user_id": "U2", "timestamp": 2}\n')
    meta = tmp_path / "m.jsonl"
    meta.write_text('{"parent_asin": "B1", "title": "A thing"}\n')
    cfg = tmp_path / "p.yaml"
    cfg.write_text(yaml.safe_dump({"source": {"format": "amazon2023", "reviews": [str(reviews)], "meta": [str(meta)]}}))
    res = _invoke("data", "prepare", "--config", str(cfg), "--out", str(tmp_path / "out"))
    assert res.exit_code == 2
    assert "r.jsonl:2" in res.output and "parent_asin" in res.output
