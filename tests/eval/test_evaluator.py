from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from bluerec.config import ConfigError, parse_config
from bluerec.embed import Embedder
from bluerec.eval.evaluator import EvalConfig, EvalResult, RetrievalEvaluator, print_summary, save_user_results


def _toy(n: int = 60, m: int = 300, d: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    items = rng.standard_normal((m, d)).astype(np.float32)
    targets = rng.integers(0, m, n)
    queries = items[targets] + 0.8 * rng.standard_normal((n, d)).astype(np.float32)
    history = [rng.choice(m, size=5, replace=False) for _ in range(n)]
    return items, targets, queries, history


def _texts(seed: int = 0):
    """Item texts of random words and queries that share half their words with their target."""
    rng = np.random.default_rng(seed)
    vocab = (
        "kitchen knife skillet pan stew soup garden hose shovel tulip novel mystery thriller poetry guitar "
        "piano drum violin laptop charger cable keyboard mouse shampoo lotion perfume lipstick tent hiking "
        "boots jacket scarf wool cotton silk puzzle board game lego doll coffee tea mug kettle yoga mat "
        "dumbbell bicycle helmet camera lens tripod"
    ).split()
    items = [" ".join(rng.choice(vocab, size=5, replace=False)) for _ in range(120)]
    targets = rng.choice(len(items), size=40, replace=False)
    queries = []
    for t in targets:
        words = items[t].split()
        queries.append(" ".join([*rng.choice(words, size=2, replace=False), *rng.choice(vocab, size=3)]))
    return items, queries, targets


def test_matches_sentence_transformers_ir_evaluator(minilm: Embedder) -> None:
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    items, queries, targets = _texts()
    ir = InformationRetrievalEvaluator(
        queries={f"q{i}": q for i, q in enumerate(queries)},
        corpus={f"d{j}": text for j, text in enumerate(items)},
        relevant_docs={f"q{i}": {f"d{t}"} for i, t in enumerate(targets)},
        mrr_at_k=[10],
        ndcg_at_k=[10],
        accuracy_at_k=[1, 3, 10],
        precision_recall_at_k=[1, 3, 10],
        write_csv=False,
    )
    expected = ir(minilm.model)

    ours = RetrievalEvaluator(
        minilm.encode_documents(items),
        targets,
        config=EvalConfig(ks=[1, 3, 10], exclude_history=False),
        query_texts=queries,
    )
    got = ours(minilm.model)  # encodes the queries with the SentenceTransformer itself
    ranks = ours.last_result.ranks
    assert 0 < (ranks >= 10).sum() < len(ranks), "the case must have hits and misses at 10"
    assert got["ndcg@10"] == pytest.approx(expected["cosine_ndcg@10"], abs=1e-6)
    assert got["mrr@10"] == pytest.approx(expected["cosine_mrr@10"], abs=1e-6)
    for k in (1, 3, 10):
        assert got[f"recall@{k}"] == pytest.approx(expected[f"cosine_recall@{k}"], abs=1e-6)
        assert got[f"recall@{k}"] == pytest.approx(expected[f"cosine_accuracy@{k}"], abs=1e-6)
    # The same numbers from precomputed vectors and from a bluerec Embedder.
    assert ours(minilm.encode_queries(queries))["ndcg@10"] == pytest.approx(got["ndcg@10"], abs=1e-6)
    assert ours(minilm)["mrr"] == pytest.approx(got["mrr"], abs=1e-6)


def test_metrics_rows_and_exclusion() -> None:
    items, targets, queries, history = _toy()
    history[0] = np.append(history[0], targets[0])  # target inside the history stays a candidate
    ev = RetrievalEvaluator(items, targets, history, EvalConfig(), user_ids=[f"u{i}" for i in range(60)])
    metrics = ev(queries)
    assert list(metrics) == ["ndcg@10", "ndcg@20", "recall@10", "recall@20", "mrr@10", "mrr@20", "mrr"]
    assert ev.primary_metric == "ndcg@10"
    res = ev.last_result
    assert isinstance(res, EvalResult) and len(res) == 60
    rows = res.rows()
    assert rows[0]["user_id"] == "u0" and rows[0]["n_candidates"] == 300 - 5
    for row, hist in zip(rows, history):
        assert len(row["top_items"]) == 10 and row["top_scores"] == sorted(row["top_scores"], reverse=True)
        assert not set(row["top_items"]) & (set(hist.tolist()) - {row["target"]})
        assert (row["rank"] < 10) == (row["target"] in row["top_items"])
    np.testing.assert_allclose(res.per_user("ndcg@10").mean(), metrics["ndcg@10"])
    assert json.dumps(rows)  # JSON-ready
    no_hist = RetrievalEvaluator(items, targets, history, EvalConfig(exclude_history=False))(queries)
    assert no_hist["mrr"] < metrics["mrr"]


def test_item_ids_and_name_prefix() -> None:
    items, targets, queries, history = _toy()
    ids = [f"item{j}" for j in range(300)]
    ev = RetrievalEvaluator(
        items,
        [ids[t] for t in targets],
        [[ids[h] for h in hist] for hist in history],
        item_ids=ids,
        name="valid",
    )
    by_index = RetrievalEvaluator(items, targets, history)(queries)
    metrics = ev(queries)
    assert metrics["valid_ndcg@10"] == pytest.approx(by_index["ndcg@10"])
    assert ev.primary_metric == "valid_ndcg@10"
    row = ev.last_result.rows()[0]
    assert row["target"] == ids[targets[0]] and all(i.startswith("item") for i in row["top_items"])
    with pytest.raises(ValueError, match="unknown item id 'nope'"):
        RetrievalEvaluator(items, ["nope"], item_ids=ids)


def test_sampled_protocol_reuses_its_negatives() -> None:
    items, targets, queries, history = _toy()
    cfg = EvalConfig(protocol="sampled", num_negatives=49, negative_sampling="popularity", seed=1)
    pop = np.arange(300, dtype=float)
    ev = RetrievalEvaluator(items, targets, history, cfg, item_popularity=pop)
    first = ev(queries)
    negs = ev.negatives.copy()
    assert negs.shape == (60, 49) and not (negs == 0).any()  # item 0 has weight 0
    assert ev(queries) == first
    np.testing.assert_array_equal(ev.negatives, negs)
    assert (ev.last_result.n_candidates == 50).all()
    full = RetrievalEvaluator(items, targets, history)(queries)
    assert first["recall@10"] >= full["recall@10"]
    with pytest.raises(ValueError, match="item_popularity"):
        RetrievalEvaluator(items, targets, history, cfg)


def test_bad_queries(caplog: pytest.LogCaptureFixture) -> None:
    items, targets, queries, history = _toy()
    ev = RetrievalEvaluator(items, targets, history)
    with pytest.raises(ValueError, match="must be"):
        ev(queries[:10])
    bad = queries.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ev(bad)
    zero = queries.copy()
    zero[:2] = 0
    with caplog.at_level(logging.WARNING):
        average = ev(zero)  # the default policy: ties averaged
    assert "2 of 60 queries are all-zero" in caplog.text
    assert ev.last_result.rows()[0]["rank"] == 147.0  # a zero query ties everything: the middle of 295
    optimistic_ev = RetrievalEvaluator(items, targets, history, EvalConfig(ties="optimistic"))
    optimistic = optimistic_ev(zero)
    assert optimistic_ev.last_result.ranks[:2].tolist() == [0, 0]  # "first" among its ties
    pessimistic = RetrievalEvaluator(items, targets, history, EvalConfig(ties="pessimistic"))
    pessimistic(zero)
    assert pessimistic.last_result.ranks[:2].tolist() == [294, 294]  # 300 items - 5 history - the target
    assert average["mrr"] < optimistic["mrr"]
    # Without ties the policy changes nothing.
    assert RetrievalEvaluator(items, targets, history, EvalConfig(ties="pessimistic"))(queries) == ev(queries)


def test_config_is_strict() -> None:
    with pytest.raises(ConfigError, match=r"allowed values: \['full', 'sampled'\]"):
        parse_config(EvalConfig, {"protocol": "partial"})
    with pytest.raises(ConfigError, match="unknown key 'k'"):
        parse_config(EvalConfig, {"k": [10]})
    with pytest.raises(ConfigError, match="ks"):
        parse_config(EvalConfig, {"ks": []})
    assert parse_config(EvalConfig, {"ks": [10, 5, 10]}).ks == [10, 5]


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_save_user_results_roundtrip(tmp_path: Path, suffix: str) -> None:
    items, targets, queries, history = _toy(n=8)
    ev = RetrievalEvaluator(items, targets, history, item_ids=[f"i{j}" for j in range(300)])
    ev(queries)
    path = save_user_results(ev.last_result, tmp_path / f"users{suffix}")
    if suffix == ".parquet":
        rows = pq.read_table(path).to_pylist()
    else:
        rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows == ev.last_result.rows()
    assert [p.name for p in tmp_path.iterdir()] == [f"users{suffix}"]  # no temp files left
    with pytest.raises(ValueError, match="allowed"):
        save_user_results(ev.last_result, tmp_path / "users.csv")


def test_print_summary_single_and_compare() -> None:
    console = Console(record=True, width=100)
    print_summary({"ndcg@10": 0.12345, "mrr": 0.2}, console=console)
    print_summary({"base": {"ndcg@10": 0.1}, "blue": {"ndcg@10": 0.2, "mrr": float("nan")}}, console=console)
    text = console.export_text()
    assert "0.1235" in text and "blue" in text and "—" in text


def test_popularity_ties_are_averaged_by_default() -> None:
    """Popularity scores every item by its count: a target tied with hundreds of equally popular items must not
    score as if it were ranked first among them (the old optimistic default did: NDCG@10 = 1 here)."""
    rng = np.random.default_rng(0)
    counts = np.full(1000, 50.0, dtype=np.float32)  # 900 items share the top count ...
    counts[900:] = rng.integers(1, 50, size=100)  # ... 100 are less popular
    items = np.log1p(counts)[:, None]
    targets = rng.integers(0, 900, size=200)  # every target among the 900 tied items
    queries = np.ones((200, 1), dtype=np.float32)
    assert EvalConfig().ties == "average"
    default = RetrievalEvaluator(items, targets)
    metrics = default(queries)
    np.testing.assert_allclose(default.last_result.ranks, 899 / 2)  # the middle of its 899 ties
    assert metrics["ndcg@10"] == 0.0 and metrics["mrr"] == pytest.approx(1 / (899 / 2 + 1))
    optimistic = RetrievalEvaluator(items, targets, config=EvalConfig(ties="optimistic"))(queries)
    assert optimistic["ndcg@10"] == 1.0  # what the optimistic policy reports: every target "first"


def test_primary_metric_comes_from_the_config() -> None:
    items, targets, queries, history = _toy()
    assert RetrievalEvaluator(items, targets, history).primary_metric == "ndcg@10"
    assert RetrievalEvaluator(items, targets, history, EvalConfig(ks=[5, 20])).primary_metric == "ndcg@5"
    ev = RetrievalEvaluator(items, targets, history, EvalConfig(primary_metric="recall@20"))
    metrics = ev(queries)
    assert ev.primary_metric == "recall@20" and ev.greater_is_better and ev.primary_metric in metrics
    assert EvalConfig(primary_metric="mrr").primary == "mrr"
    with pytest.raises(ConfigError, match="primary_metric"):
        parse_config(EvalConfig, {"primary_metric": "ndcg@7"})  # not one of the computed cut-offs
