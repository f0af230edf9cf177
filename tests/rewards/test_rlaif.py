"""RLAIF-style reward: a judge's expected 1-5 rubric score of the profile against the history, on a fake judge."""

from __future__ import annotations

import numpy as np
import pytest

from bluerec.rewards.registry import RowInfo, get_reward
from bluerec.rewards.rlaif import DIGITS, RLAIFReward, RLAIFRewardConfig, expected_rubric_score, history_text_column


class FakeJudge:
    """Puts probability on digit 5 for every history title the profile repeats, else on digit 1."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[list[str]]]] = []

    def score(self, contexts, options):
        self.calls.append((list(contexts), [list(o) for o in options]))
        rows = []
        for c in contexts:
            history, profile = c.split("Someone wrote this profile of the shopper:\n")
            titles = [line.split(". ", 1)[1] for line in history.splitlines() if ". " in line]
            share = np.mean([t in profile for t in titles]) if titles else 0.0
            probs = np.array([1 - share, 0, 0, 0, share]) + 1e-12
            rows.append(np.log(probs))
        return np.asarray(rows)


def test_expected_score_rescaled_to_unit_interval():
    with np.errstate(divide="ignore"):  # log 0 = -inf: a digit the judge never says
        certain = np.log([[1, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 1]])
        split = np.log([[0.01, 0.0, 0.0, 0.0, 0.01]])
    assert expected_rubric_score(certain) == pytest.approx([0.0, 0.5, 1.0])
    # probabilities are renormalised over the five digits: only their ratios matter
    assert expected_rubric_score(split) == pytest.approx([0.5])
    with pytest.raises(ValueError, match=r"\(n, 5\)"):
        expected_rubric_score(np.zeros((1, 4)))


def test_reward_follows_the_judge_and_shows_it_history_and_profile():
    judge = FakeJudge()
    reward = RLAIFReward(judge)
    history = "1. green tea\n2. blue mug"
    out = reward(completions=["likes green tea and a blue mug", "likes green tea", "likes wool hats"],
                 history_text=[history] * 3)
    assert out == pytest.approx([1.0, 0.5, 0.0], abs=1e-6)
    contexts, options = judge.calls[0]
    assert options == [[" 1", " 2", " 3", " 4", " 5"]] * 3 and len(DIGITS) == 5
    assert history in contexts[0] and "likes green tea and a blue mug" in contexts[0]
    assert contexts[0].endswith("Rating (1-5):")
    assert reward.last_components["expected_rating"] == pytest.approx(3.0, abs=1e-5)


def test_degenerate_profiles_get_the_floor_without_asking_the_judge():
    judge = FakeJudge()
    reward = RLAIFReward(judge, RLAIFRewardConfig(floor=-0.5))
    out = reward(completions=["", "ok ok ok", "likes green tea"], history_text=["1. green tea"] * 3)
    assert out == pytest.approx([-0.5, -0.5, 1.0], abs=1e-6)
    assert len(judge.calls[0][0]) == 1


def test_bad_inputs_fail_clearly():
    with pytest.raises(ValueError, match="history_text"):
        RLAIFReward(FakeJudge())(completions=["a b"])
    with pytest.raises(ValueError, match="history.*profile"):
        RLAIFRewardConfig(rubric_template="{profile} only")

    class Wrong:
        def score(self, contexts, options):
            return np.zeros((len(contexts), 3))

    with pytest.raises(ValueError, match="expected"):
        RLAIFReward(Wrong())(completions=["a b"], history_text=["1. x"])


def test_history_text_column_lists_the_newest_titles(word_dataset_small):
    from bluerec.data.dataset import PreparedDataset

    ds = PreparedDataset(word_dataset_small)
    spec = get_reward("rlaif")
    assert spec.needs_reader and spec.columns == ("history_text",)
    ex = next(e for e in ds.split("train") if e.user_id == "u0" and e.seq == 1)
    row = RowInfo(ds, ex, ds.items.index[ex.item_id], ["i0", "i3", "missing"])
    assert history_text_column(RLAIFRewardConfig())(row) == "1. green tea\n2. red shoe\n3. missing"
    newest = spec.add_columns(RLAIFRewardConfig(max_history_items=1, max_item_chars=8))["history_text"]
    assert newest(RowInfo(ds, ex, 1, ["i0", "i3"])) == "1. red shoe"


def test_a_judge_of_its_own_is_loaded_once_through_the_context(word_dataset_small):
    from types import SimpleNamespace

    from bluerec.data.dataset import PreparedDataset
    from bluerec.rewards.registry import RewardContext

    loads = []
    tokenizer = SimpleNamespace(pad_token_id=0, bos_token_id=1, eos_token_id=2)

    def load_model(name):
        loads.append(name)
        return object(), tokenizer

    spec = get_reward("rlaif")
    ctx = RewardContext(encoder=None, item_emb=np.zeros((1, 1)), dataset=PreparedDataset(word_dataset_small),
                        reader=None, load_model=load_model)
    own = RLAIFRewardConfig(judge="some/judge-model")
    assert not spec.reads_with_reader(own) and spec.reads_with_reader(RLAIFRewardConfig())
    first, second = spec.build(own, ctx), spec.build(own, ctx)
    assert loads == ["some/judge-model"]  # loaded once per run
    assert first.judge.inner.model is second.judge.inner.model and first.judge.length_normalise is False
    with pytest.raises(ValueError, match="'rlaif' reward needs a reader"):
        spec.build(RLAIFRewardConfig(), ctx)  # the default judge is the reader


@pytest.fixture(scope="module")
def digit_lm():
    """A tiny random Qwen2 with a word-level vocabulary in which every digit is one token."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    words = ["a shopper bought green tea blue mug rating profile likes hats 1 2 3 4 5 12 ."] * 3
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator(words, trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]", "[EOS]"]))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Qwen2ForCausalLM(Qwen2Config(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id))
        with torch.no_grad():  # far from uniform log-probs
            for p in model.parameters():
                p.mul_(8.0)
    return model, tokenizer


def test_single_token_scorer_gives_the_per_option_scorer_numbers_in_one_pass(digit_lm):
    from bluerec.rewards.multiple_choice import HFOptionScorer
    from bluerec.rewards.rlaif import SingleTokenOptionScorer

    model, tokenizer = digit_lm
    contexts = ["a shopper bought green tea rating", "likes hats . profile blue mug blue mug rating", "rating", ""]
    digits = [[" 1", " 2", " 3", " 4", " 5"]] * len(contexts)
    for batch_size in (1, 3):
        slow = HFOptionScorer(model, tokenizer, batch_size=batch_size, length_normalise=False)
        fast = SingleTokenOptionScorer(slow)
        expected = slow.score(contexts, digits)
        forward_passes = []
        hook = model.register_forward_hook(lambda *args: forward_passes.append(1))
        try:
            got = fast.score(contexts, digits)
        finally:
            hook.remove()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
        assert len(forward_passes) == -(-len(contexts) // batch_size)  # one pass per batch of contexts
        assert np.ptp(got, axis=1).min() > 0.1  # the digits really differ
    slow = HFOptionScorer(model, tokenizer, length_normalise=False)
    # a shared prefix before the distinct last token (" 1" is "Ġ" + "1" in GPT-2-style tokenizers) is scored too
    prefixed = [["rating 1", "rating 2", "rating 3"]] * len(contexts)
    fast = SingleTokenOptionScorer(slow)
    assert fast.split_options(prefixed) is not None
    np.testing.assert_allclose(fast.score(contexts, prefixed), slow.score(contexts, prefixed), rtol=1e-5, atol=1e-5)
    # options that differ in more than their last token (or per context) go to the per-option scorer
    for multi in ([[" 1 2", " 3 4"]] * 2, [[" 1", " 2"], [" 3", " 4"]], [[" 1", " 1"]] * 2):
        assert fast.split_options(multi) is None
        np.testing.assert_allclose(fast.score(contexts[:2], multi), slow.score(contexts[:2], multi), rtol=1e-6)


def test_non_finite_judge_scores_stay_finite():
    class Broken:
        def score(self, contexts, options):
            return np.array([[np.nan] * 5, [-np.inf] * 5, [np.nan, 0.0, -np.inf, np.nan, np.nan]])

    out = RLAIFReward(Broken(), RLAIFRewardConfig(floor=-0.25))(completions=["a b", "c d", "e f"],
                                                                  history_text=["1. x"] * 3)
    assert out == pytest.approx([-0.25, -0.25, 0.25])  # all-missing rows get the floor; else the finite digits
