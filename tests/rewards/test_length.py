import math

import pytest

from bluerec.config import ConfigError, parse_config
from bluerec.rewards import LengthPenalty, LengthPenaltyConfig
from bluerec.rewards.length import length_deviation, non_text_fraction, repeated_ngram_fraction


def test_pure_terms():
    assert length_deviation(5, 10, 20) == 0.5
    assert length_deviation(10, 10, 20) == 0.0
    assert length_deviation(30, 10, 20) == 0.5
    assert length_deviation(0, 0, 20) == 0.0
    assert repeated_ngram_fraction(list("abab"), 2) == pytest.approx(1 - 2 / 3)
    assert repeated_ngram_fraction(["a"], 3) == 0.0
    assert non_text_fraction("ab##") == 0.5
    assert non_text_fraction("   ") == 0.0


def test_length_penalty_values_and_sign():
    cfg = LengthPenaltyConfig(min_length=2, max_length=4, max_non_text_fraction=0.0)
    pen = LengthPenalty(cfg)
    out = pen(completions=["likes red shoes", "a", "x y z w v u t s", "", "## ## ##", "a b c a b c a b c"])
    assert out[0] == 0.0
    assert out[1] == pytest.approx(-0.5)
    assert out[2] == pytest.approx(-1.0)
    assert out[3] == pytest.approx(-1.0)  # empty: full length penalty, no garbage terms
    assert out[4] == pytest.approx(-1.0)  # in range (3 words), all non-text, no word n-grams
    # 9 words: length (9-4)/4 = 1.25; trigrams: 7 total, 3 unique -> 4/7 repeated; total clipped at 2.0
    assert out[5] == pytest.approx(-min(2.0, 1.25 + 4 / 7))
    assert all(v <= 0 and math.isfinite(v) for v in out)


def test_length_penalty_tokens_unit_uses_completion_ids():
    pen = LengthPenalty(LengthPenaltyConfig(unit="tokens", min_length=3, max_length=3))
    out = pen(completions=[[{"role": "assistant", "content": "one two"}]] * 2, completion_ids=[[1, 2, 3], [1, 2, 3, 4, 5, 6]])
    assert out == [0.0, pytest.approx(-1.0)]
    with pytest.raises(ValueError, match="completion_ids"):
        pen(completions=["a"])


def test_length_config_validates():
    with pytest.raises(ConfigError, match="min_length"):
        parse_config(LengthPenaltyConfig, {"min_length": 10, "max_length": 5})
    with pytest.raises(ConfigError, match="unknown key"):
        parse_config(LengthPenaltyConfig, {"max_lenght": 5})
