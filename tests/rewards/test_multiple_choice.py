"""Multiple-choice reward: softmax math with a fake scorer, and HFOptionScorer against a direct per-example loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bluerec.config import ConfigError, parse_config
from bluerec.rewards import (
    HFOptionScorer,
    MultipleChoiceReward,
    MultipleChoiceRewardConfig,
    OptionScorer,
    build_mc_options,
)


class FakeScorer:
    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table  # profile substring -> scores
        self.seen: list[tuple[list[str], list[list[str]]]] = []

    def score(self, contexts: list[str], options: list[list[str]]) -> np.ndarray:
        self.seen.append((contexts, options))
        rows = []
        for ctx in contexts:
            rows.append(next(v for k, v in self.table.items() if k in ctx))
        return np.array(rows)


def test_build_mc_options_shuffles_and_tracks_the_answer():
    positions = set()
    for seed in range(40):
        options, answer = build_mc_options("red shoes", ["blue hat", "green scarf", "mug"], np.random.default_rng(seed))
        assert options[answer] == "red shoes" and sorted(options) == sorted(["red shoes", "blue hat", "green scarf", "mug"])
        positions.add(answer)
    assert positions == {0, 1, 2, 3}
    a = build_mc_options("t", ["x", "y"], np.random.default_rng(5))
    assert a == build_mc_options("t", ["x", "y"], np.random.default_rng(5))
    with pytest.raises(ValueError):
        build_mc_options("t", ["t", "y"], np.random.default_rng(0))
    with pytest.raises(ValueError):
        build_mc_options("t", [], np.random.default_rng(0))


def test_reward_is_softmax_probability_of_the_true_option():
    scorer = FakeScorer({"hiker": [0.0, math.log(2), math.log(3), math.log(4)], "cook": [-1.0, -1.0, -1.0, -1.0]})
    reward = MultipleChoiceReward(scorer, MultipleChoiceRewardConfig(question_template="P: {profile}\nQ:"))
    opts = [["a", "b", "c", "d"]] * 4
    out = reward(completions=["a hiker", "a hiker", "a cook", ""], mc_options=opts, mc_answer=[3, 0, 1, 2])
    assert out == pytest.approx([0.4, 0.1, 0.25, 0.25])  # last: empty profile -> chance floor 1/C
    contexts, options = scorer.seen[0]
    assert contexts == ["P: a hiker\nQ:", "P: a hiker\nQ:", "P: a cook\nQ:"]  # degenerate rows never reach the reader
    assert options[0] == [" a", " b", " c", " d"]
    assert reward.last_components["accuracy"] == pytest.approx(1 / 3)  # argmax 3 == answer only in row 0 (ties -> 0)


def test_floor_options_and_conversational_completions():
    scorer = FakeScorer({"x": [0.0, 0.0]})
    cfg = MultipleChoiceRewardConfig(num_choices=2, floor=-1.0, question_template="{options}\n{profile}")
    reward = MultipleChoiceReward(scorer, cfg)
    out = reward(
        prompts=["p", "p"],
        completions=[[{"role": "assistant", "content": "x y"}], [{"role": "assistant", "content": "  "}]],
        completion_ids=[[1], [2]],
        mc_options=[["o1", "o2"], ["o1", "o2"]],
        mc_answer=[1, 0],
        trainer_state=None,
        log_metric=lambda name, value: None,
        log_extra=lambda column, values: None,
    )
    assert out == pytest.approx([0.5, -1.0])
    assert scorer.seen[0][0] == ["1. o1\n2. o2\nx y"]


def test_validation():
    scorer = FakeScorer({"x": [0.0] * 4})
    reward = MultipleChoiceReward(scorer)
    with pytest.raises(ValueError, match="mc_options"):
        reward(completions=["x y"])
    with pytest.raises(ValueError, match="num_choices"):
        reward(completions=["x y"], mc_options=[["a", "b"]], mc_answer=[0])
    with pytest.raises(ValueError, match="outside"):
        reward(completions=["x y"], mc_options=[["a", "b", "c", "d"]], mc_answer=[4])
    with pytest.raises(ConfigError, match="profile"):
        parse_config(MultipleChoiceRewardConfig, {"question_template": "no placeholder"})
    with pytest.raises(ConfigError, match="unknown fields"):
        parse_config(MultipleChoiceRewardConfig, {"question_template": "{profile} {target}"})
    with pytest.raises(TypeError):
        MultipleChoiceReward(object())  # type: ignore[arg-type]


# --- HFOptionScorer on a tiny random Qwen2 --------------------------------------------------------------------------

SENTENCES = [
    "here is a description of a shopper who likes red shoes and blue hats",
    "question which product will this shopper buy next answer",
    "trail running shoes green scarf ceramic mug desk lamp tea kettle",
]


@pytest.fixture(scope="module")
def tiny_lm():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]", "[EOS]"]))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]")
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False,
    )
    model = Qwen2ForCausalLM(config)
    with torch.no_grad():  # larger random weights so the log-probs are far from uniform
        for p in model.parameters():
            p.mul_(8.0)
    # Intra-op threads on a small, busy CPU cost far more in synchronisation than the tiny matmuls they split.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield model, tokenizer
    torch.set_num_threads(threads)


def direct_scores(model, tokenizer, contexts, options, normalise):
    """Unbatched reference: one sequence at a time, full logits, no padding."""
    out = np.zeros((len(contexts), len(options[0])))
    for i, ctx in enumerate(contexts):
        for j, opt in enumerate(options[i]):
            c = tokenizer(ctx, add_special_tokens=False)["input_ids"]
            o = tokenizer(opt, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([c + o])
            with torch.no_grad():
                logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
            total = sum(float(logp[len(c) + t - 1, o[t]]) for t in range(len(o)))
            out[i, j] = total / len(o) if normalise else total
    return out


CONTEXTS = [
    "here is a description of a shopper who likes red shoes question which product answer",
    "a shopper who likes tea answer",
    "blue hats answer",
]
OPTIONS = [
    [" trail running shoes", " mug", " desk lamp tea kettle", " green scarf"],
    [" tea kettle", " red shoes and blue hats", " lamp", " ceramic mug"],
    [" shoes", " scarf", " hats", " trail running shoes green scarf ceramic mug"],
]


@pytest.mark.parametrize("batch_size", [1, 5, 64])
def test_hf_option_scorer_matches_direct_loop(tiny_lm, batch_size):
    model, tokenizer = tiny_lm
    scorer = HFOptionScorer(model, tokenizer, batch_size=batch_size, max_length=128)
    assert isinstance(scorer, OptionScorer)
    got = scorer.score(CONTEXTS, OPTIONS)
    assert got.shape == (3, 4)
    np.testing.assert_allclose(got, direct_scores(model, tokenizer, CONTEXTS, OPTIONS, True), atol=1e-5, rtol=0)
    raw = HFOptionScorer(model, tokenizer, batch_size=batch_size, max_length=128, length_normalise=False)
    np.testing.assert_allclose(raw.score(CONTEXTS, OPTIONS), direct_scores(model, tokenizer, CONTEXTS, OPTIONS, False),
                               atol=1e-5, rtol=0)


def test_hf_length_normalisation_divides_by_option_token_count(tiny_lm):
    model, tokenizer = tiny_lm
    scorer = HFOptionScorer(model, tokenizer, batch_size=4, length_normalise=False)
    sums, counts = scorer.log_likelihoods(CONTEXTS, OPTIONS)
    assert counts.tolist() == [[3, 1, 4, 2], [2, 5, 1, 2], [1, 1, 1, 7]]
    np.testing.assert_allclose(scorer.score(CONTEXTS, OPTIONS), sums)
    normed = HFOptionScorer(model, tokenizer, batch_size=4).score(CONTEXTS, OPTIONS)
    np.testing.assert_allclose(normed * counts, sums, atol=1e-9)


def test_hf_scorer_restores_training_mode_and_truncates_context_from_the_left(tiny_lm):
    model, tokenizer = tiny_lm
    model.train()
    try:
        HFOptionScorer(model, tokenizer).score(["a shopper"], [[" mug", " lamp"]])
        assert model.training
    finally:
        model.eval()
    short = HFOptionScorer(model, tokenizer, max_length=4)
    ids, k = short.encode_pair("here is a description of a shopper", " red shoes")
    assert k == 2 and ids == tokenizer("a shopper red shoes", add_special_tokens=False)["input_ids"]
    ids, k = short.encode_pair("", " mug")
    assert ids[0] == tokenizer.eos_token_id and k == 1  # empty context: EOS as start token (no BOS)


def test_multiple_choice_reward_end_to_end_on_tiny_qwen(tiny_lm):
    model, tokenizer = tiny_lm
    cfg = MultipleChoiceRewardConfig(question_template="a shopper who {profile} answer")
    reward = MultipleChoiceReward.from_hf(model, tokenizer, cfg, batch_size=8)
    completions = [[{"role": "assistant", "content": "likes tea"}], [{"role": "assistant", "content": ""}]]
    options = [["tea kettle", "mug", "lamp", "desk lamp"]] * 2
    out = reward(completions=completions, mc_options=options, mc_answer=[0, 0])
    scores = direct_scores(model, tokenizer, ["a shopper who likes tea answer"], [[" " + o for o in options[0]]], True)
    expected = np.exp(scores[0, 0]) / np.exp(scores[0]).sum()
    assert out[0] == pytest.approx(expected, abs=1e-6)
    assert out[1] == 0.25
    with pytest.raises(ValueError, match="length_normalise"):
        MultipleChoiceReward(HFOptionScorer(model, tokenizer, length_normalise=False), cfg)


def test_hf_scorer_keeps_few_logits_and_works_without_logits_to_keep(tiny_lm):
    model, tokenizer = tiny_lm
    shapes: list[tuple[int, ...]] = []

    class NoLogitsToKeep(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask)
            shapes.append(tuple(out.logits.shape))
            return out

    expected = direct_scores(model, tokenizer, CONTEXTS, OPTIONS, True)
    wrapped = HFOptionScorer(NoLogitsToKeep(model), tokenizer, batch_size=64)
    np.testing.assert_allclose(wrapped.score(CONTEXTS, OPTIONS), expected, atol=1e-5, rtol=0)
    assert shapes[-1][1] == max(len(tokenizer(c + o)["input_ids"]) for c, row in zip(CONTEXTS, OPTIONS) for o in row)

    kept: list[int] = []
    hook = model.lm_head.register_forward_hook(lambda mod, args, out: kept.append(out.shape[1]))
    try:
        HFOptionScorer(model, tokenizer, batch_size=64).score(CONTEXTS, OPTIONS)
    finally:
        hook.remove()
    assert kept[-1] < shapes[-1][1]  # only the window from the first option position is projected to the vocabulary
