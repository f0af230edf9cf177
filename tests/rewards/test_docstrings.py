"""The runnable examples in the rewards' docstrings stay true (markdown fences are stripped first)."""

import doctest
import inspect

import pytest

from bluerec.rewards import embedding, langptune, length, multiple_choice, registry, rlaif, rlpf, text

EXAMPLES = [
    text.completion_text,
    text.is_degenerate,
    embedding.masked_log_softmax,
    embedding.info_nce_log_prob,
    embedding.sample_negatives,
    length.length_deviation,
    length.LengthPenalty,
    multiple_choice.build_mc_options,
    registry.RewardSpec,
    rlpf.next_item_rewards,
    rlpf.RLPFReward,
    langptune.rank_rewards,
    langptune.LangPTuneReward,
    rlaif.expected_rubric_score,
    rlaif.RLAIFReward,
]


@pytest.mark.parametrize("obj", EXAMPLES, ids=lambda o: o.__qualname__)
def test_docstring_example(obj):
    module = inspect.getmodule(obj)
    doc = "\n".join(line for line in inspect.getdoc(obj).splitlines() if not line.strip().startswith("```"))
    test = doctest.DocTestParser().get_doctest(doc, dict(vars(module)), obj.__qualname__, module.__file__, 0)
    assert test.examples, f"{obj.__qualname__} has no runnable example"
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0
