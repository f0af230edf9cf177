"""CLI of the trainable embedder and transfer commands: bad input is one line, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

from support.cli import assert_one_line_error, run_cli, snapshot


def test_finetune_refuses_an_existing_output_and_a_missing_profiles_file(tmp_path: Path):
    (tmp_path / "out").mkdir()
    cfg = tmp_path / "ft.yaml"
    cfg.write_text(f"dataset: {tmp_path}/data\nprofiles: template\noutput_dir: {tmp_path}/out\n")
    before = snapshot(tmp_path)
    assert_one_line_error(run_cli("embedder", "finetune", "-c", str(cfg), cwd=tmp_path), "out")
    missing = run_cli("embedder", "finetune", "-c", str(cfg), "--profiles", str(tmp_path / "nope.jsonl"),
                      "--output-dir", str(tmp_path / "new"), cwd=tmp_path)
    assert_one_line_error(missing, "nope.jsonl", "profiles")
    assert snapshot(tmp_path) == before


def test_transfer_config_errors_name_the_key(tmp_path: Path):
    cfg = tmp_path / "t.yaml"
    cfg.write_text(f"profilers: [{{name: p, profiler: x}}]\ntargets: [{{name: t}}]\noutput_dir: {tmp_path}/o\n")
    assert_one_line_error(run_cli("transfer", "-c", str(cfg), cwd=tmp_path), "targets", "exactly one")
    assert not (tmp_path / "o").exists()
