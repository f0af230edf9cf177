"""bench/paper_tables.py --smoke: every stage of the paper-style evaluation end to end on small synthetic domains
(micro profiler, tiny budgets); every table has every method row, and a rerun resumes without recomputing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    from support.benches import load_bench

    return load_bench("paper_tables")


def test_the_default_config_plans_every_method_on_one_warm_start(tmp_path):
    from pydantic import ValidationError

    from bluerec.config import load_config

    bench = _bench()
    cfg = load_config(bench.PaperConfig, ROOT / "configs" / "paper" / "default.yaml")
    assert cfg.max_users == 1000 and cfg.transfer.source == "amazon2014-clothing"
    assert set(cfg.stages) == set(bench.STAGES)
    assert set(cfg.trained) == {"blue", "rlpf", "langptune", "rlaif"}
    # prepared folders given, so nothing is prepared here
    cfg = cfg.model_copy(update={"work": tmp_path, "datasets_prepared": {d: tmp_path / d for d in cfg.datasets}})
    paper = bench.Paper(cfg, say=lambda m: None)
    ws = paper.warmstart_config("amazon2014-beauty")
    enabled = {}
    for method in cfg.trained:
        tc = paper.train_config("amazon2014-beauty", method)
        assert tc.profiler.model == str(tmp_path / "amazon2014-beauty" / "warmstart" / "model")
        assert tc.output_dir == tmp_path / "amazon2014-beauty" / "grpo" / method
        assert tc.prompt == ws.prompt and tc.eval.select_best
        enabled[method] = tc.rewards.enabled
    assert enabled["blue"] == ["infonce", "multiple_choice", "length_penalty"]
    for method in ("rlpf", "langptune", "rlaif"):
        assert enabled[method] == [method, "length_penalty"]
    assert not paper.zero_shot().lora.enabled
    with pytest.raises(ValidationError, match="transfer.source"):
        bench.PaperConfig.model_validate({**cfg.model_dump(), "train_on": ["amazon2014-beauty"]})
    # without the transfer and QA stages the source need not be trained
    bench.PaperConfig.model_validate({**cfg.model_dump(), "train_on": [], "stages": ["profiles", "retrieval"]})


def _run(work: Path, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = ["nice", "-n", "10", sys.executable, str(ROOT / "bench" / "paper_tables.py"), "--smoke",
           "--work", str(work), "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("paper")
    work, out = tmp / "work", tmp / "paper_tables.json"
    _run(work, out)
    return work, out


def test_every_table_has_every_method_row(smoke):
    work, out = smoke
    payload = json.loads(out.read_text())
    t = payload["tables"]
    assert payload["command"].startswith("python bench/paper_tables.py --smoke") and payload["seconds"] > 0
    methods = ["popularity", "history_text", "template", "mean_embedding", "last_item", "successor_text",
               "successor_mean", "zero_shot", "warmstart", "blue", "rlpf", "langptune", "rlaif", "sasrec", "bert4rec"]
    assert t["methods"] == methods
    trained_on, other = t["train_on"][0], [d for d in t["datasets"] if d not in t["train_on"]][0]
    for emb in ("frozen", "finetuned"):
        for m in methods:
            cell = t["retrieval"][emb][m][trained_on]  # every method where the profilers were trained
            assert cell is not None, (emb, m)
            for protocol in ("full", "sampled"):
                assert 0.0 <= cell[protocol]["ndcg@10"] <= cell[protocol]["recall@10"] <= 1.0
        for m in ["zero_shot", "popularity", "sasrec", "bert4rec"]:  # untrained profilers only where trained
            assert t["retrieval"][emb][m][other] is not None
        assert t["retrieval"][emb]["blue"][other] is None
    # paired intervals against the references on the same users, and the frozen-vs-fine-tuned deltas
    assert "last_item" in t["intervals"][trained_on]["frozen"]["blue"]["full"]
    for model in ("sasrec", "bert4rec"):  # the ID-based rows too, from their per-user ranks on the same users
        for d in t["datasets"]:
            for protocol in ("full", "sampled"):
                iv = t["intervals"][d]["frozen"][model][protocol]["last_item"]["ndcg@10"]
                assert iv["lo"] <= iv["diff"] <= iv["hi"]
                own, ref = t["retrieval"]["frozen"][model][d], t["retrieval"]["frozen"]["last_item"][d]
                assert iv["diff"] == pytest.approx(own[protocol]["ndcg@10"] - ref[protocol]["ndcg@10"], abs=1e-6)
    assert "finetuned" in t["embedders"][trained_on]["intervals"]["blue"]["full"]
    ft = t["finetune"][trained_on]
    assert ft["loss_after"] < ft["loss_before"]
    # transfer: the profiler trained on the source, on every domain, in-domain on the diagonal
    cells = t["transfer"]["cells"][f"blue_{trained_on}"]
    assert set(cells) == set(t["datasets"])
    assert cells[trained_on]["in_domain"] and not cells[other]["in_domain"]
    # QA: accuracy and MAE for every text context
    qa = t["qa"]["results"]
    assert set(qa) == {"history", "template", "zero_shot", "warmstart", "blue", "rlpf", "langptune", "rlaif"}
    for r in qa.values():
        assert 0.0 <= r["choice"]["accuracy"] <= 1.0 and 0.0 <= r["rating"]["mae"] <= 4.0
    md = out.with_suffix(".md").read_text()
    for m in methods:
        assert f"| {m} |" in md
    for section in ("frozen embedder, full", "finetuned embedder, sampled", "Cross-domain transfer",
                    "Personalized QA", "Frozen vs fine-tuned"):
        assert section in md
    # the intervals section prints each dataset's tables (mean and interval against every reference), not headings
    section = md.split("## Paired bootstrap 95% intervals")[1].split("## Frozen vs fine-tuned")[0]
    for d in t["datasets"]:
        block = section.split(f"### {d}")[1].split("### ")[0]
        assert "| method | ndcg@10 | − last_item |" in block, block
        assert "| sasrec |" in block and "| bert4rec |" in block
    assert "| blue |" in section.split(f"### {trained_on}")[1].split("### ")[0]


def test_a_rerun_resumes_without_recomputing(smoke):
    work, out = smoke
    stage_files = sorted((work / "stages").glob("*.json"))
    assert len(stage_files) >= 10
    mtimes = {p: p.stat().st_mtime_ns for p in stage_files}
    first = json.loads(out.read_text())["tables"]
    log_lines = len((work / "stage_log.jsonl").read_text().splitlines())
    _run(work, out)
    assert {p: p.stat().st_mtime_ns for p in stage_files} == mtimes
    rows = [json.loads(line) for line in (work / "stage_log.jsonl").read_text().splitlines()[log_lines:]]
    assert rows and all(r["status"] == "skipped" for r in rows)
    again = json.loads(out.read_text())["tables"]
    assert json.dumps(again["retrieval"], sort_keys=True) == json.dumps(first["retrieval"], sort_keys=True)
    assert again["stage_seconds"] == first["stage_seconds"]


def test_a_stage_made_under_another_config_is_not_reused(tmp_path):
    bench = _bench()
    stages = bench.Stages(tmp_path, say=lambda m: None, fingerprint="a")
    calls = []
    assert stages.run("x", lambda: calls.append(1) or {"v": 1}) == {"v": 1}
    assert stages.run("x", lambda: calls.append(1) or {"v": 2}) == {"v": 1} and calls == [1]  # resumed
    with pytest.raises(SystemExit, match="another config"):
        bench.Stages(tmp_path, say=lambda m: None, fingerprint="b").run("x", lambda: {"v": 3})
