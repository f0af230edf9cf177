"""Personalized QA: rating/choice parsing, LaMP-style scoring, the two evaluators and a run on synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bluerec.eval.qa import (NextItemChoiceEvaluator, QAConfig, RatingEvaluator, choice_accuracy,
                             parse_choice, parse_rating, rating_errors, rating_metrics, run_qa, worst_error)


@pytest.mark.parametrize("text, expected", [
    ("4", 4.0), ("5", 5.0), ("4/5", 4.0), ("Rating: 4.5", 4.5), ("four stars", 4.0), ("Five.", 5.0),
    ("I would give it 3 stars.", 3.0), ("8 out of 10", 4.0), ("3 out of 5 stars", 3.0), ("4,5", 4.5),
    ("four and a half stars", 4.5), ("★★★★☆", 4.0), ("  2\n", 2.0), ("1", 1.0),
    ("1. 4 stars", 4.0), ("2) five", 5.0), ("4.", 4.0), ("3. ", 3.0),
])
def test_parse_rating_reads_common_answer_shapes(text, expected):
    assert parse_rating(text) == expected


@pytest.mark.parametrize("text", ["", None, "I don't know", "great product!", "7", "0", "-3", "10 stars",
                                  "rating: N/A", "☆☆☆", "1. The product is", "1. 100%"])
def test_parse_rating_gives_none_for_unparsable_or_off_scale_answers(text):
    assert parse_rating(text) is None


def test_parse_rating_honours_another_scale():
    assert parse_rating("7", scale=(1, 10)) == 7.0
    assert parse_rating("7/10", scale=(1, 10)) == 7.0


def test_worst_error_is_the_farthest_end_of_the_scale():
    assert worst_error(5.0) == 4.0 and worst_error(1.0) == 4.0 and worst_error(3.0) == 2.0 and worst_error(4.0) == 3.0


def test_unparsable_answers_count_at_the_worst_value():
    # Without the worst-value rule, the two unparsable rows would be dropped (MAE 0.5) or scored 0 (MAE 0.25).
    preds = [4.5, None, 2.0, None]
    targets = [5.0, 5.0, 2.0, 3.0]
    errors = rating_errors(preds, targets)
    assert errors.tolist() == [0.5, 4.0, 0.0, 2.0]
    metrics = rating_metrics(preds, targets)
    assert metrics["mae"] == pytest.approx(6.5 / 4)
    assert metrics["rmse"] == pytest.approx(np.sqrt((0.25 + 16 + 0 + 4) / 4))
    assert metrics["unparsable_rate"] == 0.5 and metrics["n"] == 4


def test_rating_metrics_reject_mismatched_lengths():
    with pytest.raises(ValueError):
        rating_errors([1.0], [1.0, 2.0])


@pytest.mark.parametrize("text, expected", [("B", 1), ("(c)", 2), ("Answer: D. the lamp", 3), ("2", 1),
                                            ("A", 0), ("none of them", None), ("E", None), ("", None), ("9", None)])
def test_parse_choice(text, expected):
    assert parse_choice(text, 4) == expected


def test_choice_accuracy_counts_missing_as_wrong():
    assert choice_accuracy([0, None, 2, 1], [0, 1, 2, 3]).tolist() == [1.0, 0.0, 1.0, 0.0]


class KeywordReader:
    """A deterministic stand-in reader: picks the option sharing the most words with the context; answers a rating
    from a canned list (cycled)."""

    name = "keyword"

    def __init__(self, answers=("4",)):
        self.answers = list(answers)
        self.calls = 0

    def choose(self, contexts, options):
        out = []
        for ctx, opts in zip(contexts, options):
            words = set(ctx.lower().split())
            out.append(int(np.argmax([len(words & set(o.lower().split())) for o in opts])))
        return out

    def answer(self, prompts, max_new_tokens):
        out = [self.answers[(self.calls + i) % len(self.answers)] for i in range(len(prompts))]
        self.calls += len(prompts)
        return out


def test_next_item_choice_evaluator_returns_named_metrics():
    ev = NextItemChoiceEvaluator([["red lipstick", "garden hose"], ["blue jeans", "matte lipstick"]], [0, 0])
    metrics = ev(KeywordReader(), ["loves red lipstick", "buys matte lipstick"])
    assert metrics == {"accuracy": 0.5, "n": 2} and ev.primary_metric == "accuracy" and ev.greater_is_better
    assert ev.last_correct.tolist() == [1.0, 0.0]
    with pytest.raises(ValueError):
        ev(KeywordReader(), ["only one context"])


def test_rating_evaluator_scores_parsed_answers_and_worst_value_for_the_rest():
    ev = RatingEvaluator(["lipstick", "hose", "jeans"], [5.0, 1.0, 3.0])
    metrics = ev(KeywordReader(answers=["4 stars", "no idea", "3"]), ["a", "b", "c"])
    assert ev.primary_metric == "mae" and not ev.greater_is_better
    assert ev.last_predictions == [4.0, None, 3.0]
    assert metrics["mae"] == pytest.approx((1 + 4 + 0) / 3) and metrics["unparsable_rate"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        RatingEvaluator(["x"], [6.0])  # a target off the scale is bad data, not a prediction error


def test_choice_question_keeps_the_target_and_excludes_history():
    """The QA question is the GRPO dataset's (one shared function in bluerec.rewards.multiple_choice)."""
    from bluerec.data.dataset import ItemTable
    from bluerec.rewards.multiple_choice import mc_question

    items = ItemTable(ids=[f"i{k}" for k in range(30)], texts=[f"text {k}" for k in range(30)],
                      titles=[f"title {k}" for k in range(30)], popularity=np.ones(30, dtype=np.int64))
    rng = np.random.default_rng(0)
    options, answer = mc_question(rng, items, 3, {0, 1, 2, 4, 5}, 4, "title", 100)
    assert len(options) == 4 and options[answer] == "title 3" and len(set(options)) == 4
    assert not {"title 0", "title 1", "title 2", "title 4", "title 5"} & set(options)
    again = mc_question(np.random.default_rng(0), items, 3, {0, 1, 2, 4, 5}, 4, "title", 100)
    assert again == (options, answer)
    with pytest.raises(ValueError, match="distinct distractor"):
        mc_question(rng, items, 3, set(range(30)) - {3, 7}, 4)


def test_run_qa_writes_a_summary_with_intervals(synth_prepared: Path, tmp_path: Path):
    from bluerec.data.dataset import PreparedDataset

    ds = PreparedDataset(synth_prepared)
    users = [ex.user_id for ex in ds.split("test")]
    profiles = tmp_path / "zeroshot.jsonl"
    profiles.write_text("".join(json.dumps({"user_id": u, "profile": "likes things"}) + "\n" for u in users))
    config = QAConfig(dataset=synth_prepared, max_users=30, profiles={"zeroshot": profiles}, resamples=200)
    summary = run_qa(config, tmp_path / "run", reader=KeywordReader(answers=["5", "3/5", "??"]))
    assert summary["n_users"] == 30 and set(summary["results"]) == {"history", "template", "zeroshot"}
    for by_task in summary["results"].values():
        assert 0.0 <= by_task["choice"]["accuracy"] <= 1.0 and by_task["choice"]["n"] == 30
        assert by_task["rating"]["unparsable_rate"] > 0 and by_task["rating"]["mae"] > 0
    pairs = {(r["a"], r["b"]) for r in summary["intervals"]["choice"]}
    assert pairs == {("history", "template"), ("history", "zeroshot"), ("template", "zeroshot")}
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert on_disk["results"] == json.loads(json.dumps(summary["results"]))
    assert "| history |" in (tmp_path / "run" / "summary.md").read_text()
    rows = [json.loads(line) for line in (tmp_path / "run" / "rows" / "template.jsonl").read_text().splitlines()]
    assert len(rows) == 30 and all(r["options"][r["answer"]] for r in rows)
    # Same seed → same users and the same questions.
    again = run_qa(config, tmp_path / "run2", reader=KeywordReader(answers=["5", "3/5", "??"]))
    assert again["results"] == summary["results"]


def test_run_qa_names_a_profile_file_missing_users(synth_prepared: Path, tmp_path: Path):
    from bluerec.data.errors import DataError

    profiles = tmp_path / "p.jsonl"
    profiles.write_text(json.dumps({"user_id": "nobody", "profile": "x"}) + "\n")
    with pytest.raises(DataError, match="no profile"):
        run_qa(QAConfig(dataset=synth_prepared, contexts=[], profiles={"z": profiles}, max_users=5),
               tmp_path / "run", reader=KeywordReader())


def test_qa_config_validation(tmp_path: Path):
    assert QAConfig(dataset=tmp_path, reader="some/model").reader.model == "some/model"
    with pytest.raises(ValueError):
        QAConfig(dataset=tmp_path, contexts=["nonsense"])
    with pytest.raises(ValueError):
        QAConfig(dataset=tmp_path, contexts=[], profiles={})
    with pytest.raises(ValueError):
        QAConfig(dataset=tmp_path, rating_scale=(5, 1))


def test_hf_reader_through_load_profiler_scores_and_answers(synth_prepared: Path, tmp_path: Path):
    """The real reader path (load_profiler → HFOptionScorer / greedy generate) on a tiny untrained micro model:
    deterministic, one choice per user, and its (garbage) answers are scored, unparsable ones at the worst value."""
    import torch

    from bluerec.data.dataset import PreparedDataset
    from bluerec.eval.qa import HFReader, load_reader
    from bluerec.profiler.backends.micro import MicroModelConfig, build_micro_profiler, corpus_for
    from bluerec.profiler.config import ProfilerConfig

    torch.set_num_threads(1)
    micro = build_micro_profiler(corpus_for(PreparedDataset(synth_prepared)), tmp_path / "micro", vocab_size=600,
                                 model_config=MicroModelConfig(hidden_size=32, num_hidden_layers=1,
                                                               num_attention_heads=2, num_key_value_heads=1,
                                                               intermediate_size=64, max_position_embeddings=512))
    reader = load_reader(ProfilerConfig(backend="micro", model=str(micro), device="cpu"), batch_size=4, max_length=256)
    assert isinstance(reader, HFReader)
    config = QAConfig(dataset=synth_prepared, max_users=6, resamples=50, max_new_tokens=3)
    first = run_qa(config, tmp_path / "a", reader=reader)
    second = run_qa(config, tmp_path / "b", reader=reader)
    assert first["results"] == second["results"]
    for by_task in first["results"].values():
        assert by_task["choice"]["n"] == 6
        rating = by_task["rating"]
        assert 0.0 <= rating["unparsable_rate"] <= 1.0 and 0.0 <= rating["mae"] <= 4.0


class CannedChat:
    """A generate-only back-end (what an OpenAI-compatible server gives) answering from a list."""

    model = "canned"

    def __init__(self, answers):
        self.answers = list(answers)
        self.prompts = []

    def generate(self, chats, *, num_samples=1, max_new_tokens=8, do_sample=True, seed=0, **_):
        assert not do_sample and num_samples == 1
        self.prompts.extend(c[0]["content"] for c in chats)
        return [[self.answers.pop(0)] for _ in chats]


def test_chat_reader_lists_lettered_options_and_parses_the_letter():
    from bluerec.eval.qa import ChatReader

    backend = CannedChat(["B", "I am not sure", "Answer: (A)"])
    ev = NextItemChoiceEvaluator([["hat", "lipstick"], ["mug", "lamp"], ["serum", "rake"]], [1, 0, 0])
    metrics = ev(ChatReader(backend), ["likes lips", "likes light", "skin care"])
    assert metrics["accuracy"] == pytest.approx(2 / 3) and ev.last_chosen == [1, None, 0]
    assert "A. hat\nB. lipstick" in backend.prompts[0] and "letter" in backend.prompts[0]


def test_load_reader_gives_a_chat_reader_for_an_openai_endpoint():
    from bluerec.eval.qa import ChatReader, load_reader
    from bluerec.profiler.config import ProfilerConfig

    reader = load_reader(ProfilerConfig(backend="openai", model="m", base_url="http://127.0.0.1:9/v1"))
    assert isinstance(reader, ChatReader) and reader.name == "m"
