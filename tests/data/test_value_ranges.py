"""Issue 14, item 3: values out of range are located errors (or counted skips), in every reader.

A review timestamp in the year 3000 used to become that user's test target; negative, zero and
seconds-instead-of-milliseconds timestamps and ratings 7 and -1 passed the same way.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from bluerec.data.config import PrepareConfig
from bluerec.data.errors import DataError
from bluerec.data.prepare import prepare_dataset
from bluerec.data.synth import SynthConfig, write_synth


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ranges")
    write_synth(SynthConfig(n_users=60, n_items=40, n_interests=4, seed=2, domain="both"), root)
    return root


def _with_bad_review(raw: Path, tmp: Path, domain: str, patch: dict) -> tuple[Path, PrepareConfig]:
    """The synthetic review file with its 4th line patched; returns the file and a prepare config."""
    if domain == "amazon":
        src, meta, fmt = raw / "amazon/All_Beauty.jsonl.gz", raw / "amazon/meta_All_Beauty.jsonl.gz", "amazon2023"
    else:
        src, meta, fmt = raw / "google/review-Vermont.json.gz", raw / "google/meta-Vermont.json.gz", "google_local"
    lines = gzip.decompress(src.read_bytes()).decode().splitlines()
    row = json.loads(lines[3])
    row.update(patch)
    lines[3] = json.dumps(row)
    bad = tmp / "reviews.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    cfg = PrepareConfig.model_validate({"source": {"format": fmt, "reviews": [str(bad)], "meta": [str(meta)]},
                                        "k_core": 0})
    return bad, cfg


BAD = [
    ("timestamp", 32503680000000, "after"),  # year 3000
    ("timestamp", -5, "before 1990-01-01"),
    ("timestamp", 0, "before 1990-01-01"),
    ("timestamp", 1600000000, "looks like Unix seconds"),
    ("rating", 7, "outside the rating scale 1-5"),
    ("rating", -1, "outside the rating scale 1-5"),
]


@pytest.mark.parametrize(("field", "value", "reason"), BAD)
def test_amazon_out_of_range_is_a_located_error(raw: Path, tmp_path: Path, field: str, value: int, reason: str) -> None:
    bad, cfg = _with_bad_review(raw, tmp_path, "amazon", {field: value})
    with pytest.raises(DataError) as err:
        prepare_dataset(cfg, tmp_path / "out")
    assert (err.value.path, err.value.line, err.value.field) == (str(bad), 4, field)
    assert reason in err.value.problem and str(value) in str(err.value)
    assert not (tmp_path / "out").exists()


def test_year_3000_is_skipped_and_counted_not_the_test_target(raw: Path, tmp_path: Path) -> None:
    bad, cfg = _with_bad_review(raw, tmp_path, "amazon", {"timestamp": 32503680000000})
    manifest = prepare_dataset(cfg.model_copy(update={"on_error": "skip"}), tmp_path / "out")
    assert manifest["counts"]["timestamp_max"] < 32503680000000
    skipped = {(s["file"], s["reason"].split(":")[0]): s["count"] for s in manifest["skipped"]}
    assert skipped == {(str(bad), "timestamp"): 1}


@pytest.mark.parametrize(("field", "value", "reason"), [("time", 1600000000, "looks like Unix seconds"),
                                                         ("rating", 9, "outside the rating scale")])
def test_google_out_of_range_is_a_located_error(raw: Path, tmp_path: Path, field: str, value: int, reason: str) -> None:
    bad, cfg = _with_bad_review(raw, tmp_path, "google", {field: value})
    with pytest.raises(DataError, match=reason) as err:
        prepare_dataset(cfg, tmp_path / "out")
    assert (err.value.line, err.value.field) == (4, field)


def test_benchmark_split_and_seqrec_ranges(tmp_path: Path) -> None:
    import duckdb

    from bluerec.data.config import SourceConfig
    from bluerec.data.errors import SkipReport
    from bluerec.data.readers import stage_source

    meta = tmp_path / "meta.jsonl"
    meta.write_text(json.dumps({"parent_asin": "P1", "title": "One"}) + "\n")
    split = tmp_path / "train.csv"
    split.write_text("user_id,parent_asin,rating,timestamp,history\nU1,P1,5.0,1600000000000,\nU2,P1,6.0,1600000000000,\n")
    source = SourceConfig(format="amazon2023_benchmark", meta=[meta], splits=[split])
    with pytest.raises(DataError, match=r"train\.csv:3: field 'rating': outside the rating scale 1-5: 6\.0"):
        stage_source(duckdb.connect(), source, "raise", SkipReport())

    titles, seqs = tmp_path / "item2title.jsonl", tmp_path / "user2item.jsonl"
    titles.write_text(json.dumps({"item_id": 10, "title": "Ten"}) + "\n")
    seqs.write_text(json.dumps({"user_id": 1, "item_ids": [10, 10], "timestamps": [1400000000, 1400000000000]}) + "\n")
    source = SourceConfig(format="seqrec", titles=[titles], sequences=[seqs])
    report = SkipReport()
    stage_source(duckdb.connect(), source, "skip", report)
    assert [r for _, r in report.counts] == ["timestamps: timestamp out of range: looks like Unix milliseconds, "
                                             "expected seconds"]
