"""bench/all_users.py: the rounds are nested seeded samples, so every completed round is ``--max-users k``'s sample."""

from __future__ import annotations

import gzip
import json

import pytest


@pytest.fixture(scope="module")
def bench():
    from support.benches import load_bench

    return load_bench("all_users")


def test_rounds_end_at_the_total(bench):
    assert bench.rounds(7000, 2000) == [2000, 4000, 6000, 7000]
    assert bench.rounds(6000, 2000) == [2000, 4000, 6000]
    assert bench.rounds(1500, 2000) == [1500]  # fewer users than one round: everyone at once
    with pytest.raises(ValueError):
        bench.rounds(100, 0)


def test_round_users_refuses_samples_that_are_not_nested(bench):
    assert bench.round_users([["a", "b"], ["a", "c", "b"], ["d", "a", "b", "c"]]) == [["a", "b"], ["c"], ["d"]]
    with pytest.raises(ValueError, match="not nested"):
        bench.round_users([["a", "b"], ["a", "c"]])


def test_seeded_samples_of_the_beauty_test_users_are_nested(bench):
    """The rounds rely on numpy's seeded choice without replacement (``select_examples``) being prefix-stable at
    beauty's size; at small sizes it is not, and ``round_users`` then refuses the samples."""
    import numpy as np

    def sample(n, k):  # as bluerec.eval.run.select_examples draws its users
        return [str(i) for i in np.sort(np.random.default_rng(0).choice(n, size=k, replace=False))]

    n = 22332  # amazon2014-beauty's test users
    new = bench.round_users([sample(n, k) if k < n else [str(i) for i in range(n)] for k in bench.rounds(n, 2000)])
    assert sum(map(len, new)) == n
    with pytest.raises(ValueError, match="not nested"):
        bench.round_users([sample(80, 10), sample(80, 17)])


def test_profiles_gz_is_sorted_and_byte_stable(bench, tmp_path):
    rows = [{"user_id": "b", "profile": "Recently: Gel."}, {"user_id": "a", "profile": "Recently: Soap — é."}]
    bench.write_profiles_gz(tmp_path / "x.jsonl.gz", rows)
    bench.write_profiles_gz(tmp_path / "y.jsonl.gz", list(reversed(rows)))
    assert (tmp_path / "x.jsonl.gz").read_bytes() == (tmp_path / "y.jsonl.gz").read_bytes()
    with gzip.open(tmp_path / "x.jsonl.gz", "rt", encoding="utf-8") as f:
        assert [json.loads(line)["user_id"] for line in f] == ["a", "b"]


def test_round_row_reads_the_gaps_to_the_last_item(bench):
    def cell(diff):
        return {"diff": diff, "lo": diff - 0.01, "hi": diff + 0.01, "p": 0.5}

    summary = {"results": {m: {"full": {"ndcg@10": v, "recall@10": 0.1}}
                           for m, v in (("blue", 0.04), ("last_item", 0.03), ("taught_text", 0.05))},
               "intervals": {"blue": {"full": {"last_item": {"ndcg@10": cell(0.01)}}},
                             "taught_text": {"full": {"last_item": {"ndcg@10": cell(0.02)}}}}}
    line = bench.round_row(4000, summary, "blue")
    assert line["ndcg@10"] == {"blue": 0.04, "last_item": 0.03, "taught_text": 0.05}
    assert line["minus_last_item"]["taught_text"] == {"diff": 0.02, "lo": 0.01, "hi": 0.03}
    assert bench.rounds_markdown([line], "blue")[-1].startswith("| 4,000 | 0.0400 | 0.0300 | 0.0500 | +0.0100 [")
