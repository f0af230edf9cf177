"""``bluerec data synth``: exact raw schemas, determinism, referential integrity and the latent drift structure."""

from __future__ import annotations

import gzip
import json
import re
import struct
import zlib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from bluerec.config import ConfigError, parse_config
from bluerec.data.synth import (
    CHUNK_ROWS,
    SynthConfig,
    amazon_cluster_catalogue,
    expected_interactions_per_user,
    interest_weights,
    load_truth,
    write_synth,
)

SMALL = {"domain": "both", "n_users": 1500, "n_items": 800, "n_interests": 50, "seed": 7}

AMAZON_REVIEW_KEYS = ["rating", "title", "text", "images", "asin", "parent_asin", "user_id", "timestamp",
                      "helpful_vote", "verified_purchase"]
AMAZON_META_KEYS = ["main_category", "title", "average_rating", "rating_number", "features", "description", "price",
                    "images", "videos", "store", "categories", "details", "parent_asin", "bought_together"]
GOOGLE_REVIEW_KEYS = ["user_id", "name", "time", "rating", "text", "pics", "resp", "gmap_id"]
GOOGLE_META_KEYS = ["name", "address", "gmap_id", "description", "latitude", "longitude", "category", "avg_rating",
                    "num_of_reviews", "price", "hours", "MISC", "state", "relative_results", "url"]
MS_2010, MS_2024 = 1_262_304_000_000, 1_704_067_200_000


def _rows(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("synth")
    calls: list[tuple[str, int, int]] = []
    result = write_synth(parse_config(SynthConfig, SMALL), out, progress=lambda s, d, t: calls.append((s, d, t)))
    return {
        "out": out,
        "result": result,
        "calls": calls,
        "amazon_reviews": _rows(result.files["amazon/reviews"]),
        "amazon_meta": _rows(result.files["amazon/meta"]),
        "google_reviews": _rows(result.files["google/reviews"]),
        "google_meta": _rows(result.files["google/meta"]),
    }


def _sequences(reviews: list[dict[str, Any]], item_key: str, time_key: str, item_cluster: dict[str, int]):
    seqs: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for r in reviews:
        seqs[r["user_id"]].append((r[time_key], item_cluster[r[item_key]]))
    return {u: [c for _, c in sorted(s)] for u, s in seqs.items()}


# ------------------------------------------------------------------------------------------------ layout and schema


def test_files_and_counts(small: dict[str, Any]) -> None:
    out, result = small["out"], small["result"]
    assert result.files["amazon/reviews"] == out / "amazon" / "All_Beauty.jsonl.gz"
    assert result.files["amazon/meta"] == out / "amazon" / "meta_All_Beauty.jsonl.gz"
    assert result.files["google/reviews"] == out / "google" / "review-Vermont.json.gz"
    assert result.files["google/meta"] == out / "google" / "meta-Vermont.json.gz"
    assert result.files["truth"] == out / "truth.json"
    assert result.counts["amazon"] == {"users": 1500, "items": 800, "reviews": len(small["amazon_reviews"])}
    assert result.counts["google"]["reviews"] == len(small["google_reviews"])
    assert len(small["amazon_meta"]) == len(small["google_meta"]) == 800
    assert not [p for p in out.rglob("*") if p.name.startswith(".")], "temporary files left behind"
    # the realised mean is close to the documented expectation
    mean = len(small["amazon_reviews"]) / 1500
    assert abs(mean - expected_interactions_per_user(parse_config(SynthConfig, SMALL))) < 0.6
    finals = {s: d for s, d, t in small["calls"] if d == t}
    assert finals["amazon reviews"] == len(small["amazon_reviews"])
    assert finals["google reviews"] == len(small["google_reviews"])


def test_amazon_review_schema(small: dict[str, Any]) -> None:
    for r in small["amazon_reviews"]:
        assert list(r) == AMAZON_REVIEW_KEYS
        assert isinstance(r["rating"], float) and r["rating"] in (1.0, 2.0, 3.0, 4.0, 5.0)
        assert isinstance(r["title"], str) and r["title"]
        assert isinstance(r["text"], str) and len(r["text"]) > 20
        assert r["images"] == []
        assert re.fullmatch(r"B0[0-9A-Z]{8}", r["asin"]) and re.fullmatch(r"B0[0-9A-Z]{8}", r["parent_asin"])
        assert re.fullmatch(r"A[EFGH][A-Z2-7]{26}", r["user_id"])
        assert type(r["timestamp"]) is int and MS_2010 < r["timestamp"] < MS_2024
        assert type(r["helpful_vote"]) is int and r["helpful_vote"] >= 0
        assert type(r["verified_purchase"]) is bool
    assert sum(r["asin"] != r["parent_asin"] for r in small["amazon_reviews"]) > 0  # some variants


def test_amazon_meta_schema(small: dict[str, Any]) -> None:
    for m in small["amazon_meta"]:
        assert list(m) == AMAZON_META_KEYS
        assert m["main_category"] == "All Beauty"
        assert isinstance(m["title"], str) and m["title"]
        assert isinstance(m["average_rating"], float) and 1.0 <= m["average_rating"] <= 5.0
        assert type(m["rating_number"]) is int and m["rating_number"] >= 1
        for key in ("features", "description", "categories"):
            assert isinstance(m[key], list) and all(isinstance(x, str) for x in m[key])
        assert m["price"] is None or (isinstance(m["price"], float) and m["price"] > 0)
        assert m["images"] == [] and m["videos"] == [] and m["bought_together"] is None
        assert isinstance(m["store"], str) and m["store"]
        assert isinstance(m["details"], dict) and all(isinstance(v, str) for v in m["details"].values())
        assert m["details"]["Brand"] == m["store"]
        assert re.fullmatch(r"B0[0-9A-Z]{8}", m["parent_asin"])
    assert len({m["parent_asin"] for m in small["amazon_meta"]}) == 800
    assert any(m["price"] is None for m in small["amazon_meta"]) and any(m["categories"] for m in small["amazon_meta"])


def test_google_review_schema(small: dict[str, Any]) -> None:
    for r in small["google_reviews"]:
        assert list(r) == GOOGLE_REVIEW_KEYS
        assert re.fullmatch(r"1\d{20}", r["user_id"])
        assert isinstance(r["name"], str) and r["name"]
        assert type(r["time"]) is int and MS_2010 < r["time"] < MS_2024
        assert type(r["rating"]) is int and 1 <= r["rating"] <= 5
        assert r["text"] is None or (isinstance(r["text"], str) and r["text"])
        assert r["pics"] is None and r["resp"] is None
        assert re.fullmatch(r"0x[0-9a-f]{16}:0x[0-9a-f]{16}", r["gmap_id"])
    share_null = sum(r["text"] is None for r in small["google_reviews"]) / len(small["google_reviews"])
    assert 0.2 < share_null < 0.6


def test_google_meta_schema(small: dict[str, Any]) -> None:
    for m in small["google_meta"]:
        assert list(m) == GOOGLE_META_KEYS
        assert m["address"].startswith(m["name"] + ", ") and m["address"].split()[-2] == "VT"
        assert m["description"] is None or isinstance(m["description"], str)
        assert isinstance(m["latitude"], float) and isinstance(m["longitude"], float)
        assert 40 < m["latitude"] < 48 and -78 < m["longitude"] < -68
        assert isinstance(m["category"], list) and m["category"] and all(isinstance(c, str) for c in m["category"])
        assert isinstance(m["avg_rating"], float) and type(m["num_of_reviews"]) is int
        assert m["price"] in (None, "$", "$$", "$$$")
        assert m["hours"] is None or (len(m["hours"]) == 7 and all(len(d) == 2 for d in m["hours"]))
        assert (m["hours"] is None) == (m["state"] is None)
        assert m["MISC"] is None or isinstance(m["MISC"], dict)
        assert m["relative_results"] is None or (
            m["gmap_id"] not in m["relative_results"] and all(isinstance(x, str) for x in m["relative_results"])
        )
        assert m["url"].startswith("https://www.google.com/maps/place/") and m["gmap_id"] in m["url"]


def test_gzip_is_one_deterministic_member(small: dict[str, Any]) -> None:
    raw = small["result"].files["amazon/reviews"].read_bytes()
    assert raw[:3] == b"\x1f\x8b\x08" and struct.unpack("<I", raw[4:8])[0] == 0  # mtime 0
    assert b"All_Beauty.jsonl\0" in raw[:40]  # final name in the header, never the temporary one
    d = zlib.decompressobj(31)
    data = d.decompress(raw)
    assert d.eof and d.unused_data == b""
    assert data.count(b"\n") == len(small["amazon_reviews"])


# ------------------------------------------------------------------------------------------------ integrity


def test_reviews_reference_meta_and_truth(small: dict[str, Any]) -> None:
    out = small["out"]
    for dom, key, reviews, meta in (
        ("amazon", "parent_asin", small["amazon_reviews"], small["amazon_meta"]),
        ("google", "gmap_id", small["google_reviews"], small["google_meta"]),
    ):
        truth = load_truth(out / "truth.json", dom)
        meta_ids = {m[key] for m in meta}
        assert {r[key] for r in reviews} <= meta_ids
        assert set(truth["item_cluster"]) == meta_ids
        per_user = Counter(r["user_id"] for r in reviews)
        assert per_user == {u: t["n_interactions"] for u, t in truth["users"].items()}
        assert min(per_user.values()) >= 5
        times: dict[str, set[int]] = defaultdict(set)
        tkey = "timestamp" if dom == "amazon" else "time"
        for r in reviews:
            times[r["user_id"]].add(r[tkey])
        assert all(len(times[u]) == n for u, n in per_user.items()), "timestamps must be distinct per user"
        for t in truth["users"].values():
            k = len(t["interests"])
            assert 2 <= k <= 4 and len(set(t["interests"])) == k and t["n_old"] == k // 2
            assert t["current_top"] in t["interests"][t["n_old"]:]
            assert abs(sum(t["weights"][: t["n_old"]]) - 1) < 1e-3 and abs(sum(t["weights"][t["n_old"]:]) - 1) < 1e-3


def test_review_text_mentions_item_type_and_attribute(small: dict[str, Any]) -> None:
    truth = load_truth(small["out"] / "truth.json", "amazon")
    clusters = truth["clusters"]
    for r in small["amazon_reviews"][:3000]:
        c = clusters[truth["item_cluster"][r["parent_asin"]]]
        assert c["type"].lower() in r["text"] and c["attribute"].lower() in r["text"]
    titles = {m["parent_asin"]: m["title"] for m in small["amazon_meta"]}
    for asin, c in list(truth["item_cluster"].items())[:300]:
        assert clusters[c]["type"] in titles[asin] and clusters[c]["attribute"] in titles[asin]


def test_sentiment_matches_rating(small: dict[str, Any]) -> None:
    by_rating: dict[float, list[str]] = defaultdict(list)
    for r in small["amazon_reviews"]:
        by_rating[r["rating"]].append(r["text"])
    assert any("regret" in t or "waste" in t.lower() or "Terrible" in t for t in by_rating[1.0])
    assert not any("love" in t.lower() for t in by_rating[1.0] + by_rating[2.0])
    assert not any("regret" in t or "Save your money" in t for t in by_rating[4.0] + by_rating[5.0])
    counts = Counter(r["rating"] for r in small["amazon_reviews"])
    assert counts[5.0] > counts[4.0] > counts[3.0] > counts[1.0]  # realistic skew


# ------------------------------------------------------------------------------------------------ determinism


def test_same_seed_same_bytes_other_seed_differs(small: dict[str, Any], tmp_path: Path) -> None:
    again = write_synth(parse_config(SynthConfig, SMALL), tmp_path / "again")
    other = write_synth(parse_config(SynthConfig, SMALL | {"seed": 8}), tmp_path / "other")
    for key, path in small["result"].files.items():
        assert again.files[key].read_bytes() == path.read_bytes(), key
        assert other.files[key].read_bytes() != path.read_bytes(), key


def test_multi_chunk_output_is_valid(tmp_path: Path) -> None:
    cfg = parse_config(SynthConfig, {"n_users": CHUNK_ROWS // 8, "n_items": 3000, "n_interests": 40})
    result = write_synth(cfg, tmp_path)
    assert result.counts["amazon"]["reviews"] > CHUNK_ROWS  # at least two chunks, several gzip blocks
    with gzip.open(result.files["amazon/reviews"], "rb") as fh:  # gzip checks the CRC and the length
        data = fh.read()
    lines = data.splitlines()
    assert len(lines) == result.counts["amazon"]["reviews"]
    for line in lines[:: len(lines) // 500]:
        assert list(json.loads(line)) == AMAZON_REVIEW_KEYS


@pytest.mark.parametrize("level", [0, 9])
def test_compress_levels_roundtrip(tmp_path: Path, level: int) -> None:
    base = {"n_users": 200, "n_items": 100, "n_interests": 20}
    plain = write_synth(parse_config(SynthConfig, base), tmp_path / "l1")
    other = write_synth(parse_config(SynthConfig, base | {"compress_level": level}), tmp_path / f"l{level}")
    for key in ("amazon/reviews", "amazon/meta"):
        with gzip.open(plain.files[key], "rb") as a, gzip.open(other.files[key], "rb") as b:
            assert a.read() == b.read()


# ------------------------------------------------------------------------------------------------ latent structure


@pytest.mark.parametrize("dom", ["amazon", "google"])
def test_interests_drift(small: dict[str, Any], dom: str) -> None:
    truth = load_truth(small["out"] / "truth.json", dom)
    item_key, time_key = ("parent_asin", "timestamp") if dom == "amazon" else ("gmap_id", "time")
    seqs = _sequences(small[f"{dom}_reviews"], item_key, time_key, truth["item_cluster"])
    drifted = 0
    for seq in seqs.values():
        h = len(seq) // 2
        a, b = Counter(seq[:h]), Counter(seq[h:])
        tv = 0.5 * sum(abs(a[c] / h - b[c] / (len(seq) - h)) for c in set(a) | set(b))
        drifted += tv > 0.3
    assert drifted / len(seqs) > 0.8


@pytest.mark.parametrize("dom", ["amazon", "google"])
def test_next_item_follows_current_interest_not_history_majority(small: dict[str, Any], dom: str) -> None:
    truth = load_truth(small["out"] / "truth.json", dom)
    item_key, time_key = ("parent_asin", "timestamp") if dom == "amazon" else ("gmap_id", "time")
    seqs = _sequences(small[f"{dom}_reviews"], item_key, time_key, truth["item_cluster"])
    current = majority = old_majority = 0
    for user, seq in seqs.items():
        history, nxt = seq[:-1], seq[-1]
        top = Counter(history).most_common(1)[0][0]
        t = truth["users"][user]
        current += nxt == t["current_top"]
        majority += nxt == top
        old_majority += top in t["interests"][: t["n_old"]]
    n = len(seqs)
    assert current / n > 0.5
    assert majority / n < 0.2
    assert current > 3 * majority
    assert old_majority / n > 0.6  # the full history is dominated by interests that are no longer current


def test_interest_weights_switch_from_old_to_current(small: dict[str, Any]) -> None:
    truth = load_truth(small["out"] / "truth.json", "amazon")
    user = next(iter(truth["users"].values()))
    early, late = interest_weights(user, 0.0, truth["drift"]), interest_weights(user, 1.0, truth["drift"])
    old = user["interests"][: user["n_old"]]
    assert sum(early[c] for c in old) > 0.85 and sum(late[c] for c in old) < 0.15
    assert max(late, key=late.get) == user["current_top"]


def test_no_drift_means_no_switch(tmp_path: Path) -> None:
    cfg = parse_config(SynthConfig, {"n_users": 600, "n_items": 300, "n_interests": 30, "drift": 0.0, "noise": 0.0})
    result = write_synth(cfg, tmp_path)
    truth = load_truth(result.files["truth"])
    seqs = _sequences(_rows(result.files["amazon/reviews"]), "parent_asin", "timestamp", truth["item_cluster"])
    old_first = old_last = total_first = total_last = 0
    for user, seq in seqs.items():
        old = set(truth["users"][user]["interests"][: truth["users"][user]["n_old"]])
        h = len(seq) // 2
        old_first += sum(c in old for c in seq[:h])
        old_last += sum(c in old for c in seq[h:])
        total_first, total_last = total_first + h, total_last + len(seq) - h
    assert abs(old_first / total_first - old_last / total_last) < 0.05


@pytest.mark.parametrize("k", [2, 4])
def test_extreme_interest_counts(tmp_path: Path, k: int) -> None:
    cfg = parse_config(
        SynthConfig,
        {"n_users": 500, "n_items": 40, "n_interests": 4, "min_user_interests": k, "max_user_interests": k},
    )
    truth = load_truth(write_synth(cfg, tmp_path).files["truth"])
    for t in truth["users"].values():
        assert len(t["interests"]) == len(set(t["interests"])) == k and t["n_old"] == k // 2


# ------------------------------------------------------------------------------------------------ config


def test_config_errors_are_readable() -> None:
    with pytest.raises(ConfigError, match="n_interests"):
        parse_config(SynthConfig, {"n_interests": len(amazon_cluster_catalogue()) + 1, "n_items": 10_000})
    with pytest.raises(ConfigError, match="max_interactions"):
        parse_config(SynthConfig, {"min_interactions": 8, "max_interactions": 6})
    with pytest.raises(ConfigError, match="allowed values"):
        parse_config(SynthConfig, {"domain": "ebay"})
    with pytest.raises(ConfigError, match="unknown key"):
        parse_config(SynthConfig, {"n_user": 5})
    with pytest.raises(ConfigError, match="category"):
        parse_config(SynthConfig, {"category": "../evil"})


def test_source_config_for_prepare(small: dict[str, Any]) -> None:
    src = small["result"].source("amazon")
    assert src.format == "amazon2023" and src.reviews == [small["result"].files["amazon/reviews"]]
    assert small["result"].source("google").format == "google_local"
    with pytest.raises(ValueError, match="name one"):
        small["result"].source()


@pytest.mark.parametrize("dom", ["amazon", "google"])
def test_prepare_end_to_end(small: dict[str, Any], tmp_path: Path, dom: str) -> None:
    prepare = pytest.importorskip("bluerec.data.prepare")
    from bluerec.data.config import PrepareConfig
    from bluerec.data.dataset import PreparedDataset

    manifest = prepare.prepare_dataset(PrepareConfig(source=small["result"].source(dom)), tmp_path / "ds")
    ds = PreparedDataset(tmp_path / "ds")
    test = ds.split("test")
    assert len(test) > 0.9 * 1500, manifest.get("counts")
    truth = load_truth(small["out"] / "truth.json", dom)
    hits = sum(truth["item_cluster"][ex.item_id] == truth["users"][ex.user_id]["current_top"] for ex in test)
    assert hits / len(test) > 0.5
