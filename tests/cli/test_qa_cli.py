"""``bluerec qa``: a run end to end on synthetic data with a tiny local reader, and its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.cli import assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from bluerec.config import parse_config
    from bluerec.data.config import PrepareConfig
    from bluerec.data.dataset import PreparedDataset
    from bluerec.data.prepare import prepare_dataset
    from bluerec.data.synth import SynthConfig, write_synth
    from bluerec.profiler.backends.micro import MicroModelConfig, build_micro_profiler, corpus_for

    root = tmp_path_factory.mktemp("qa_cli")
    synth = write_synth(parse_config(SynthConfig, {"domain": "amazon", "n_users": 80, "n_items": 120,
                                                   "n_interests": 6, "seed": 4}), root / "raw")
    prepare_dataset(PrepareConfig(source=synth.source("amazon")), root / "data")
    reader = build_micro_profiler(corpus_for(PreparedDataset(root / "data")), root / "reader", vocab_size=500,
                                  model_config=MicroModelConfig(hidden_size=32, num_hidden_layers=1,
                                                                num_attention_heads=2, num_key_value_heads=1,
                                                                intermediate_size=64, max_position_embeddings=512))
    return {"root": root, "data": root / "data", "reader": reader}


def test_qa_command_writes_summary(setup: dict[str, Path]):
    out = setup["root"] / "run"
    proc = run_cli("qa", "-d", str(setup["data"]), "--out", str(out), "--reader", str(setup["reader"]),
                   "--max-users", "6", "--resamples", "50", "--device", "cpu", cwd=setup["root"], timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_users"] == 6 and set(summary["results"]) == {"history", "template"}
    assert {"accuracy", "n"} <= set(summary["results"]["template"]["choice"])
    assert {"mae", "rmse", "unparsable_rate", "n"} <= set(summary["results"]["template"]["rating"])
    assert "| template |" in (out / "summary.md").read_text() and "| template |" in proc.stderr  # the console writes to stderr


@pytest.mark.parametrize("args, names", [
    (["--task", "nonsense"], ["--task", "nonsense"]),
    (["--max-users", "0"], ["--max-users"]),
    (["--profiles", "zs=/does/not/exist.jsonl"], ["zs", "/does/not/exist.jsonl"]),
    (["--reader", "/no/such/model/folder"], ["--reader"]),
])
def test_qa_command_fails_in_one_line(setup: dict[str, Path], args: list[str], names: list[str]):
    out = setup["root"] / "bad"
    proc = run_cli("qa", "-d", str(setup["data"]), "--out", str(out), *args, cwd=setup["root"])
    assert_one_line_error(proc, *names)
    assert not out.exists()
