"""Transition statistics: counting, scores, ranking, caching, and above all no leakage of the served split's targets."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from bluerec.data.dataset import PreparedDataset
from bluerec.data.transitions import TransitionConfig, TransitionTable, build_transitions, load_transitions
from support.prepared import write_interactions_and_splits


def _dataset(root: Path, sequences: dict[str, list[str]]) -> PreparedDataset:
    rows = {"user_id": [], "item_id": [], "timestamp": [], "rating": [], "review_title": [], "review_text": [],
            "seq": [], "split": []}
    for user, items in sequences.items():
        n = len(items)
        for seq, item in enumerate(items):
            split = "test" if seq == n - 1 else "valid" if seq == n - 2 else "train"
            for key, value in (("user_id", user), ("item_id", item), ("timestamp", 1_600_000_000_000 + seq),
                               ("rating", 5.0), ("review_title", None), ("review_text", None), ("seq", seq),
                               ("split", split)):
                rows[key].append(value)
    table = pa.table(rows, schema=pa.schema([
        ("user_id", pa.string()), ("item_id", pa.string()), ("timestamp", pa.int64()), ("rating", pa.float64()),
        ("review_title", pa.string()), ("review_text", pa.string()), ("seq", pa.int64()), ("split", pa.string())]))
    root.mkdir(parents=True, exist_ok=True)
    return PreparedDataset(write_interactions_and_splits(root, table, {}))


def _pairs(table: TransitionTable) -> set[tuple[str, str]]:
    return {(src, s.item_id) for src, succ in table.successors.items() for s in succ}


def test_a_transition_whose_only_evidence_is_a_target_is_never_counted(tmp_path):
    # u_leak: its valid target C follows Q, and its test target Z follows C. No other user has Q→C or C→Z.
    ds = _dataset(tmp_path / "ds", {
        "u_leak": ["P", "Q", "C", "Z"],
        "u1": ["A", "B", "C", "D", "E"],
    })
    for split in ("test", "valid"):
        pairs = _pairs(load_transitions(ds, split, TransitionConfig(window=3), cache_dir=None))
        assert ("C", "Z") not in pairs and ("Q", "Z") not in pairs and ("P", "Z") not in pairs  # test target
        assert ("Q", "C") not in pairs and ("P", "C") not in pairs  # validation target
        assert ("C", "D") not in pairs and ("D", "E") not in pairs  # u1's valid/test targets
        assert pairs == {("P", "Q"), ("A", "B"), ("B", "C"), ("A", "C")}
    # Serving train rows (the newest train item of each user is the GRPO target) leaves that one out too.
    assert _pairs(load_transitions(ds, "train", TransitionConfig(window=3), cache_dir=None)) == {("A", "B")}


def test_scores_are_decayed_conditional_shares_and_ranking_is_stable(tmp_path):
    ds = _dataset(tmp_path / "ds", {
        "u1": ["A", "B", "C", "x1", "y1"],  # A→B (gap 1), A→C (gap 2), B→C
        "u2": ["A", "C", "x2", "y2"],       # A→C (gap 1)
        "u3": ["A", "D", "x3", "y3"],       # A→D (gap 1)
    })
    table = load_transitions(ds, "test", TransitionConfig(window=2, decay=0.5), cache_dir=None)
    succ = {s.item_id: s for s in table.of("A")}
    total = 1 + 1.5 + 1  # B: 1, C: 0.5 + 1, D: 1
    assert succ["C"].count == 2 and succ["C"].score == pytest.approx(1.5 / total)
    assert succ["B"].score == pytest.approx(1 / total) and succ["D"].score == pytest.approx(1 / total)
    assert [s.item_id for s in table.of("A")] == ["C", "B", "D"]  # score, then count, then id
    assert sum(s.score for s in table.of("A")) == pytest.approx(1.0)
    top = load_transitions(ds, "test", TransitionConfig(window=2, top_n=1), cache_dir=None)
    assert [s.item_id for s in top.of("A")] == ["C"]


def test_top_successors_pool_dedupe_and_exclude():
    table = TransitionTable({
        "new": [_s("X", 0.5), _s("H", 0.4), _s("Y", 0.1)],
        "old": [_s("Y", 0.6), _s("X", 0.2), _s("Z", 0.2)],
    })
    assert table.top_successors(["new", "old"], m=3, exclude={"H"}) == [("Y", 0.6), ("X", 0.5), ("Z", 0.2)]
    assert table.top_successors(["unknown"], m=3) == []


def _s(item: str, score: float):
    from bluerec.data.transitions import Successor
    return Successor(item, 1, score)


def test_cached_once_and_keyed_by_config(tmp_path, monkeypatch):
    ds = _dataset(tmp_path / "ds", {"u1": ["A", "B", "C", "D", "E"], "u2": ["B", "C", "A", "F", "G"]})
    cache = tmp_path / "cache"
    first = load_transitions(ds, "test", TransitionConfig(), cache_dir=cache)
    files = sorted((cache / "transitions").glob("*.parquet"))
    assert len(files) == 1

    import bluerec.data.transitions as mod
    monkeypatch.setattr(mod, "build_transitions", lambda *a, **k: pytest.fail("rebuilt despite the cache"))
    assert load_transitions(ds, "test", TransitionConfig(), cache_dir=cache).successors == first.successors
    monkeypatch.undo()
    load_transitions(ds, "test", TransitionConfig(window=1), cache_dir=cache)
    load_transitions(ds, "train", TransitionConfig(), cache_dir=cache)
    assert len(list((cache / "transitions").glob("*.parquet"))) == 3


def test_unknown_split_is_an_error(tmp_path):
    ds = _dataset(tmp_path / "ds", {"u1": ["A", "B", "C"]})
    with pytest.raises(ValueError, match="unknown split"):
        build_transitions(ds.root / "interactions.parquet", "dev", TransitionConfig())
