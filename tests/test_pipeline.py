"""The quick-start pipeline end to end on a tiny configuration (every stage runs; numbers are not judged here)."""

from __future__ import annotations

import json
from pathlib import Path

from bluerec.config import parse_config
from bluerec.pipeline import QuickstartConfig, run_quickstart

TINY = {
    "synth": {"n_users": 120, "n_items": 160, "n_interests": 6, "mean_interactions": 8, "max_interactions": 14, "seed": 1},
    "profiler": {"backend": "micro", "model": "micro", "device": "cpu", "dtype": "float32"},
    "vocab_size": 512,
    "prompt": {"max_history_items": 4, "max_prompt_tokens": 400, "max_item_chars": 40, "review_snippet_chars": 0,
               "include_ratings": False, "item_field": "title"},
    "micro": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
              "intermediate_size": 64},
    "warmstart": {"target": "recent_items", "max_examples": 64, "max_steps": 3, "batch_size": 8,
                  "learning_rate": 3e-3, "max_prompt_tokens": 400, "max_target_tokens": 32},
    "eval_users": 40,
    "grpo": {"max_steps": 2, "num_generations": 2, "batch_size": 4, "max_completion_length": 12, "save_steps": 0},
    "train_eval": {"every_steps": 0, "num_users": 8, "at_start": False, "at_end": False},
    "num_threads": 1,
    "max_new_tokens": 12,
}


def test_quickstart_runs_every_stage(tmp_path: Path):
    cfg = parse_config(QuickstartConfig, TINY, "test")
    messages: list[str] = []
    summary = run_quickstart(cfg, tmp_path, say=messages.append)
    methods = set(summary["results"])
    assert {"popularity", "history_text", "mean_embedding", "last_item", "template", "zero_shot", "warmstart",
            "blue"} <= methods
    assert summary["n_users"] == 40  # the seeded sample: every method on the same users
    assert "zero_shot" in summary["references"] and summary["intervals"]
    for by_protocol in summary["results"].values():
        assert set(by_protocol) == {"full", "sampled"}
        assert all(0.0 <= m["ndcg@10"] <= 1.0 for m in by_protocol.values())
    saved = json.loads((tmp_path / "results.json").read_text())
    assert len(saved["examples"]) == 3
    assert saved["compare"] == ["zero_shot", "warmstart", "blue"] and saved["primary_metric"] == "ndcg@10"  # what the report reads
    for user in saved["examples"]:
        assert set(user["methods"]) == {"zero_shot", "warmstart", "blue"}
        assert len(user["methods"]["blue"]["top5"]) == 5
    assert "| blue |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "train" / "final" / "config.json").exists()
    assert (tmp_path / "train" / "metrics.jsonl").exists()
    assert any("GRPO" in m for m in messages)  # progress is reported stage by stage
    report = (tmp_path / "report.html").read_text()
    assert "user-card" in report  # the quick start ends with the run report
    assert 'class="headline"' in report and "Before BLUE: warm-start profiler" in report  # its own labels
    _evaluate_trained_profiler_from_the_cli(tmp_path)


def _evaluate_trained_profiler_from_the_cli(run: Path) -> None:
    from typer.testing import CliRunner

    from bluerec.cli.main import app

    out = run / "cli-eval"
    res = CliRunner().invoke(app, ["evaluate", "--dataset", str(run / "data"), "--profiler", str(run / "train" / "final"),
                                   "-m", "last_item", "--protocol", "full", "--max-users", "20", "--out", str(out),
                                   "--max-new-tokens", "6",
                                   "--cache-dir", str(run / "cache")])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["results"]) == {"last_item", "profiler"} and summary["n_users"] == 20
    # Only the sampled users are profiled (an LLM profile costs ~0.5 s per user); the file is resumable.
    rows = [json.loads(line) for line in (out / "profiler_profiles.jsonl").read_text().splitlines()]
    evaluated = {json.loads(line)["user_id"] for line in (out / "profiles" / "profiler.jsonl").read_text().splitlines()}
    assert len({r["user_id"] for r in rows}) == len(rows) == 20 and {r["user_id"] for r in rows} == evaluated
    assert all(isinstance(r["profile"], str) for r in rows)
    assert {r["generation"]["max_new_tokens"] for r in rows} == {6}  # --max-new-tokens reaches the generator


def test_quickstart_rerun_never_reuses_profiles_of_the_previous_models(tmp_path: Path):
    """Profile files are resumable, but a rerun retrains the models: stale profiles must be regenerated."""
    cfg = parse_config(QuickstartConfig, TINY, "test")
    stale = tmp_path / "profiles" / "blue.test.jsonl"
    stale.parent.mkdir(parents=True)
    # Stands for a profile file of an earlier run's model (resuming would keep its rows or refuse the file).
    stale.write_text(json.dumps({"user_id": "earlier-user", "profile": "STALE", "generation": {}}) + "\n")
    run_quickstart(cfg, tmp_path, say=lambda m: None)
    rows = [json.loads(line) for line in stale.read_text().splitlines()]
    assert len(rows) == 40 and "STALE" not in stale.read_text()
