"""EvaluationRun with a seeded user sample: every method on the same users, paired intervals to references."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bluerec.config import parse_config
from bluerec.data.config import PrepareConfig
from bluerec.data.prepare import prepare_dataset
from bluerec.data.synth import SynthConfig, write_synth
from bluerec.embed import Embedder
from bluerec.eval.bootstrap import paired_bootstrap
from bluerec.eval.evaluator import EvalConfig
from bluerec.eval.run import EvaluateConfig, EvaluationRun, IntervalConfig, intervals_markdown, select_examples
from bluerec.io import write_jsonl_atomic

PROTOCOLS = [EvalConfig(protocol="full"), EvalConfig(protocol="sampled", num_negatives=30)]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("intervals")
    synth = write_synth(parse_config(SynthConfig, {"domain": "amazon", "n_users": 150, "n_items": 150,
                                                    "n_interests": 8, "seed": 5}), root / "raw")
    prepare_dataset(PrepareConfig(source=synth.source("amazon")), root / "data")
    return root / "data"


def _config(dataset: Path, tmp: Path, **kw) -> EvaluateConfig:
    base = {"dataset": dataset, "methods": ["popularity", "last_item", "history_text", "template"],
            "max_users": 40, "seed": 1, "cache_dir": tmp / "cache", "protocols": PROTOCOLS,
            "intervals": IntervalConfig(n_resamples=2000)}
    base.update(kw)
    return EvaluateConfig(**base)


def test_same_users_and_intervals(dataset: Path, tmp_path: Path, minilm: Embedder) -> None:
    run = EvaluationRun(_config(dataset, tmp_path), embedder=minilm)
    summary = run.run_all(tmp_path / "out")
    assert summary["n_users"] == 40 and summary["sample"]["n_split_users"] > 40
    users = {tuple(r.user_ids) for by_p in run.results.values() for r in by_p.values()}
    assert len(users) == 1  # every method, baselines included, on the same sampled users
    from bluerec.eval.tasks import get_task  # the evaluators are the registered retrieval tasks

    assert all(type(ev) is get_task(p).evaluator_class and ev.config.protocol == p for p, ev in run.evaluators.items())
    assert summary["primary_metric"] == "ndcg@10" and summary["primary_metrics"] == {"full": "ndcg@10",
                                                                                       "sampled": "ndcg@10"}
    assert summary["methods"] == list(summary["results"]) and summary["profile_methods"] == []
    assert summary["references"] == ["last_item", "history_text", "template"]
    iv = summary["intervals"]
    assert set(iv) == {"popularity", "last_item", "history_text", "template"}
    assert set(iv["popularity"]["full"]) == {"last_item", "history_text", "template"}
    assert "last_item" not in iv["last_item"]["full"]  # never compared with itself
    # each cell is the paired bootstrap of the per-user metric arrays, on the run's seed
    got = iv["template"]["sampled"]["last_item"]["ndcg@10"]
    want = paired_bootstrap(run.results["template"]["sampled"].per_user("ndcg@10"),
                            run.results["last_item"]["sampled"].per_user("ndcg@10"), n_resamples=2000, seed=1)
    assert (got["diff"], got["lo"], got["hi"]) == pytest.approx((want.diff, want.lo, want.hi))
    mean_diff = (summary["results"]["template"]["sampled"]["ndcg@10"]
                 - summary["results"]["last_item"]["sampled"]["ndcg@10"])
    assert got["diff"] == pytest.approx(mean_diff)
    for by_p in iv.values():
        for by_ref in by_p.values():
            for by_metric in by_ref.values():
                assert set(by_metric) == {"ndcg@10", "recall@10"}
                for cell in by_metric.values():
                    assert cell["lo"] <= cell["diff"] + 1e-12 and cell["diff"] <= cell["hi"] + 1e-12
    saved = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert saved["intervals"] == json.loads(json.dumps(iv))
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "| method | full NDCG@10 |" in md  # the existing table is still there
    assert "paired bootstrap 95% interval" in md and "− last_item" in md
    cell = iv["popularity"]["full"]["template"]["ndcg@10"]
    assert f"{cell['diff']:+.4f} [{cell['lo']:+.4f}, {cell['hi']:+.4f}]" in md


def test_sample_is_seeded(dataset: Path) -> None:
    from bluerec.data.dataset import PreparedDataset

    ds = PreparedDataset(dataset)
    ids = lambda seed: [ex.user_id for ex in select_examples(ds, "test", 40, seed)]  # noqa: E731
    assert ids(1) == ids(1) and ids(1) != ids(2)
    assert len(set(ids(1))) == 40


def test_zero_shot_profile_is_a_default_reference(dataset: Path, tmp_path: Path, minilm: Embedder) -> None:
    cfg = _config(dataset, tmp_path, methods=["last_item", "template"])
    run = EvaluationRun(cfg, embedder=minilm)
    profiles = tmp_path / "zs.jsonl"
    write_jsonl_atomic(profiles, ({"user_id": ex.user_id, "profile": f"likes item {i % 7}"}
                                  for i, ex in enumerate(run.dataset.split("test"))))
    run = EvaluationRun(cfg.model_copy(update={"profiles": {"zeroshot": profiles, "blue": profiles}}), embedder=minilm)
    summary = run.run_all()
    assert summary["references"] == ["last_item", "template", "zeroshot"]
    cell = summary["intervals"]["blue"]["full"]["zeroshot"]["ndcg@10"]
    assert cell == {"diff": 0.0, "lo": 0.0, "hi": 0.0}  # identical profiles: a zero difference
    assert "zeroshot" in summary["intervals"]["last_item"]["full"]


def test_named_references(dataset: Path, tmp_path: Path, minilm: Embedder) -> None:
    cfg = _config(dataset, tmp_path, methods=["last_item", "popularity"],
                  intervals=IntervalConfig(references=["popularity"], metrics=["mrr"], n_resamples=500))
    summary = EvaluationRun(cfg, embedder=minilm).run_all()
    assert summary["references"] == ["popularity"]
    assert set(summary["intervals"]) == {"last_item"}
    assert set(summary["intervals"]["last_item"]["full"]["popularity"]) == {"mrr"}
    with pytest.raises(ValueError, match="not methods of this run"):
        _config(dataset, tmp_path, methods=["last_item"], intervals=IntervalConfig(references=["template"]))
    # a config changed without validation is still caught before any work
    unchecked = cfg.model_copy(update={"intervals": IntervalConfig(references=["template"])})
    with pytest.raises(ValueError, match="not methods of this run"):
        EvaluationRun(unchecked, embedder=minilm).run_all()
    with pytest.raises(ValueError, match="unknown metric"):
        IntervalConfig(metrics=["ndcg10"])
    off = _config(dataset, tmp_path, methods=["last_item", "template"], intervals=IntervalConfig(n_resamples=0))
    summary = EvaluationRun(off, embedder=minilm).run_all()
    assert summary["intervals"] == {} and intervals_markdown(summary) == ""


def test_markdown_without_intervals_keeps_old_summaries_readable() -> None:
    old = {"results": {"last_item": {"full": {"ndcg@10": 0.1}}}, "n_users": 3}
    assert intervals_markdown(old) == ""


def test_approximate_search_is_reported(dataset: Path, tmp_path: Path, minilm: Embedder) -> None:
    full = EvalConfig(protocol="full", ann_threshold=10, ann_nprobe=4, ann_recall_queries=25)
    cfg = _config(dataset, tmp_path, methods=["popularity", "last_item", "template"], protocols=[full])
    messages: list[str] = []
    summary = EvaluationRun(cfg, embedder=minilm, say=messages.append).run_all(tmp_path / "ann")
    assert set(summary["search"]) == {"last_item", "template"}  # the 1-d popularity ranking stays exact
    info = summary["search"]["template"]["full"]
    assert info["index"] == "ivf" and info["recall_queries"] == 25 and 0.0 <= info["recall@10"] <= 1.0
    assert any("recall@10 against exact search" in m for m in messages)
    assert "mrr" not in summary["results"]["template"]["full"] and "mrr" in summary["results"]["popularity"]["full"]
    assert "ndcg@10" in summary["intervals"]["template"]["full"]["last_item"]
    assert "| template |" in (tmp_path / "ann" / "summary.md").read_text()
